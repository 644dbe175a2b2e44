//! The audit log: one row per call, written by egress's audit sink, read by
//! owners.

use oauth3_host::CallRecord;

use super::rows::AuditRow;
use crate::db::{Db, unix_ms};
use crate::error::Result;

/// Appends `record`.
pub async fn insert(db: &Db, permit_id: &str, execution_id: &str, record: &CallRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit (permit_id, execution_id, integration, method, url, decision, reason, status, \
         request_bytes, response_bytes, started_at, duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(permit_id)
    .bind(execution_id)
    .bind(&record.integration)
    .bind(&record.method)
    .bind(&record.url)
    .bind(record.decision.as_str())
    .bind(record.reason)
    .bind(record.status.map(i64::from))
    .bind(record.request_bytes as i64)
    .bind(record.response_bytes as i64)
    .bind(unix_ms(record.started_at))
    .bind(record.duration.as_millis() as i64)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The newest `limit` calls under `owner`'s permits (or the one permit),
/// newest first.
pub async fn of_owner(db: &Db, owner: &str, permit_id: Option<&str>, limit: i64) -> Result<Vec<AuditRow>> {
    Ok(sqlx::query_as(
        "SELECT a.id, a.permit_id, a.execution_id, a.integration, a.method, a.url, a.decision, a.reason, a.status, \
         a.request_bytes, a.response_bytes, a.started_at, a.duration_ms \
         FROM audit a JOIN permits p ON p.id = a.permit_id \
         WHERE p.owner_id = $1 AND ($2 = '' OR a.permit_id = $2) ORDER BY a.id DESC LIMIT $3",
    )
    .bind(owner)
    .bind(permit_id.unwrap_or(""))
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}
