//! The HTTP API: routes, the JSON body extractor, and the request-id,
//! tracing, panic and security-header layers. Paths the web UI shares are
//! routed to its pages and forms by `Accept` and `Content-Type`. Every error leaves through [`crate::Error`].

mod attestation;
pub(crate) mod confirmations;
mod draft;
pub(crate) mod execute;
mod meta;
mod openapi;
pub(crate) mod permits;
pub(crate) mod secrets;
pub(crate) mod signup;
mod tokens;

pub use signup::first_invite;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde::de::DeserializeOwned;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::auth::{AnyRole, OwnerRole};
use crate::error::Error;
use crate::state::Gateway;
use crate::views;
use crate::web::{self, negotiate::by_accept, negotiate::by_body};

use openapi::{Answer, Doc, schema};

/// `POST /draft`'s example body.
const INTENT_EXAMPLE: &str = r#"{"intent": [{"name": "github", "goal": "list the issues in owner/repo",
    "doc_urls": ["https://api.example.com/openapi.json"], "secret_hints": ["GITHUB_TOKEN"]}]}"#;

/// `POST /permit`'s example body.
const PERMIT_EXAMPLE: &str = r#"{"description": "Triage issues in owner/repo", "capabilities": [{"name": "github",
    "base_url": "https://api.github.com", "rules": [{"method": "GET", "path": "/repos/*/*/issues"}],
    "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]}]}"#;

/// `POST /execute`'s example body.
const EXECUTE_EXAMPLE: &str = r#"{"permit_id": "prm_0a1b", "action_id": "list-issues-1",
    "code": "const r = await github('GET', '/repos/owner/repo/issues'); console.log(r.length);", "args": {}}"#;

/// `POST /mcp`'s example body.
const MCP_EXAMPLE: &str = r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
    "params": {"name": "list_permits", "arguments": {}}}"#;

/// One endpoint: what routes it and what `GET /` says about it, in one row.
pub(crate) struct Endpoint {
    /// `GET`, `POST` or `DELETE`.
    pub method: &'static str,
    /// The path, with `{parameters}`.
    pub path: &'static str,
    /// Who may call it.
    pub auth: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Its handler, for `method`.
    route: fn(MethodFilter) -> MethodRouter<Arc<Gateway>>,
    /// What it takes and answers, for `GET /openapi.json`.
    pub doc: Doc,
}

