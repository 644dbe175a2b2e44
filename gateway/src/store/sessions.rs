//! Owners' browser sessions, stored by the SHA-256 of the cookie's value.
//! A session is valid while unexpired and while its tenant's token
//! generation is the one it was made in: revoking all tokens ends it too.

use super::rows::SessionRow;
use crate::db::Db;
use crate::error::Result;

/// Stores a session for `tenant` in its current token generation, valid
/// until `expires_at`.
pub async fn insert(db: &Db, id_hash: &str, tenant: &str, now: i64, expires_at: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, tenant_id, token_generation, created_at, expires_at) \
         SELECT $1, id, token_generation, $3, $4 FROM tenants WHERE id = $2",
    )
    .bind(id_hash)
    .bind(tenant)
    .bind(now)
    .bind(expires_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The session's tenant, if the session exists, has not expired at `now`,
/// and was made in the tenant's current token generation.
pub async fn find(db: &Db, id_hash: &str, now: i64) -> Result<Option<SessionRow>> {
    Ok(sqlx::query_as(
        "SELECT t.id AS tenant_id, t.name, t.role FROM sessions s JOIN tenants t ON t.id = s.tenant_id \
         WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.token_generation = t.token_generation",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?)
}

/// Ends the session (logout). Idempotent.
pub async fn delete(db: &Db, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&db.pool).await?;
    Ok(())
}
