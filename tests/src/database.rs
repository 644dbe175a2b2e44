//! The databases a test runs against: a fresh SQLite file, or a fresh
//! database on the Postgres server.

use sqlx::Connection;

use crate::random_hex;

/// Which database a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A fresh SQLite file in the test's data dir.
    Sqlite,
    /// A fresh database on the Postgres server at this URL (created per test).
    Postgres(String),
}

/// Runs each named `async fn name(backend: Backend)` once on SQLite and once
/// on Postgres, as `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::postgres(stringify!($name)).await {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}

/// The Postgres server for tests (`TEST_DATABASE_URL`, default the local
/// one), with a fresh database for `test`. When the server is unreachable
/// this prints a loud SKIPPED line, or fails when `OAUTH3_REQUIRE_POSTGRES=1`
/// (CI sets it).
pub async fn postgres(test: &str) -> Option<Backend> {
    let server =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = match sqlx::PgConnection::connect(&server).await {
        Ok(conn) => conn,
        Err(error) => {
            if std::env::var("OAUTH3_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("Postgres at {server} is required (OAUTH3_REQUIRE_POSTGRES=1) but unreachable: {error}");
            }
            eprintln!("\n*** SKIPPED postgres::{test}: no Postgres at {server} ({error}); set TEST_DATABASE_URL ***\n");
            return None;
        }
    };
    // Databases left by test processes more than an hour ago are dropped
    // (names carry their creation time; other processes may be running now).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CLEANED
        .get_or_init(|| async {
            let old: Vec<String> =
                sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE 'oauth3\\_test\\_%'")
                    .fetch_all(&mut admin)
                    .await
                    .unwrap_or_default();
            let stale = |name: &String| {
                name.split('_').nth(2).and_then(|t| t.parse::<u64>().ok()).is_some_and(|t| t + 3600 < now)
            };
            for name in old.iter().filter(|n| stale(n)) {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
            }
        })
        .await;
    let name = format!("oauth3_test_{now}_{}", random_hex(8));
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create a test database");
    let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
    Some(Backend::Postgres(format!("{base}/{name}")))
}
