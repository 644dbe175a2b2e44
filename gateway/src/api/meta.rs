//! `GET /` (discovery) and `GET /health`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{ENDPOINTS, Json};
use crate::state::Gateway;

/// `GET /`. Not `async`: its future's type must not depend on
/// [`ENDPOINTS`], which names this handler.
pub fn discovery(State(gateway): State<Arc<Gateway>>) -> std::future::Ready<Json<Value>> {
    let endpoints: Vec<Value> = ENDPOINTS
        .iter()
        .map(|e| json!({"method": e.method, "path": e.path, "auth": e.auth, "description": e.description}))
        .collect();
    std::future::ready(Json(json!({
        "name": "oauth3",
        "version": env!("CARGO_PKG_VERSION"),
        "public_url": gateway.public_url,
        "auth": "Authorization: Bearer <token from POST /signup>",
        "web_ui": format!("{}/login", gateway.public_url),
        "endpoints": endpoints,
    })))
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
