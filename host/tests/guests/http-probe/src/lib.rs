//! Sends the requests `args` lists over wasi:http (the `wstd` client), one
//! after another or (`"at_once": true`) all handed to the host before any
//! is awaited, and returns what came back, for the host's tests.
//!
//! `args`: `{"requests": [{"method", "url", "headers": [[name, value]],
//! "body", "drop"}]}`; `drop: true` starts the request and drops it unawaited.
//! Output: one entry per request: `{"status", "headers": {name: value},
//! "body"}`, `{"error"}` or `{"dropped": true}`.
//!
//! Or `{"hoard": n, "bytes": m}`: makes `n` outgoing requests, writes as much
//! of `m` bytes into each body as the host takes, and sends none. Output:
//! `{"hoarded": n, "largest_write": bytes}` (if the host lets it get there).

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "agent" });

    use super::Probe;
    export!(Probe);
}

use serde_json::{Map, Value, json};
use wstd::http::{Body, Client, Method, Request};

struct Probe;

impl bindings::Guest for Probe {
    fn run(args: String) -> Result<String, String> {
        wstd::runtime::block_on(run(args))
    }
}

async fn run(args: String) -> Result<String, String> {
    let args: Value = serde_json::from_str(&args).map_err(|e| e.to_string())?;
    if let Some(count) = args["hoard"].as_u64() {
        return Ok(hoard(count, args["bytes"].as_u64().unwrap_or(0) as usize).to_string());
    }
    let client = Client::new();
    let specs = args["requests"].as_array().ok_or("args.requests: an array")?;
    if args["at_once"].as_bool() == Some(true) {
        return at_once(&client, specs).await;
    }
    let mut results = Vec::new();
    for spec in specs {
        let request = request(spec)?;
        if spec["drop"].as_bool() == Some(true) {
            // Polled once (the request is handed to the host), then dropped.
            let _ = futures_lite::future::poll_once(client.send(request)).await;
            results.push(json!({"dropped": true}));
            continue;
        }
        results.push(described(client.send(request).await).await);
    }
    Ok(Value::Array(results).to_string())
}

/// Every request handed to the host first, then each awaited in turn.
async fn at_once(client: &Client, specs: &[Value]) -> Result<String, String> {
    let mut sending = Vec::new();
    for spec in specs {
        let mut send = Box::pin(client.send(request(spec)?));
        // Polled once: the request is handed to the host.
        let ready = futures_lite::future::poll_once(send.as_mut()).await;
        sending.push((send, ready));
    }
    let mut results = Vec::new();
    for (send, ready) in sending {
        let sent = match ready {
            Some(sent) => sent,
            None => send.await,
        };
        results.push(described(sent).await);
    }
    Ok(Value::Array(results).to_string())
}

fn request(spec: &Value) -> Result<Request<Body>, String> {
    let method = Method::from_bytes(spec["method"].as_str().unwrap_or("GET").as_bytes()).map_err(|e| e.to_string())?;
    let mut request = Request::builder().method(method).uri(spec["url"].as_str().ok_or("url: a string")?);
    for pair in spec["headers"].as_array().into_iter().flatten() {
        request = request.header(pair[0].as_str().unwrap_or(""), pair[1].as_str().unwrap_or(""));
    }
    let body = match spec["body"].as_str() {
        Some(text) => Body::from(text.to_owned()),
        None => Body::empty(),
    };
    request.body(body).map_err(|e| e.to_string())
}

async fn described(sent: wstd::http::Result<wstd::http::Response<Body>>) -> Value {
    match sent {
        Err(error) => json!({"error": error.to_string()}),
        Ok(mut response) => {
            let headers: Map<String, Value> = response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), json!(String::from_utf8_lossy(v.as_bytes()))))
                .collect();
            let status = response.status().as_u16();
            let body = match response.body_mut().contents().await {
                Ok(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                Err(error) => format!("<body error: {error}>"),
            };
            json!({"status": status, "headers": headers, "body": body})
        }
    }
}

/// Requests with bodies written and never sent, all kept.
fn hoard(count: u64, bytes: usize) -> Value {
    use wasip2::http::types::{Fields, OutgoingRequest};
    let mut kept = Vec::new();
    let mut largest_write = 0;
    let chunk = vec![b'x'; bytes];
    for _ in 0..count {
        let request = OutgoingRequest::new(Fields::new());
        let body = request.body().expect("a body");
        let stream = body.write().expect("a stream");
        let room = stream.check_write().unwrap_or(0) as usize;
        let take = room.min(bytes);
        if take > 0 && stream.write(&chunk[..take]).is_ok() {
            largest_write = largest_write.max(take);
        }
        // Children before parents, as they are dropped.
        kept.push((stream, body, request));
    }
    json!({"hoarded": kept.len(), "largest_write": largest_write})
}
