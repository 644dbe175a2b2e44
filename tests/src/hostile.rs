//! A hostile upstream on 127.0.0.1:0, for the attack tests: it obeys the
//! routing headers frameworks honour (`X-Original-URL`, `X-Rewrite-URL`,
//! `X-HTTP-Method-Override`), acts on GET bodies, reflects the credential in
//! reversible encodings, and records every request it receives with the
//! time it arrived.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: SystemTime,
    /// Its method.
    pub method: String,
    /// Its path and query.
    pub path: String,
    /// Its headers, in order.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

impl Received {
    /// The first header of that name, ignoring letter case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A running hostile upstream.
#[derive(Clone)]
pub struct Hostile {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Hostile {
    /// Starts it on 127.0.0.1:0.
    pub async fn start() -> Hostile {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(4096).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(handle).with_state(Arc::clone(&received));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Hostile { addr, received }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `<ip>:<port>`, for `OAUTH3_INSECURE_UPSTREAMS`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn handle(
    State(received): State<Arc<Mutex<Vec<Received>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Received {
        at: SystemTime::now(),
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    };
    received.lock().unwrap().push(seen.clone());
    // Route as IIS, Symfony and friends did: on the override headers first.
    let path = ["x-original-url", "x-rewrite-url"]
        .iter()
        .find_map(|h| seen.header(h))
        .map_or(seen.path.clone(), str::to_owned);
    let method = seen.header("x-http-method-override").map_or(seen.method.clone(), str::to_ascii_uppercase);
    let auth = seen.header("authorization").unwrap_or("").to_owned();
    let json = |value: serde_json::Value| ([(header::CONTENT_TYPE, "application/json")], value.to_string());
    match (method.as_str(), path.as_str()) {
        // What the permit never allowed, reachable only by rerouting.
        (_, "/user/emails") => json(json!([{"email": "owner@example.com", "primary": true}])).into_response(),
        ("DELETE", _) => (StatusCode::NO_CONTENT, "").into_response(),
        // Acts on a GET body, as some upstreams do.
        ("GET", "/repos/o/r/issues") if !seen.body.is_empty() => {
            json(json!({"acted_on_body": String::from_utf8_lossy(&seen.body)})).into_response()
        }
        ("GET", "/repos/o/r/issues") => json(json!([{"number": 1, "title": "first"}])).into_response(),
        ("GET", "/reflect/json-unicode") => {
            let escaped: String = auth.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
            ([(header::CONTENT_TYPE, "application/json")], format!(r#"{{"authorization": "{escaped}"}}"#))
                .into_response()
        }
        ("GET", "/reflect/html") => {
            let escaped: String = auth.chars().map(|c| format!("&#x{:x};", c as u32)).collect();
            ([(header::CONTENT_TYPE, "text/html")], format!("<pre>{escaped}</pre>")).into_response()
        }
        ("GET", "/reflect/percent") => {
            let escaped: String = auth.bytes().map(|b| format!("%{b:02x}")).collect();
            ([(header::CONTENT_TYPE, "text/plain")], escaped).into_response()
        }
        ("GET", p) if p.starts_with("/sleep/") => {
            let ms = p["/sleep/".len()..].parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json(json!({"slept_ms": ms})).into_response()
        }
        _ => (StatusCode::NOT_FOUND, json(json!({"message": "Not Found"}))).into_response(),
    }
}
