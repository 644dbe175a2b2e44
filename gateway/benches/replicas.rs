//! How soon a status wait on one replica returns after another replica
//! finishes the run: two gateways in this process on one fresh Postgres
//! database (the local server, or `TEST_DATABASE_URL`) sharing one key dir.
//! Each round submits a one-line script on the first and long-polls it on
//! the second, or on the first itself for comparison; the time runs from
//! the submission to the completed answer. Without LISTEN/NOTIFY the other
//! replica would only see the end at its next re-read (`OAUTH3_REREAD_MS`,
//! 1 s).
//!
//! ```text
//! cargo bench -p oauth3-gateway --bench replicas
//! ```

use std::time::Instant;

use oauth3_e2e::{Backend, fake_secret, shared_cache_dir};
use oauth3_gateway::{Config, Server};
use serde_json::{Value, json};

const RUNS: usize = 200;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let Some(Backend::Postgres(url)) = oauth3_e2e::postgres("bench_replicas").await else {
            eprintln!("replicas bench: no Postgres");
            std::process::exit(1);
        };
        let keys = tempfile::tempdir().unwrap();
        let start = |dir: &std::path::Path| {
            let mut config = Config::for_data_dir(dir);
            config.listen = "127.0.0.1:0".parse().unwrap();
            config.cache_dir = Some(shared_cache_dir());
            config.database_url = Some(url.clone());
            config.key_dir = Some(keys.path().to_owned());
            Server::start(config)
        };
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = start(a_dir.path()).await.unwrap();
        let second = start(b_dir.path()).await.unwrap();
        let (a, b) = (format!("http://{}", first.addr()), format!("http://{}", second.addr()));
        let spec = json!({"name": "github", "base_url": "https://api.github.com",
            "rules": [{"method": "GET", "path": "/repos/*/*/issues"}]});
        let (agent, _, permit) = oauth3_e2e::approved_permit(&a, spec, &fake_secret()).await;
        let http = oauth3_e2e::http_client();
        for (label, waiter) in [("wait on the same replica", &a), ("wait on the other replica", &b)] {
            let mut times = Vec::with_capacity(RUNS);
            for run in 0..20 + RUNS {
                let started = Instant::now();
                let body =
                    json!({"permit_id": permit, "action_id": format!("{label}-{run}"), "code": "console.log(1)"});
                let accepted: Value = http
                    .post(format!("{a}/execute"))
                    .bearer_auth(&agent)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let id = accepted["request_id"].as_str().unwrap();
                let status = format!("{waiter}/execute/{id}/status?wait=true&timeout=30");
                let done: Value = http.get(status).bearer_auth(&agent).send().await.unwrap().json().await.unwrap();
                assert_eq!(done["status"], "completed", "{done}");
                if run >= 20 {
                    times.push(started.elapsed());
                }
            }
            oauth3_e2e::report_latencies(label, times);
        }
        first.shutdown().await.unwrap();
        second.shutdown().await.unwrap();
    });
}
