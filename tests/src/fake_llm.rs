//! Fake LLM providers for tests: an Anthropic Messages API and an
//! OpenAI-compatible chat completions API, each a real HTTP server on
//! 127.0.0.1:0 speaking the provider's wire format. A test scripts the
//! replies as a queue ([`Reply`], one per request, in order) and afterwards
//! reads every request received ([`Received`]: method, path, headers, JSON
//! body). When the queue is empty the server answers 500.
//!
//! ```ignore
//! use oauth3_e2e::fake_llm;
//! let fake = fake_llm::FakeLlm::anthropic([fake_llm::Reply::Draft(output)]).await;
//! // LlmConfig { base_url: fake.url(), api_key: Some(fake_llm::fake_key()), .. }
//! assert_eq!(fake.requests()[0].header("anthropic-version"), Some("2023-06-01"));
//! ```

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which wire format a fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `POST /v1/messages`; [`FakeLlm::url`] is the origin.
    Anthropic,
    /// `POST /v1/chat/completions`; [`FakeLlm::url`] ends with `/v1`.
    OpenAi,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The structured output, delivered the provider's usual way. Anthropic:
    /// one `tool_use` block (named after the request's `tool_choice`) with
    /// this input, `stop_reason: "tool_use"`. OpenAI: `message.content` is
    /// this value serialised, `finish_reason: "stop"`.
    Draft(Value),
    /// Anthropic: a text block, then the `tool_use` block with this input.
    /// OpenAI: `content: null` and one `tool_calls` function call whose
    /// `arguments` are this value serialised.
    ToolCall(Value),
    /// Text as the model's whole answer. Anthropic: one text block and no
    /// `tool_use` (`stop_reason: "end_turn"`). OpenAI: `message.content` is
    /// this text verbatim (malformed JSON, JSON wrapped in prose, …).
    Text(String),
    /// Like [`Reply::Draft`] but cut off: `stop_reason: "max_tokens"` /
    /// `finish_reason: "length"`.
    Truncated(Value),
    /// 429 with the provider's rate-limit error and, if given, `retry-after`.
    RateLimited {
        /// The `retry-after` header value.
        retry_after: Option<String>,
    },
    /// Anthropic: 529 `overloaded_error`. OpenAI: 503.
    Overloaded,
    /// Any status with the provider's error body carrying `message`.
    Error {
        /// HTTP status.
        status: u16,
        /// `error.message`.
        message: String,
    },
    /// A raw answer: status, content type and body as given.
    Raw {
        /// HTTP status.
        status: u16,
        /// `content-type`.
        content_type: String,
        /// The body.
        body: String,
    },
    /// Waits, then answers with the inner reply (for timeouts).
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    /// [`Reply::Delayed`].
    pub fn delayed(wait: Duration, reply: Reply) -> Reply {
        Reply::Delayed(wait, Box::new(reply))
    }

    /// [`Reply::Error`].
    pub fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::Error { status, message: message.into() }
    }

    /// [`Reply::RateLimited`] with `retry-after: seconds`.
    pub fn rate_limited(seconds: u64) -> Reply {
        Reply::RateLimited { retry_after: Some(seconds.to_string()) }
    }
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST`.
    pub method: String,
    /// Path and query (`/v1/messages`).
    pub path: String,
    /// Header names (lower case) and values, in order received.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub raw: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Received {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// Every header line, `name: value`, for "appears nowhere else" checks.
    pub fn header_lines(&self) -> Vec<String> {
        self.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect()
    }

    /// All text of the prompt: Anthropic's `system` plus every message's
    /// text (string contents, text blocks and tool results), or OpenAI's
    /// message contents, joined by newlines.
    pub fn prompt_text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(system) = self.body.get("system").and_then(Value::as_str) {
            parts.push(system.to_owned());
        }
        for message in self.messages() {
            collect_text(&message["content"], &mut parts);
        }
        parts.join("\n")
    }

    /// `messages` of the body.
    pub fn messages(&self) -> Vec<Value> {
        self.body.get("messages").and_then(Value::as_array).cloned().unwrap_or_default()
    }
}

fn collect_text(content: &Value, parts: &mut Vec<String>) {
    match content {
        Value::String(text) => parts.push(text.clone()),
        Value::Array(blocks) => {
            for block in blocks {
                if let Some(text) = block.get("text").and_then(Value::as_str) {
                    parts.push(text.to_owned());
                }
                if block.get("content").is_some() {
                    collect_text(&block["content"], parts);
                }
            }
        }
        _ => {}
    }
}

/// A fresh, obviously fake API key, different in every call.
pub fn fake_key() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("sk-fake-test-{:016x}", hasher.finish())
}

struct Shared {
    provider: Provider,
    replies: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
    counter: AtomicU64,
}

/// A running fake provider; stops when dropped.
pub struct FakeLlm {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl FakeLlm {
    /// A fake Anthropic Messages API answering with `replies` in order.
    pub async fn anthropic(replies: impl IntoIterator<Item = Reply>) -> FakeLlm {
        FakeLlm::start(Provider::Anthropic, replies).await
    }

    /// A fake OpenAI-compatible API answering with `replies` in order.
    pub async fn openai(replies: impl IntoIterator<Item = Reply>) -> FakeLlm {
        FakeLlm::start(Provider::OpenAi, replies).await
    }

    /// A fake of `provider` answering with `replies` in order.
    pub async fn start(provider: Provider, replies: impl IntoIterator<Item = Reply>) -> FakeLlm {
        let shared = Arc::new(Shared {
            provider,
            replies: Mutex::new(replies.into_iter().collect()),
            received: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake LLM");
        let addr = listener.local_addr().expect("fake LLM address");
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeLlm { shared, addr, task }
    }

    /// The base URL to configure: `http://127.0.0.1:PORT` (Anthropic) or
    /// `http://127.0.0.1:PORT/v1` (OpenAI-compatible).
    pub fn url(&self) -> String {
        match self.shared.provider {
            Provider::Anthropic => format!("http://{}", self.addr),
            Provider::OpenAi => format!("http://{}/v1", self.addr),
        }
    }

    /// `host:port`, e.g. for an insecure-upstreams allow-list.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Queues another reply.
    pub fn push(&self, reply: Reply) {
        self.shared.replies.lock().expect("replies").push_back(reply);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.received.lock().expect("received").clone()
    }

    /// Replies not used yet.
    pub fn remaining(&self) -> usize {
        self.shared.replies.lock().expect("replies").len()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let headers = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let bytes = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap_or_default();
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let received = Received { method: method.clone(), path: path.clone(), headers, raw, body: body.clone() };
    shared.received.lock().expect("received").push(received);

    let expected = match shared.provider {
        Provider::Anthropic => "/v1/messages",
        Provider::OpenAi => "/v1/chat/completions",
    };
    if method != "POST" || path != expected {
        return error(shared.provider, 404, &format!("fake: no route for {method} {path}"), None);
    }
    let next = shared.replies.lock().expect("replies").pop_front();
    let Some(mut reply) = next else {
        return error(shared.provider, 500, "fake: no reply scripted for this request", None);
    };
    while let Reply::Delayed(wait, inner) = reply {
        tokio::time::sleep(wait).await;
        reply = *inner;
    }
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    match shared.provider {
        Provider::Anthropic => anthropic_reply(&body, reply, n),
        Provider::OpenAi => openai_reply(&body, reply, n),
    }
}

