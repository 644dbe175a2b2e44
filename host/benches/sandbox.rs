//! Sandbox benchmarks with real parts only: the real [`Runtime`] (Javy guest
//! runtime in wasmtime), the real [`Egress`] and a real HTTP stub upstream on
//! 127.0.0.1. Prints one table of latencies, start-up costs and the memory of
//! 1,000 concurrent runs, each against its goal.
//!
//! `cargo bench -p oauth3-host --bench sandbox [-- SECTION...]` (sections:
//! startup, hello, calls, egress, compile, permit, component, scrub,
//! concurrent; `component` needs OAUTH3_BENCH_COMPONENT=path.wasm). Everything runs on a
//! 2-worker tokio runtime. Peak RSS of the concurrent batches is `VmHWM`
//! after resetting it (`/proc/self/clear_refs`). The stub listens with
//! tokio's default backlog (128), so 1,000 new connections at once overflow
//! it and the dropped ones wait a 1 s SYN retransmit: the batches are run
//! with new connections and again with the pooled keep-alive ones.

#[path = "../tests/support/stub.rs"]
mod stub;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use oauth3_host::{
    CallContext, Egress, EgressConfig, GuestCall, Limits, MemoryConfirmations, MemoryRateLimiter, NoAudit, Outbound,
    RunContext, Runtime, RuntimeConfig, Scrubber, StaticSecrets,
};
use oauth3_policy::{CompileOptions, CompiledPermit, PermitSpec};
use serde_json::json;
use stub::Stub;

const HELLO: &str = "console.log('hello')";
const TWO_CALLS: &str = "await github('GET', '/repos/o/r/issues'); await github('GET', '/repos/o/r/issues');";
const SLEEP: &str = "await github('GET', '/sleep/1000');";
const SMALL: &str = "const issues = await github('GET', '/repos/o/r/issues');\n\
                     for (const issue of issues) { console.log(issue.number, issue.title); }";

const RUNS: usize = 2000;
const WARMUP: usize = 200;
const CONCURRENT: usize = 1000;

/// One line of the table.
struct Row {
    what: String,
    measured: String,
    goal: &'static str,
}

/// Everything a run needs besides the runtime: the egress, permit and secrets.
struct World {
    stub: Stub,
    egress: Arc<Egress>,
    permit: Arc<CompiledPermit>,
    secrets: Arc<StaticSecrets>,
}

impl World {
    async fn new() -> World {
        let stub = Stub::start().await;
        let spec = PermitSpec::from_value(json!({"version": 1, "integrations": [{
            "name": "github",
            "base_url": stub.base_url(),
            "rules": [
                {"method": "GET", "path": "/repos/o/r/issues"},
                {"method": "GET", "path": "/sleep/*"}
            ],
            "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
            "secrets": ["GITHUB_TOKEN"]
        }]}))
        .expect("a valid permit spec");
        let insecure = [stub.host_port().parse().expect("host:port")].into();
        let permit = spec
            .compile(&CompileOptions { insecure_upstreams: insecure, ..Default::default() })
            .expect("the permit to compile");
        let config = EgressConfig {
            insecure_upstreams: [stub.host_port().parse().expect("host:port")].into(),
            ..Default::default()
        };
        let egress = Egress::new(
            config,
            Arc::new(MemoryRateLimiter::default()),
            Arc::new(NoAudit),
            Arc::new(MemoryConfirmations::default()),
        )
        .expect("the egress client");
        World {
            stub,
            egress: Arc::new(egress),
            permit: Arc::new(permit),
            secrets: Arc::new(StaticSecrets::default().with("GITHUB_TOKEN", "fake_bench_token")),
        }
    }

    fn context_for(&self, execution: usize) -> CallContext {
        CallContext {
            permit_id: "bench-permit".into(),
            execution_id: format!("exec-{execution}"),
            permit: Arc::clone(&self.permit),
            secrets: self.secrets.clone(),
        }
    }

    /// The run's only way out: egress bound to one execution.
    fn outbound(&self, execution: usize) -> Arc<dyn Outbound> {
        Arc::new(self.egress.bind(self.context_for(execution)))
    }

