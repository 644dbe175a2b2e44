//! `GET /` (discovery) and `GET /health`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Json;
use crate::state::Gateway;

/// Every endpoint, for agents finding their way.
const ENDPOINTS: &[(&str, &str, &str, &str)] = &[
    ("GET", "/", "none", "this list"),
    ("GET", "/health", "none", "liveness and database check"),
    ("POST", "/signup", "none", "{name, role?: agent|owner, invite?} → {tenant_id, name, role, token}"),
    ("POST", "/invites", "owner", "a single-use invite code for another owner"),
    (
        "POST",
        "/tokens/revoke",
        "any",
        "{all?} → revokes this token, or with all: true every token of the account and returns a fresh one",
    ),
    ("POST", "/secrets", "owner", "{name, value}: store a secret (sealed; never returned)"),
    ("GET", "/secrets", "owner", "secret names and timestamps"),
    ("DELETE", "/secrets/{name}", "owner", "delete a secret"),
    ("POST", "/draft", "agent or owner", "{intent}: preview the drafted spec, rationale, warnings, doc hashes"),
    ("POST", "/permit", "agent", "{description, capabilities?|intent?, permit_id?} → request_id, approval_url"),
    ("GET", "/permit/{request_id}", "agent or owner", "a permit request: status, spec, spec_hash, summary, WIT"),
    ("GET", "/approve/{request_id}", "owner", "what the owner is asked to approve"),
    ("POST", "/approve/{request_id}", "owner", "{action: approve|deny, owner_token?, expires_in?}"),
    ("GET", "/permits", "agent or owner", "your permits"),
    ("GET", "/permits/{permit_id}", "agent or owner", "a permit: status, spec, spec_hash, summary, WIT"),
    ("POST", "/permits/{permit_id}/revoke", "owner", "revoke a permit"),
    ("POST", "/execute", "agent", "{permit_id, action_id, code, args?} → 202 {request_id, status_url}"),
    ("GET", "/execute/{request_id}/status", "agent or owner", "?wait=true&timeout=S long-polls until it ends"),
    ("GET", "/audit", "owner", "?permit_id=&limit=: every call with decision, reason, status, timing"),
];

/// `GET /`.
pub async fn discovery(State(gateway): State<Arc<Gateway>>) -> Json<Value> {
    let endpoints: Vec<Value> = ENDPOINTS
        .iter()
        .map(|(method, path, auth, what)| json!({"method": method, "path": path, "auth": auth, "description": what}))
        .collect();
    Json(json!({
        "name": "oauth3",
        "version": env!("CARGO_PKG_VERSION"),
        "public_url": gateway.public_url,
        "auth": "Authorization: Bearer <token from POST /signup>",
        "endpoints": endpoints,
    }))
}

/// `GET /health`: 200 when the database answers, 503 otherwise.
pub async fn health(State(gateway): State<Arc<Gateway>>) -> (StatusCode, Json<Value>) {
    match sqlx::query("SELECT 1").execute(&gateway.db.pool).await {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ok", "database": "ok"}))),
        Err(error) => {
            tracing::error!(%error, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "database": "unavailable"})))
        }
    }
}
