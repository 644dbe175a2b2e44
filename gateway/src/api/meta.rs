//! `GET /` (discovery) and `GET /health`.

use std::sync::Arc;

use super::{ENDPOINTS, Json};
use crate::state::Gateway;
use crate::views::{Discovery, EndpointView, Health};
use axum::extract::State;
use axum::http::StatusCode;

/// `GET /`. Not `async`: its future's type must not depend on
/// [`ENDPOINTS`], which names this handler.
pub fn discovery(State(gateway): State<Arc<Gateway>>) -> std::future::Ready<Json<Discovery>> {
    let endpoints = ENDPOINTS
        .iter()
        .map(|e| EndpointView { method: e.method, path: e.path, auth: e.auth, description: e.description })
        .collect();
    std::future::ready(Json(Discovery {
        name: "oauth3",
        version: env!("CARGO_PKG_VERSION"),
        public_url: gateway.public_url.clone(),
        auth: "Authorization: Bearer <token from POST /signup>",
        web_ui: format!("{}/login", gateway.public_url),
        openapi: format!("{}/openapi.json", gateway.public_url),
        endpoints,
    }))
}

/// `GET /health`: 200 when the database answers, 503 otherwise.
pub async fn health(State(gateway): State<Arc<Gateway>>) -> (StatusCode, Json<Health>) {
    match sqlx::query("SELECT 1").execute(&gateway.db.pool).await {
        Ok(_) => (StatusCode::OK, Json(Health { status: "ok", database: "ok" })),
        Err(error) => {
            tracing::error!(%error, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable", database: "unavailable" }))
        }
    }
}