    fn context(&self, limits: Limits) -> RunContext {
        RunContext::for_permit(&self.permit).limits(limits)
    }
}

/// A permit with one integration, `name`.
fn permit_named(name: &str) -> CompiledPermit {
    let spec = json!({"version": 1, "integrations": [
        {"name": name, "base_url": format!("https://{}.example.com", name.replace('_', "-")), "rules": [{"method": "GET", "path": "/x"}]}
    ]});
    PermitSpec::from_value(spec).expect("a spec").compile(&CompileOptions::default()).expect("a permit")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 { format!("{us:.1} µs") } else { format!("{us:.0} µs") }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn p50_p99(mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!("p50 {} / p99 {}", micros(percentile(&samples, 0.5)), micros(percentile(&samples, 0.99)))
}

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    percentile(&samples, 0.5)
}

/// A field of `/proc/self/status` in kB (`VmRSS`, `VmHWM`).
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

/// `TcpExt: ListenDrops` of this network namespace (`/proc/net/netstat`).
fn listen_drops() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else { return 0 };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "ListenDrops")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS (Linux ≥ 4.0).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn fresh_dir(label: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let dir = std::env::temp_dir().join(format!("oauth3-bench-{label}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

async fn sequential_runs(runtime: &Runtime, world: &World, source: &str) -> Vec<Duration> {
    let script = runtime.compile_js(source).await.expect("the script to compile");
    let mut samples = Vec::with_capacity(RUNS);
    for i in 0..WARMUP + RUNS {
        let started = Instant::now();
        let outcome =
            runtime.run(&script, world.outbound(i), world.context(Limits::default())).await.expect("a valid context");
        let elapsed = started.elapsed();
        assert!(outcome.is_ok(), "run failed: {:?} {}", outcome.error, outcome.stderr);
        if i >= WARMUP {
            samples.push(elapsed);
        }
    }
    samples
}

/// What [`concurrent_runs`] measured.
struct Concurrent {
    wall: Duration,
    failures: usize,
    /// When the last run's call reached Egress, from the start.
    last_call: Duration,
    /// The slowest Egress call (1 s of it is the upstream's sleep).
    slowest_call: Duration,
    /// Connections the stub's listen queue dropped (each costs the client a
    /// 1 s SYN retransmit).
    listen_drops: u64,
    rss_before: u64,
    rss_peak: u64,
    rss_after: u64,
}

/// 1,000 runs at once, each awaiting a 1 s upstream: wall time, failures and
/// peak RSS.
async fn concurrent_runs(runtime: &Runtime, world: &Arc<World>) -> Concurrent {
    let script = runtime.compile_js(SLEEP).await.expect("the script to compile");
    // One warm-up run so lazily built state (connection pool, code) is there.
    let warm = runtime.run(&script, world.outbound(0), world.context(Limits::default())).await.expect("context");
    assert!(warm.is_ok(), "warm-up failed: {:?}", warm.error);

    let drops_before = listen_drops();
    let rss_before = status_kb("VmRSS");
    let reset = reset_peak_rss();
    let limits = Limits::default().wall_time(Duration::from_secs(30));
    let t0 = SystemTime::now();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let runtime = runtime.clone();
            let world = Arc::clone(world);
            let script = script.clone();
            tokio::spawn(async move { runtime.run(&script, world.outbound(i), world.context(limits)).await })
        })
        .collect();
    let mut failures = 0;
    let mut first_failure = None;
    let mut last_call = Duration::ZERO;
    let mut slowest_call = Duration::ZERO;
    for task in tasks {
        let outcome = match task.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                failures += 1;
                first_failure.get_or_insert_with(|| e.to_string());
                continue;
            }
            Err(e) => {
                failures += 1;
                first_failure.get_or_insert_with(|| e.to_string());
                continue;
            }
        };
        for call in &outcome.calls {
            last_call = last_call.max(call.started_at.duration_since(t0).unwrap_or_default());
            slowest_call = slowest_call.max(call.duration);
        }
        if !outcome.is_ok() {
            failures += 1;
            first_failure.get_or_insert_with(|| format!("{:?}", outcome.error));
        }
    }
    let wall = started.elapsed();
    if let Some(failure) = first_failure {
        eprintln!("concurrent runs: {failures} failed, first: {failure}");
    }
    Concurrent {
        wall,
        failures,
        last_call,
        slowest_call,
        listen_drops: listen_drops().saturating_sub(drops_before),
        rss_before,
        rss_peak: if reset { status_kb("VmHWM") } else { 0 },
        rss_after: status_kb("VmRSS"),
    }
}