fn anthropic_reply(request: &Value, reply: Reply, n: u64) -> Response {
    let tool = request["tool_choice"]["name"].as_str().unwrap_or("submit_integration").to_owned();
    let tool_use =
        |input: Value| json!({"type": "tool_use", "id": format!("toolu_fake_{n}"), "name": tool, "input": input});
    let (content, stop_reason) = match reply {
        Reply::Draft(input) => (json!([tool_use(input)]), "tool_use"),
        Reply::ToolCall(input) => {
            (json!([{"type": "text", "text": "Here is the draft."}, tool_use(input)]), "tool_use")
        }
        Reply::Truncated(input) => (json!([tool_use(input)]), "max_tokens"),
        Reply::Text(text) => (json!([{"type": "text", "text": text}]), "end_turn"),
        other => return failure(Provider::Anthropic, other),
    };
    let message = json!({
        "id": format!("msg_fake_{n}"),
        "type": "message",
        "role": "assistant",
        "model": request["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": 100, "output_tokens": 50},
    });
    (StatusCode::OK, axum::Json(message)).into_response()
}

fn openai_reply(request: &Value, reply: Reply, n: u64) -> Response {
    let name = request["response_format"]["json_schema"]["name"].as_str().unwrap_or("submit_integration").to_owned();
    let (message, finish_reason) = match reply {
        Reply::Draft(value) => (json!({"role": "assistant", "content": value.to_string()}), "stop"),
        Reply::Truncated(value) => (json!({"role": "assistant", "content": value.to_string()}), "length"),
        Reply::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        Reply::ToolCall(value) => (
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": format!("call_fake_{n}"),
                    "type": "function",
                    "function": {"name": name, "arguments": value.to_string()},
                }],
            }),
            "tool_calls",
        ),
        other => return failure(Provider::OpenAi, other),
    };
    let completion = json!({
        "id": format!("chatcmpl-fake-{n}"),
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": request["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
    });
    (StatusCode::OK, axum::Json(completion)).into_response()
}

fn failure(provider: Provider, reply: Reply) -> Response {
    match reply {
        Reply::RateLimited { retry_after } => {
            error(provider, 429, "fake: rate limit exceeded, slow down", retry_after.as_deref())
        }
        Reply::Overloaded => match provider {
            Provider::Anthropic => error(provider, 529, "Overloaded", None),
            Provider::OpenAi => error(provider, 503, "The server is overloaded, try again later", None),
        },
        Reply::Error { status, message } => error(provider, status, &message, None),
        Reply::Raw { status, content_type, body } => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                response.headers_mut().insert("content-type", value);
            }
            response
        }
        other => error(provider, 500, &format!("fake: cannot send {other:?} here"), None),
    }
}

/// The provider's error body for `status`.
fn error(provider: Provider, status: u16, message: &str, retry_after: Option<&str>) -> Response {
    let body = match provider {
        Provider::Anthropic => {
            let kind = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        Provider::OpenAi => {
            let (kind, code) = match status {
                400 => ("invalid_request_error", Value::Null),
                401 => ("invalid_request_error", json!("invalid_api_key")),
                404 => ("invalid_request_error", json!("model_not_found")),
                429 => ("requests", json!("rate_limit_exceeded")),
                _ => ("server_error", Value::Null),
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert("retry-after", value);
    }
    if provider == Provider::Anthropic {
        response.headers_mut().insert("request-id", HeaderValue::from_static("req_fake"));
    }
    response
}
