//! `GET /attestation` inside a (fake) dstack CVM: a real gateway in this
//! process whose keys and quotes come from the fake guest agent over its Unix
//! socket, and a client asking with a fresh nonce each time. What it times is
//! the gateway's own share (binding, JCS, the socket round trip, JSON); a
//! real TDX `GetQuote` adds the hardware's quoting time on top.
//!
//! ```text
//! cargo bench -p oauth3-gateway --bench attestation
//! ```
//!
//! 20 requests unmeasured, then 500; p50, p99 and max in milliseconds.

use std::sync::Arc;
use std::time::Instant;

use oauth3_e2e::dstack::{FakeAgent, SIMULATOR_APP_KEY};
use oauth3_e2e::{random_hex, shared_cache_dir};
use oauth3_gateway::tee::{Dstack, DstackKeys, Endpoint};
use oauth3_gateway::{Capabilities, Config, Server};

const RUNS: usize = 500;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let agent = FakeAgent::start(SIMULATOR_APP_KEY).await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_data_dir(dir.path());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.cache_dir = Some(shared_cache_dir());
        let mut capabilities = Capabilities::local(&config).unwrap();
        let dstack = Dstack::new(Endpoint::Socket(agent.socket.clone()));
        capabilities.keys = Arc::new(DstackKeys::new(dstack.clone()));
        capabilities.tee = Some(dstack);
        let server = Server::start_with(config, capabilities).await.expect("gateway starts");
        let url = format!("http://{}/attestation", server.addr());
        let http = oauth3_e2e::http_client();
        let mut times = Vec::with_capacity(RUNS);
        for run in 0..20 + RUNS {
            let started = Instant::now();
            let response = http.get(format!("{url}?nonce={}", random_hex(32))).send().await.unwrap();
            assert!(response.status().is_success());
            let document: serde_json::Value = response.json().await.unwrap();
            assert_eq!(document["tee"], true);
            if run >= 20 {
                times.push(started.elapsed());
            }
        }
        oauth3_e2e::report_latencies("GET /attestation (fake dstack agent)", times);
        server.shutdown().await.unwrap();
    });
}
