//! `POST /signup` and `POST /invites`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::Json;
use crate::auth::{Owner, Role};
use crate::config::SignupMode;
use crate::db::{Db, now_ms};
use crate::error::{Error, Result};
use crate::keys::new_id;
use crate::state::Gateway;
use crate::store::tenants;
use crate::views::{InviteView, SignedUp};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signup {
    /// The account's name, shown to owners.
    name: String,
    /// `agent` (the default) or `owner`.
    #[serde(default)]
    role: Option<String>,
    /// A single-use owner invite, on gateways with `OAUTH3_SIGNUP=invite`.
    #[serde(default)]
    invite: Option<String>,
}

/// Creates a tenant and returns its token.
pub async fn signup(
    State(gateway): State<Arc<Gateway>>,
    Json(body): Json<Signup>,
) -> Result<(StatusCode, Json<SignedUp>)> {
    let role = match body.role.as_deref() {
        None => Role::Agent,
        Some(role) => Role::parse(role)
            .ok_or_else(|| Error::bad_request("invalid_request", "role: must be \"agent\" or \"owner\""))?,
    };
    let signed_up = create_tenant(&gateway, &body.name, role, body.invite.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(signed_up)))
}

/// Creates a tenant named `name` (trimmed) acting as `role` and issues its
/// first token; an owner needs an `invite` when signup is by invitation.
/// The JSON API and the web UI's sign-up form both come here.
pub(crate) async fn create_tenant(gateway: &Gateway, name: &str, role: Role, invite: Option<&str>) -> Result<SignedUp> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(Error::bad_request("invalid_request", "name: 1–200 printable characters"));
    }
    let id = new_id(role.as_str())?;
    let invite_hash = if role == Role::Owner && gateway.config.signup_mode() == SignupMode::Invite {
        let code = invite.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
            Error::Forbidden(
                "owner signup needs an invite code (`invite`): this gateway runs with OAUTH3_SIGNUP=invite".into(),
            )
        })?;
        Some(hash_code(code.trim()))
    } else {
        None
    };
    tenants::insert(&gateway.db, &id, name, role, invite_hash.as_deref(), now_ms()).await?;
    let token = gateway.tokens.issue(&id, role, 0)?;
    tracing::info!(tenant = %id, role = role.as_str(), "signed up");
    Ok(SignedUp { tenant_id: id, name: name.to_owned(), role, token })
}

/// An owner creates a single-use invite code for another owner.
pub async fn create_invite(
    State(gateway): State<Arc<Gateway>>,
    owner: Owner,
) -> Result<(StatusCode, Json<InviteView>)> {
    let invite = insert_invite(&gateway.db, Some(&owner.id)).await?;
    Ok((StatusCode::CREATED, Json(InviteView { invite })))
}

/// Stores a fresh single-use invite code and returns it (only its hash is kept).
pub async fn insert_invite(db: &Db, created_by: Option<&str>) -> Result<String> {
    let code = new_id("inv")?;
    tenants::insert_invite(db, &hash_code(&code), created_by, now_ms()).await?;
    Ok(code)
}

/// The first invite, created once when the database has none; `None` after.
pub async fn first_invite(db: &Db) -> Result<Option<String>> {
    if tenants::invite_count(db).await? > 0 {
        return Ok(None);
    }
    insert_invite(db, None).await.map(Some)
}

fn hash_code(code: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, code.as_bytes());
    crate::keys::hex(digest.as_ref())
}
