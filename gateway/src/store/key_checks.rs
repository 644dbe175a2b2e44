//! The check value each key (purpose, version) was first used with.

use crate::db::Db;
use crate::error::Result;

/// The check value stored for `purpose` at `version`, if any.
pub async fn stored(db: &Db, purpose: &str, version: &str) -> Result<Option<String>> {
    let stored = sqlx::query_scalar("SELECT check_value FROM key_checks WHERE purpose = $1 AND version = $2")
        .bind(purpose)
        .bind(version)
        .fetch_optional(&db.pool)
        .await?;
    Ok(stored)
}

/// The check value stored for `purpose` at `version`, storing `check` when
/// there is none yet (the first process to use the key).
pub async fn stored_or(db: &Db, purpose: &str, version: &str, check: &str) -> Result<String> {
    sqlx::query(
        "INSERT INTO key_checks (purpose, version, check_value) VALUES ($1, $2, $3) \
         ON CONFLICT (purpose, version) DO NOTHING",
    )
    .bind(purpose)
    .bind(version)
    .bind(check)
    .execute(&db.writer)
    .await?;
    let stored: String = sqlx::query_scalar("SELECT check_value FROM key_checks WHERE purpose = $1 AND version = $2")
        .bind(purpose)
        .bind(version)
        .fetch_one(&db.pool)
        .await?;
    Ok(stored)
}
