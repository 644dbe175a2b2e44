//! Owners' sealed secrets. Values are sealed before they reach the store
//! and opened only inside egress; the store never sees them in the clear.

use super::rows::SecretRow;
use crate::db::Db;
use crate::error::Result;

/// Stores `sealed` as `owner`'s secret `name` at `now`: the row after, and
/// whether it replaced one.
pub async fn put(db: &Db, owner: &str, name: &str, sealed: &[u8], now: i64) -> Result<(SecretRow, bool)> {
    let replaced = sqlx::query("UPDATE secrets SET sealed = $1, updated_at = $2 WHERE owner_id = $3 AND name = $4")
        .bind(sealed)
        .bind(now)
        .bind(owner)
        .bind(name)
        .execute(&db.pool)
        .await?
        .rows_affected()
        == 1;
    let created_at: i64 = if replaced {
        sqlx::query_scalar("SELECT created_at FROM secrets WHERE owner_id = $1 AND name = $2")
            .bind(owner)
            .bind(name)
            .fetch_one(&db.pool)
            .await?
    } else {
        sqlx::query(
            "INSERT INTO secrets (owner_id, name, sealed, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (owner_id, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(owner)
        .bind(name)
        .bind(sealed)
        .bind(now)
        .execute(&db.pool)
        .await?;
        now
    };
    Ok((SecretRow { name: name.to_owned(), created_at, updated_at: now }, replaced))
}

/// `owner`'s secrets, by name.
pub async fn of_owner(db: &Db, owner: &str) -> Result<Vec<SecretRow>> {
    Ok(sqlx::query_as("SELECT name, created_at, updated_at FROM secrets WHERE owner_id = $1 ORDER BY name")
        .bind(owner)
        .fetch_all(&db.pool)
        .await?)
}

/// Whether `owner` holds a secret `name`.
pub async fn exists(db: &Db, owner: &str, name: &str) -> Result<bool> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secrets WHERE owner_id = $1 AND name = $2")
        .bind(owner)
        .bind(name)
        .fetch_one(&db.pool)
        .await?;
    Ok(count > 0)
}

/// `owner`'s sealed secret `name`.
pub async fn sealed(db: &Db, owner: &str, name: &str) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar("SELECT sealed FROM secrets WHERE owner_id = $1 AND name = $2")
        .bind(owner)
        .bind(name)
        .fetch_optional(&db.pool)
        .await?)
}

/// Deletes `owner`'s secret `name`; false when there was none.
pub async fn delete(db: &Db, owner: &str, name: &str) -> Result<bool> {
    let deleted = sqlx::query("DELETE FROM secrets WHERE owner_id = $1 AND name = $2")
        .bind(owner)
        .bind(name)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(deleted > 0)
}
