//! Group commit against real databases: concurrent writes share
//! transactions, each writer hears its own result only once committed, and
//! one write's failure is its own.

use std::time::Duration;

use oauth3_e2e::{Backend, on_both_databases};
use oauth3_gateway::db::Db;
use oauth3_gateway::group_commit::{BoxFuture, GroupCommit};
use oauth3_gateway::sql::{Conn, FromRecord, Record};

/// Where the writes go: a database, and on SQLite, whether they run on the
/// direct connection (the default) or through sqlx alone.
enum Setup {
    Database(Backend),
    SqliteThroughSqlx,
}

impl From<Backend> for Setup {
    fn from(backend: Backend) -> Setup {
        Setup::Database(backend)
    }
}

impl Setup {
    fn is_postgres(&self) -> bool {
        matches!(self, Setup::Database(Backend::Postgres(_)))
    }
}

async fn database(setup: &Setup) -> (Db, Option<tempfile::TempDir>) {
    let sqlite = |parameters: &str| {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc{parameters}", dir.path().join("oauth3.db").display());
        (url, dir)
    };
    match setup {
        Setup::Database(Backend::Sqlite) => {
            let (url, dir) = sqlite("");
            (Db::connect(&url).await.unwrap(), Some(dir))
        }
        // The default VFS, named: the direct connections stand aside.
        Setup::SqliteThroughSqlx => {
            let (url, dir) = sqlite("&vfs=unix");
            let db = Db::connect(&url).await.unwrap();
            assert!(db.direct.is_none());
            (db, Some(dir))
        }
        Setup::Database(Backend::Postgres(url)) => (Db::connect(url).await.unwrap(), None),
    }
}

async fn with_table(backend: &Setup) -> (Db, Option<tempfile::TempDir>) {
    let (db, dir) = database(backend).await;
    sqlx::query("CREATE TABLE scratch (k TEXT PRIMARY KEY, v BIGINT NOT NULL)").execute(&db.writer).await.unwrap();
    (db, dir)
}

fn insert<'a>(conn: &'a mut Conn<'_>, (k, v): &'a (String, i64)) -> BoxFuture<'a, oauth3_gateway::Result<i64>> {
    Box::pin(async move {
        conn.execute("INSERT INTO scratch (k, v) VALUES ($1, $2)", &[k.into(), (*v).into()]).await?;
        Ok(*v)
    })
}

/// A statement's one BIGINT column, `n`.
struct N(i64);

impl FromRecord for N {
    fn from_record(record: &Record) -> oauth3_gateway::Result<N> {
        record.int_not_null("n").map(N)
    }
}

async fn rows(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM scratch").fetch_one(&db.pool).await.unwrap()
}

type Insert = oauth3_gateway::group_commit::Write<(String, i64), i64>;

