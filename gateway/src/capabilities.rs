//! Database-backed capabilities for egress: rate-limit state shared by every
//! execution and replica, the audit log, and the approving owner's sealed
//! secrets, opened only when a call needs them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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

    async fn try_acquire(&self, key: &RateKey, limit: RateLimit) -> crate::error::Result<Result<(), Duration>> {
        let gcra = Gcra::new(limit);
        let now = now_ms() * 1000;
        let (interval, tolerance) = (gcra.interval_micros() as i64, gcra.tolerance_micros() as i64);
        let state = (key.clone(), now, interval, tolerance);
        let row = format!("rate_state {} {}", key.permit_id, key.integration);
        let taken = self.db.group.run_last(row, state, |conn, (key, now, interval, tolerance)| {
            Box::pin(async move {
                let args = [(*now).into(), (*interval).into(), (&key.permit_id).into(), (&key.integration).into(), (*tolerance).into()];
                conn.execute(
                    "UPDATE rate_state SET tat = (CASE WHEN tat > $1 THEN tat ELSE $1 END) + $2 \
                     WHERE permit_id = $3 AND integration = $4 AND (CASE WHEN tat > $1 THEN tat ELSE $1 END) - $5 <= $1",
                    &args,
                )
                .await
            })
        });
        if taken.await? == 1 {
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
                .execute(&self.db.writer)
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

/// Appends every call to the `audit` table. An allowed call's entry is
/// written before it is sent, so a crash cannot hide a call that went out.
/// Its outcome is completed off the call's own path: with the execution's
/// next write (before its next call's entry, or before its finish), or
/// [`OUTCOME_AFTER`] later if the execution writes nothing before then.
pub struct DbAudit {
    db: Db,
    /// Outcomes of calls written ahead, not yet completed, by execution.
    pending: Arc<Mutex<Held>>,
}

/// The longest an answered call's audit entry waits for its execution's
/// next write before its outcome is written on its own.
pub const OUTCOME_AFTER: Duration = Duration::from_secs(1);

/// Outcomes held, by execution: (audit entry id, the call's record).
type Held = HashMap<String, Vec<(i64, CallRecord)>>;

fn lock(pending: &Mutex<Held>) -> std::sync::MutexGuard<'_, Held> {
    pending.lock().unwrap_or_else(|p| p.into_inner())
}

impl DbAudit {
    /// An audit sink over `db`.
    pub fn new(db: Db) -> DbAudit {
        DbAudit { db, pending: Arc::default() }
    }

    /// Starts holding the outcomes of `execution_id`'s calls until its
    /// finish [`take`](Self::take)s them. Outcomes of an execution not held
    /// (a call finishing on the wire after its run ended) are written at once.
    pub fn open(&self, execution_id: &str) {
        lock(&self.pending).insert(execution_id.to_owned(), Vec::new());
    }

    /// Takes the outcomes of `execution_id`'s calls still to be completed,
    /// and stops holding them: the caller writes them (with
    /// [`audit::complete`]) before its finish, or gives them to [`write`](Self::write).
    pub fn take(&self, execution_id: &str) -> Vec<(i64, CallRecord)> {
        lock(&self.pending).remove(execution_id).unwrap_or_default()
    }

    /// Stops holding `execution_id`'s outcomes and writes them (an
    /// execution that ended without a worker's finish).
    pub async fn release(&self, execution_id: &str) {
        let done = self.take(execution_id);
        write(&self.db, &done).await;
    }

    /// Writes outcomes taken and not written (a finish that failed).
    pub async fn write(&self, done: &[(i64, CallRecord)]) {
        write(&self.db, done).await;
    }

    /// Completes every outcome still pending (at shutdown).
    pub async fn flush(&self) {
        let pending: Vec<(i64, CallRecord)> = lock(&self.pending).drain().flat_map(|(_, done)| done).collect();
        write(&self.db, &pending).await;
    }
}

/// Completes entries written ahead with their outcomes; a failure is
/// logged. True when written.
async fn write(db: &Db, done: &[(i64, CallRecord)]) -> bool {
    match audit::complete_all(db, done).await {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(%error, "could not complete audit records");
            false
        }
    }
}

