//! What every handler and worker shares. Process memory holds caches only;
//! state lives in the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oauth3_host::{Egress, Runtime};
use oauth3_policy::{CompileOptions, CompiledPermit, PermitSpec};
use tokio::sync::{Notify, mpsc, watch};

use crate::auth::Tokens;
use crate::config::Config;
use crate::db::Db;
use crate::error::Result;
use crate::keyring::Keyring;
use crate::store::ExecutionRow;
use oauth3_drafting::Drafting;

/// The running gateway's shared state.
pub struct Gateway {
    /// Settings.
    pub config: Config,
    /// Base of the URLs handed out.
    pub public_url: String,
    /// Database.
    pub db: Db,
    /// Token issuer and verifier.
    pub tokens: Tokens,
    /// Seals secrets at rest, by key version.
    pub keyring: Arc<Keyring>,
    /// How specs are compiled (the operator's insecure upstreams).
    pub compile_options: CompileOptions,
    /// Turns intents into specs.
    pub drafting: Drafting,
    /// The sandbox.
    pub runtime: Runtime,
    /// The one enforcement point.
    pub egress: Arc<Egress>,
    /// Egress's audit sink, whose pending outcomes a finish writes.
    pub audit: Arc<crate::capabilities::DbAudit>,
    /// This process's id in the `replicas` table.
    pub replica_id: String,
    /// Hands queued executions to the local worker pool.
    pub queue: mpsc::Sender<String>,
    /// The local worker pool's free places (see [`crate::executor::free_worker`]).
    pub workers: Arc<tokio::sync::Semaphore>,
    /// The executions running in this process.
    pub running: crate::executor::Running,
    /// Wakes long-polls when an execution ends.
    pub finished: Finished,
    /// Compiled specs (approved or requested), by hash.
    pub permits: PermitCache,
    /// Opened secrets, valid per owner secrets version.
    pub secrets: Arc<crate::capabilities::SecretCache>,
    /// Set once the gateway begins to shut down.
    pub stopping: Stopping,
    /// The owner web UI's keys, throttles and cookie settings.
    pub web: crate::web::Web,
    /// Tells owners a request is waiting.
    pub notifier: std::sync::Arc<dyn crate::notify::Notifier>,
    /// The TEE (or its absence) and the receipt-signing key.
    pub tee: crate::tee::Tee,
}

impl Gateway {
    /// Compiles `spec` with the operator's options.
    pub fn compile(&self, spec: &PermitSpec) -> Result<CompiledPermit> {
        Ok(spec.compile(&self.compile_options)?)
    }

    /// The compiled form of a stored spec, cached by its hash (a spec with a
    /// given hash never changes).
    pub fn compiled(&self, spec_hash: &str, spec_json: &str) -> Result<Arc<CompiledPermit>> {
        if let Some(permit) = self.permits.lock().get(spec_hash) {
            return Ok(Arc::clone(permit));
        }
        let permit = Arc::new(self.compile(&PermitSpec::from_json(spec_json)?)?);
        let mut cache = self.permits.lock();
        if cache.len() >= 4096 {
            cache.clear();
        }
        cache.insert(spec_hash.to_owned(), Arc::clone(&permit));
        Ok(permit)
    }

    /// The compiled form of the spec with `spec_hash`, if compiled before.
    pub fn compiled_if_cached(&self, spec_hash: &str) -> Option<Arc<CompiledPermit>> {
        self.permits.lock().get(spec_hash).cloned()
    }

    /// An absolute URL under the public base.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }
}

/// Locks `mutex`, whatever a panicking holder left in it: every value
/// behind these locks stays consistent between statements.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Compiled permits by spec hash.
#[derive(Default)]
pub struct PermitCache(Mutex<HashMap<String, Arc<CompiledPermit>>>);

impl PermitCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<CompiledPermit>>> {
        lock(&self.0)
    }
}

/// How far a shutdown has gone. Workers stop claiming executions and
/// long-polls return once it is `Draining`; running executions are dropped
/// (their calls' gates closing) once it is `Aborting`; the heartbeat ends
/// once it is `Stopped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Serving.
    Running,
    /// No new work; running executions may finish.
    Draining,
    /// The grace period is over: running executions are abandoned.
    Aborting,
    /// Done.
    Stopped,
}