/// Runs writes `0..n` at once: write `i` is `write(i)` over (`key(i)`, i),
/// run last in its batch when `write(i)` says so.
async fn at_once(
    group: &GroupCommit,
    n: i64,
    key: impl Fn(i64) -> String,
    write: impl Fn(i64) -> (Insert, bool),
) -> Vec<oauth3_gateway::Result<i64>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (group, key, (write, last)) = (group.clone(), key(i), write(i));
            tokio::spawn(async move {
                match last {
                    true => group.run_last("scratch".into(), (key, i), write).await,
                    false => group.run((key, i), write).await,
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Runs `n` inserts at once, key `k{i}` (or `dup` where `duplicate(i)`).
async fn concurrently(group: &GroupCommit, n: i64, duplicate: fn(i64) -> bool) -> Vec<oauth3_gateway::Result<i64>> {
    let key = |i| if duplicate(i) { "dup".to_owned() } else { format!("k{i}") };
    at_once(group, n, key, |_| (insert as Insert, false)).await
}

async fn concurrent_writes_share_transactions_and_each_gets_its_result(setup: impl Into<Setup>) {
    let setup = setup.into();
    let (db, _dir) = with_table(&setup).await;
    let results = concurrently(&db.group, 300, |_| false).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.unwrap(), i as i64);
    }
    assert_eq!(rows(&db).await, 300);
    let stats = db.group.stats();
    assert!(stats.committed >= 1, "300 writes at once were never batched: {stats:?}");
    assert_eq!(stats.rolled_back, 0);
}

async fn a_failing_write_fails_alone_and_its_batch_commits(setup: impl Into<Setup>) {
    let setup = setup.into();
    let (db, _dir) = with_table(&setup).await;
    sqlx::query("INSERT INTO scratch (k, v) VALUES ('dup', -1)").execute(&db.writer).await.unwrap();
    // Every tenth write breaks the primary key.
    let mut failed = 0;
    for _ in 0..5 {
        sqlx::query("DELETE FROM scratch WHERE k <> 'dup'").execute(&db.writer).await.unwrap();
        let results = concurrently(&db.group, 100, |i| i % 10 == 0).await;
        for (i, result) in results.iter().enumerate() {
            match result {
                Ok(v) => assert_eq!(*v, i as i64),
                Err(_) => {
                    assert_eq!(i % 10, 0, "write {i} failed, though only the duplicates break the key");
                    failed += 1;
                }
            }
        }
        assert_eq!(rows(&db).await, 91, "the 90 good writes and the first row");
    }
    assert_eq!(failed, 50);
    assert!(db.group.stats().rolled_back >= 1, "the failures never shared a batch: {:?}", db.group.stats());
}

async fn a_write_whose_writer_went_away_is_still_committed(setup: impl Into<Setup>) {
    let setup = setup.into();
    let (db, _dir) = with_table(&setup).await;
    for i in 0..20 {
        // Polled once (queued), then dropped.
        let write = db.group.run((format!("gone{i}"), i), insert);
        let _ = tokio::time::timeout(Duration::ZERO, write).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rows(&db).await < 20 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rows(&db).await, 20);
}

/// Inserts its own row, then breaks the primary key and carries on as if
/// nothing happened: a write breaking the contract.
fn insert_hiding_an_error<'a>(
    conn: &'a mut Conn<'_>,
    (k, v): &'a (String, i64),
) -> BoxFuture<'a, oauth3_gateway::Result<i64>> {
    Box::pin(async move {
        conn.execute("INSERT INTO scratch (k, v) VALUES ($1, $2)", &[k.into(), (*v).into()]).await?;
        let _ = conn.execute("INSERT INTO scratch (k, v) VALUES ('dup', 0)", &[]).await;
        Ok(*v)
    })
}

async fn a_write_hiding_a_failed_statement_does_not_lose_its_batch(setup: impl Into<Setup>) {
    let setup = setup.into();
    let (db, _dir) = with_table(&setup).await;
    sqlx::query("INSERT INTO scratch (k, v) VALUES ('dup', -1)").execute(&db.writer).await.unwrap();
    for round in 0..5 {
        let key = |i| format!("r{round}k{i}");
        // Last in its batch: no later write finds the transaction ended.
        let write = |i| if i == 30 { (insert_hiding_an_error as Insert, true) } else { (insert as Insert, false) };
        for result in at_once(&db.group, 60, key, write).await {
            result.unwrap();
        }
        // On Postgres the failed statement ended the transaction: every
        // write told it committed must really have been.
        assert_eq!(rows(&db).await, 1 + 60 * (round + 1));
    }
    if setup.is_postgres() {
        assert!(db.group.stats().rolled_back >= 1, "the hidden failure never shared a batch");
    }
}

fn panics<'a>(_: &'a mut Conn<'_>, _: &'a (String, i64)) -> BoxFuture<'a, oauth3_gateway::Result<i64>> {
    Box::pin(async move { panic!("a write with a bug") })
}

