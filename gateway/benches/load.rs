//! Load benchmark of the whole gateway: a real `oauth3` server in this
//! process (SQLite by default), the stub GitHub upstream, and an HTTP client
//! running the README quickstart script end to end through the API.
//!
//! ```text
//! cargo bench -p oauth3-gateway --bench load [-- --concurrency 1,64 --n 2000]
//! ```
//!
//! Each execution is `POST /execute` (a fresh `action_id`) then
//! `GET /execute/{id}/status?wait=true`, or with `--one-trip` a single
//! `POST /execute` with `"wait": 60` answered by the finished execution; its
//! latency runs from just before the POST to the completed status response, and it must end `completed` with
//! `success: true` (the bench aborts otherwise). For every concurrency level
//! (that many client tasks, each looping) it prints p50, p99, mean latency and
//! throughput after a short unmeasured warm-up, then a coarse breakdown from
//! the server's own timestamps (milliseconds).
//!
//! Settings (flags win over the environment):
//! - `--concurrency 1,64` / `BENCH_CONCURRENCY=1,64`: the levels.
//! - `--n N` / `BENCH_N=N`: executions per level (default 500 at concurrency
//!   1, 2000 above).
//! - `--permits K` / `BENCH_PERMITS=K`: spread the client tasks over K approved
//!   permits (default 1: every execution shares one permit and so one
//!   rate-limit row).
//! - `--one-trip` / `BENCH_FLOW=one-trip`: one request per execution (above).
//! - `--no-rate-limit` / `BENCH_RATE_LIMIT=off`: approve the permit without a
//!   `rate_limit` (default: 1,000,000 calls per 60 s, which never limits).
//! - `BENCH_DATABASE_URL=postgres://user@host/db`: run on Postgres. The bench
//!   connects to that server, creates a fresh database `oauth3_bench_*` next
//!   to the one named, and drops it at the end; the role needs CREATEDB.
//! - `RUST_LOG`: gateway logs (silent when unset).
//!
//! The client, the gateway and the stub share one multi-thread tokio runtime
//! (one worker per core), so the client's own cost is inside the numbers.
//! Compiled sandbox code is cached in `$TMPDIR/oauth3-bench-cache-<uid>`
//! (0700), so only the first run compiles the guest runtime.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use oauth3_gateway::{Config, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

/// The README quickstart script.
const SCRIPT: &str = "const r = await github('GET','/repos/owner/repo/issues'); console.log(JSON.stringify(r));";

/// Executions per level when `BENCH_N` / `--n` is not given.
fn default_n(concurrency: usize) -> usize {
    if concurrency <= 1 { 500 } else { 2000 }
}

/// Unmeasured executions before each level.
fn warmup_n(concurrency: usize) -> usize {
    (concurrency * 4).clamp(50, 256)
}

/// What to run.
struct Settings {
    levels: Vec<usize>,
    n: Option<usize>,
    permits: usize,
    rate_limit: bool,
    one_trip: bool,
    database_url: Option<String>,
}

fn settings() -> Result<Settings, String> {
    let mut levels = std::env::var("BENCH_CONCURRENCY").ok();
    let mut n = std::env::var("BENCH_N").ok();
    let mut permits = std::env::var("BENCH_PERMITS").ok();
    let mut rate_limit = !std::env::var("BENCH_RATE_LIMIT").is_ok_and(|v| v == "off" || v == "0");
    let mut one_trip = std::env::var("BENCH_FLOW").is_ok_and(|v| v == "one-trip");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        match name.as_str() {
            "--concurrency" | "-c" => {
                levels = Some(inline.or_else(|| args.next()).ok_or("--concurrency needs a value")?)
            }
            "--n" | "-n" => n = Some(inline.or_else(|| args.next()).ok_or("--n needs a value")?),
            "--permits" => permits = Some(inline.or_else(|| args.next()).ok_or("--permits needs a value")?),
            "--no-rate-limit" => rate_limit = false,
            "--one-trip" => one_trip = true,
            "--help" | "-h" => {
                println!(
                    "usage: load [--concurrency 1,64] [--n N] [--permits K] [--no-rate-limit] [--one-trip]\n\
                     env: BENCH_CONCURRENCY, BENCH_N, BENCH_PERMITS, BENCH_RATE_LIMIT=off, BENCH_FLOW=one-trip, \
                     BENCH_DATABASE_URL, RUST_LOG"
                );
                std::process::exit(0);
            }
            // `cargo bench` passes `--bench`; a name filter may follow.
            _ => {}
        }
    }
    let levels = match levels {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().parse::<usize>().ok().filter(|&c| c > 0).ok_or(format!("bad concurrency '{s}'")))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![1, 64],
    };
    let n = match n {
        Some(s) => Some(s.trim().parse::<usize>().ok().filter(|&n| n > 0).ok_or(format!("bad BENCH_N '{s}'"))?),
        None => None,
    };
    let permits = match permits {
        Some(s) => s.trim().parse::<usize>().ok().filter(|&k| k > 0).ok_or(format!("bad BENCH_PERMITS '{s}'"))?,
        None => 1,
    };
    let database_url = std::env::var("BENCH_DATABASE_URL").ok().filter(|s| !s.is_empty());
    Ok(Settings { levels, n, permits, rate_limit, one_trip, database_url })
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let settings = settings().unwrap_or_else(|e| fail(&e));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    if let Err(error) = runtime.block_on(bench(settings)) {
        fail(&error);
    }
}

