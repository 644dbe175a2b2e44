//! Submitted components, by the SHA-256 of their bytes (hex).

use crate::db::Db;
use crate::error::Result;

/// Stores a component's bytes, once per hash. Storing it again renews its
/// time, so retention does not take it from a submission under way.
pub async fn put(db: &Db, hash: &str, bytes: &[u8], now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO components (hash, bytes, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (hash) DO UPDATE SET created_at = excluded.created_at",
    )
    .bind(hash)
    .bind(bytes)
    .bind(now)
    .execute(&db.writer)
    .await?;
    Ok(())
}

/// A stored component's bytes.
pub async fn get(db: &Db, hash: &str) -> Result<Option<Vec<u8>>> {
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT bytes FROM components WHERE hash = $1").bind(hash).fetch_optional(&db.pool).await?;
    Ok(row.map(|(bytes,)| bytes))
}
