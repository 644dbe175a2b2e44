//! Tenants (agents and owners), the invites owners sign up with, and token
//! revocation.

use crate::auth::{Caller, Role};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::sql::{FromRecord, Record};

/// Stores a tenant; for an owner signing up with an invite, the invite is
/// used up in the same transaction (403 when it is unknown or used).
pub async fn insert(db: &Db, id: &str, name: &str, role: Role, invite_hash: Option<&str>, now: i64) -> Result<()> {
    let mut tx = db.writer.begin().await?;
    if let Some(hash) = invite_hash {
        let used =
            sqlx::query("UPDATE invites SET used_by = $1, used_at = $2 WHERE code_hash = $3 AND used_by IS NULL")
                .bind(id)
                .bind(now)
                .bind(hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if used != 1 {
            return Err(Error::Forbidden("the invite code is unknown or already used".into()));
        }
    }
    sqlx::query("INSERT INTO tenants (id, name, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(name)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Stores an invite by the hash of its code.
pub async fn insert_invite(db: &Db, code_hash: &str, created_by: Option<&str>, now: i64) -> Result<()> {
    sqlx::query("INSERT INTO invites (code_hash, created_by, created_at) VALUES ($1, $2, $3)")
        .bind(code_hash)
        .bind(created_by)
        .bind(now)
        .execute(&db.writer)
        .await?;
    Ok(())
}

/// How many invites were ever made.
pub async fn invite_count(db: &Db) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM invites").fetch_one(&db.pool).await?)
}

/// The tenant's token generation and whether `jti` is revoked, in one
/// indexed read; `None` when the tenant no longer exists.
pub async fn token_state(db: &Db, tenant: &str, jti: &str) -> Result<Option<(i64, bool)>> {
    // Every request reads it: on the calling thread on a SQLite file.
    let sql = "SELECT token_generation AS generation, (SELECT COUNT(*) FROM revoked_tokens WHERE jti = $2) AS revoked \
               FROM tenants WHERE id = $1";
    let state: Option<TokenState> = db.read_optional(sql, &[tenant.into(), jti.into()]).await?;
    Ok(state.map(|state| (state.generation, state.revoked > 0)))
}

/// A tenant's token generation, and how many revocations name a token.
struct TokenState {
    generation: i64,
    revoked: i64,
}

impl FromRecord for TokenState {
    fn from_record(record: &Record) -> Result<TokenState> {
        Ok(TokenState { generation: record.int_not_null("generation")?, revoked: record.int_not_null("revoked")? })
    }
}

/// Revokes the caller's token until it would have expired anyway.
pub async fn revoke_token(db: &Db, caller: &Caller, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO revoked_tokens (jti, tenant_id, revoked_at, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(&caller.token.id)
    .bind(&caller.id)
    .bind(now)
    .bind(caller.token.expires_at_ms)
    .execute(&db.writer)
    .await?;
    Ok(())
}

/// Moves the tenant's token generation on (refusing every older token) and
/// returns the new one.
pub async fn next_token_generation(db: &Db, tenant: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "UPDATE tenants SET token_generation = token_generation + 1 WHERE id = $1 RETURNING token_generation",
    )
    .bind(tenant)
    .fetch_one(&db.writer)
    .await?)
}

/// The tenant's name.
pub async fn name(db: &Db, tenant: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1").bind(tenant).fetch_optional(&db.pool).await?)
}