/// Whether a section was asked for: `cargo bench ... -- hello calls` runs
/// only those (sections: startup, hello, calls, egress, compile, scrub, concurrent);
/// no names runs all.
fn wants(section: &str) -> bool {
    let names: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    names.is_empty() || names.iter().any(|n| n == section)
}

async fn bench() -> Vec<Row> {
    let mut rows = Vec::new();
    let world = Arc::new(World::new().await);
    let cache = fresh_dir("cache");

    // 4. Runtime::new, cold (empty cache: Wizer snapshot + Cranelift) and warm.
    let started = Instant::now();
    let runtime = Runtime::new(RuntimeConfig::default().cache_dir(&cache)).await.expect("the runtime to start");
    let cold_new = started.elapsed();
    if wants("startup") {
        let mut warm_new = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let again = Runtime::new(RuntimeConfig::default().cache_dir(&cache)).await.expect("the runtime to start");
            warm_new.push(started.elapsed());
            drop(again);
        }
        rows.push(Row { what: "Runtime::new, cold (empty cache dir)".into(), measured: millis(cold_new), goal: "-" });
        rows.push(Row { what: "Runtime::new, warm (p50 of 5)".into(), measured: millis(p50(warm_new)), goal: "-" });
    }

    // 1. Hello world.
    if wants("hello") {
        let hello = sequential_runs(&runtime, &world, HELLO).await;
        rows.push(Row {
            what: format!("run: hello world ({RUNS} seq.)"),
            measured: p50_p99(hello),
            goal: "p50 ≤ 150 µs",
        });
    }

    // 2. Two sequential calls through Egress to the zero-latency stub.
    if wants("calls") {
        let calls = sequential_runs(&runtime, &world, TWO_CALLS).await;
        rows.push(Row {
            what: format!("run: 2 egress calls ({RUNS} seq.)"),
            measured: p50_p99(calls),
            goal: "p50 ≤ 400 µs",
        });
    }

    // For reference: one Egress::call to the same stub, no sandbox.
    if wants("egress") {
        let context = world.context_for(0);
        let call = GuestCall {
            integration: "github".into(),
            method: "GET".into(),
            path: "/repos/o/r/issues".into(),
            ..Default::default()
        };
        let mut samples = Vec::with_capacity(RUNS);
        for i in 0..WARMUP + RUNS {
            let started = Instant::now();
            let (result, _) = world.egress.call(&context, &call).await;
            let elapsed = started.elapsed();
            assert!(result.is_ok(), "call failed: {result:?}");
            if i >= WARMUP {
                samples.push(elapsed);
            }
        }
        rows.push(Row {
            what: "  (reference: 1 Egress::call, no sandbox)".into(),
            measured: p50_p99(samples),
            goal: "-",
        });

        // The floor: the same request with a plain reqwest client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().no_proxy().build().expect("a reqwest client");
        let url = format!("{}/repos/o/r/issues", world.stub.base_url());
        let mut samples = Vec::with_capacity(RUNS);
        for i in 0..WARMUP + RUNS {
            let started = Instant::now();
            let response = client.get(&url).send().await.expect("the stub to answer");
            response.bytes().await.expect("the stub's body");
            if i >= WARMUP {
                samples.push(started.elapsed());
            }
        }
        rows.push(Row {
            what: "  (reference: 1 plain reqwest GET, same stub)".into(),
            measured: p50_p99(samples),
            goal: "-",
        });
    }

    // 3. Compile: cold (unique sources) and warm (in-memory cache hit).
    if wants("compile") {
        let mut cold = Vec::new();
        for i in 0..500 {
            let source = format!("{SMALL}\n// {i}");
            let started = Instant::now();
            runtime.compile_js(&source).await.expect("the script to compile");
            cold.push(started.elapsed());
        }
        let mut warm = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            runtime.compile_js(SMALL).await.expect("the script to compile");
            warm.push(started.elapsed());
        }
        rows.push(Row {
            what: "compile small script, cold (p50 of 500)".into(),
            measured: micros(p50(cold)),
            goal: "-",
        });
        rows.push(Row { what: "compile small script, warm (cached)".into(), measured: micros(p50(warm)), goal: "-" });
    }

    // 7. A new permit's JavaScript component (composed with the permit's
    // interfaces and compiled), as approval prepares it: the first with the
    // QuickJS functions not yet compiled on this cache dir, then new
    // integration names each time, the functions in the incremental cache.
    if wants("permit") {
        let mut ready = Vec::new();
        for letter in 'a'..='k' {
            let permit = permit_named(&format!("svc_{letter}"));
            let started = Instant::now();
            runtime.permit_component(&permit).await.expect("the permit's component");
            ready.push(started.elapsed());
        }
        let first = ready.remove(0);
        rows.push(Row {
            what: "new permit's JS component, first on the machine".into(),
            measured: millis(first),
            goal: "-",
        });
        rows.push(Row {
            what: "new permit's JS component ready (p50 of 10)".into(),
            measured: millis(p50(ready)),
            goal: "p50 ≤ 500 ms",
        });
    }
    // 8. An agent's own component (OAUTH3_BENCH_COMPONENT=path, e.g. the
    // ~120 KB examples/rust-component build): first load (checked and
    // compiled) and then cached, and one run of it returning at once.
    if let Some(path) = std::env::var_os("OAUTH3_BENCH_COMPONENT").filter(|_| wants("component")) {
        let bytes = std::fs::read(&path).expect("OAUTH3_BENCH_COMPONENT to be readable");
        let permit = &world.permit;
        let started = Instant::now();
        runtime.load_component(&bytes, permit).await.expect("the component to load");
        let first = started.elapsed();
        let mut cached = Vec::new();
        for _ in 0..100 {
            let started = Instant::now();
            runtime.load_component(&bytes, permit).await.expect("the component to load");
            cached.push(started.elapsed());
        }
        let kb = bytes.len() / 1024;
        rows.push(Row {
            what: format!("load a {kb} KB component, first (compile)"),
            measured: millis(first),
            goal: "-",
        });
        rows.push(Row { what: format!("load a {kb} KB component, cached"), measured: micros(p50(cached)), goal: "-" });
    }
    drop(runtime);

    // 6. Scrubbing a response (every Egress::call does it once per body).
    if wants("scrub") {
        rows.extend(scrub_rows());
    }

    // 5. 1,000 concurrent runs each awaiting a 1 s upstream, with the
    // pooling allocator (the default) and without it. With pooling: first
    // on slots never used (each page a run writes is a copy-on-write fault),
    // then on the slots that batch warmed (their written pages kept
    // resident); each with no upstream connections open (a fresh stub and
    // egress), then again with the 1,000 keep-alive connections the batch
    // before left in Egress's pool.
    if wants("concurrent") {
        for pooling in [true, false] {
            let label = if pooling { "pooling" } else { "on-demand" };
            let config = RuntimeConfig::default().cache_dir(&cache).max_instances(CONCURRENT as u32).pooling(pooling);
            let runtime = match Runtime::new(config).await {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("Runtime::new(max_instances {CONCURRENT}, {label}) failed: {e}");
                    rows.push(Row {
                        what: format!("{CONCURRENT} concurrent runs ({label})"),
                        measured: "Runtime::new failed".into(),
                        goal: "-",
                    });
                    continue;
                }
            };
            let batches: &[(&str, bool)] = if pooling {
                &[("cold slots, new conns", true), ("warm slots, new conns", true), ("warm slots, pooled conns", false)]
            } else {
                &[("new conns", true), ("pooled conns", false)]
            };
            let mut world = Arc::new(World::new().await);
            for &(batch, fresh) in batches {
                if fresh {
                    // A fresh stub and egress: no connections left over from before.
                    world = Arc::new(World::new().await);
                }
                let c = concurrent_runs(&runtime, &world).await;
                rows.push(Row {
                    what: format!("{CONCURRENT} conc. × 1 s call: wall ({label}, {batch})"),
                    measured: format!("{} ({} failed)", millis(c.wall), c.failures),
                    goal: "≤ 1.5 s",
                });
                rows.push(Row {
                    what: "  last call reached Egress at / slowest call".into(),
                    measured: format!("{} / {}", millis(c.last_call), millis(c.slowest_call)),
                    goal: "-",
                });
                rows.push(Row {
                    what: "  stub listen-queue drops (1 s SYN retry each)".into(),
                    measured: c.listen_drops.to_string(),
                    goal: "-",
                });
                rows.push(Row {
                    what: "  RSS before → peak → after".into(),
                    measured: format!("{} → {} → {}", mb(c.rss_before), mb(c.rss_peak), mb(c.rss_after)),
                    goal: "peak ≤ 600 MB",
                });
            }
        }
    }

    let _ = std::fs::remove_dir_all(&cache);
    rows
}