fn fail(message: &str) -> ! {
    eprintln!("\nload bench FAILED: {message}");
    std::process::exit(1);
}

/// A fresh Postgres database next to the one `url` names; returns its URL and name.
async fn fresh_postgres(url: &str) -> Result<(String, String), String> {
    let mut admin =
        sqlx::PgConnection::connect(url).await.map_err(|e| format!("BENCH_DATABASE_URL: cannot connect: {e}"))?;
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let id = oauth3_gateway::keys::new_id("db").map_err(|e| e.to_string())?;
    let name = format!("oauth3_bench_{now}_{}", id[3..15].to_ascii_lowercase());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .map_err(|e| format!("BENCH_DATABASE_URL: cannot create a database (the role needs CREATEDB): {e}"))?;
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    Ok((format!("{server}/{name}{query}"), name))
}

async fn drop_postgres(url: &str, name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(url).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
    }
}

/// Compiled sandbox code, private to this user and kept between runs.
fn cache_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let dir = std::env::temp_dir().join(format!("oauth3-bench-cache-{uid}"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    if meta.uid() != uid {
        return Err(format!("{} belongs to another user; remove it", dir.display()));
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod 700 {}: {e}", dir.display()))?;
    Ok(dir)
}

async fn bench(settings: Settings) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();

    let stub_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let stub: SocketAddr = stub_listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(stub_github::serve(stub_listener));

    let data_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let postgres = match &settings.database_url {
        Some(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => Some(fresh_postgres(url).await?),
        Some(url) => return Err(format!("BENCH_DATABASE_URL must be a postgres:// URL (got a '{url:.10}…' one)")),
        None => None,
    };
    let mut config = Config::for_data_dir(data_dir.path());
    config.listen = "127.0.0.1:0".parse().expect("an address");
    config.insecure_upstreams = vec![stub.to_string()];
    config.cache_dir = Some(cache_dir()?);
    config.database_url = postgres.as_ref().map(|(url, _)| url.clone());
    let backend = if postgres.is_some() { "postgres" } else { "sqlite" };

    let outcome = run(&settings, config, backend, stub).await;
    if let (Some(url), Some((_, name))) = (&settings.database_url, &postgres) {
        drop_postgres(url, name).await;
    }
    outcome
}

/// Starts the gateway, sets up, runs every level and prints the tables (also
/// of the levels done when one fails), then stops the gateway.
async fn run(settings: &Settings, config: Config, backend: &str, stub: SocketAddr) -> Result<(), String> {
    let started = Instant::now();
    let server = Server::start(config).await.map_err(|e| format!("the gateway did not start: {e}"))?;
    eprintln!("gateway on {} ({backend}), started in {:.2?}", server.addr(), started.elapsed());
    let client = Client::new(format!("http://{}", server.addr()))?;

    let mut results = Vec::new();
    let outcome = async {
        let (agent, permits) = setup(&client, stub, settings.permits, settings.rate_limit).await?;
        let workers = std::thread::available_parallelism().map_or(0, |n| n.get());
        let limit = if settings.rate_limit { "rate limit 1000000/60s" } else { "no rate limit" };
        println!(
            "\noauth3 load bench: {backend}, {workers} cores, README quickstart script, {flow}, \
             {} permit(s), {limit}",
            permits.len(),
            flow = if settings.one_trip { "POST /execute with wait (one trip)" } else { "POST /execute + long-poll" },
        );
        let ctx = Arc::new(Context { client: client.clone(), agent, permits, one_trip: settings.one_trip });
        for &concurrency in &settings.levels {
            let n = settings.n.unwrap_or_else(|| default_n(concurrency));
            run_level(&ctx, concurrency, warmup_n(concurrency)).await?;
            let level = run_level(&ctx, concurrency, n).await?;
            eprintln!("  c={concurrency}: {n} executions in {:.2?}", level.wall);
            results.push(level);
        }
        Ok::<(), String>(())
    }
    .await;
    if !results.is_empty() {
        print_tables(&results);
    }
    let stopped = server.shutdown().await.map_err(|e| format!("shutdown: {e}"));
    outcome.and(stopped)
}

/// A plain-http JSON client with a pool for every concurrent task.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: Arc<str>,
}

impl Client {
    fn new(base: String) -> Result<Client, String> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|e| format!("building the client: {e}"))?;
        Ok(Client { http, base: base.into() })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), String> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| format!("{method} {path}: reading the body: {e}"))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Ok((status, value))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<(StatusCode, Value), String> {
        self.call(reqwest::Method::POST, path, token, Some(&body)).await
    }

    async fn get(&self, path: &str, token: &str) -> Result<(StatusCode, Value), String> {
        self.call(reqwest::Method::GET, path, Some(token), None).await
    }
}

