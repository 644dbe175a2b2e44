//! Database-backed capabilities for egress: rate-limit state shared by every
//! execution and replica, the audit log, and the approving owner's sealed
//! secrets, opened only when a call needs them.

use std::sync::Arc;
use std::time::Duration;

use oauth3_host::{AuditSink, CallRecord, RateLimiter, Secret, SecretResolver};
use oauth3_policy::{Gcra, RateDecision, RateKey, RateLimit};

use crate::db::{Db, now_ms};
use crate::keyring::Keyring;
use crate::store::{audit, secrets};

/// GCRA state in the `rate_state` table, shared by every execution and
/// replica. Each call is one atomic conditional update that applies
/// [`Gcra::check`] inside the database (no read, no lock, no retry loop);
/// only a refusal reads the state, to say when to retry.
pub struct DbRateLimiter {
    db: Db,
}

/// The longest a call waits for a budget due that soon (see `acquire`).
const MAX_CLOCK_SKEW: Duration = Duration::from_millis(50);

impl DbRateLimiter {
    /// A limiter over `db`.
    pub fn new(db: Db) -> DbRateLimiter {
        DbRateLimiter { db }
    }

    async fn try_acquire(&self, key: &RateKey, limit: RateLimit) -> Result<Result<(), Duration>, sqlx::Error> {
        let gcra = Gcra::new(limit);
        let now = now_ms() * 1000;
        let (interval, tolerance) = (gcra.interval_micros() as i64, gcra.tolerance_micros() as i64);
        let taken = sqlx::query(
            "UPDATE rate_state SET tat = (CASE WHEN tat > $1 THEN tat ELSE $1 END) + $2 \
             WHERE permit_id = $3 AND integration = $4 AND (CASE WHEN tat > $1 THEN tat ELSE $1 END) - $5 <= $1",
        )
        .bind(now)
        .bind(interval)
        .bind(&key.permit_id)
        .bind(&key.integration)
        .bind(tolerance)
        .execute(&self.db.pool)
        .await?
        .rows_affected();
        if taken == 1 {
            return Ok(Ok(()));
        }
        let current: Option<i64> =
            sqlx::query_scalar("SELECT tat FROM rate_state WHERE permit_id = $1 AND integration = $2")
                .bind(&key.permit_id)
                .bind(&key.integration)
                .fetch_optional(&self.db.pool)
                .await?;
        match (current, gcra.check(current.map(|t| t as u64), now as u64)) {
            (Some(_), RateDecision::Limited { retry_after }) => Ok(Err(retry_after)),
            (None, RateDecision::Allowed { tat }) => {
                // First call on this key: create its state, unless another call just did.
                let created = sqlx::query(
                    "INSERT INTO rate_state (permit_id, integration, tat) VALUES ($1, $2, $3) \
                     ON CONFLICT (permit_id, integration) DO NOTHING",
                )
                .bind(&key.permit_id)
                .bind(&key.integration)
                .bind(tat as i64)
                .execute(&self.db.pool)
                .await?
                .rows_affected();
                Ok(if created == 1 { Ok(()) } else { Err(Duration::ZERO) })
            }
            // The state moved between the update and the read: decide again.
            _ => Ok(Err(Duration::ZERO)),
        }
    }
}

#[async_trait::async_trait]
impl RateLimiter for DbRateLimiter {
    async fn acquire(&self, key: &RateKey, limit: RateLimit) -> Result<(), Duration> {
        for _ in 0..4 {
            match self.try_acquire(key, limit).await {
                Ok(Err(wait)) if wait.is_zero() => continue,
                // `now` is read before the row lock is won, so concurrent
                // calls can reach the row out of clock order: one due a few
                // milliseconds later waits for its moment instead of failing.
                Ok(Err(wait)) if wait <= MAX_CLOCK_SKEW => tokio::time::sleep(wait).await,
                Ok(decision) => return decision,
                Err(error) => {
                    // Deny on error: no call without a recorded budget.
                    tracing::error!(%error, "rate-limit state unavailable; refusing the call");
                    return Err(Duration::from_secs(1));
                }
            }
        }
        Err(Duration::from_millis(10))
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
        if let Err(error) = audit::insert(&self.db, permit_id, execution_id, record).await {
            tracing::error!(%error, permit_id, execution_id, "could not write an audit record");
        }
    }
}

/// One owner's secrets, opened from the database on demand.
pub struct OwnerSecrets {
    db: Db,
    keyring: Arc<Keyring>,
    owner_id: String,
}

impl OwnerSecrets {
    /// The secrets of `owner_id`.
    pub fn new(db: Db, keyring: Arc<Keyring>, owner_id: String) -> OwnerSecrets {
        OwnerSecrets { db, keyring, owner_id }
    }
}

#[async_trait::async_trait]
impl SecretResolver for OwnerSecrets {
    async fn resolve(&self, name: &str) -> Option<Secret> {
        let sealed = secrets::sealed(&self.db, &self.owner_id, name)
            .await
            .inspect_err(|error| tracing::error!(error = %error.chain(), "could not read a secret"))
            .ok()
            .flatten();
        let sealed = sealed?;
        let plain = self
            .keyring
            .open(sealed.version, &self.owner_id, name, &sealed.bytes)
            .await
            .inspect_err(|error| tracing::error!(%error, "could not open a secret"))
            .ok()?;
        String::from_utf8(plain).ok().map(Secret::new)
    }
}