/// Every endpoint, in the order `GET /` lists them.
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "GET",
        path: "/",
        auth: "none",
        description: "this list; in a browser, the owner's dashboard",
        route: |m| by_accept(m, meta::discovery, web::home),
        doc: Doc::json(200, schema::<views::Discovery>),
    },
    Endpoint {
        method: "GET",
        path: "/openapi.json",
        auth: "none",
        description: "this API as an OpenAPI 3.1 document",
        route: |m| on(m, openapi::openapi),
        doc: Doc::json(200, schema::<serde_json::Value>),
    },
    Endpoint {
        method: "GET",
        path: "/health",
        auth: "none",
        description: "liveness and database check",
        route: |m| on(m, meta::health),
        doc: Doc::json(200, schema::<views::Health>).or_status(503).example(r#"{"status": "ok", "database": "ok"}"#),
    },
    Endpoint {
        method: "GET",
        path: "/ready",
        auth: "none",
        description: "readiness: the database answers, the sandbox compiles, the process is not stopping (503 if not)",
        route: |m| on(m, meta::ready),
        doc: Doc::json(200, schema::<views::Readiness>)
            .or_status(503)
            .example(r#"{"status": "ready", "database": "ok", "sandbox": "ok", "process": "serving"}"#),
    },
    Endpoint {
        method: "GET",
        path: "/attestation",
        auth: "none",
        description: "?nonce=<hex, 16–32 bytes> → {tee, report_data, signing_key, config_hash, config, nonce, quote, \
                      event_log, app_id, compose_hash, instance_id}: what to verify before storing a secret",
        route: |m| on(m, attestation::attestation),
        doc: Doc::json(200, schema::<crate::tee::attest::Attestation>).query(schema::<attestation::NonceQuery>).errors(&[502]),
    },
    Endpoint {
        method: "POST",
        path: "/signup",
        auth: "none",
        description: "{name, role?: agent|owner, invite?} → {tenant_id, name, role, token}",
        route: |m| by_body(m, signup::signup, web::signup_form),
        doc: Doc::json(201, schema::<views::SignedUp>)
            .body(schema::<signup::Signup>, r#"{"name": "my-agent", "role": "agent"}"#)
            .example(r#"{"tenant_id": "agent_5f1c", "name": "my-agent", "role": "agent", "token": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"}"#)
            .errors(&[403, 429]),
    },
    Endpoint {
        method: "POST",
        path: "/invites",
        auth: "owner",
        description: "a single-use invite code for another owner",
        route: |m| on(m, signup::create_invite),
        doc: Doc::json(201, schema::<views::InviteView>),
    },
    Endpoint {
        method: "POST",
        path: "/tokens/revoke",
        auth: "any",
        description: "{all?} → revokes this token, or with all: true every token of the account and returns a fresh one",
        route: |m| on(m, tokens::revoke),
        doc: Doc::json(200, schema::<views::TokensRevoked>)
            .body(schema::<tokens::Revoke>, r#"{"all": false}"#)
            .body_optional(),
    },
    Endpoint {
        method: "POST",
        path: "/secrets",
        auth: "owner",
        description: "{name, value}: store a secret (sealed; never returned)",
        route: |m| by_body(m, secrets::put, web::secret_form),
        doc: Doc::json(201, schema::<views::SecretView>)
            .body(schema::<secrets::PutSecret>, r#"{"name": "GITHUB_TOKEN", "value": "ghp_example_not_a_real_token"}"#)
            .or_status(200),
    },
    Endpoint {
        method: "GET",
        path: "/secrets",
        auth: "owner",
        description: "secret names and timestamps",
        route: |m| on(m, secrets::list),
        doc: Doc::json(200, schema::<views::SecretList>),
    },
    Endpoint {
        method: "DELETE",
        path: "/secrets/{name}",
        auth: "owner",
        description: "delete a secret",
        route: |m| on(m, secrets::delete),
        doc: Doc::answers(204, Answer::Empty),
    },
    Endpoint {
        method: "POST",
        path: "/draft",
        auth: "agent or owner",
        description: "{intent}: preview the drafted spec, rationale, warnings, doc hashes",
        route: |m| on(m, draft::draft),
        doc: Doc::json(200, schema::<views::DraftView>)
            .body(schema::<draft::DraftRequest>, INTENT_EXAMPLE)
            .errors(&[422, 502, 503, 504]),
    },
    Endpoint {
        method: "POST",
        path: "/permit",
        auth: "agent",
        description: "{description, capabilities?|intent?, permit_id?} → request_id, approval_url",
        route: |m| on(m, permits::request),
        doc: Doc::json(201, schema::<views::RequestCreated>)
            .body(schema::<permits::PermitRequest>, PERMIT_EXAMPLE)
            .errors(&[404, 409, 422, 502, 503, 504]),
    },
    Endpoint {
        method: "GET",
        path: "/permit/{request_id}",
        auth: "agent or owner",
        description: "a permit request: status, spec, spec_hash, summary, WIT",
        route: |m| on(m, permits::show_request::<AnyRole>),
        doc: Doc::json(200, schema::<views::RequestView>),
    },
    Endpoint {
        method: "GET",
        path: "/approve/{request_id}",
        auth: "owner",
        description: "what the owner is asked to approve; in a browser, the page to decide on",
        route: |m| by_accept(m, permits::show_request::<OwnerRole>, web::approve_page),
        doc: Doc::json(200, schema::<views::RequestView>),
    },
    Endpoint {
        method: "POST",
        path: "/approve/{request_id}",
        auth: "owner",
        description: "{action: approve|deny, owner_token?, expires_in?, narrow?: {drop_rules?: [{integration, rule}], \
                      rate_limits?: {name: {max_calls, window_seconds}}, no_confirm?: [{integration, rule}]}}",
        route: |m| by_body(m, permits::approve, web::approve_form),
        doc: Doc::json(200, schema::<views::DecisionView>)
            .body(schema::<permits::Approval>, r#"{"action": "approve", "expires_in": 86400}"#)
            .errors(&[409]),
    },
    Endpoint {
        method: "GET",
        path: "/permits",
        auth: "agent or owner",
        description: "your permits",
        route: |m| on(m, permits::list),
        doc: Doc::json(200, schema::<views::PermitList>),
    },
    Endpoint {
        method: "GET",
        path: "/permits/{permit_id}",
        auth: "agent or owner",
        description: "a permit: status, spec, spec_hash, summary, WIT",
        route: |m| on(m, permits::show_permit),
        doc: Doc::json(200, schema::<views::PermitView>),
    },
    Endpoint {
        method: "GET",
        path: "/permits/{permit_id}/wit",
        auth: "agent or owner",
        description: "the approved spec's WIT world (text/plain), for building components",
        route: |m| on(m, permits::permit_wit),
        doc: Doc::answers(200, Answer::Bytes("text/plain")).errors(&[409]),
    },
    Endpoint {
        method: "GET",
        path: "/permits/{permit_id}/component",
        auth: "agent or owner",
        description: "the exact component the host runs for the permit's JavaScript (application/wasm)",
        route: |m| on(m, permits::permit_component),
        doc: Doc::answers(200, Answer::Bytes("application/wasm")).errors(&[409]),
    },
    Endpoint {
        method: "POST",
        path: "/permits/{permit_id}/revoke",
        auth: "owner",
        description: "revoke a permit",
        route: |m| by_body(m, permits::revoke, web::revoke_form),
        doc: Doc::json(200, schema::<views::PermitRevoked>),
    },
    Endpoint {
        method: "POST",
        path: "/execute",
        auth: "agent",
        description: "{permit_id, action_id, code | component (base64), args?, wait?}, or a component as the body \
                      (application/wasm) with permit_id, action_id, args, wait in the query → 202 {request_id, \
                      status_url}; with wait (true or seconds) the finished execution (200) if it ends in time",
        route: |m| on(m, execute::submit),
        doc: Doc::json(202, schema::<views::ExecutionAccepted>)
            .or_answer(200, schema::<views::ExecutionView>)
            .body(schema::<execute::SubmitJson>, EXECUTE_EXAMPLE)
            .or_raw("application/wasm")
            .query(schema::<execute::SubmitQuery>)
            .errors(&[404, 409, 422, 429]),
    },
    Endpoint {
        method: "GET",
        path: "/execute/{request_id}/status",
        auth: "agent or owner",
        description: "?wait=true&timeout=S long-polls until it ends",
        route: |m| on(m, execute::status),
        doc: Doc::json(200, schema::<views::ExecutionView>).query(schema::<execute::StatusQuery>),
    },
    Endpoint {
        method: "POST",
        path: "/mcp",
        auth: "agent or owner",
        description: "MCP (Streamable HTTP, stateless): tools request_permit, permit_status, get_permit_wit, execute, \
                      execution_status, list_permits",
        route: |m| on(m, crate::mcp::serve),
        doc: Doc::json(200, schema::<serde_json::Value>)
            .body(schema::<serde_json::Value>, MCP_EXAMPLE)
            .or_empty(202)
            .errors(&[406]),
    },
    Endpoint {
        method: "GET",
        path: "/confirmations",
        auth: "owner",
        description: "?status=pending|approved|denied|used|expired|all: calls waiting for your confirmation \
                      (pending by default), newest first, each shown exactly with its permit's goal",
        route: |m| by_accept(m, confirmations::list, web::confirmations_page),
        doc: Doc::json(200, schema::<views::ConfirmationList>).query(schema::<confirmations::ListQuery>),
    },
    Endpoint {
        method: "GET",
        path: "/confirmations/{confirmation_id}",
        auth: "owner",
        description: "one call waiting for (or decided by) your confirmation",
        route: |m| on(m, confirmations::show),
        doc: Doc::json(200, schema::<views::ConfirmationView>),
    },
    Endpoint {
        method: "POST",
        path: "/confirmations/{confirmation_id}",
        auth: "owner",
        description: "{action: approve|deny}: approving lets that exact call through once, within 15 minutes, \
                      under its permit (409 once it is no longer pending)",
        route: |m| by_body(m, confirmations::decide, web::confirmation_form),
        doc: Doc::json(200, schema::<views::ConfirmationView>)
            .body(schema::<confirmations::ConfirmationDecision>, r#"{"action": "approve"}"#)
            .errors(&[409]),
    },
    Endpoint {
        method: "GET",
        path: "/audit",
        auth: "owner",
        description: "?permit_id=&limit=&after=: every call with decision, reason, status, timing; newest first, \
                      or with after=<id> the calls after it, oldest first",
        route: |m| on(m, execute::audit),
        doc: Doc::json(200, schema::<views::AuditView>).query(schema::<execute::AuditQuery>).errors(&[404]),
    },
];

/// The routes of [`ENDPOINTS`], methods of one path merged.
fn routes() -> Router<Arc<Gateway>> {
    let mut paths: Vec<(&str, MethodRouter<Arc<Gateway>>)> = Vec::new();
    for endpoint in ENDPOINTS {
        let filter = match endpoint.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "DELETE" => MethodFilter::DELETE,
            other => unreachable!("ENDPOINTS names {other}, which routes() does not map"),
        };
        let route = (endpoint.route)(filter);
        match paths.iter_mut().find(|(path, _)| *path == endpoint.path) {
            Some((_, methods)) => *methods = std::mem::take(methods).merge(route),
            None => paths.push((endpoint.path, route)),
        }
    }
    paths.into_iter().fold(Router::new(), |router, (path, methods)| router.route(path, methods))
}

/// Every route, with its layers.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let request_id = header::HeaderName::from_static("x-request-id");
    routes()
        .merge(web::routes())
        .fallback(|| async { Error::NotFound("no such endpoint; GET / lists them".into()) })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(CatchPanicLayer::custom(|_| Error::Internal("a handler panicked".into()).into_response()))
        .layer(axum::middleware::map_response(web::security_headers))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<Body>| {
                    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // The path only: query strings, headers and bodies are not logged.
                    tracing::info_span!("request", id, method = %request.method(), path = request.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, RequestIds::default()))
        .with_state(gateway)
}

/// Request ids: a per-process random prefix and a counter.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        let prefix = crate::keys::new_id("r").unwrap_or_else(|_| "r_0".into());
        RequestIds { prefix: prefix[..10].into(), next: Arc::new(AtomicU64::new(1)) }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix)).ok().map(RequestId::new)
    }
}

/// A JSON body: 415 for a non-JSON Content-Type (a missing one is accepted),
/// 413 past the configured size, 400 for malformed JSON or wrong fields.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<Gateway>> for Json<T> {
    type Rejection = Error;

    async fn from_request(request: Request, gateway: &Arc<Gateway>) -> Result<Self, Error> {
        let bytes = json_bytes(request, gateway).await?;
        decode(&bytes).map(Json)
    }
}

