//! Owners' browser sessions, stored by the SHA-256 of the cookie's value.
//! A session is valid while unexpired, while its tenant's token generation
//! is the one it was made in, and while the token it was signed in with is
//! not revoked: revoking that token, or all of them, ends it too.

use super::rows::SessionRow;
use crate::auth::Caller;
use crate::db::Db;
use crate::error::Result;

/// A session to store: the hash of its cookie, the token it was signed in
/// with, and its times (unix ms).
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub caller: &'a Caller,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Stores a session for the caller's tenant, in the token generation of the
/// token it signed in with.
pub async fn insert(db: &Db, session: &NewSession<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, tenant_id, token_id, token_generation, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(session.id_hash)
    .bind(&session.caller.id)
    .bind(&session.caller.token.id)
    .bind(session.caller.token.generation)
    .bind(session.created_at)
    .bind(session.expires_at)
    .execute(&db.writer)
    .await?;
    Ok(())
}

/// The session's tenant, if the session exists, has not expired at `now`,
/// was made in the tenant's current token generation, and its token has not
/// been revoked.
pub async fn find(db: &Db, id_hash: &str, now: i64) -> Result<Option<SessionRow>> {
    Ok(sqlx::query_as(
        "SELECT t.id AS tenant_id, t.name, t.role FROM sessions s JOIN tenants t ON t.id = s.tenant_id \
         WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.token_generation = t.token_generation \
         AND NOT EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.jti = s.token_id)",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?)
}

/// Ends the session (logout). Idempotent.
pub async fn delete(db: &Db, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&db.writer).await?;
    Ok(())
}
