//! The database: one sqlx `Any` pool over SQLite or Postgres, so both run the
//! same queries (`$1` placeholders, BIGINT Unix-millisecond timestamps, TEXT
//! ids and JSON). Migrations are applied at start; only the DDL differs.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Connection as _, Executor};

use crate::direct::{self, Direct};
use crate::error::{Error, Result};
use crate::group_commit::GroupCommit;
use crate::sql::{self, Arg, FromRecord, Record};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Which backend a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local SQLite file (WAL mode).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The pools and their backend.
#[derive(Debug, Clone)]
pub struct Db {
    /// Connection pool for reads.
    pub pool: AnyPool,
    /// Where writes go. On SQLite, a few connections of their own (see
    /// [`SQLITE_WRITERS`]): reads never wait behind a write for a
    /// connection. On Postgres, the same pool as reads.
    pub writer: AnyPool,
    /// The hot writes of executions, batched into shared transactions
    /// over `writer` (over `direct` first, on a SQLite file).
    pub group: GroupCommit,
    /// On a SQLite file: connections used on the calling thread, for the
    /// statements every execution runs.
    pub direct: Option<Arc<Direct>>,
    /// Backend.
    pub backend: Backend,
}

impl Db {
    /// Connects to `url` and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::Config("DATABASE_URL must start with sqlite:// or postgres://".into()));
        };
        let options = AnyConnectOptions::from_str(url)?;
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                let pool = sqlite_pool(8).connect_with(options.clone()).await?;
                sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
                (pool, sqlite_pool(SQLITE_WRITERS).connect_with(options).await?)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    // A ping is a round trip: only for a connection idle long
                    // enough that the server or a pooler may have closed it.
                    // A busy pool's connections are in use every few ms.
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_AFTER_IDLE {
                                conn.ping().await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await?;
                (pool.clone(), pool)
            }
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        };
        migrator.run(&writer).await?;
        let direct = match backend {
            Backend::Sqlite => Direct::open(url)?.map(Arc::new),
            Backend::Postgres => None,
        };
        let group = GroupCommit::new(writer.clone(), backend, direct.clone(), GROUP_LEADERS);
        Ok(Db { pool, writer, group, direct, backend })
    }

    /// The first row of the read `sql` with `args`: on the calling thread
    /// on a SQLite file, unless SQLite is busy; else from `pool`.
    pub async fn read_optional<T: FromRecord>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Option<T>> {
        if let Some(direct) = &self.direct {
            match direct.read(sql, args) {
                Err(error) if direct::is_busy(&error) => {}
                read => return read,
            }
        }
        let row = sql::bind(sqlx::query(sql), args).fetch_optional(&self.pool).await?;
        row.map(|row| T::from_record(&Record::Sqlx(row))).transpose()
    }
}

/// How long a connection may sit idle and still be used without a ping
/// (a round trip): a server or pooler may close idle connections.
pub(crate) const PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// Batches of hot writes that run at once. One: on SQLite two would meet
/// at the file's write lock; on Postgres, where each batch holds the rows it
/// wrote until it commits, two deadlocked on slots and budgets (the load
/// bench at concurrency 64 went from ~450 executions/s with one to ~130/s
/// with two or four, with 2 s stalls).
const GROUP_LEADERS: usize = 1;

/// Connections that write to a SQLite file. Writes meet at SQLite's one
/// write lock, where the loser sleeps (its busy handler) and the other
/// connections' page caches are dropped; fewer writers meet less. One writer
/// never meets another, but serialises every write through one thread's
/// round trips. The load bench at concurrency 64 ran ~860–910 executions/s
/// with 4, ~730–820/s with 1.
const SQLITE_WRITERS: u32 = 4;

/// A pool of at most `size` connections to a SQLite file. WAL lets readers
/// run beside the one writer; NORMAL sync is durable across process crashes
/// (not power loss) in WAL mode.
fn sqlite_pool(size: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(size)
        // A local file: no dead connections to detect, and the ping cost a
        // thread round trip per query.
        .test_before_acquire(false)
        // Writers wait in the writer pool's queue, however long it is.
        .acquire_timeout(Duration::from_secs(60))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(SQLITE_SETTINGS).await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                Ok(())
            })
        })
}

/// What every connection to a SQLite file sets (sqlx's and [`Direct`]'s).
pub(crate) const SQLITE_SETTINGS: &str = "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

/// `time` in Unix milliseconds (0 before the epoch).
pub fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Unix milliseconds as RFC 3339 (`2026-11-27T03:53:27.123Z`).
pub fn rfc3339(ms: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

/// Optional Unix milliseconds as RFC 3339, `null` when absent.
pub fn rfc3339_opt(ms: Option<i64>) -> Option<String> {
    ms.map(rfc3339)
}