/// The scrubber over GitHub-like issue lists (URLs with query strings, JSON
/// escapes, HTML entities: the escapes its decoded views undo), clean and
/// with the token reflected JSON-escaped ten times.
fn scrub_rows() -> Vec<Row> {
    let token = "ghp_fake0123456789abcdefghijklmnopqrstuv";
    let bearer = format!("Bearer {token}");
    let scrubber = Scrubber::new([token, bearer.as_str()].into_iter());
    let issue = r#"{"url":"https:\/\/api.example.com\/repos\/o\/r\/issues\/1?per_page=100&page=2","title":"Caf\u00e9 &amp; bar 100% done","body":"line\nline","labels":[{"name":"bug","color":"d73a4a"}],"user":{"login":"octocat","avatar_url":"https://avatars.example.com/u/1?v=4"}},"#;
    let escaped: String = bearer.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
    let mut rows = Vec::new();
    let mut builds = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        std::hint::black_box(Scrubber::new([token, bearer.as_str()].into_iter()));
        builds.push(started.elapsed());
    }
    rows.push(Row {
        what: "Scrubber::new: token + injected value (per call)".into(),
        measured: micros(p50(builds)),
        goal: "-",
    });
    for (label, size) in [("64 KiB", 64 << 10), ("1 MiB", 1 << 20)] {
        let mut clean = b"[".to_vec();
        while clean.len() < size {
            clean.extend_from_slice(issue.as_bytes());
        }
        let mut echoed = clean.clone();
        for i in 0..10 {
            let at = echoed.len() * i / 10;
            let at = echoed[..at].iter().rposition(|&b| b == b'{').unwrap_or(0);
            echoed.splice(at..at, format!(r#"{{"authorization":"{escaped}"}},"#).into_bytes());
        }
        for (kind, body) in [("clean", &clean), ("10 escaped echoes", &echoed)] {
            let runs = if size > 100_000 { 30 } else { 300 };
            let mut times = Vec::new();
            for _ in 0..runs {
                let started = Instant::now();
                let out = scrubber.scrub_bytes(body);
                times.push(started.elapsed());
                assert_eq!(out.is_some(), kind != "clean", "{kind}");
            }
            let p50 = p50(times);
            let mb_s = body.len() as f64 / p50.as_secs_f64() / (1 << 20) as f64;
            rows.push(Row {
                what: format!("scrub {label} JSON, {kind} (p50 of {runs})"),
                measured: format!("{} ({mb_s:.0} MiB/s)", micros(p50)),
                goal: "-",
            });
        }
    }
    rows
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
    let started = Instant::now();
    // On a worker, as a request handler would be: the main thread only waits.
    let rows = runtime.block_on(async { tokio::spawn(bench()).await.expect("the bench to finish") });
    let width = rows.iter().map(|r| r.what.chars().count()).max().unwrap_or(0);
    let measured = rows.iter().map(|r| r.measured.chars().count()).max().unwrap_or(0);
    println!();
    println!("{:<width$}  {:<measured$}  goal", "oauth3-host sandbox", "measured");
    println!("{}", "-".repeat(width + measured + 18));
    for row in &rows {
        println!("{:<width$}  {:<measured$}  {}", row.what, row.measured, row.goal);
    }
    println!("(total {:.1} s)", started.elapsed().as_secs_f64());
}