fn expect(what: &str, want: StatusCode, (status, body): (StatusCode, Value)) -> Result<Value, String> {
    if status == want { Ok(body) } else { Err(format!("{what}: expected {want}, got {status}: {body}")) }
}

fn text<'a>(body: &'a Value, field: &str) -> Result<&'a str, String> {
    body[field].as_str().ok_or_else(|| format!("no '{field}' in {body}"))
}

/// An agent, an owner with a fake GITHUB_TOKEN, and `permits` approved permits
/// for the quickstart call on the stub: (agent token, permit ids).
async fn setup(
    client: &Client,
    stub: SocketAddr,
    permits: usize,
    rate_limit: bool,
) -> Result<(String, Vec<String>), String> {
    let signup = |name: &'static str, role: &'static str| async move {
        let body = expect(
            &format!("POST /signup ({role})"),
            StatusCode::CREATED,
            client.post("/signup", None, json!({"name": name, "role": role})).await?,
        )?;
        text(&body, "token").map(str::to_owned)
    };
    let agent = signup("bench-agent", "agent").await?;
    let owner = signup("bench-owner", "owner").await?;
    let secret = json!({"name": "GITHUB_TOKEN", "value": "fake-bench-token-not-a-real-secret"});
    expect("POST /secrets", StatusCode::CREATED, client.post("/secrets", Some(&owner), secret).await?)?;
    let mut capability = json!({
        "name": "github",
        "base_url": format!("http://{stub}"),
        "rules": [{"method": "GET", "path": "/repos/owner/repo/issues"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
        "secrets": ["GITHUB_TOKEN"]
    });
    if rate_limit {
        capability["rate_limit"] = json!({"max_calls": 1_000_000, "window_seconds": 60});
    }
    let mut ids = Vec::with_capacity(permits);
    for _ in 0..permits {
        let request = json!({"description": "load bench: list issues", "capabilities": [capability]});
        let body = expect("POST /permit", StatusCode::CREATED, client.post("/permit", Some(&agent), request).await?)?;
        let (request_id, permit) = (text(&body, "request_id")?, text(&body, "permit_id")?.to_owned());
        let approve =
            client.post(&format!("/approve/{request_id}"), Some(&owner), json!({"action": "approve"})).await?;
        expect("POST /approve", StatusCode::OK, approve)?;
        ids.push(permit);
    }
    Ok((agent, ids))
}

struct Context {
    client: Client,
    agent: String,
    permits: Vec<String>,
    one_trip: bool,
}

/// One measured execution.
struct Sample {
    /// Just before the POST to the completed status response.
    total: Duration,
    /// The POST alone.
    submit: Duration,
    /// Server timestamps and result fields, in ms: queued → started, started → finished,
    /// sandbox run, upstream call.
    queued_ms: f64,
    running_ms: f64,
    sandbox_ms: f64,
    call_ms: f64,
}

fn millis(body: &Value, field: &str) -> f64 {
    body[field]
        .as_str()
        .and_then(|s| humantime::parse_rfc3339(s).ok())
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

async fn execute_once(ctx: &Context, task: usize, seq: usize) -> Result<Sample, String> {
    let action = format!("bench-{seq}-{}", oauth3_gateway::keys::new_id("a").map_err(|e| e.to_string())?);
    let permit = &ctx.permits[task % ctx.permits.len()];
    let mut body = json!({"permit_id": permit, "action_id": action, "code": SCRIPT});
    let start = Instant::now();
    let (status, submit, id) = if ctx.one_trip {
        body["wait"] = json!(60);
        let done = expect("POST /execute", StatusCode::OK, ctx.client.post("/execute", Some(&ctx.agent), body).await?)?;
        let id = text(&done, "request_id")?.to_owned();
        (done, start.elapsed(), id)
    } else {
        let submitted =
            expect("POST /execute", StatusCode::ACCEPTED, ctx.client.post("/execute", Some(&ctx.agent), body).await?)?;
        let submit = start.elapsed();
        let id = text(&submitted, "request_id")?.to_owned();
        let path = format!("/execute/{id}/status?wait=true&timeout=60");
        let status = expect("GET /execute/{id}/status", StatusCode::OK, ctx.client.get(&path, &ctx.agent).await?)?;
        (status, submit, id)
    };
    let total = start.elapsed();
    let result = &status["result"];
    if status["status"] != "completed" || result["success"] != true {
        let hint = if result["calls"][0]["reason"] == "rate_limited" {
            "\n(rate_limited under a limit of 1,000,000 calls a minute: the rate-limit state was contended, \
             see DbRateLimiter in gateway/src/capabilities.rs; --permits 64 or --no-rate-limit work around it)"
        } else {
            ""
        };
        return Err(format!("execution {id} did not complete successfully: {status}{hint}"));
    }
    if !result["stdout"].as_str().is_some_and(|s| s.contains("Flaky test on CI")) {
        return Err(format!("execution {id} printed something unexpected: {status}"));
    }
    let (created, started, finished) =
        (millis(&status, "created_at"), millis(&status, "started_at"), millis(&status, "finished_at"));
    Ok(Sample {
        total,
        submit,
        queued_ms: started - created,
        running_ms: finished - started,
        sandbox_ms: result["duration_ms"].as_f64().unwrap_or(f64::NAN),
        call_ms: result["calls"][0]["duration_ms"].as_f64().unwrap_or(f64::NAN),
    })
}

/// The results of one concurrency level.
struct Level {
    concurrency: usize,
    wall: Duration,
    /// CPU time the process used over the level.
    cpu: Duration,
    samples: Vec<Sample>,
}

/// Runs `n` executions with `concurrency` tasks, each taking the next one until none are left.
async fn run_level(ctx: &Arc<Context>, concurrency: usize, n: usize) -> Result<Level, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let cpu_before = cpu_time();
    let tasks: Vec<_> = (0..concurrency.min(n))
        .map(|task| {
            let (ctx, next) = (Arc::clone(ctx), Arc::clone(&next));
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(n / concurrency + 1);
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= n {
                        return Ok(samples);
                    }
                    match execute_once(&ctx, task, seq).await {
                        Ok(sample) => samples.push(sample),
                        Err(error) => {
                            // The other tasks stop after their current execution.
                            next.store(usize::MAX / 2, Ordering::Relaxed);
                            return Err(error);
                        }
                    }
                }
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(n);
    for task in tasks {
        let task_samples: Result<Vec<Sample>, String> =
            task.await.map_err(|e| format!("a client task panicked: {e}"))?;
        samples.extend(task_samples?);
    }
    let cpu = cpu_time().saturating_sub(cpu_before);
    Ok(Level { concurrency, wall: start.elapsed(), cpu, samples })
}

/// CPU time (user + system) this process has used: the client, the gateway
/// and the stub together. From `/proc/self/stat`, in its 10 ms ticks.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.filter(|v| v.is_finite()).fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 { f64::NAN } else { sum / count as f64 }
}

fn print_tables(levels: &[Level]) {
    println!();
    println!(
        "{:>11} {:>6} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
        "concurrency", "n", "p50 ms", "p99 ms", "mean ms", "max ms", "exec/s", "cpu ms/exec"
    );
    for level in levels {
        let mut totals: Vec<Duration> = level.samples.iter().map(|s| s.total).collect();
        totals.sort();
        let mean_total = mean(totals.iter().map(|&d| ms(d)));
        println!(
            "{:>11} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>12.0} {:>12.2}",
            level.concurrency,
            totals.len(),
            ms(percentile(&totals, 50.0)),
            ms(percentile(&totals, 99.0)),
            mean_total,
            ms(*totals.last().expect("samples")),
            totals.len() as f64 / level.wall.as_secs_f64(),
            ms(level.cpu) / totals.len() as f64,
        );
    }
    println!("cpu: user + system time of this process (client, gateway and stub) per execution");
    println!("goals (2 cores): SQLite p50 <= 1.2 ms at concurrency 1 and >= 1000 exec/s at 64;");
    println!("                 Postgres p50 <= 3 ms at concurrency 1 and >= 600 exec/s at 64");

    println!("\nbreakdown, means in ms (server timestamps have 1 ms resolution; durations are truncated to whole ms):");
    println!(
        "{:>11} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "concurrency", "POST", "wait (rest)", "queued", "running", "sandbox run", "egress call"
    );
    for level in levels {
        let submit = mean(level.samples.iter().map(|s| ms(s.submit)));
        let total = mean(level.samples.iter().map(|s| ms(s.total)));
        println!(
            "{:>11} {:>12.2} {:>12.2} {:>12.2} {:>12.2} {:>12.2} {:>12.2}",
            level.concurrency,
            submit,
            total - submit,
            mean(level.samples.iter().map(|s| s.queued_ms)),
            mean(level.samples.iter().map(|s| s.running_ms)),
            mean(level.samples.iter().map(|s| s.sandbox_ms)),
            mean(level.samples.iter().map(|s| s.call_ms)),
        );
    }
}
