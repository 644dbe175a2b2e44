//! Database-backed capabilities for egress: rate-limit state shared by every
//! execution and replica, the audit log, and the approving owner's sealed
//! secrets, opened only when a call needs them.

use std::sync::Arc;
use std::time::Duration;

use oauth3_host::{AuditSink, CallRecord, RateLimiter, Secret, SecretResolver};
use oauth3_policy::{Gcra, RateDecision, RateKey, RateLimit};

use crate::db::{Db, now_ms};
use crate::keys::Sealer;

/// GCRA state in the `rate_state` table, updated by compare-and-swap so
/// concurrent executions and replicas share one budget.
pub struct DbRateLimiter {
    db: Db,
}

impl DbRateLimiter {
    /// A limiter over `db`.
    pub fn new(db: Db) -> DbRateLimiter {
        DbRateLimiter { db }
    }

    async fn try_acquire(&self, key: &RateKey, limit: RateLimit) -> Result<Option<Result<(), Duration>>, sqlx::Error> {
        let current: Option<i64> =
            sqlx::query_scalar("SELECT tat FROM rate_state WHERE permit_id = $1 AND integration = $2")
                .bind(&key.permit_id)
                .bind(&key.integration)
                .fetch_optional(&self.db.pool)
                .await?;
        let now = (now_ms() as u64) * 1000;
        let tat = match Gcra::new(limit).check(current.map(|t| t as u64), now) {
            RateDecision::Limited { retry_after } => return Ok(Some(Err(retry_after))),
            RateDecision::Allowed { tat } => tat as i64,
        };
        let swapped = match current {
            None => sqlx::query(
                "INSERT INTO rate_state (permit_id, integration, tat) VALUES ($1, $2, $3) \
                 ON CONFLICT (permit_id, integration) DO NOTHING",
            )
            .bind(&key.permit_id)
            .bind(&key.integration)
            .bind(tat)
            .execute(&self.db.pool)
            .await?
            .rows_affected(),
            Some(old) => {
                sqlx::query("UPDATE rate_state SET tat = $1 WHERE permit_id = $2 AND integration = $3 AND tat = $4")
                    .bind(tat)
                    .bind(&key.permit_id)
                    .bind(&key.integration)
                    .bind(old)
                    .execute(&self.db.pool)
                    .await?
                    .rows_affected()
            }
        };
        // Someone else moved the state first: decide again on theirs.
        Ok((swapped == 1).then_some(Ok(())))
    }
}

#[async_trait::async_trait]
impl RateLimiter for DbRateLimiter {
    async fn acquire(&self, key: &RateKey, limit: RateLimit) -> Result<(), Duration> {
        for _ in 0..16 {
            match self.try_acquire(key, limit).await {
                Ok(Some(decision)) => return decision,
                Ok(None) => continue,
                Err(error) => {
                    // Deny on error: no call without a recorded budget.
                    tracing::error!(%error, "rate-limit state unavailable; refusing the call");
                    return Err(Duration::from_secs(1));
                }
            }
        }
        tracing::warn!(permit = %key.permit_id, "rate-limit state contended; refusing the call");
        Err(Duration::from_millis(50))
    }
}

/// Appends every call to the `audit` table.
pub struct DbAudit {
    db: Db,
}

impl DbAudit {
    /// An audit sink over `db`.
    pub fn new(db: Db) -> DbAudit {
        DbAudit { db }
    }
}

#[async_trait::async_trait]
impl AuditSink for DbAudit {
    async fn record(&self, permit_id: &str, execution_id: &str, record: &CallRecord) {
        let started = record.started_at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let result = sqlx::query(
            "INSERT INTO audit (permit_id, execution_id, integration, method, url, decision, reason, status, \
             request_bytes, response_bytes, started_at, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(permit_id)
        .bind(execution_id)
        .bind(&record.integration)
        .bind(&record.method)
        .bind(&record.url)
        .bind(record.decision)
        .bind(record.reason)
        .bind(record.status.map(i64::from))
        .bind(record.request_bytes as i64)
        .bind(record.response_bytes as i64)
        .bind(started)
        .bind(record.duration.as_millis() as i64)
        .execute(&self.db.pool)
        .await;
        if let Err(error) = result {
            tracing::error!(%error, permit_id, execution_id, "could not write an audit record");
        }
    }
}

/// One owner's secrets, opened from the database on demand.
pub struct OwnerSecrets {
    db: Db,
    sealer: Arc<Sealer>,
    owner_id: String,
}

impl OwnerSecrets {
    /// The secrets of `owner_id`.
    pub fn new(db: Db, sealer: Arc<Sealer>, owner_id: String) -> OwnerSecrets {
        OwnerSecrets { db, sealer, owner_id }
    }
}

#[async_trait::async_trait]
impl SecretResolver for OwnerSecrets {
    async fn resolve(&self, name: &str) -> Option<Secret> {
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT sealed FROM secrets WHERE owner_id = $1 AND name = $2")
                .bind(&self.owner_id)
                .bind(name)
                .fetch_optional(&self.db.pool)
                .await
                .inspect_err(|error| tracing::error!(%error, "could not read a secret"))
                .ok()
                .flatten();
        let plain = self
            .sealer
            .open(&self.owner_id, name, &sealed?)
            .inspect_err(|error| tracing::error!(%error, "could not open a secret"))
            .ok()?;
        String::from_utf8(plain).ok().map(Secret::new)
    }
}
