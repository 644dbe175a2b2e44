//! A local stand-in for a few GitHub issue endpoints, so the oauth3
//! quickstart and tests run with no network and no real token.
//!
//! - `GET /repos/{owner}/{repo}/issues` → a JSON list of issues (401 without a bearer token)
//! - `POST /repos/{owner}/{repo}/issues` → 201 with the created issue
//! - `GET /echo` → the request's headers as JSON (a hostile, reflecting upstream)
//! - `GET /openapi.json` → an OpenAPI 3 description of the above

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::{Value, json};

/// The stub's routes.
pub fn router() -> Router {
    Router::new()
        .route("/repos/{owner}/{repo}/issues", get(list_issues).post(create_issue))
        .route("/echo", get(echo))
        .route("/openapi.json", get(openapi))
}

/// Serves the stub on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| !token.trim().is_empty())
}

fn unauthorized() -> axum::response::Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"message": "Requires authentication"}))).into_response()
}

async fn list_issues(Path((owner, repo)): Path<(String, String)>, headers: HeaderMap) -> axum::response::Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let url = |n: u32| format!("https://github.com/{owner}/{repo}/issues/{n}");
    Json(json!([
        {"number": 2, "title": "Flaky test on CI", "state": "open", "html_url": url(2)},
        {"number": 1, "title": "README typo", "state": "open", "html_url": url(1)},
    ]))
    .into_response()
}

async fn create_issue(
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    let title = body.get("title").cloned().unwrap_or(Value::Null);
    let issue = json!({"number": 3, "title": title, "state": "open",
                       "html_url": format!("https://github.com/{owner}/{repo}/issues/3")});
    (StatusCode::CREATED, Json(issue)).into_response()
}

async fn echo(headers: HeaderMap) -> Json<Value> {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned())))
        .collect();
    Json(json!({"headers": headers}))
}

async fn openapi() -> Json<Value> {
    Json(json!({
        "openapi": "3.0.3",
        "info": {"title": "stub-github", "version": "1.0.0"},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/repos/{owner}/{repo}/issues": {
                "parameters": [
                    {"name": "owner", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "repo", "in": "path", "required": true, "schema": {"type": "string"}}
                ],
                "get": {"operationId": "issues/list-for-repo", "summary": "List repository issues", "tags": ["issues"]},
                "post": {
                    "operationId": "issues/create", "summary": "Create an issue", "tags": ["issues"],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["title"],
                        "properties": {"title": {"type": "string"}, "body": {"type": "string"}}
                    }}}}
                }
            }
        }
    }))
}
