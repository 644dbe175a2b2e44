//! Group commit: the hot writes of concurrent executions (queueing, claims,
//! rate-limit budgets, audit entries, finishes) run together, one
//! transaction per batch.
//!
//! Every commit costs a WAL flush on Postgres, and on SQLite the one write
//! lock, which concurrent writers otherwise meet and sleep on. A writer
//! adds its write to a queue; a leader task takes everything queued, runs
//! it in one transaction on one connection and commits, while the next
//! batch gathers behind it. Nothing waits for a batch to fill: one write
//! alone runs at once, as a statement of its own.
//!
//! Durability is unchanged: a writer hears its result only after the
//! transaction holding its write has committed. One write's failure is its
//! own: a batch in which a statement fails is rolled back, and each of its
//! writes runs again on its own. A commit whose outcome is unknown (the
//! connection failed during it) is not run again: each writer gets an error,
//! as a lone statement's writer would.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sqlx::{AnyConnection, AnyPool, Connection as _, Executor};
use tokio::sync::{Semaphore, oneshot};

use crate::db::{Backend, PING_AFTER_IDLE};
use crate::error::{Error, Result};
use crate::state::lock;

/// A boxed future borrowing for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A write: statements run on the connection it is given, from its state.
/// It must return every statement's error (it shares a transaction), and
/// may run twice (once in a batch rolled back, then alone), so it must only
/// write to the database.
pub type Write<S, T> = for<'c> fn(&'c mut AnyConnection, &'c S) -> BoxFuture<'c, Result<T>>;

/// The writes waiting for a leader, and the leaders running.
#[derive(Clone)]
pub struct GroupCommit {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    queue: Mutex<VecDeque<Box<dyn Job>>>,
    /// Connections leaders ran on, kept for the next: a connection returned
    /// to the pool is pinged (a round trip) each time, which cost as much as
    /// a write.
    kept: Mutex<Vec<Kept>>,
    /// Transactions committed with more than one write, their writes, and
    /// those rolled back to run their writes alone.
    batches: AtomicU64,
    batched: AtomicU64,
    rolled_back: AtomicU64,
    /// One per batch that may run at once (each on its own connection).
    leaders: Arc<Semaphore>,
}

/// Counts of batches (transactions of more than one write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batches {
    /// Committed.
    pub committed: u64,
    /// Writes the committed ones held.
    pub writes: u64,
    /// Rolled back, their writes run alone.
    pub rolled_back: u64,
}

/// How long a kept connection's ping may take: a server gone without a
/// reset would otherwise hold every write behind it for as long as TCP
/// retries.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The most writes one transaction holds.
const MAX_BATCH: usize = 128;

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").field("leaders", &self.inner.leaders.available_permits()).finish()
    }
}

impl GroupCommit {
    /// Batches over `pool`, at most `leaders` at once. On SQLite, one: two
    /// would only meet at the file's write lock.
    pub fn new(pool: AnyPool, backend: Backend, leaders: usize) -> GroupCommit {
        let inner = Inner {
            pool,
            backend,
            queue: Mutex::default(),
            kept: Mutex::default(),
            batches: AtomicU64::new(0),
            batched: AtomicU64::new(0),
            rolled_back: AtomicU64::new(0),
            leaders: Arc::new(Semaphore::new(leaders.max(1))),
        };
        GroupCommit { inner: Arc::new(inner) }
    }

    /// How batching has gone so far.
    pub fn stats(&self) -> Batches {
        Batches {
            committed: self.inner.batches.load(Ordering::Relaxed),
            writes: self.inner.batched.load(Ordering::Relaxed),
            rolled_back: self.inner.rolled_back.load(Ordering::Relaxed),
        }
    }