async fn a_write_that_panics_takes_nothing_with_it_but_its_batch(setup: impl Into<Setup>) {
    let setup = setup.into();
    let (db, _dir) = with_table(&setup).await;
    let write = |i| if i == 40 { (panics as Insert, false) } else { (insert as Insert, false) };
    let mut told_ok = Vec::new();
    for (i, result) in at_once(&db.group, 80, |i| format!("k{i}"), write).await.into_iter().enumerate() {
        if result.is_ok() {
            told_ok.push(format!("k{i}"));
        }
    }
    // Told committed exactly when committed: the panicking batch's
    // transaction was ended, not left open or committed.
    let mut present: Vec<String> = sqlx::query_scalar("SELECT k FROM scratch").fetch_all(&db.pool).await.unwrap();
    present.sort();
    told_ok.sort();
    assert_eq!(present, told_ok);
    assert!(!told_ok.contains(&"k40".to_owned()));
    // Writes go on, batched or direct (no connection holds the write lock).
    sqlx::query("DELETE FROM scratch").execute(&db.writer).await.unwrap();
    let after = concurrently(&db.group, 50, |_| false).await;
    assert!(after.iter().all(|r| r.is_ok()));
    assert_eq!(rows(&db).await, 50);
}

/// Counts this write in a table of the connection's own: how many writes
/// its connection has run.
fn count_on_connection<'a>(conn: &'a mut Conn<'_>, _: &'a (String, i64)) -> BoxFuture<'a, oauth3_gateway::Result<i64>> {
    Box::pin(async move {
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS runs (n BIGINT)", &[]).await?;
        conn.execute("INSERT INTO runs (n) VALUES (1)", &[]).await?;
        Ok(conn.fetch_one::<N>("SELECT COUNT(*) AS n FROM runs", &[]).await?.0)
    })
}

async fn writes_in_turn_run_on_one_kept_connection(setup: impl Into<Setup>) {
    let setup = setup.into();
    let (db, _dir) = database(&setup).await;
    let mut counts = Vec::new();
    for i in 0..6 {
        counts.push(db.group.run((String::new(), i), count_on_connection as Insert).await.unwrap());
    }
    // Not handed back to the pool (and pinged) between writes.
    assert_eq!(counts, [1, 2, 3, 4, 5, 6]);
}

fn backend_pid<'a>(conn: &'a mut Conn<'_>, _: &'a (String, i64)) -> BoxFuture<'a, oauth3_gateway::Result<i64>> {
    Box::pin(async move { Ok(conn.fetch_one::<N>("SELECT pg_backend_pid()::BIGINT AS n", &[]).await?.0) })
}

#[tokio::test]
async fn a_kept_connection_the_server_closed_fails_one_write_and_is_replaced() {
    let Some(backend) =
        oauth3_e2e::postgres("a_kept_connection_the_server_closed_fails_one_write_and_is_replaced").await
    else {
        return;
    };
    let (db, _dir) = database(&backend.into()).await;
    let first = db.group.run((String::new(), 0), backend_pid as Insert).await.unwrap();
    let ended: bool =
        sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(first as i32).fetch_one(&db.pool).await.unwrap();
    assert!(ended);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Its outcome cannot be known, so it is not run again elsewhere.
    assert!(db.group.run((String::new(), 1), backend_pid as Insert).await.is_err());
    let next = db.group.run((String::new(), 2), backend_pid as Insert).await.unwrap();
    assert_ne!(next, first);
}

/// 1 when it runs on a direct connection (on this thread), 0 through sqlx.
fn direct<'a>(conn: &'a mut Conn<'_>, _: &'a (String, i64)) -> BoxFuture<'a, oauth3_gateway::Result<i64>> {
    Box::pin(async move { Ok(matches!(conn, Conn::Direct(_)) as i64) })
}

async fn writes_run_on_this_thread_on_a_sqlite_file_only(setup: impl Into<Setup>) {
    let setup = setup.into();
    let (db, _dir) = database(&setup).await;
    let direct = db.group.run((String::new(), 0), direct as Insert).await.unwrap();
    assert_eq!(direct == 1, matches!(setup, Setup::Database(Backend::Sqlite)));
}

