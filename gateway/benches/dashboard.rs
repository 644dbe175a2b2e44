//! Web UI page times at scale: a real gateway in this process over a
//! database seeded with one owner's 1,000 permits, 200 pending requests and
//! 100,000 audit rows (10% denials), and a signed-in cookie client timing
//! the pages an owner opens.
//!
//! ```text
//! cargo bench -p oauth3-gateway --bench dashboard             # SQLite
//! BENCH_POSTGRES=1 cargo bench -p oauth3-gateway --bench dashboard  # also Postgres (TEST_DATABASE_URL)
//! ```
//!
//! Each page is fetched 5 times unmeasured, then 50 times; p50 and p99 of
//! the whole request (client included) are printed in milliseconds.

use std::time::{Duration, Instant};

use oauth3_e2e::{Backend, Stub, WebClient, postgres, shared_cache_dir};
use oauth3_gateway::db::{Db, now_ms};
use oauth3_gateway::{Config, Server};
use reqwest::StatusCode;
use serde_json::json;

const PERMITS: usize = 1_000;
const PENDING: usize = 200;
const AUDIT_ROWS: usize = 100_000;
const RUNS: usize = 50;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        bench("sqlite", Backend::Sqlite).await;
        if std::env::var("BENCH_POSTGRES").is_ok_and(|v| v == "1") {
            let backend = postgres("bench_dashboard").await.expect("a Postgres server (TEST_DATABASE_URL)");
            bench("postgres", backend).await;
        }
    });
}

async fn bench(name: &str, backend: Backend) {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.cache_dir = Some(shared_cache_dir());
    config.insecure_upstreams = vec![stub.host_port()];
    if let Backend::Postgres(url) = &backend {
        config.database_url = Some(url.clone());
    }
    let database_url = config.database_url();
    let server = Server::start(config).await.expect("gateway starts");
    let url = format!("http://{}", server.addr());

    let http = oauth3_e2e::http_client();
    let signup = |name: &'static str, role: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let body: serde_json::Value = http
                .post(format!("{url}/signup"))
                .json(&json!({"name": name, "role": role}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (body["tenant_id"].as_str().unwrap().to_owned(), body["token"].as_str().unwrap().to_owned())
        }
    };
    let (agent_id, agent) = signup("bench-agent", "agent").await;
    let (owner_id, owner) = signup("bench-owner", "owner").await;
    let spec = json!({"name": "github", "base_url": stub.url(), "rules": [
        {"method": "GET", "path": "/repos/owner/repo/issues"}, {"method": "GET", "path": "/echo"}],
        "rate_limit": {"max_calls": 30, "window_seconds": 60}});
    let created: serde_json::Value = http
        .post(format!("{url}/permit"))
        .bearer_auth(&agent)
        .json(&json!({"description": "a real request", "capabilities": [spec]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request = created["request_id"].as_str().unwrap().to_owned();

    let seeded = Instant::now();
    let db = Db::connect(&database_url).await.unwrap();
    let permit_ids = seed(&db, &owner_id, &agent_id).await;
    println!(
        "{name}: seeded {PERMITS} permits, {PENDING} pending requests, {AUDIT_ROWS} audit rows in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    let browser = WebClient::new(&url);
    assert_eq!(browser.sign_in(&owner).await.status, StatusCode::SEE_OTHER);
    let last_permits_page = PERMITS / 20 - 1;
    let pages = [
        ("dashboard, first page".to_owned(), "/".to_owned()),
        ("dashboard, last page of permits".to_owned(), format!("/?pending=0&permits={last_permits_page}")),
        ("dashboard, audit of one permit".to_owned(), format!("/?audit_permit={}", permit_ids[500])),
        ("dashboard, audit 50,000 rows back".to_owned(), format!("/?audit_before={}", AUDIT_ROWS / 2)),
        ("approval page".to_owned(), format!("/approve/{request}")),
    ];
    println!("{:<36} {:>9} {:>9}", "page", "p50 ms", "p99 ms");
    for (label, path) in pages {
        for _ in 0..5 {
            assert_eq!(browser.get(&path).await.status, StatusCode::OK, "{path}");
        }
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            let page = browser.get(&path).await;
            times.push(started.elapsed());
            assert_eq!(page.status, StatusCode::OK, "{path}");
        }
        times.sort();
        let at = |p: f64| ms(times[((times.len() - 1) as f64 * p).round() as usize]);
        println!("{label:<36} {:>9.2} {:>9.2}", at(0.5), at(0.99));
    }
    server.shutdown().await.unwrap();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Inserts the permits, pending requests and audit rows in batches; returns
/// the permit ids.
async fn seed(db: &Db, owner: &str, agent: &str) -> Vec<String> {
    let now = now_ms();
    let spec = r#"{"version":1,"integrations":[{"name":"github","base_url":"https://api.github.com","rules":[{"method":"GET","path":"/repos/o/r/issues"}]}]}"#;
    let ids: Vec<String> = (0..PERMITS).map(|i| format!("prm_bench{i:06}")).collect();
    let mut tx = db.pool.begin().await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        sqlx::query(
            "INSERT INTO permits (id, agent_id, owner_id, status, spec, spec_hash, created_at, approved_at) \
             VALUES ($1, $2, $3, 'active', $4, $5, $6, $6)",
        )
        .bind(id)
        .bind(agent)
        .bind(owner)
        .bind(spec)
        .bind(format!("{i:064}"))
        .bind(now - (PERMITS - i) as i64 * 1000)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    for i in 0..PENDING {
        let permit = format!("prm_pending{i:06}");
        sqlx::query("INSERT INTO permits (id, agent_id, status, created_at) VALUES ($1, $2, 'pending', $3)")
            .bind(&permit)
            .bind(agent)
            .bind(now)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO permit_requests (id, permit_id, agent_id, description, spec, spec_hash, status, created_at, \
             expires_at) VALUES ($1, $2, $3, 'seeded', $4, $5, 'pending', $6, $7)",
        )
        .bind(format!("req_bench{i:06}"))
        .bind(&permit)
        .bind(agent)
        .bind(spec)
        .bind(format!("{i:064}"))
        .bind(now - i as i64)
        .bind(now + 86_400_000)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    const BATCH: usize = 500;
    for start in (0..AUDIT_ROWS).step_by(BATCH) {
        let mut sql = String::from(
            "INSERT INTO audit (permit_id, execution_id, integration, method, url, decision, reason, status, \
             request_bytes, response_bytes, started_at, duration_ms) VALUES ",
        );
        for i in start..start + BATCH {
            let deny = i % 10 == 0;
            if i > start {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('{}', 'exe_bench{}', 'github', 'GET', 'https://api.github.com/repos/o/r/issues', '{}', {}, {}, 0, 210, {}, 4)",
                ids[i % PERMITS],
                i / 3,
                if deny { "deny" } else { "allow" },
                if deny { "'path_not_allowed'" } else { "NULL" },
                if deny { "NULL" } else { "200" },
                now - (AUDIT_ROWS - i) as i64,
            ));
        }
        sqlx::query(&sql).execute(&db.pool).await.unwrap();
    }
    ids
}
