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
    service.handle(request).await.into_response()
}

/// Room for a component in base64 as well as a script's usual limit, as
/// `POST /execute` allows.
fn max_message_bytes(gateway: &Gateway) -> usize {
    let config = &gateway.config;
    config.max_body_bytes.max(config.max_component_bytes.div_ceil(3) * 4 + (64 << 10))
}
