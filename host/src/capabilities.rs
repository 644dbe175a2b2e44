//! Capabilities the embedder injects: secrets, rate-limit state and audit.
//! Each has an in-memory implementation here; the gateway adds
//! database-backed ones.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oauth3_policy::{Gcra, RateDecision, RateKey, RateLimit};

use crate::call::CallRecord;

/// A secret value. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value; only egress should read it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Looks up the owner's secrets by name, only when a call needs them.
#[async_trait::async_trait]
pub trait SecretResolver: Send + Sync {
    /// The secret `name`, or `None` when the owner has not set it.
    async fn resolve(&self, name: &str) -> Option<Secret>;
}

/// Secrets held in memory (tests, embedders with their own store).
#[derive(Debug, Default, Clone)]
pub struct StaticSecrets(HashMap<String, Secret>);

impl StaticSecrets {
    /// Adds or replaces a secret.
    pub fn with(mut self, name: &str, value: &str) -> StaticSecrets {
        self.0.insert(name.to_owned(), Secret::new(value));
        self
    }
}

#[async_trait::async_trait]
impl SecretResolver for StaticSecrets {
    async fn resolve(&self, name: &str) -> Option<Secret> {
        self.0.get(name).cloned()
    }
}

/// Shared rate-limit state: one GCRA state per (permit, integration), kept
/// across executions (and, in the gateway, across replicas).
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one call from `key`'s budget, or says how long to wait.
    async fn acquire(&self, key: &RateKey, limit: RateLimit) -> Result<(), Duration>;
}

/// Rate-limit state in process memory.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    state: Mutex<HashMap<RateKey, u64>>,
}

#[async_trait::async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(&self, key: &RateKey, limit: RateLimit) -> Result<(), Duration> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match Gcra::new(limit).check(state.get(key).copied(), now) {
            RateDecision::Allowed { tat } => {
                state.insert(key.clone(), tat);
                Ok(())
            }
            RateDecision::Limited { retry_after } => Err(retry_after),
        }
    }
}

/// Receives a record of every call, allowed or not.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync {
    /// Called once per allowed call, just before it is first sent upstream,
    /// with its record so far (no status yet). A sink that must show calls
    /// a crash cut short writes the entry now and returns its id; the
    /// call's [`CallRecord::audit_entry`] then carries it to `record`,
    /// which completes that entry instead of adding one. By default nothing
    /// is written before the call.
    async fn sending(&self, _permit_id: &str, _execution_id: &str, _record: &CallRecord) -> Option<i64> {
        None
    }

    /// Records one call of `execution_id` under `permit_id`, once it has
    /// ended (refused, failed or answered).
    async fn record(&self, permit_id: &str, execution_id: &str, record: &CallRecord);
}

/// Drops audit records (the run's `Outcome` still lists its calls).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAudit;

#[async_trait::async_trait]
impl AuditSink for NoAudit {
    async fn record(&self, _: &str, _: &str, _: &CallRecord) {}
}
