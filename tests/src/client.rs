//! The one small JSON client every test talks to a gateway with.

use reqwest::StatusCode;
use serde_json::Value;

/// A response with its headers: status, headers, JSON body (Null when empty,
/// a JSON string when the body is not JSON).
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Value,
}

/// Asserts `status` and the error body `{"error": {"code", "message"}}`,
/// with nothing else in it and a non-empty message.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    let object = body.as_object().unwrap_or_else(|| panic!("not a JSON object: {body}"));
    assert_eq!(object.len(), 1, "only `error` expected: {body}");
    let error = body["error"].as_object().unwrap_or_else(|| panic!("no `error` object: {body}"));
    assert_eq!(error.len(), 2, "only `code` and `message` expected: {body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("no message: {body}"));
    assert!(!message.is_empty(), "{body}");
}

/// A request body.
pub enum Body {
    /// Serialised as JSON (with a JSON Content-Type).
    Json(Value),
    /// Sent as is.
    Raw(Vec<u8>),
}

/// `Authorization: Bearer <token>`, when there is a token.
pub fn bearer(token: Option<&str>) -> Vec<(reqwest::header::HeaderName, String)> {
    token.map(|t| (reqwest::header::AUTHORIZATION, format!("Bearer {t}"))).into_iter().collect()
}

/// The one way tests talk HTTP to a gateway: sends a request to `url` +
/// `path` and reads the reply (JSON body; Null when empty, a JSON string
/// when not JSON).
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    path: &str,
    headers: Vec<(reqwest::header::HeaderName, String)>,
    body: Option<Body>,
) -> Reply {
    let mut request = http.request(method.parse().unwrap(), format!("{url}{path}"));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request = match body {
        Some(Body::Json(value)) => request.json(&value),
        Some(Body::Raw(bytes)) => request.body(bytes),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Reply { status, headers, body }
}

/// A plain-http client (reqwest is built without a default TLS provider).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
