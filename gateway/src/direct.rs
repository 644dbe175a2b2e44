//! SQLite on the calling thread, for the statements every execution runs
//! (its insert, rate-limit budget, audit entries and finish, and the token
//! check). Through sqlx each statement is a round trip to the connection's
//! own thread: two thread wake-ups, which on a small VM cost more than the
//! statement. Here a statement runs where it is called, in microseconds.
//!
//! Nothing here waits for SQLite's write lock: the writer's busy timeout is
//! zero, and a write that finds the lock taken (another connection, of this
//! process or another, is writing) is handed to sqlx's connections, which
//! wait for it on their own threads. Both libraries link the one SQLite
//! library, so their connections share its locks and caches.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{CachedStatement, Connection, ErrorCode, OpenFlags};
use sqlx::sqlite::SqliteConnectOptions;

use crate::db::SQLITE_SETTINGS;
use crate::error::{Error, Result};
use crate::sql::{Arg, FromRecord, Record};
use crate::state::lock;

/// Connections to one SQLite file, used on the calling thread.
pub struct Direct {
    path: PathBuf,
    /// `None` after one had to be closed (see [`Direct::with_writer`]).
    writer: Mutex<Option<Connection>>,
    reader: Mutex<Connection>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Direct")
    }
}

impl Direct {
    /// Connections to the file `url` (a `sqlite:` URL) names, or `None`
    /// where they could differ from sqlx's: an in-memory database (each
    /// connection would see its own), or a URL with parameters other than
    /// `mode=rw`/`rwc` (a `vfs` with other locking, `immutable`, read-only).
    pub fn open(url: &str) -> Result<Option<Direct>> {
        let plain = url
            .split_once('?')
            .is_none_or(|(_, query)| query.split('&').all(|pair| matches!(pair, "" | "mode=rw" | "mode=rwc")));
        let path = SqliteConnectOptions::from_str(url)?.get_filename().to_path_buf();
        // sqlx names an in-memory database `file:sqlx-in-memory-…`, no file.
        if !plain || url.contains(":memory:") || !path.is_file() {
            return Ok(None);
        }
        let (writer, reader) = (connect(&path)?, connect(&path)?);
        Ok(Some(Direct { path, writer: Mutex::new(Some(writer)), reader: Mutex::new(reader) }))
    }

    /// Runs `f` on the writing connection (opened again first if an earlier
    /// use had to close it); `None` when it cannot be opened. Whatever `f`
    /// leaves, no transaction stays open: it is rolled back, or the
    /// connection closed (which ends it), so that this connection never
    /// keeps holding SQLite's write lock.
    pub(crate) fn with_writer<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> Option<R> {
        let mut slot = lock(&self.writer);
        if slot.is_none() {
            match connect(&self.path) {
                Ok(conn) => *slot = Some(conn),
                Err(error) => {
                    tracing::error!(%error, "could not open the database for writes on this thread");
                    return None;
                }
            }
        }
        let conn = slot.as_mut()?;
        let result = f(conn);
        if !rollback(conn) {
            *slot = None;
        }
        Some(result)
    }

    /// The first row of the read `sql` with `args`. A read never waits:
    /// `Err` when SQLite says busy (see [`is_busy`]).
    pub fn read<T: FromRecord>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Option<T>> {
        let mut conn = lock(&self.reader);
        fetch_optional(&mut conn, sql, args)?.map(|record| T::from_record(&record)).transpose()
    }
}

/// Rolls back `conn`'s transaction, if one is open; false when it is still
/// open after that.
pub(crate) fn rollback(conn: &Connection) -> bool {
    if !conn.is_autocommit()
        && let Err(error) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!(%error, "could not roll back a batch of writes");
    }
    conn.is_autocommit()
}

/// Statements kept prepared per connection.
const PREPARED: usize = 64;

fn connect(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // As sqlx's connections, but never waiting for a lock.
    conn.busy_timeout(Duration::ZERO)?;
    conn.execute_batch(SQLITE_SETTINGS)?;
    conn.set_prepared_statement_cache_capacity(PREPARED);
    Ok(conn)
}

/// True when `error` is SQLite saying another connection holds the lock
/// (or is recovering the file): run it through sqlx instead, which waits.
pub fn is_busy(error: &Error) -> bool {
    matches!(error, Error::Sqlite(error) if busy(error))
}

/// [`is_busy`], of SQLite's own error.
pub(crate) fn busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// Runs `sql` with `args` to its end: the rows it changed.
pub(crate) fn execute(conn: &mut Connection, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
    let mut statement = prepare(conn, sql, args)?;
    let mut rows = statement.raw_query();
    while rows.next()?.is_some() {}
    drop(rows);
    drop(statement);
    Ok(conn.changes())
}

/// Runs `sql` with `args`: its first row, if any. The statement is reset
/// (and a write's changes made) before this returns.
pub(crate) fn fetch_optional(conn: &mut Connection, sql: &str, args: &[Arg<'_>]) -> Result<Option<Record>> {
    let mut statement = prepare(conn, sql, args)?;
    let names: Vec<String> = statement.column_names().into_iter().map(str::to_owned).collect();
    let mut rows = statement.raw_query();
    let Some(row) = rows.next()? else { return Ok(None) };
    let mut columns = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let value = match row.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(n) => Value::Integer(n),
            ValueRef::Real(x) => Value::Real(x),
            // Copied once, its UTF-8 error kept as the source.
            ValueRef::Text(text) => {
                Value::Text(std::str::from_utf8(text).map_err(rusqlite::Error::Utf8Error)?.to_owned())
            }
            ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
        };
        columns.push((name, value));
    }
    // The rest of a RETURNING's rows, so that the statement has ended.
    while rows.next()?.is_some() {}
    Ok(Some(Record::Direct(columns)))
}

/// `sql`, one statement, prepared (or from the cache), with `args` bound to
/// `$1`, `$2`, … as sqlx binds them: from the first placeholder past the
/// arguments on, NULL. Any other kind of placeholder is an error, and so is
/// a second statement (none of these statements holds a `;` in a literal).
fn prepare<'c>(conn: &'c Connection, sql: &str, args: &[Arg<'_>]) -> Result<CachedStatement<'c>> {
    if sql.split_once(';').is_some_and(|(_, rest)| !rest.trim().is_empty()) {
        return Err(rusqlite::Error::MultipleStatement.into());
    }
    let mut statement = conn.prepare_cached(sql)?;
    for index in 1..=statement.parameter_count() {
        let n = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::Internal(format!("a statement's placeholder {index} is not $n: {sql}")))?;
        match args.get(n - 1) {
            Some(Arg::Int(value)) => statement.raw_bind_parameter(index, value)?,
            Some(Arg::Text(value)) => statement.raw_bind_parameter(index, value)?,
            None => break,
        }
    }
    Ok(statement)
}