/// Runs of [`counted_duplicate`], by its state's key.
static RUNS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Counts its run (in `RUNS`), then breaks the primary key.
fn counted_duplicate<'a>(
    conn: &'a mut Conn<'_>,
    (k, _): &'a (String, i64),
) -> BoxFuture<'a, oauth3_gateway::Result<i64>> {
    Box::pin(async move {
        RUNS.lock().unwrap().push(k.clone());
        conn.execute("INSERT INTO scratch (k, v) VALUES ('dup', 0)", &[]).await?;
        Ok(0)
    })
}

async fn a_lone_failing_write_runs_once(setup: impl Into<Setup>) {
    let setup = setup.into();
    let (db, dir) = with_table(&setup).await;
    sqlx::query("INSERT INTO scratch (k, v) VALUES ('dup', -1)").execute(&db.writer).await.unwrap();
    // A key of this test's own (tests run at once).
    let key = format!("{:?}", dir.as_ref().map(|dir| dir.path().to_owned()));
    assert!(db.group.run((key.clone(), 0), counted_duplicate as Insert).await.is_err());
    let runs = RUNS.lock().unwrap().iter().filter(|k| **k == key).count();
    assert_eq!(runs, 1, "a lone failing write ran {runs} times");
}

/// Inserts its own row, then a row whose conflict ends the whole
/// transaction (`OR ROLLBACK`), hiding that, and carries on.
fn hides_a_rollback<'a>(
    conn: &'a mut Conn<'_>,
    (k, v): &'a (String, i64),
) -> BoxFuture<'a, oauth3_gateway::Result<i64>> {
    Box::pin(async move {
        conn.execute("INSERT INTO scratch (k, v) VALUES ($1, $2)", &[k.into(), (*v).into()]).await?;
        let _ = conn.execute("INSERT OR ROLLBACK INTO scratch (k, v) VALUES ('dup', 0)", &[]).await;
        let after = format!("{k}-after");
        let _ = conn.execute("INSERT INTO scratch (k, v) VALUES ($1, $2)", &[(&after).into(), (*v).into()]).await;
        Ok(*v)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_hiding_an_error_that_ended_its_transaction_fails_and_leaves_nothing() {
    let (db, _dir) = with_table(&Backend::Sqlite.into()).await;
    sqlx::query("INSERT INTO scratch (k, v) VALUES ('dup', -1)").execute(&db.writer).await.unwrap();
    assert!(db.group.run(("hider".to_owned(), 1), hides_a_rollback as Insert).await.is_err());
    // Neither its first row (rolled back) nor a later one (no statement
    // runs once its transaction has ended).
    assert_eq!(rows(&db).await, 1);
    // Among others at once, it fails alone and the rest commit.
    let write = |i| if i == 20 { (hides_a_rollback as Insert, false) } else { (insert as Insert, false) };
    let results = at_once(&db.group, 40, |i| format!("k{i}"), write).await;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.is_ok(), i != 20, "write {i}: {result:?}");
    }
    assert_eq!(rows(&db).await, 40);
}

/// A statement's one TEXT column, `t`.
struct T(Option<String>);

impl FromRecord for T {
    fn from_record(record: &Record) -> oauth3_gateway::Result<T> {
        record.text("t").map(T)
    }
}

