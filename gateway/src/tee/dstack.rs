//! A thin client of the dstack guest agent: HTTP/1.1 over its Unix socket
//! (or an `http://` simulator), JSON bodies, the three methods the gateway
//! uses (`GetKey`, `GetQuote`, `Info`), each with a time limit. The agent's
//! `{"error": "..."}` text is surfaced in errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Where the SDKs look for the agent's socket, in order.
pub const SOCKETS: [&str; 4] =
    ["/var/run/dstack.sock", "/run/dstack.sock", "/var/run/dstack/dstack.sock", "/run/dstack/dstack.sock"];

/// Overrides discovery: a socket path or an `http://` URL.
pub const ENDPOINT_VARIABLE: &str = "DSTACK_SIMULATOR_ENDPOINT";

/// Each call's time limit.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the agent listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket.
    Socket(PathBuf),
    /// An HTTP base URL (a simulator).
    Http(String),
}

impl Endpoint {
    /// `DSTACK_SIMULATOR_ENDPOINT` when set, else the first of [`SOCKETS`]
    /// that exists; `None` outside a dstack CVM.
    pub fn discover() -> Option<Endpoint> {
        match std::env::var(ENDPOINT_VARIABLE) {
            Ok(value) if !value.trim().is_empty() => Some(Endpoint::parse(value.trim())),
            _ => SOCKETS.iter().map(Path::new).find(|p| p.exists()).map(|p| Endpoint::Socket(p.to_owned())),
        }
    }

    /// A socket path, or an `http://` URL.
    pub fn parse(value: &str) -> Endpoint {
        if value.starts_with("http://") || value.starts_with("https://") {
            Endpoint::Http(value.trim_end_matches('/').to_owned())
        } else {
            Endpoint::Socket(PathBuf::from(value.strip_prefix("unix:").unwrap_or(value)))
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Socket(path) => write!(f, "{}", path.display()),
            Endpoint::Http(url) => f.write_str(url),
        }
    }
}

/// `GetKey`'s answer.
#[derive(Debug, Deserialize)]
struct KeyResponse {
    key: String,
}

/// `GetQuote`'s answer: the TDX quote and the event log that replays RTMR3.
#[derive(Debug, Clone, Deserialize)]
pub struct Quote {
    /// Hex.
    pub quote: String,
    /// A JSON array, as a string.
    pub event_log: String,
}

/// The guest agent's client.
#[derive(Debug, Clone)]
pub struct Dstack {
    endpoint: Endpoint,
}

impl Dstack {
    /// A client of the agent at `endpoint`.
    pub fn new(endpoint: Endpoint) -> Dstack {
        Dstack { endpoint }
    }

    /// Where it talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `GetKey(path)`: the app's 32-byte key for `path`, the same for every
    /// replica of the app.
    pub async fn get_key(&self, path: &str) -> Result<[u8; 32]> {
        let answer: KeyResponse = self.call("GetKey", json!({"path": path, "purpose": ""})).await?;
        let bytes = hex_bytes(&answer.key).map_err(|e| tee(format!("GetKey returned a malformed key: {e}")))?;
        bytes.try_into().map_err(|_| tee("GetKey returned a key that is not 32 bytes".into()))
    }

    /// `GetQuote(report_data)` (at most 64 bytes).
    pub async fn get_quote(&self, report_data: &[u8]) -> Result<Quote> {
        if report_data.len() > 64 {
            return Err(Error::Internal("report data over 64 bytes".into()));
        }
        self.call("GetQuote", json!({"report_data": crate::keys::hex(report_data)})).await
    }

    /// `Info`: the app's identity (`app_id`, `instance_id`, `compose_hash`, …).
    pub async fn info(&self) -> Result<Value> {
        self.call("Info", json!({})).await
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, method: &str, body: Value) -> Result<T> {
        let body = serde_json::to_vec(&body).map_err(|e| Error::Internal(e.to_string()))?;
        let sent = tokio::time::timeout(TIMEOUT, self.post(method, body)).await;
        let (status, bytes) =
            sent.map_err(|_| tee(format!("{method}: the dstack guest agent at {} did not answer", self.endpoint)))??;
        if !(200..300).contains(&status) {
            let said = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(tee(format!("{method}: the dstack guest agent answered {status}: {said}")));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| tee(format!("{method}: unexpected answer from the guest agent: {e}")))
    }

    async fn post(&self, method: &str, body: Vec<u8>) -> Result<(u16, Bytes)> {
        let failed =
            |e: &dyn std::fmt::Display| tee(format!("{method}: the dstack guest agent at {}: {e}", self.endpoint));
        match &self.endpoint {
            Endpoint::Http(base) => {
                let response = reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .map_err(|e| failed(&e))?
                    .post(format!("{base}/{method}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| failed(&e))?;
                let status = response.status().as_u16();
                Ok((status, response.bytes().await.map_err(|e| failed(&e))?))
            }
            Endpoint::Socket(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| failed(&e))?;
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .map_err(|e| failed(&e))?;
                tokio::spawn(connection);
                let request = hyper::Request::post(format!("/{method}"))
                    .header("host", "dstack")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| failed(&e))?;
                let response = sender.send_request(request).await.map_err(|e| failed(&e))?;
                let status = response.status().as_u16();
                let bytes = response.into_body().collect().await.map_err(|e| failed(&e))?.to_bytes();
                Ok((status, bytes))
            }
        }
    }
}

fn tee(message: String) -> Error {
    Error::Tee(message)
}

/// Bytes from hex (an optional `0x` prefix allowed).
pub fn hex_bytes(text: &str) -> std::result::Result<Vec<u8>, String> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("not hex digits".into());
    }
    if !text.len().is_multiple_of(2) {
        return Err("odd length".into());
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| e.to_string())).collect()
}
