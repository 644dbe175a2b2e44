//! MCP: `POST /mcp` serves the agent-facing API as Model Context Protocol
//! tools over Streamable HTTP (rmcp), and `oauth3 mcp --stdio` carries a
//! stdio client's messages to it. The tools call the HTTP API's own
//! handlers, so every rule (roles, visibility, validation, idempotency) is
//! the API's, and their answers are the API's views and error bodies.

mod stdio;
mod tools;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::auth::Auth;
use crate::state::Gateway;

pub use stdio::{Stdio, proxy};
pub(crate) use tools::Tools;

/// `POST /mcp`: one JSON-RPC message from an MCP client, authenticated like
/// every API call (401 with `WWW-Authenticate: Bearer` before the body is
/// read). Stateless: each request is served on its own, so any replica can
/// answer it, and a tool call answers with `application/json`.
pub(crate) async fn serve(State(gateway): State<Arc<Gateway>>, caller: Auth, request: Request) -> Response {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(max_message_bytes(&gateway))
        // The Host and Origin checks guard servers that trust whoever can
        // reach them; this one requires a bearer token, which a rebound or
        // cross-origin page does not have, and answers on the operator's
        // own host names.
        .disable_allowed_hosts();
    let caller: crate::auth::Caller = (*caller).clone();
    let tools_gateway = Arc::clone(&gateway);
    let service = StreamableHttpService::new(
        move || Ok(Tools::new(Arc::clone(&tools_gateway), caller.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let response = service.handle(request).await.into_response();
    if response.status().is_success() { response } else { as_error_body(response).await }
}

/// rmcp's refusals (406 without the Accept MCP requires, 415, 413, 400)
/// are plain text; the API's clients expect its one error shape.
async fn as_error_body(response: Response) -> Response {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 10).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.trim().to_owned());
    let code = match status.as_u16() {
        406 => "not_acceptable",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        404 => "not_found",
        405 => "method_not_allowed",
        500.. => "internal",
        _ => "invalid_request",
    };
    let error = crate::error::ErrorDetail { code: code.to_owned(), message, refusals: None };
    (status, axum::Json(crate::error::ErrorBody { error })).into_response()
}

/// Room for a component in base64 as well as a script's usual limit, as
/// `POST /execute` allows.
fn max_message_bytes(gateway: &Gateway) -> usize {
    let config = &gateway.config;
    config.max_body_bytes.max(config.max_component_bytes.div_ceil(3) * 4 + (64 << 10))
}
