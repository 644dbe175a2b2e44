//! What MCP costs on top of the HTTP API: a real gateway in this process,
//! an agent with one permit, and the same question asked as `GET /permits`
//! and as the MCP tool `list_permits` (`POST /mcp`, stateless: each request
//! builds its rmcp service), then `tools/list` and `GET /openapi.json`
//! (generated per request).
//!
//! ```text
//! cargo bench -p oauth3-gateway --bench mcp
//! ```
//!
//! 20 requests unmeasured, then 500 of each; p50, p99 and max in milliseconds.

use std::time::{Duration, Instant};

use oauth3_e2e::{fake_secret, shared_cache_dir};
use oauth3_gateway::{Capabilities, Config, Server};
use serde_json::{Value, json};

const RUNS: usize = 500;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_data_dir(dir.path());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.cache_dir = Some(shared_cache_dir());
        let server = Server::start_with(config.clone(), Capabilities::local(&config).unwrap()).await.unwrap();
        let url = format!("http://{}", server.addr());
        let spec = json!({"name": "github", "base_url": "https://api.github.com",
            "rules": [{"method": "GET", "path": "/repos/*/*/issues"}]});
        let (agent, _, _) = oauth3_e2e::approved_permit(&url, spec, &fake_secret()).await;
        let http = oauth3_e2e::http_client();

        let rest = || http.get(format!("{url}/permits")).bearer_auth(&agent);
        let mcp = |body: Value| {
            http.post(format!("{url}/mcp"))
                .bearer_auth(&agent)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-06-18")
                .json(&body)
        };
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "list_permits", "arguments": {}}});
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        oauth3_e2e::report_latencies("GET /permits", time(rest).await);
        oauth3_e2e::report_latencies("MCP tools/call list_permits", time(|| mcp(call.clone())).await);
        oauth3_e2e::report_latencies("MCP tools/list", time(|| mcp(list.clone())).await);
        oauth3_e2e::report_latencies("GET /openapi.json", time(|| http.get(format!("{url}/openapi.json"))).await);
        server.shutdown().await.unwrap();
    });
}

async fn time(request: impl Fn() -> reqwest::RequestBuilder) -> Vec<Duration> {
    let mut times = Vec::with_capacity(RUNS);
    for run in 0..20 + RUNS {
        let started = Instant::now();
        let response = request().send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let body: Value = response.json().await.unwrap();
        assert!(body.get("error").is_none(), "{body}");
        if run >= 20 {
            times.push(started.elapsed());
        }
    }
    times
}
