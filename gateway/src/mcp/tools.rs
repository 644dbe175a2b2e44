//! The MCP tools: each decodes its arguments, calls the HTTP API's handler
//! for the same thing as the authenticated caller, and answers with the
//! handler's view, or its error body (`{"error": {code, message}}`) as a
//! tool error the model can read and act on.

use std::sync::Arc;

use axum::extract::{Path, State};
use oauth3_drafting::{Intent, Intents};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{Json, Query, execute, permits};
use crate::auth::{AnyRole, Auth, Caller};
use crate::error::{Error, Result};
use crate::state::Gateway;

/// The tools, for one authenticated caller (one per request: `/mcp` is stateless).
#[derive(Clone)]
pub(crate) struct Tools {
    gateway: Arc<Gateway>,
    caller: Caller,
}

impl Tools {
    /// The tools as `caller`.
    pub(crate) fn new(gateway: Arc<Gateway>, caller: Caller) -> Tools {
        Tools { gateway, caller }
    }

    fn auth<R: crate::auth::Requirement>(&self) -> Result<Auth<R>> {
        Auth::check(self.caller.clone())
    }
}

/// What the server tells a client when it connects.
const INSTRUCTIONS: &str = "oauth3 runs your code against HTTP APIs without giving you their credentials. \
1. request_permit with an intent (or the capabilities you propose); give the approval_url to your human. \
2. permit_status until approved (the summary says what you may call). \
3. execute JavaScript under the permit; each integration is an async function. \
Calls outside the approved spec are refused with a deny code.";

const EXECUTE: &str = "Run JavaScript (or a Wasm component, base64) under an approved permit; \
waits up to timeout_secs (default 30, max 60). \
The script is a module body with top-level await. Each integration of the permit is a global async function \
`name(method, path, options?)`, e.g. `await github('GET', '/repos/o/r/issues', {query: {state: 'open'}})`. \
path is relative to the integration's base URL. options: {query?: {k: string|number|boolean|array}, \
headers?: {k: string}, body?: object (sent as JSON) | string | Uint8Array}. \
It resolves to the parsed JSON response (text if not JSON, null for 204, \
{_type: 'base64', data, content_type, size} if binary). \
A non-2xx response throws an Error with .status, .body, .headers. \
A refused or failed call throws an Error with .code: a deny code (method_not_allowed, path_not_allowed, \
query_not_allowed, body_invalid, header_not_allowed, rate_limited, secret_missing, …) or timeout. \
Use Promise.all([...]) to make calls concurrently. `args` holds the args you pass. \
Give an action_id when the code writes, so that a retry returns the first run instead of running it again. \
Print results with console.log (captured as stdout). No fetch, timers, env, filesystem or sockets. \
Returns {request_id, status, result: {success, stdout, stderr, calls: [{integration, method, url, decision, \
reason, status}], error?: {code, message}}}; if status is queued or running, call execution_status with request_id.";

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestPermit {
    /// What the permit is for, in a sentence; the owner reads it.
    description: String,
    /// What you need, per API: the gateway fetches the docs and drafts the smallest spec for the goal.
    #[serde(default)]
    intent: Option<Vec<Intent>>,
    /// Instead of intent: the integration specs you propose, e.g. [{"name": "github", "base_url":
    /// "https://api.github.com", "rules": [{"method": "GET", "path": "/repos/*/*/issues"}],
    /// "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]}].
    #[serde(default)]
    capabilities: Option<Vec<Value>>,
    /// Extend this active permit instead of asking for a new one.
    #[serde(default)]
    permit_id: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PermitStatus {
    /// The request_id request_permit returned.
    #[serde(default)]
    request_id: Option<String>,
    /// Or a permit's id: its status and approved spec.
    #[serde(default)]
    permit_id: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PermitId {
    /// The permit's id.
    permit_id: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Execute {
    /// An approved permit issued to you.
    permit_id: String,
    /// The JavaScript to run.
    #[serde(default)]
    code: Option<String>,
    /// Instead of code: a Wasm component (base64) built against get_permit_wit.
    #[serde(default)]
    component: Option<String>,
    /// Any JSON value; the script reads it as `args`.
    #[serde(default)]
    args: Option<Value>,
    /// Makes a retry safe: the same action_id with the same code and args returns the first run instead of running
    /// again. Give one for anything that writes. Default: a new one.
    #[serde(default)]
    action_id: Option<String>,
    /// Seconds to wait for the run to end (0–60, default 30).
    #[serde(default)]
    timeout_secs: Option<f64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecutionStatus {
    /// The request_id execute returned.
    request_id: String,
    /// Seconds to wait for it to end (0–60, default 0: answer now).
    #[serde(default)]
    timeout_secs: Option<f64>,
}

#[tool_router]
impl Tools {
    #[tool(
        description = "Ask for a permit to call HTTP APIs. Give description and either intent \
                       ([{name, goal, doc_urls, secret_hints}]: the gateway drafts the smallest spec from the docs) \
                       or capabilities (integration specs you propose); permit_id extends an active permit. \
                       Returns request_id, permit_id, approval_url (give it to your human: nothing runs until they \
                       approve) and capabilities: each integration's JS function signature and what it may do.",
        annotations(open_world_hint = true)
    )]
    async fn request_permit(&self, Parameters(p): Parameters<RequestPermit>) -> CallToolResult {
        answer(self.request_permit_as(p).await)
    }

    #[tool(
        description = "A permit request's status (pending, approved, denied, expired) by request_id, with the spec \
                       and its plain-language summary; or, by permit_id, the permit's status and approved spec.",
        annotations(read_only_hint = true)
    )]
    async fn permit_status(&self, Parameters(p): Parameters<PermitStatus>) -> CallToolResult {
        answer(self.permit_status_as(p).await)
    }

    #[tool(
        description = "The approved permit's WIT world, for building a Wasm component (wit-bindgen) that execute \
                       accepts. Not needed for JavaScript.",
        annotations(read_only_hint = true)
    )]
    async fn get_permit_wit(&self, Parameters(p): Parameters<PermitId>) -> CallToolResult {
        let wit = permits::permit_wit(State(Arc::clone(&self.gateway)), self.any(), Path(p.permit_id)).await;
        match wit {
            Ok((_, text)) => CallToolResult::success(vec![rmcp::model::ContentBlock::text(text)]),
            Err(error) => refused(&error),
        }
    }

    #[tool(description = EXECUTE, annotations(open_world_hint = true))]
    async fn execute(&self, Parameters(p): Parameters<Execute>) -> CallToolResult {
        answer(self.execute_as(p).await)
    }

    #[tool(
        description = "An execution's status and, once it ended, its result (as execute returns it); \
                       timeout_secs waits for it to end.",
        annotations(read_only_hint = true)
    )]
    async fn execution_status(&self, Parameters(p): Parameters<ExecutionStatus>) -> CallToolResult {
        let query = execute::StatusQuery { wait: Some(true), timeout: Some(p.timeout_secs.unwrap_or(0.0)) };
        let gateway = State(Arc::clone(&self.gateway));
        answer(execute::status(gateway, self.any(), Path(p.request_id), Query(query)).await.map(|Json(v)| v))
    }

    #[tool(description = "Your permits: id, status, spec_hash, expiry.", annotations(read_only_hint = true))]
    async fn list_permits(&self) -> CallToolResult {
        answer(permits::list(State(Arc::clone(&self.gateway)), self.any()).await.map(|Json(v)| v))
    }
}