/// A JSON body that may be left out (no bytes at all): then `T::default()`.
pub struct JsonOrEmpty<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<Arc<Gateway>> for JsonOrEmpty<T> {
    type Rejection = Error;

    async fn from_request(request: Request, gateway: &Arc<Gateway>) -> Result<Self, Error> {
        let bytes = json_bytes(request, gateway).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonOrEmpty(T::default()));
        }
        decode(&bytes).map(JsonOrEmpty)
    }
}

/// The body of a request that should be JSON: 415 for another Content-Type
/// (none is accepted), 413 past the configured size.
async fn json_bytes(request: Request, gateway: &Gateway) -> Result<axum::body::Bytes, Error> {
    json_bytes_within(request, gateway.config.max_body_bytes).await
}

/// [`json_bytes`] with a limit of its own.
async fn json_bytes_within(request: Request, limit: usize) -> Result<axum::body::Bytes, Error> {
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE)
        && !oauth3_policy::is_json_media_type(content_type.to_str().unwrap_or(""))
    {
        return Err(Error::UnsupportedMediaType);
    }
    body_within(request, limit).await
}

/// The body, 413 past `limit` bytes.
async fn body_within(request: Request, limit: usize) -> Result<axum::body::Bytes, Error> {
    axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| Error::TooLarge(limit))
}

/// One JSON value and nothing after it: 400 `malformed_json` for bad JSON,
/// 400 `invalid_request` naming the field for wrong content.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            Error::MalformedJson(inner.to_string())
        } else {
            let path = e.path().to_string();
            let at = if path == "." { String::new() } else { format!("{path}: ") };
            Error::bad_request("invalid_request", format!("{at}{inner}"))
        }
    })?;
    // Only whitespace may follow the value.
    deserializer.end().map_err(|e| Error::MalformedJson(e.to_string()))?;
    Ok(value)
}

/// A query string: 400 with the reason when it does not parse.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Error> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|e| Error::bad_request("invalid_request", format!("query string: {e}")))
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