/// Runs the statement numbered by the state's value on the direct connection.
fn statement<'a>(conn: &'a mut Conn<'_>, (_, n): &'a (String, i64)) -> BoxFuture<'a, oauth3_gateway::Result<i64>> {
    Box::pin(async move {
        match n {
            0 => Ok(conn.fetch_one::<N>("SELECT $1 + $1 AS n", &[2.into()]).await?.0),
            1 => Ok(conn.fetch_one::<T>("SELECT $1 AS n, $2 AS t", &[5.into()]).await?.0.map_or(-1, |_| 1)),
            2 => Ok(conn.fetch_one::<N>("SELECT ? AS n", &[1.into()]).await?.0),
            3 => Ok(conn.fetch_one::<N>("SELECT 1 AS n; SELECT 2 AS n", &[]).await?.0),
            _ => Ok(conn.fetch_one::<T>("SELECT CAST(x'ff' AS TEXT) AS t", &[]).await?.0.map_or(0, |t| t.len() as i64)),
        }
    })
}

#[tokio::test]
async fn direct_statements_bind_dollar_placeholders_and_refuse_what_sqlx_would_read_otherwise() {
    let (db, _dir) = database(&Backend::Sqlite.into()).await;
    let run = |n: i64| db.group.run((String::new(), n), statement as Insert);
    assert_eq!(run(0).await.unwrap(), 4, "$1 twice is one argument");
    assert_eq!(run(1).await.unwrap(), -1, "a placeholder past the arguments is NULL");
    assert!(run(2).await.is_err(), "a ? placeholder");
    assert!(run(3).await.is_err(), "a second statement");
    assert!(run(4).await.is_err(), "text that is not UTF-8");
}

#[tokio::test]
async fn an_in_memory_database_or_a_url_naming_another_vfs_runs_every_write_through_sqlx() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    assert!(db.direct.is_none());
    assert_eq!(db.group.run((String::new(), 0), direct as Insert).await.unwrap(), 0);
    // Another VFS may lock the file another way than a direct connection would.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc&vfs=unix-dotfile", dir.path().join("oauth3.db").display());
    let db = Db::connect(&url).await.unwrap();
    assert!(db.direct.is_none());
    assert_eq!(db.group.run((String::new(), 0), direct as Insert).await.unwrap(), 0);
}

#[tokio::test]
async fn a_write_that_finds_sqlite_locked_waits_for_the_lock_and_commits() {
    let (db, _dir) = with_table(&Backend::Sqlite.into()).await;
    // Another connection of this process holds the file's write lock.
    let mut holder = db.writer.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *holder).await.unwrap();
    sqlx::query("INSERT INTO scratch (k, v) VALUES ('held', 0)").execute(&mut *holder).await.unwrap();
    let write = tokio::spawn({
        let group = db.group.clone();
        async move { group.run(("waiting".to_owned(), 1), insert as Insert).await }
    });
    let slept = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Waiting on this thread would have held it (and this sleep) too.
    assert!(slept.elapsed() < Duration::from_secs(2), "the write waited for the lock on the runtime's thread");
    assert!(!write.is_finished(), "the write neither waited for the lock nor failed: it cannot have committed");
    sqlx::query("COMMIT").execute(&mut *holder).await.unwrap();
    drop(holder);
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), write).await.unwrap().unwrap().unwrap(), 1);
    assert_eq!(rows(&db).await, 2);
    // The next write runs on this thread again.
    assert_eq!(db.group.run((String::new(), 2), direct as Insert).await.unwrap(), 1);
}

/// The battery, on both databases, and on a SQLite file whose writes all
/// run through sqlx (the path a batch takes when SQLite's lock is taken).
macro_rules! battery {
    ($($name:ident),* $(,)?) => {
        on_both_databases!($($name),*);

        mod sqlite_through_sqlx {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Setup::SqliteThroughSqlx).await
                }
            )*
        }
    };
}

battery!(
    a_lone_failing_write_runs_once,
    writes_run_on_this_thread_on_a_sqlite_file_only,
    writes_in_turn_run_on_one_kept_connection,
    a_write_that_panics_takes_nothing_with_it_but_its_batch,
    a_write_hiding_a_failed_statement_does_not_lose_its_batch,
    concurrent_writes_share_transactions_and_each_gets_its_result,
    a_failing_write_fails_alone_and_its_batch_commits,
    a_write_whose_writer_went_away_is_still_committed,
);