#[tool_handler]
impl rmcp::ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("oauth3", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

impl Tools {
    fn any(&self) -> Auth<AnyRole> {
        Auth::check(self.caller.clone()).unwrap_or_else(|_| unreachable!("any role passes"))
    }

    async fn request_permit_as(&self, p: RequestPermit) -> Result<Value> {
        let body = permits::PermitRequest {
            description: p.description,
            intent: p.intent.map(Intents::Many),
            capabilities: p.capabilities,
            permit_id: p.permit_id,
        };
        let (_, Json(created)) = permits::request(State(Arc::clone(&self.gateway)), self.auth()?, Json(body)).await?;
        to_value(created)
    }

    async fn permit_status_as(&self, p: PermitStatus) -> Result<Value> {
        let gateway = State(Arc::clone(&self.gateway));
        match (p.request_id, p.permit_id) {
            (Some(id), None) => to_value(permits::show_request(gateway, self.any(), Path(id)).await?.0),
            (None, Some(id)) => to_value(permits::show_permit(gateway, self.any(), Path(id)).await?.0),
            _ => Err(Error::bad_request("invalid_request", "give request_id or permit_id")),
        }
    }

    async fn execute_as(&self, p: Execute) -> Result<Value> {
        // Checked before anything runs, as the status call would check it after.
        let timeout = p.timeout_secs.unwrap_or(30.0);
        if !(0.0..=60.0).contains(&timeout) {
            return Err(Error::bad_request("invalid_request", "timeout_secs: seconds, from 0 to 60"));
        }
        // The HTTP API's limits: a script's submission, a component's bytes.
        let config = &self.gateway.config;
        if p.component.is_none() && p.code.as_ref().is_some_and(|code| code.len() > config.max_body_bytes) {
            return Err(Error::TooLarge(config.max_body_bytes));
        }
        let code = execute::Code::from_json(p.code, p.component, config.max_component_bytes)?;
        let action_id = match p.action_id {
            Some(id) => id,
            None => crate::keys::new_id("mcp")?,
        };
        let submit = execute::Submit::new(p.permit_id, action_id, p.args, code);
        let gateway = State(Arc::clone(&self.gateway));
        let (_, Json(accepted)) = execute::accept(gateway.clone(), self.auth()?, submit).await?;
        let query = execute::StatusQuery { wait: Some(true), timeout: Some(timeout) };
        match execute::status(gateway, self.any(), Path(accepted.request_id.clone()), Query(query)).await {
            Ok(Json(view)) => to_value(view),
            // It was accepted: say so, with its id, rather than invite a
            // retry that would run it twice.
            Err(error) => {
                tracing::warn!(error = %error.chain(), execution = %accepted.request_id, "waiting for an execution");
                to_value(accepted)
            }
        }
    }
}

fn to_value(view: impl Serialize) -> Result<Value> {
    serde_json::to_value(view).map_err(|e| Error::Internal(format!("serialising a view: {e}")))
}

/// A view as structured content, or the API's error body as a tool error.
fn answer(result: Result<impl Serialize>) -> CallToolResult {
    match result.and_then(to_value) {
        Ok(value) => CallToolResult::structured(value),
        Err(error) => refused(&error),
    }
}

/// The API's error body (`{"error": {code, message}}`) as a tool error.
fn refused(error: &Error) -> CallToolResult {
    CallToolResult::structured_error(serde_json::to_value(error.body().1).unwrap_or_default())
}
