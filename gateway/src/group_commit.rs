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
//!
//! On a SQLite file the batches run on the [`Direct`] connection, on the
//! thread of whoever leads: a writer that finds no leader running leads
//! itself, with no task to start and no thread to wake. Even a lone write
//! is a transaction there (one commit for its statements). A batch that
//! finds SQLite's lock taken runs through sqlx instead, as above.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use sqlx::{AnyConnection, AnyPool, Connection as _, Executor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::db::{Backend, PING_AFTER_IDLE};
use crate::direct::{self, Direct};
use crate::error::{Error, Result};
use crate::sql::Conn;
use crate::state::lock;

/// A boxed future borrowing for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A write: statements run on the connection it is given, from its state.
/// It must return every statement's error (it shares a transaction), and
/// must only write to the database; it may run more than once (in a batch rolled
/// back, then alone; on SQLite, on the direct connection, then through
/// sqlx). It awaits nothing but its statements: on a [`Conn::Direct`] its
/// future must be ready when first polled.
pub type Write<S, T> = for<'a, 'c> fn(&'a mut Conn<'c>, &'a S) -> BoxFuture<'a, Result<T>>;

/// The writes waiting for a leader, and the leaders running.
#[derive(Clone)]
pub struct GroupCommit {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    /// On a SQLite file: where batches run first.
    direct: Option<Arc<Direct>>,
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
    /// Batches over `pool` (first over `direct`, when given), at most
    /// `leaders` at once (one with `direct`). On SQLite, one: two would only
    /// meet at the file's write lock.
    pub fn new(pool: AnyPool, backend: Backend, direct: Option<Arc<Direct>>, leaders: usize) -> GroupCommit {
        // One connection on this thread: a second leader would only wait for it.
        let leaders = if direct.is_some() { 1 } else { leaders.max(1) };
        let inner = Inner {
            pool,
            backend,
            direct,
            queue: Mutex::default(),
            kept: Mutex::default(),
            batches: AtomicU64::new(0),
            batched: AtomicU64::new(0),
            rolled_back: AtomicU64::new(0),
            leaders: Arc::new(Semaphore::new(leaders)),
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
        match &self.inner.direct {
            Some(direct) => Inner::lead_here(&self.inner, direct),
            None => Inner::lead(&self.inner),
        }
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
        Inner::spawn_leader(inner, permit, Vec::new());
    }

    /// A leader task in `permit`'s place, committing `first` (when not
    /// empty) through sqlx, then what is queued.
    fn spawn_leader(inner: &Arc<Inner>, permit: OwnedSemaphorePermit, first: Vec<Box<dyn Job>>) {
        let mut leading = Leading { inner: Arc::clone(inner), permit: Some(permit), started: false };
        tokio::spawn(async move {
            leading.started = true;
            if !first.is_empty() {
                leading.inner.commit_sqlx(first).await;
            }
            loop {
                let batch = leading.inner.next_batch();
                if batch.is_empty() {
                    break;
                }
                leading.inner.commit(batch).await;
            }
        });
    }

    /// On a SQLite file: leads on this thread if no leader is running, for
    /// one batch (a transaction runs to its end here: no await inside it,
    /// so a writer's cancellation cannot stop it half way). What is queued
    /// after it, or what must wait for SQLite's lock, goes to a leader task.
    fn lead_here(inner: &Arc<Inner>, direct: &Direct) {
        let Ok(permit) = Arc::clone(&inner.leaders).try_acquire_owned() else { return };
        let batch = inner.next_batch();
        let left = inner.commit_direct(direct, batch);
        if !left.is_empty() {
            return Inner::spawn_leader(inner, permit, left);
        }
        drop(permit);
        // Writes queued meanwhile found this leader running.
        if !lock(&inner.queue).is_empty() {
            Inner::lead(inner);
        }
    }

    /// Up to [`MAX_BATCH`] queued writes, in queue order.
    fn next_batch(&self) -> Vec<Box<dyn Job>> {
        let mut queue = lock(&self.queue);
        let n = queue.len().min(MAX_BATCH);
        queue.drain(..n).collect()
    }

    async fn commit(&self, batch: Vec<Box<dyn Job>>) {
        let left = match &self.direct {
            Some(direct) => {
                let left = self.commit_direct(direct, batch);
                // Other tasks run between batches committed on this thread.
                tokio::task::yield_now().await;
                left
            }
            None => batch,
        };
        if !left.is_empty() {
            self.commit_sqlx(left).await;
        }
    }

    /// Commits `batch` on the direct connection, in one transaction, or
    /// (after a write failed in it) each write in one of its own. Returns
    /// the writes to run through sqlx: those that found SQLite's lock taken
    /// (all of them when the connection cannot be opened).
    fn commit_direct(&self, direct: &Direct, batch: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
        if batch.is_empty() {
            return batch;
        }
        let mut batch = Some(batch);
        let committed = direct.with_writer(|conn| self.commit_on(conn, batch.take().unwrap_or_default()));
        committed.unwrap_or_else(|| batch.unwrap_or_default())
    }

    /// [`commit_direct`](Self::commit_direct) on its connection.
    fn commit_on(&self, conn: &mut rusqlite::Connection, mut batch: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
        shared_rows_last(&mut batch);
        match together_direct(conn, &mut batch) {
            Ended::Committed => {
                self.count_batch(batch.len());
                batch.into_iter().for_each(|job| job.reply());
                return Vec::new();
            }
            Ended::Busy => return batch,
            Ended::Unknown(message) => {
                unknown(batch, &message);
                return Vec::new();
            }
            // Its writers hear that it was dropped, as from a leader task
            // that panicked.
            Ended::Panicked => return Vec::new(),
            // Rolled back; its error is its result.
            Ended::Failed if batch.len() == 1 => {
                batch.into_iter().for_each(|job| job.reply());
                return Vec::new();
            }
            Ended::Failed => {
                self.rolled_back.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut left = Vec::new();
        for job in batch {
            let mut alone = vec![job];
            match together_direct(conn, &mut alone) {
                Ended::Busy => left.extend(alone),
                Ended::Panicked => {}
                Ended::Unknown(message) => unknown(alone, &message),
                // Failed: rolled back, its error is its result.
                Ended::Committed | Ended::Failed => alone.into_iter().for_each(|job| job.reply()),
            }
        }
        left
    }

    /// Counts a committed transaction of `writes` writes, if it was a batch.
    fn count_batch(&self, writes: usize) {
        if writes > 1 {
            self.batches.fetch_add(1, Ordering::Relaxed);
            self.batched.fetch_add(writes as u64, Ordering::Relaxed);
        }
    }

    /// Commits `batch` through sqlx: in one transaction, or (after a write
    /// failed in it) each write alone.
    async fn commit_sqlx(&self, mut batch: Vec<Box<dyn Job>>) {
        if batch.len() > 1 {
            shared_rows_last(&mut batch);
            match self.connection().await {
                Ok(conn) => {
                    let mut open = Open(Some(conn));
                    let together = self.together(open.conn(), &mut batch).await;
                    let conn = open.ended();
                    match together {
                        Together::Committed => {
                            self.keep(conn);
                            self.count_batch(batch.len());
                            batch.into_iter().for_each(|job| job.reply());
                            return;
                        }
                        Together::Unknown(message) => return unknown(batch, &message),
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
                    let ran = job.run(&mut Conn::Sqlx(open.conn())).await;
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
            if !job.run(&mut Conn::Sqlx(&mut *conn)).await {
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

/// How a transaction on the direct connection ended.
enum Ended {
    Committed,
    /// A write failed (its error is its result); rolled back.
    Failed,
    /// SQLite's lock was taken (or a write found it so); rolled back.
    Busy,
    /// A write panicked; rolled back.
    Panicked,
    /// The commit failed, its outcome unknown.
    Unknown(String),
}

/// Writes to shared rows last, in row order (stable: the rest keep their
/// order).
fn shared_rows_last(batch: &mut [Box<dyn Job>]) {
    batch.sort_by(|a, b| a.last().cmp(&b.last()));
}

/// Tells each writer of `jobs` that its commit's outcome is unknown.
fn unknown(jobs: Vec<Box<dyn Job>>, message: &str) {
    for mut job in jobs {
        job.fail(Error::Internal(format!("a commit's outcome is unknown: {message}")));
        job.reply();
    }
}

/// Runs `batch` in one transaction on the direct writer `conn`, on this
/// thread.
fn together_direct(conn: &mut rusqlite::Connection, batch: &mut [Box<dyn Job>]) -> Ended {
    // Nothing is left open between batches, unless a panic outside a write
    // unwound through the last one.
    direct::rollback(conn);
    match conn.execute_batch("BEGIN IMMEDIATE") {
        Ok(()) => {}
        Err(error) => {
            if !direct::busy(&error) {
                tracing::warn!(%error, "could not begin a batch of writes; running it through sqlx");
            }
            return Ended::Busy;
        }
    }
    for job in batch.iter_mut() {
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| now(job.run(&mut Conn::Direct(&mut *conn)))));
        let ended = match ran {
            // SQLite ends the transaction itself on some errors (full disk,
            // I/O, `OR ROLLBACK`): a write that hid one must not pass.
            Ok(Some(true)) if conn.is_autocommit() => {
                tracing::error!("a write hid a failed statement that ended its transaction");
                job.fail(Error::Internal("a statement failed unreported, ending the transaction".into()));
                Ended::Failed
            }
            Ok(Some(true)) => continue,
            Ok(Some(false)) if job.busy() => Ended::Busy,
            Ok(Some(false)) => Ended::Failed,
            Ok(None) => {
                job.fail(Error::Internal("a write waited on something other than its statements".into()));
                Ended::Failed
            }
            Err(_) => Ended::Panicked,
        };
        direct::rollback(conn);
        return ended;
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => Ended::Committed,
        Err(error) => {
            // Still in the transaction: nothing was committed. Rolled back,
            // it runs through sqlx.
            let open = !conn.is_autocommit();
            direct::rollback(conn);
            if open { Ended::Busy } else { Ended::Unknown(error.to_string()) }
        }
    }
}

/// `future`'s output if it is ready when first polled.
fn now<T>(mut future: BoxFuture<'_, T>) -> Option<T> {
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
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
    fn run<'a>(&'a mut self, conn: &'a mut Conn<'_>) -> BoxFuture<'a, bool>;
    /// Its result is SQLite saying its lock was taken.
    fn busy(&self) -> bool;
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

    fn run<'a>(&'a mut self, conn: &'a mut Conn<'_>) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let result = (self.write)(conn, &self.state).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn busy(&self) -> bool {
        matches!(&self.result, Some(Err(error)) if direct::is_busy(error))
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