#[async_trait::async_trait]
impl AuditSink for DbAudit {
    async fn sending(&self, permit_id: &str, execution_id: &str, record: &CallRecord) -> Option<i64> {
        let done = lock(&self.pending).get_mut(execution_id).map(std::mem::take).unwrap_or_default();
        match audit::insert_ahead(&self.db, permit_id, execution_id, record, &done).await {
            Ok(id) => Some(id),
            Err(error) => {
                tracing::error!(%error, permit_id, execution_id, "could not write an audit record ahead of a call");
                // The call is recorded whole after it; the earlier outcomes are tried again.
                let unheld = {
                    let mut held = lock(&self.pending);
                    match held.get_mut(execution_id) {
                        Some(held) => {
                            held.extend(done);
                            Vec::new()
                        }
                        None => done,
                    }
                };
                write(&self.db, &unheld).await;
                None
            }
        }
    }

    async fn record(&self, permit_id: &str, execution_id: &str, record: &CallRecord) {
        let written = match record.audit_entry {
            Some(id) => {
                if let Some(held) = lock(&self.pending).get_mut(execution_id) {
                    held.push((id, record.clone()));
                    // Written with the execution's next write, or on its own soon.
                    let (db, pending, execution_id) =
                        (self.db.clone(), Arc::clone(&self.pending), execution_id.to_owned());
                    tokio::spawn(async move {
                        tokio::time::sleep(OUTCOME_AFTER).await;
                        // A copy: until it is written, a finish still writes
                        // these too (the same update twice is harmless).
                        let done = lock(&pending).get(&execution_id).cloned().unwrap_or_default();
                        if !done.is_empty()
                            && write(&db, &done).await
                            && let Some(held) = lock(&pending).get_mut(&execution_id)
                        {
                            held.retain(|(entry, _)| !done.iter().any(|(written, _)| written == entry));
                        }
                    });
                    return;
                }
                audit::complete_one(&self.db, id, record).await
            }
            None => audit::insert(&self.db, permit_id, execution_id, record).await,
        };
        if let Err(error) = written {
            tracing::error!(%error, permit_id, execution_id, "could not write an audit record");
        }
    }
}

/// Opened secrets, by owner and name, each with the owner's secrets version
/// it was read under (see migration 0009): an entry is used only by an
/// execution claimed under the same version, so a change or delete on any
/// replica takes effect for every execution claimed after it.
#[derive(Default)]
pub struct SecretCache(Mutex<HashMap<(String, String), (i64, Secret)>>);

/// Most secrets held at once; the cache starts over when full.
const CACHED_SECRETS: usize = 4096;

impl SecretCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (i64, Secret)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, owner: &str, name: &str, version: i64) -> Option<Secret> {
        let cache = self.lock();
        let (cached, secret) = cache.get(&(owner.to_owned(), name.to_owned()))?;
        (*cached == version).then(|| secret.clone())
    }

    fn put(&self, owner: &str, name: &str, version: i64, secret: Secret) {
        let mut cache = self.lock();
        if cache.len() >= CACHED_SECRETS {
            cache.clear();
        }
        cache.insert((owner.to_owned(), name.to_owned()), (version, secret));
    }
}

/// One owner's secrets, opened from the database on demand (or found in
/// the cache under the secrets version its execution was claimed with).
pub struct OwnerSecrets {
    db: Db,
    keyring: Arc<Keyring>,
    owner_id: String,
    /// The owner's secrets version at the claim, and the cache it keys; None: no caching.
    cached: Option<(i64, Arc<SecretCache>)>,
}

impl OwnerSecrets {
    /// The secrets of `owner_id`, read from the database at every call.
    pub fn new(db: Db, keyring: Arc<Keyring>, owner_id: String) -> OwnerSecrets {
        OwnerSecrets { db, keyring, owner_id, cached: None }
    }

    /// The same, using `cache` for secrets read under `version` (the
    /// owner's secrets version when the execution was claimed).
    pub fn cached(mut self, version: i64, cache: Arc<SecretCache>) -> OwnerSecrets {
        self.cached = Some((version, cache));
        self
    }

    async fn open(&self, name: &str) -> Option<Secret> {
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

#[async_trait::async_trait]
impl SecretResolver for OwnerSecrets {
    async fn resolve(&self, name: &str) -> Option<Secret> {
        let Some((version, cache)) = &self.cached else { return self.open(name).await };
        if let Some(secret) = cache.get(&self.owner_id, name, *version) {
            return Some(secret);
        }
        // Read after the claim: at least as new as `version`, never older.
        let secret = self.open(name).await?;
        cache.put(&self.owner_id, name, *version, secret.clone());
        Some(secret)
    }
}