/// The gateway's shutdown [`Phase`], observed by workers and handlers.
pub struct Stopping(watch::Sender<Phase>);

impl Default for Stopping {
    fn default() -> Self {
        Stopping(watch::channel(Phase::Running).0)
    }
}

impl Stopping {
    /// Begins the shutdown (`Draining`).
    pub fn begin(&self) {
        self.advance(Phase::Draining);
    }

    /// Moves to `phase` (never back) and wakes those waiting for it.
    pub fn advance(&self, phase: Phase) {
        self.0.send_if_modified(|current| {
            let later = phase > *current;
            if later {
                *current = phase;
            }
            later
        });
    }

    /// True once the shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow() >= Phase::Draining
    }

    /// Resolves once the shutdown has begun.
    pub async fn wait(&self) {
        self.reached(Phase::Draining).await;
    }

    /// Resolves once the shutdown has reached `phase`.
    pub async fn reached(&self, phase: Phase) {
        let mut changes = self.0.subscribe();
        // The sender lives as long as the gateway, so this only ends at `phase`.
        let _ = changes.wait_for(|current| *current >= phase).await;
    }
}

/// Per-execution wake-ups for long-polls. Other replicas' executions are
/// seen by NOTIFY or by reading the database again; this makes local ones
/// instant, and hands a local waiter the finished row so it need not read it.
#[derive(Default)]
pub struct Finished {
    waiters: Mutex<HashMap<String, Arc<Waiter>>>,
}

/// One execution's waiters: woken when it ends, with its row when the
/// worker that finished it had it.
#[derive(Default)]
pub struct Waiter {
    notify: Notify,
    ended: std::sync::atomic::AtomicBool,
    row: std::sync::OnceLock<Arc<ExecutionRow>>,
}

impl Waiter {
    /// Resolves when the execution ends (after [`Finished::notify`]). Call
    /// `enable` on the pinned future before reading the status.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// True once [`Finished::notify`] ran for it: a waiter that enables its
    /// `notified` future after that is not woken, so it checks this first.
    pub fn ended(&self) -> bool {
        self.ended.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The finished row, if the ending was local and handed it over.
    pub fn row(&self) -> Option<&Arc<ExecutionRow>> {
        self.row.get()
    }
}

/// A subscription to one execution's end; dropping it (however the
/// request ends, a client hanging up included) unsubscribes.
pub struct Subscription<'a> {
    finished: &'a Finished,
    id: String,
    /// Always `Some` until dropped.
    waiter: Option<Arc<Waiter>>,
}

impl std::ops::Deref for Subscription<'_> {
    type Target = Waiter;

    fn deref(&self) -> &Waiter {
        self.waiter.as_deref().expect("a subscription holds its waiter until dropped")
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut waiters = lock(&self.finished.waiters);
        // Released under the lock, so two subscriptions dropped at once
        // cannot both see the other and leave the entry behind.
        drop(self.waiter.take());
        if waiters.get(&self.id).is_some_and(|w| Arc::strong_count(w) == 1) {
            waiters.remove(&self.id);
        }
    }
}

impl Finished {
    /// Subscribes to `id`'s end; subscribe before reading the status (or
    /// before inserting the execution).
    pub fn subscribe(&self, id: &str) -> Subscription<'_> {
        let mut waiters = lock(&self.waiters);
        let waiter = Arc::clone(waiters.entry(id.to_owned()).or_default());
        Subscription { finished: self, id: id.to_owned(), waiter: Some(waiter) }
    }

    /// Wakes everyone waiting on `id`, handing them its committed row if given.
    pub fn notify(&self, id: &str, row: Option<ExecutionRow>) {
        let waiter = lock(&self.waiters).remove(id);
        if let Some(waiter) = waiter {
            if let Some(row) = row {
                let _ = waiter.row.set(Arc::new(row));
            }
            waiter.ended.store(true, std::sync::atomic::Ordering::Release);
            waiter.notify.notify_waiters();
        }
    }
}
