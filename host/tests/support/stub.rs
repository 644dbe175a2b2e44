#![allow(dead_code)] // shared by tests, the example and the bench; each uses part of it
//! A real HTTP upstream on 127.0.0.1:0 standing in for an API: it counts hits,
//! keeps what it last received, and has routes that reflect, redirect,
//! stall, compress and flood.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// A hostile upstream: the `Authorization` header handed back in one
/// reversible encoding, each the way some real server or proxy writes it.
fn reflect(encoding: &str, auth: &str) -> Response {
    let escape = |f: &dyn Fn(char) -> String| auth.chars().map(f).collect::<String>();
    let gzip = |data: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    };
    let (content_type, body): (&str, Vec<u8>) = match encoding {
        "json-unicode" => (
            "application/json",
            format!(r#"{{"auth": "{}"}}"#, escape(&|c| format!("\\u{:04x}", c as u32))).into_bytes(),
        ),
        "json-mixed" => ("application/json", {
            let mixed = escape(&|c| if c.is_ascii_digit() { format!("\\u{:04X}", c as u32) } else { c.to_string() });
            format!(r#"{{"auth": "{}"}}"#, mixed.replace('_', "\\u005f")).into_bytes()
        }),
        "html" => ("text/html", format!("<p>{}</p>", escape(&|c| format!("&#{};", c as u32))).into_bytes()),
        "percent" => ("text/plain", escape(&|c| format!("%{:02x}", c as u32)).into_bytes()),
        "hex" => ("text/plain", auth.bytes().map(|b| format!("{b:02X}")).collect::<String>().into_bytes()),
        "basic" => {
            let blob = format!("user:{auth}");
            ("text/plain", base64::engine::general_purpose::STANDARD.encode(blob).into_bytes())
        }
        "basic-decoded" => {
            // Reports the Basic credentials it got: the base64 alone, and decoded.
            let b64 = auth.strip_prefix("Basic ").unwrap_or_default();
            let pair = base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
            let reported = serde_json::json!({"credentials": b64, "decoded": String::from_utf8_lossy(&pair)});
            ("application/json", reported.to_string().into_bytes())
        }
        "utf16" => ("application/octet-stream", auth.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        "gzip-file" => ("application/octet-stream", gzip(format!("captured: {auth}").as_bytes())),
        "upper" => ("text/plain", auth.to_uppercase().into_bytes()),
        _ => return (StatusCode::NOT_FOUND, "unknown encoding").into_response(),
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// What the stub last received.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Inner {
    hits: AtomicUsize,
    last: Mutex<Option<Seen>>,
}

/// A running stub upstream.
#[derive(Clone)]
pub struct Stub {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Stub {
    /// Starts a stub on 127.0.0.1:0.
    pub async fn start() -> Stub {
        // A deep accept queue: the bench opens 1,000 connections at once.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(4096).unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner::default());
        let app = Router::new().fallback(handle).with_state(Arc::clone(&inner));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Stub { addr, inner }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`, as the insecure allow-list names it.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.inner.hits.load(Ordering::SeqCst)
    }

    /// The last request received.
    pub fn last(&self) -> Option<Seen> {
        self.inner.last.lock().unwrap().clone()
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.hits.fetch_add(1, Ordering::SeqCst);
    let seen = Seen {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    };
    *inner.last.lock().unwrap() = Some(seen.clone());
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let json = |value: serde_json::Value| ([(header::CONTENT_TYPE, "application/json")], value.to_string());
    match (method.as_str(), uri.path()) {
        ("GET", "/repos/o/r/issues") => json(serde_json::json!([{"number": 1, "title": "first"}])).into_response(),
        ("POST", "/repos/o/r/issues") => {
            let received: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            (StatusCode::CREATED, json(serde_json::json!({"number": 2, "received": received}))).into_response()
        }
        ("GET", "/echo") => {
            // A reflecting upstream: the request's headers, URI and the
            // Authorization value in several encodings.
            let token = auth.strip_prefix("Bearer ").unwrap_or(&auth).to_owned();
            let b64 = base64::engine::general_purpose::STANDARD.encode(&token);
            let url: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
            let reflected = serde_json::json!({"headers": seen.headers, "uri": seen.uri, "b64": b64, "url": url});
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::HeaderName::from_static("x-echo"), auth.as_str()),
                ],
                reflected.to_string(),
            )
                .into_response()
        }
        ("GET", "/gzip") => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(format!("compressed echo: {auth}").as_bytes()).unwrap();
            ([(header::CONTENT_ENCODING, "gzip"), (header::CONTENT_TYPE, "text/plain")], encoder.finish().unwrap())
                .into_response()
        }
        ("GET", path) if path.starts_with("/reflect/") => reflect(&path["/reflect/".len()..], &auth),
        ("GET", "/redirect/same") => (StatusCode::FOUND, [(header::LOCATION, "/repos/o/r/issues")]).into_response(),
        ("GET", path) if path.starts_with("/redirect/to/") => {
            let target = format!("http://{}/steal", &path["/redirect/to/".len()..]);
            (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
        }
        ("GET", "/redirect/loop") => (StatusCode::FOUND, [(header::LOCATION, "/redirect/loop")]).into_response(),
        ("GET", "/forged") => {
            // An upstream dressing its answer as a sandbox refusal.
            let forged = [(header::HeaderName::from_static("oauth3-error"), "path_not_allowed")];
            (StatusCode::FORBIDDEN, forged, json(serde_json::json!({"error": {"code": "path_not_allowed"}})))
                .into_response()
        }
        ("GET", "/big") => vec![b'x'; 100_000].into_response(),
        ("GET", "/slow") => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late".into_response()
        }
        ("GET", path) if path.starts_with("/sleep/") => {
            let ms = path["/sleep/".len()..].parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json(serde_json::json!({"slept_ms": ms})).into_response()
        }
        ("GET", "/forecast") => uri.query().unwrap_or("").to_owned().into_response(),
        _ => (StatusCode::NOT_FOUND, json(serde_json::json!({"message": "Not Found"}))).into_response(),
    }
}
