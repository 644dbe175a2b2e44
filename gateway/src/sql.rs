//! Statements on either kind of connection the hot writes run on: sqlx's
//! (Postgres, or SQLite through sqlx's thread per connection), or a SQLite
//! connection used on the calling thread ([`crate::direct`]). A write is
//! written once against [`Conn`]; placeholders are `$1`, `$2`, … on both.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::direct;
use crate::error::{Error, Result};

/// A value bound to a placeholder. Typed even when NULL: Postgres refuses a
/// text NULL for a BIGINT column.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// A BIGINT (or NULL).
    Int(Option<i64>),
    /// TEXT (or NULL).
    Text(Option<&'a str>),
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Arg::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(value: Option<i64>) -> Self {
        Arg::Int(value)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(value: &'a str) -> Self {
        Arg::Text(Some(value))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(value: &'a String) -> Self {
        Arg::Text(Some(value))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Arg::Text(value)
    }
}

/// A connection a write runs its statements on.
pub enum Conn<'c> {
    /// sqlx's: each statement a round trip (to the server, or to the
    /// connection's thread).
    Sqlx(&'c mut AnyConnection),
    /// A SQLite connection on this thread: each statement runs as it is
    /// called, and its future is ready at once.
    Direct(&'c mut rusqlite::Connection),
}

impl Conn<'_> {
    /// Runs `sql` with `args`: the rows it changed.
    pub async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        match self {
            Conn::Sqlx(conn) => Ok(bind(sqlx::query(sql), args).execute(&mut **conn).await?.rows_affected()),
            Conn::Direct(conn) => direct::execute(in_transaction(conn)?, sql, args),
        }
    }

    /// Runs `sql` with `args`: its first row, if any.
    pub async fn fetch_optional<T: FromRecord>(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<T>> {
        let record = match self {
            Conn::Sqlx(conn) => bind(sqlx::query(sql), args).fetch_optional(&mut **conn).await?.map(Record::Sqlx),
            Conn::Direct(conn) => direct::fetch_optional(in_transaction(conn)?, sql, args)?,
        };
        record.map(|record| T::from_record(&record)).transpose()
    }

    /// Runs `sql` with `args`: its first row, which it must return.
    pub async fn fetch_one<T: FromRecord>(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<T> {
        match self.fetch_optional(sql, args).await? {
            Some(row) => Ok(row),
            None if matches!(self, Conn::Direct(_)) => Err(rusqlite::Error::QueryReturnedNoRows.into()),
            None => Err(sqlx::Error::RowNotFound.into()),
        }
    }
}

/// `conn`, if it is inside the transaction its batch began: after an error
/// that made SQLite end it, a write's later statements would each commit
/// on their own.
fn in_transaction(conn: &mut rusqlite::Connection) -> Result<&mut rusqlite::Connection> {
    if conn.is_autocommit() {
        return Err(Error::Internal("a write's transaction has ended".into()));
    }
    Ok(conn)
}

/// `query` with `args` bound in order.
pub(crate) fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for arg in args {
        query = match *arg {
            Arg::Int(value) => query.bind(value),
            Arg::Text(value) => query.bind(value),
        };
    }
    query
}

/// A row, read by column name.
pub enum Record {
    /// From sqlx.
    Sqlx(AnyRow),
    /// From a direct connection: each column's name and value.
    Direct(Vec<(String, rusqlite::types::Value)>),
}

impl Record {
    /// The TEXT column `name` (NULL as `None`).
    pub fn text(&self, name: &str) -> Result<Option<String>> {
        match self {
            Record::Sqlx(row) => Ok(sqlx::Row::try_get(row, name)?),
            Record::Direct(columns) => match direct_value(columns, name)? {
                rusqlite::types::Value::Null => Ok(None),
                rusqlite::types::Value::Text(text) => Ok(Some(text.clone())),
                other => Err(mismatch(name, "TEXT", other)),
            },
        }
    }

    /// The BIGINT column `name` (NULL as `None`).
    pub fn int(&self, name: &str) -> Result<Option<i64>> {
        match self {
            Record::Sqlx(row) => Ok(sqlx::Row::try_get(row, name)?),
            Record::Direct(columns) => match direct_value(columns, name)? {
                rusqlite::types::Value::Null => Ok(None),
                rusqlite::types::Value::Integer(n) => Ok(Some(*n)),
                other => Err(mismatch(name, "INTEGER", other)),
            },
        }
    }

    /// The TEXT column `name`, which must not be NULL.
    pub fn text_not_null(&self, name: &str) -> Result<String> {
        self.text(name)?.ok_or_else(|| null(name))
    }

    /// The BIGINT column `name`, which must not be NULL.
    pub fn int_not_null(&self, name: &str) -> Result<i64> {
        self.int(name)?.ok_or_else(|| null(name))
    }
}

fn direct_value<'r>(columns: &'r [(String, rusqlite::types::Value)], name: &str) -> Result<&'r rusqlite::types::Value> {
    columns
        .iter()
        .find(|(column, _)| column == name)
        .map(|(_, value)| value)
        .ok_or_else(|| rusqlite::Error::InvalidColumnName(name.to_owned()).into())
}

fn mismatch(name: &str, expected: &str, found: &rusqlite::types::Value) -> Error {
    Error::Internal(format!("column {name}: expected {expected}, found {:?}", found.data_type()))
}

fn null(name: &str) -> Error {
    Error::Internal(format!("column {name} is NULL"))
}

/// A value read from a [`Record`].
pub trait FromRecord: Sized {
    /// Reads it from `record`.
    fn from_record(record: &Record) -> Result<Self>;
}
