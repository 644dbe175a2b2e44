//! `POST /tokens/revoke`: a tenant revokes the token it calls with, or all
//! of its tokens at once (and gets a fresh one).

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;

use super::{Json, JsonOrEmpty};
use crate::auth::{self, Auth};
use crate::error::Result;
use crate::state::Gateway;
use crate::views::TokensRevoked;

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    /// Every token of the caller's account, not just this one.
    #[serde(default)]
    all: bool,
}

/// Revokes the caller's current token (`{}` or no body), or with
/// `{"all": true}` every token of its account, returning a fresh token.
/// A revoked token is refused by every endpoint from then on.
pub async fn revoke(
    State(gateway): State<Arc<Gateway>>,
    caller: Auth,
    JsonOrEmpty(body): JsonOrEmpty<Revoke>,
) -> Result<Json<TokensRevoked>> {
    if body.all {
        let token = auth::revoke_all(&gateway, &caller).await?;
        tracing::info!(tenant = %caller.id, "revoked every token of a tenant");
        return Ok(Json(TokensRevoked::All { tenant_id: caller.id.clone(), role: caller.role, token }));
    }
    auth::revoke(&gateway, &caller).await?;
    tracing::info!(tenant = %caller.id, "revoked a token");
    Ok(Json(TokensRevoked::Token { tenant_id: caller.id.clone() }))
}
