//! `GET /` (discovery) and `GET /health`.

use std::sync::Arc;

use super::{ENDPOINTS, Json};
use crate::state::Gateway;
use crate::views::{Discovery, EndpointView, Health, Readiness};
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

/// `GET /ready`: 200 when this process should get traffic: the database
/// answers, the sandbox compiles a script, and it is not stopping; 503
/// otherwise (for a load balancer's readiness check; `/health` is liveness).
pub async fn ready(State(gateway): State<Arc<Gateway>>) -> (StatusCode, Json<Readiness>) {
    let database = match sqlx::query("SELECT 1").execute(&gateway.db.pool).await {
        Ok(_) => "ok",
        Err(error) => {
            tracing::error!(%error, "readiness: database unavailable");
            "unavailable"
        }
    };
    let sandbox = match gateway.runtime.compile_js("undefined").await {
        Ok(_) => "ok",
        Err(error) => {
            tracing::error!(%error, "readiness: the sandbox cannot compile");
            "unavailable"
        }
    };
    let process = if gateway.stopping.is_stopping() { "stopping" } else { "serving" };
    let ready = database == "ok" && sandbox == "ok" && process == "serving";
    let status = if ready { "ready" } else { "unavailable" };
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(Readiness { status, database, sandbox, process }))
}
