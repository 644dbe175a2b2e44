//! Retention: a periodic task deletes audit records and finished executions
//! older than the operator's `OAUTH3_AUDIT_RETENTION_DAYS` and
//! `OAUTH3_EXECUTION_RETENTION_DAYS` (both off by default: keep everything),
//! and revocations of tokens that have expired anyway. It deletes in small
//! batches, each its own statement, so it never holds the database (SQLite's
//! one writer, or Postgres row locks) for long.

use std::sync::Arc;
use std::time::Duration;

use crate::db::{Db, now_ms};
use crate::error::Result;
use crate::state::Gateway;
use crate::store::ExecutionStatus;

/// How often the task runs (and once at start).
const EVERY: Duration = Duration::from_secs(3600);
/// Rows per delete statement.
const BATCH: i64 = 500;
/// A pause between batches, so requests get the database in between.
const PAUSE: Duration = Duration::from_millis(20);
const DAY_MS: i64 = 86_400_000;

/// What a sweep deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    /// Audit records.
    pub audit: u64,
    /// Finished executions.
    pub executions: u64,
    /// Expired token revocations.
    pub revocations: u64,
    /// Stored components no execution names any more.
    pub components: u64,
    /// Expired browser sessions.
    pub sessions: u64,
}

/// Starts the task: a sweep now, then every hour, until the gateway stops.
pub fn start(gateway: Arc<Gateway>) {
    tokio::spawn(async move {
        loop {
            match sweep(&gateway.db, gateway.config.audit_retention_days, gateway.config.execution_retention_days).await
            {
                Ok(deleted) if deleted != Deleted::default() => tracing::info!(
                    audit = deleted.audit,
                    executions = deleted.executions,
                    revocations = deleted.revocations,
                    components = deleted.components,
                    sessions = deleted.sessions,
                    "retention: deleted old records"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "retention: could not delete old records"),
            }
            tokio::select! {
                () = gateway.stopping.wait() => return,
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    });
}

/// Deletes what is past retention now: audit records that started more than
/// `audit_days` ago, executions that finished more than `execution_days` ago
/// (queued and running ones are never touched), revocations of tokens past
/// their expiry, expired browser sessions, and components no execution names (stored over an hour
/// ago, so that one whose submission is still being queued stays).
pub async fn sweep(db: &Db, audit_days: Option<u64>, execution_days: Option<u64>) -> Result<Deleted> {
    let now = now_ms();
    let before = |days: u64| now.saturating_sub((days as i64).saturating_mul(DAY_MS));
    let mut deleted = Deleted::default();
    if let Some(days) = audit_days {
        deleted.audit = in_batches(
            db,
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE started_at < $1 ORDER BY id LIMIT $2)",
            before(days),
        )
        .await?;
    }
    if let Some(days) = execution_days {
        let finished = format!(
            "DELETE FROM executions WHERE id IN (SELECT id FROM executions \
             WHERE status IN ('{}', '{}') AND finished_at < $1 LIMIT $2)",
            ExecutionStatus::Completed,
            ExecutionStatus::Failed
        );
        deleted.executions = in_batches(db, &finished, before(days)).await?;
    }
    // A revoked token past its expiry is refused anyway (with the verifier's leeway).
    deleted.revocations = in_batches(
        db,
        "DELETE FROM revoked_tokens WHERE jti IN (SELECT jti FROM revoked_tokens WHERE expires_at < $1 LIMIT $2)",
        now - 120_000,
    )
    .await?;
    deleted.sessions = in_batches(
        db,
        "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE expires_at < $1 LIMIT $2)",
        now,
    )
    .await?;
    deleted.components = in_batches(
        db,
        "DELETE FROM components WHERE hash IN (SELECT hash FROM components WHERE created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM executions WHERE executions.component_hash = components.hash) LIMIT $2)",
        now - 3_600_000,
    )
    .await?;
    Ok(deleted)
}

/// Runs `statement` (with `$1` = the cut-off, `$2` = the batch size) until a
/// batch deletes fewer rows than it could.
async fn in_batches(db: &Db, statement: &str, cutoff: i64) -> Result<u64> {
    let mut total = 0;
    loop {
        let rows = sqlx::query(statement).bind(cutoff).bind(BATCH).execute(&db.writer).await?.rows_affected();
        total += rows;
        if rows < BATCH as u64 {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}
