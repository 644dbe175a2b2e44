//! Group commit against real databases: concurrent writes share
//! transactions, each writer hears its own result only once committed, and
//! one write's failure is its own.

use std::time::Duration;

use oauth3_e2e::{Backend, on_both_databases};
use oauth3_gateway::db::Db;
use oauth3_gateway::group_commit::{BoxFuture, GroupCommit};
use sqlx::AnyConnection;

async fn database(backend: &Backend) -> (Db, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("oauth3.db").display());
            (Db::connect(&url).await.unwrap(), Some(dir))
        }
        Backend::Postgres(url) => (Db::connect(url).await.unwrap(), None),
    }
}

async fn with_table(backend: &Backend) -> (Db, Option<tempfile::TempDir>) {
    let (db, dir) = database(backend).await;
    sqlx::query("CREATE TABLE scratch (k TEXT PRIMARY KEY, v BIGINT NOT NULL)").execute(&db.writer).await.unwrap();
    (db, dir)
}

fn insert<'c>(conn: &'c mut AnyConnection, (k, v): &'c (String, i64)) -> BoxFuture<'c, oauth3_gateway::Result<i64>> {
    Box::pin(async move {
        sqlx::query("INSERT INTO scratch (k, v) VALUES ($1, $2)").bind(k).bind(*v).execute(conn).await?;
        Ok(*v)
    })
}

async fn rows(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM scratch").fetch_one(&db.pool).await.unwrap()
}

/// Runs `n` inserts at once, key `k{i}` (or `dup` where `duplicate(i)`).
async fn concurrently(group: &GroupCommit, n: i64, duplicate: fn(i64) -> bool) -> Vec<oauth3_gateway::Result<i64>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let group = group.clone();
            let key = if duplicate(i) { "dup".to_owned() } else { format!("k{i}") };
            tokio::spawn(async move { group.run((key, i), insert).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

async fn concurrent_writes_share_transactions_and_each_gets_its_result(backend: Backend) {
    let (db, _dir) = with_table(&backend).await;
    let results = concurrently(&db.group, 300, |_| false).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.unwrap(), i as i64);
    }
    assert_eq!(rows(&db).await, 300);
    let stats = db.group.stats();
    assert!(stats.committed >= 1 && stats.writes > stats.committed, "300 writes at once were never batched: {stats:?}");
    assert_eq!(stats.rolled_back, 0);
}

async fn a_failing_write_fails_alone_and_its_batch_commits(backend: Backend) {
    let (db, _dir) = with_table(&backend).await;
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
        assert!(results.iter().enumerate().all(|(i, r)| r.is_err() == (i % 10 == 0)));
        assert_eq!(rows(&db).await, 91, "the 90 good writes and the first row");
    }
    assert_eq!(failed, 50);
    assert!(db.group.stats().rolled_back >= 1, "the failures never shared a batch: {:?}", db.group.stats());
}

async fn a_write_whose_writer_went_away_is_still_committed(backend: Backend) {
    let (db, _dir) = with_table(&backend).await;
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
fn insert_hiding_an_error<'c>(
    conn: &'c mut AnyConnection,
    (k, v): &'c (String, i64),
) -> BoxFuture<'c, oauth3_gateway::Result<i64>> {
    Box::pin(async move {
        sqlx::query("INSERT INTO scratch (k, v) VALUES ($1, $2)").bind(k).bind(*v).execute(&mut *conn).await?;
        let _ = sqlx::query("INSERT INTO scratch (k, v) VALUES ('dup', 0)").execute(conn).await;
        Ok(*v)
    })
}

async fn a_write_hiding_a_failed_statement_does_not_lose_its_batch(backend: Backend) {
    let (db, _dir) = with_table(&backend).await;
    sqlx::query("INSERT INTO scratch (k, v) VALUES ('dup', -1)").execute(&db.writer).await.unwrap();
    for round in 0..5 {
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let group = db.group.clone();
                let key = format!("r{round}k{i}");
                tokio::spawn(async move {
                    match i {
                        // Last in its batch: no later write finds the transaction ended.
                        30 => group.run_last("scratch".into(), (key, i), insert_hiding_an_error).await,
                        _ => group.run((key, i), insert).await,
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // On Postgres the failed statement ended the transaction: every
        // write told it committed must really have been.
        assert_eq!(rows(&db).await, 1 + 60 * (round + 1));
    }
}

on_both_databases!(
    a_write_hiding_a_failed_statement_does_not_lose_its_batch,
    concurrent_writes_share_transactions_and_each_gets_its_result,
    a_failing_write_fails_alone_and_its_batch_commits,
    a_write_whose_writer_went_away_is_still_committed,
);
