//! `POST /signup` and `POST /invites`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Json;
use crate::auth::{Owner, Role};
use crate::config::SignupMode;
use crate::db::{Db, now_ms};
use crate::error::{Error, Result};
use crate::keys::new_id;
use crate::state::Gateway;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signup {
    name: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    invite: Option<String>,
}

/// Creates a tenant and returns its token.
pub async fn signup(
    State(gateway): State<Arc<Gateway>>,
    Json(body): Json<Signup>,
) -> Result<(StatusCode, Json<Value>)> {
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(Error::bad_request("invalid_request", "name: 1–200 printable characters"));
    }
    let role = match body.role.as_deref() {
        None => Role::Agent,
        Some(role) => Role::parse(role)
            .ok_or_else(|| Error::bad_request("invalid_request", "role: must be \"agent\" or \"owner\""))?,
    };
    let id = new_id(role.as_str())?;
    let now = now_ms();
    let mut tx = gateway.db.pool.begin().await?;
    if role == Role::Owner && gateway.config.signup_mode() == SignupMode::Invite {
        let code = body.invite.as_deref().ok_or_else(|| {
            Error::Forbidden(
                "owner signup needs an invite code (`invite`): this gateway runs with OAUTH3_SIGNUP=invite".into(),
            )
        })?;
        let used =
            sqlx::query("UPDATE invites SET used_by = $1, used_at = $2 WHERE code_hash = $3 AND used_by IS NULL")
                .bind(&id)
                .bind(now)
                .bind(hash_code(code))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if used != 1 {
            return Err(Error::Forbidden("the invite code is unknown or already used".into()));
        }
    }
    sqlx::query("INSERT INTO tenants (id, name, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(name)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let token = gateway.tokens.issue(&id, role, 0)?;
    tracing::info!(tenant = %id, role = role.as_str(), "signed up");
    Ok((StatusCode::CREATED, Json(json!({"tenant_id": id, "name": name, "role": role.as_str(), "token": token}))))
}

/// An owner creates a single-use invite code for another owner.
pub async fn create_invite(State(gateway): State<Arc<Gateway>>, owner: Owner) -> Result<(StatusCode, Json<Value>)> {
    let code = insert_invite(&gateway.db, Some(&owner.id)).await?;
    Ok((StatusCode::CREATED, Json(json!({"invite": code}))))
}

/// Stores a fresh single-use invite code and returns it (only its hash is kept).
pub async fn insert_invite(db: &Db, created_by: Option<&str>) -> Result<String> {
    let code = new_id("inv")?;
    sqlx::query("INSERT INTO invites (code_hash, created_by, created_at) VALUES ($1, $2, $3)")
        .bind(hash_code(&code))
        .bind(created_by)
        .bind(now_ms())
        .execute(&db.pool)
        .await?;
    Ok(code)
}

/// The first invite, created once when the database has none; `None` after.
pub async fn first_invite(db: &Db) -> Result<Option<String>> {
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invites").fetch_one(&db.pool).await?;
    if count > 0 {
        return Ok(None);
    }
    insert_invite(db, None).await.map(Some)
}

fn hash_code(code: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, code.as_bytes());
    crate::keys::hex(digest.as_ref())
}