    /// Runs `write` over `state` in the next batch, and returns its result
    /// once that batch has committed. Dropping the future does not stop the
    /// write.
    pub async fn run<S, T>(&self, state: S, write: Write<S, T>) -> Result<T>
    where
        S: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.queue(None, state, write).await
    }

    /// [`run`](Self::run), for a write to a row many writers share (a
    /// rate-limit budget), named by `row`: such writes run at the end of
    /// their batch, in `row` order. A batch then holds such a row only
    /// while it commits, and batches on different replicas take them in
    /// the same order (no deadlock between them).
    pub async fn run_last<S, T>(&self, row: String, state: S, write: Write<S, T>) -> Result<T>
    where
        S: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.queue(Some(row), state, write).await
    }

    async fn queue<S, T>(&self, last: Option<String>, state: S, write: Write<S, T>) -> Result<T>
    where
        S: Send + Sync + 'static,
        T: Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        lock(&self.inner.queue).push_back(Box::new(Pending { last, state, write, result: None, reply }));
        Inner::lead(&self.inner);
        result.await.map_err(|_| Error::Internal("a batch of writes was dropped unanswered".into()))?
    }
}

/// A leader's connection between batches.
struct Kept {
    conn: AnyConnection,
    since: Instant,
}

impl Inner {
    /// Starts a leader if one may run: it commits batches until the queue
    /// is empty. In a task of its own, so that no writer's cancellation
    /// stops a transaction half way.
    fn lead(inner: &Arc<Inner>) {
        let Ok(permit) = Arc::clone(&inner.leaders).try_acquire_owned() else { return };
        let mut leading = Leading { inner: Arc::clone(inner), permit: Some(permit), started: false };
        tokio::spawn(async move {
            leading.started = true;
            loop {
                let batch: Vec<Box<dyn Job>> = {
                    let mut queue = lock(&leading.inner.queue);
                    let n = queue.len().min(MAX_BATCH);
                    queue.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                leading.inner.commit(batch).await;
            }
        });
    }

    async fn commit(&self, mut batch: Vec<Box<dyn Job>>) {
        if batch.len() > 1 {
            // Writes to shared rows last, in row order (stable: the rest
            // keep their order).
            batch.sort_by(|a, b| a.last().cmp(&b.last()));
            match self.connection().await {
                Ok(conn) => {
                    let mut open = Open(Some(conn));
                    let together = self.together(open.conn(), &mut batch).await;
                    let conn = open.ended();
                    match together {
                        Together::Committed => {
                            self.keep(conn);
                            self.batches.fetch_add(1, Ordering::Relaxed);
                            self.batched.fetch_add(batch.len() as u64, Ordering::Relaxed);
                            batch.into_iter().for_each(|job| job.reply());
                            return;
                        }
                        Together::Unknown(message) => {
                            for mut job in batch {
                                job.fail(Error::Internal(format!("a commit's outcome is unknown: {message}")));
                                job.reply();
                            }
                            return;
                        }
                        Together::RolledBack => {
                            self.keep(conn);
                            self.rolled_back.fetch_add(1, Ordering::Relaxed);
                        }
                        Together::Broken => {
                            self.rolled_back.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "no connection for a batch of writes; running them alone"),
            }
        }
        // Each alone: committed by its own statements.
        for mut job in batch {
            match self.connection().await {
                Ok(conn) => {
                    let mut open = Open(Some(conn));
                    let ran = job.run(open.conn()).await;
                    let conn = open.ended();
                    // After a failed statement, a fresh connection: this
                    // one may have failed with it.
                    if ran {
                        self.keep(conn);
                    }
                }
                Err(error) => job.fail(error),
            }
            job.reply();
        }
    }

    /// A kept connection (pinged first if it sat idle long enough to have
    /// been closed by the server), else one taken from the pool for good.
    async fn connection(&self) -> Result<AnyConnection> {
        let kept = lock(&self.kept).pop();
        if let Some(Kept { mut conn, since }) = kept
            && (since.elapsed() < PING_AFTER_IDLE
                || tokio::time::timeout(PING_TIMEOUT, conn.ping()).await.is_ok_and(|pinged| pinged.is_ok()))
        {
            return Ok(conn);
        }
        Ok(self.pool.acquire().await?.detach())
    }

    /// Keeps `conn`, its transaction ended, for the next batch.
    fn keep(&self, conn: AnyConnection) {
        lock(&self.kept).push(Kept { conn, since: Instant::now() });
    }

    /// Runs `batch` in one transaction on `conn`.
    async fn together(&self, conn: &mut AnyConnection, batch: &mut [Box<dyn Job>]) -> Together {
        let begin = match self.backend {
            // The write lock at once: a deferred transaction that reads
            // first may not wait for it.
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        if let Err(error) = conn.execute(begin).await {
            tracing::warn!(%error, "could not begin a batch of writes");
            return Together::Broken;
        }
        for job in batch.iter_mut() {
            if !job.run(conn).await {
                return rollback(conn).await;
            }
        }
        // Postgres answers the COMMIT of a transaction a failed statement
        // ended with a ROLLBACK, not an error: a statement fails there if
        // one failed unreported.
        if self.backend == Backend::Postgres && conn.execute("SELECT 1").await.is_err() {
            tracing::error!("a write in a batch hid a failed statement; running the batch's writes alone");
            return rollback(conn).await;
        }
        match conn.execute("COMMIT").await {
            Ok(_) => Together::Committed,
            // Even an error from the server may come after the commit
            // (Postgres ends a connection with FATAL once it committed
            // locally): the writes must not run again.
            Err(error) => Together::Unknown(error.to_string()),
        }
    }
}

async fn rollback(conn: &mut AnyConnection) -> Together {
    match conn.execute("ROLLBACK").await {
        Ok(_) => Together::RolledBack,
        Err(_) => Together::Broken,
    }
}

/// A leader's place. Given up when its task ends, however it ends (the
/// queue emptied, a write panicked): writes queued after its last look,
/// whose writers found every leader busy, then get a new leader.
struct Leading {
    inner: Arc<Inner>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Its task ran. One dropped unpolled was refused by a runtime shutting
    /// down, which would refuse the next as well.
    started: bool,
}

impl Drop for Leading {
    fn drop(&mut self) {
        drop(self.permit.take());
        if self.started && !lock(&self.inner.queue).is_empty() {
            Inner::lead(&self.inner);
        }
    }
}

/// A connection running writes. Dropped before they ended (a write
/// panicked, the leader was cancelled), it is closed rather than kept,
/// which ends any transaction: a connection left in one would hold
/// SQLite's write lock for good.
struct Open(Option<AnyConnection>);

impl Open {
    fn conn(&mut self) -> &mut AnyConnection {
        self.0.as_mut().expect("an open connection")
    }

    /// The connection, its transaction ended.
    fn ended(mut self) -> AnyConnection {
        self.0.take().expect("an open connection")
    }
}

/// How a batch's transaction ended.
enum Together {
    Committed,
    /// Rolled back; the connection is usable.
    RolledBack,
    /// Not committed (the connection failed before its commit, or could not
    /// roll back; the server ends the transaction with the connection).
    Broken,
    /// The commit was sent and its answer lost.
    Unknown(String),
}

/// A queued write, its result once run, and who waits for it.
trait Job: Send {
    /// The shared row it writes, if it is to run last.
    fn last(&self) -> Option<&str>;
    /// Runs the write; true when it succeeded.
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool>;
    /// Sets the result to `error`.
    fn fail(&mut self, error: Error);
    /// Hands the result to the writer.
    fn reply(self: Box<Self>);
}

struct Pending<S, T> {
    last: Option<String>,
    state: S,
    write: Write<S, T>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<S: Send + Sync + 'static, T: Send + 'static> Job for Pending<S, T> {
    fn last(&self) -> Option<&str> {
        self.last.as_deref()
    }

    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let result = (self.write)(conn, &self.state).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn fail(&mut self, error: Error) {
        self.result = Some(Err(error));
    }

    fn reply(self: Box<Self>) {
        let result = self.result.unwrap_or_else(|| Err(Error::Internal("a write was not run".into())));
        // The writer may have gone; its write stands.
        let _ = self.reply.send(result);
    }
}
