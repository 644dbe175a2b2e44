//! The sandbox end to end: agent JavaScript in the Javy guest runtime, calling
//! out through a test-double `Outbound`.

#[path = "support/calls.rs"]
mod calls;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use oauth3_host::{
    CallError, CallGate, CallRecord, GuestCall, GuestResponse, HostError, Limits, Outbound, Outcome, RunContext,
    RunError, Runtime, RuntimeConfig,
};
use oauth3_policy::{DenyCode, Verdict};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

static RUNTIME: OnceCell<Runtime> = OnceCell::const_new();

async fn runtime() -> &'static Runtime {
    RUNTIME
        .get_or_init(|| async {
            Runtime::new(RuntimeConfig::default().max_instances(16)).await.expect("the runtime to start")
        })
        .await
}

/// Test double: waits `delay`, then answers by path: `/deny` is refused by
/// policy, `/status/N` answers status N, `/binary` bytes, `/empty` 204,
/// `/text` plain text; anything else echoes the call as JSON.
struct Echo {
    delay: Duration,
}

fn record(call: &GuestCall, decision: Verdict, reason: Option<&'static str>, status: Option<u16>) -> CallRecord {
    CallRecord {
        integration: call.integration.clone(),
        method: call.method.clone(),
        url: call.path.clone(),
        decision,
        reason,
        status,
        request_bytes: call.body.as_ref().map_or(0, |b| b.len() as u64),
        response_bytes: 0,
        started_at: SystemTime::now(),
        duration: Duration::ZERO,
        confirmation_id: None,
        audit_entry: None,
    }
}

fn json_response(status: u16, body: Value) -> GuestResponse {
    GuestResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&body).unwrap(),
    }
}

#[async_trait::async_trait]
impl Outbound for Echo {
    async fn call(&self, call: GuestCall, _gate: &CallGate) -> (Result<GuestResponse, CallError>, CallRecord) {
        tokio::time::sleep(self.delay).await;
        if call.path == "/deny" {
            let error = CallError::Denied { code: DenyCode::PathNotAllowed, message: "no rule matches /deny".into() };
            return (Err(error), record(&call, Verdict::Deny, Some("path_not_allowed"), None));
        }
        let response = if let Some(status) = call.path.strip_prefix("/status/") {
            json_response(status.parse().unwrap(), json!({"message": "Not Found"}))
        } else if call.path == "/binary" {
            GuestResponse {
                status: 200,
                headers: vec![("content-type".into(), "image/png".into())],
                body: vec![0x89, b'P', b'N', b'G', 0xff],
            }
        } else if call.path == "/empty" {
            GuestResponse { status: 204, headers: vec![], body: vec![] }
        } else if call.path == "/text" {
            GuestResponse {
                status: 200,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: b"hello".to_vec(),
            }
        } else {
            let body = call.body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
            json_response(
                200,
                json!({
                    "integration": call.integration,
                    "method": call.method,
                    "path": call.path,
                    "query": call.query,
                    "headers": call.headers,
                    "body": body,
                }),
            )
        };
        let status = response.status;
        (Ok(response), record(&call, Verdict::Allow, None, Some(status)))
    }
}

fn echo() -> Arc<dyn Outbound> {
    Arc::new(Echo { delay: Duration::ZERO })
}

async fn run_with(source: &str, outbound: Arc<dyn Outbound>, context: RunContext) -> Outcome {
    let runtime = runtime().await;
    let script = runtime.compile_js(source).await.expect("the script to compile");
    runtime.run(&script, outbound, context).await.expect("a valid run context")
}

async fn run(source: &str) -> Outcome {
    run_with(source, echo(), RunContext::new(["github"])).await
}

fn assert_ok(outcome: &Outcome) {
    assert!(outcome.error.is_none(), "unexpected error {:?}; stderr: {}", outcome.error, outcome.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_world_writes_to_stdout() {
    let outcome = run("console.log('hello, world')").await;
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "hello, world\n");
    assert_eq!(outcome.stderr, "");
    assert!(outcome.fuel_used > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn console_prints_objects_as_json_and_warnings_to_stderr() {
    let outcome = run(
        "console.log('n', 1, {a: [1, 'x'], b: null}); console.info([true]); console.warn({w: 1}); console.error('bad')",
    )
    .await;
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "n 1 {\"a\":[1,\"x\"],\"b\":null}\n[true]\n");
    assert_eq!(outcome.stderr, "{\"w\":1}\nbad\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_args_global_holds_the_runs_args() {
    let context = RunContext::new(["github"]).args(json!({"repo": "o/r", "n": [1, 2]}));
    let outcome = run_with("console.log(args.repo, args.n.length)", echo(), context).await;
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "o/r 2\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn there_is_no_fetch_and_no_timers() {
    let outcome = run(
        "console.log(typeof fetch, typeof setTimeout, typeof setInterval, typeof XMLHttpRequest, typeof WebSocket)",
    )
    .await;
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "undefined undefined undefined undefined undefined\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_returning_json_is_parsed_and_options_are_sent() {
    let outcome = run(r#"
        const r = await github('POST', '/repos/o/r/issues', {
            body: {title: 'hi'},
            query: {state: 'open', labels: ['a', 'b'], per_page: 5},
            headers: {'X-Trace': 't'},
        });
        console.log(r.method, r.path, JSON.stringify(r.query), r.body);
        console.log(JSON.stringify(r.headers));
        const s = await github('PUT', '/x', {body: 'raw', headers: {'Content-Type': 'text/plain'}});
        console.log(s.body, JSON.stringify(s.headers));
    "#)
    .await;
    assert_ok(&outcome);
    assert_eq!(
        outcome.stdout,
        "POST /repos/o/r/issues [[\"state\",\"open\"],[\"labels\",\"a\"],[\"labels\",\"b\"],[\"per_page\",\"5\"]] {\"title\":\"hi\"}\n\
         [[\"X-Trace\",\"t\"],[\"content-type\",\"application/json\"]]\n\
         raw [[\"Content-Type\",\"text/plain\"]]\n"
    );
    assert_eq!(outcome.calls.len(), 2);
    assert_eq!(outcome.calls[0].status, Some(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn text_binary_and_no_content_responses_are_decoded() {
    let outcome = run(r#"
        console.log(await github('GET', '/text'));
        console.log(await github('GET', '/empty'));
        console.log(await github('GET', '/binary'));
    "#)
    .await;
    assert_ok(&outcome);
    assert_eq!(
        outcome.stdout,
        "hello\nnull\n{\"_type\":\"base64\",\"data\":\"iVBOR/8=\",\"content_type\":\"image/png\",\"size\":5}\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_2xx_response_throws_an_error_with_status_and_body() {
    let outcome = run(r#"
        try { await github('GET', '/status/404'); }
        catch (e) { console.log(e instanceof Error, e.status, e.body.message, e.message); }
    "#)
    .await;
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "true 404 Not Found github('GET', '/status/404') returned HTTP 404\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_call_throws_an_error_with_the_deny_code() {
    let outcome = run(r#"
        try { await github('GET', '/deny'); }
        catch (e) { console.log(e.code, e.status, e.message); }
    "#)
    .await;
    assert_ok(&outcome);
    assert_eq!(
        outcome.stdout,
        "path_not_allowed undefined github('GET', '/deny') failed: path_not_allowed: no rule matches /deny\n"
    );
    assert_eq!(outcome.calls[0].decision.as_str(), "deny");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_infinite_loop_is_stopped_while_another_run_proceeds() {
    let runtime = runtime().await;
    let spin = runtime.compile_js("while (true) {}").await.unwrap();
    let hello = runtime.compile_js("console.log('still here')").await.unwrap();
    let limits = Limits::default().wall_time(Duration::from_millis(500));
    let started = Instant::now();
    let spinning = {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.run(&spin, echo(), RunContext::new(["github"]).limits(limits)).await })
    };
    let other = runtime.run(&hello, echo(), RunContext::new(["github"])).await.unwrap();
    assert_ok(&other);
    assert_eq!(other.stdout, "still here\n");
    let spun = spinning.await.unwrap().unwrap();
    assert!(matches!(spun.error, Some(RunError::OutOfFuel { .. } | RunError::Timeout { .. })), "got {:?}", spun.error);
    assert!(started.elapsed() < Duration::from_secs(10));

    let fuel =
        run_with("while (true) {}", echo(), RunContext::new(["github"]).limits(Limits::default().fuel(10_000_000)))
            .await;
    assert!(matches!(fuel.error, Some(RunError::OutOfFuel { limit: 10_000_000 })), "got {:?}", fuel.error);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_awaiting_a_slow_call_times_out() {
    let slow: Arc<dyn Outbound> = Arc::new(Echo { delay: Duration::from_secs(30) });
    let limits = Limits::default().wall_time(Duration::from_millis(200));
    let outcome = run_with("await github('GET', '/x')", slow, RunContext::new(["github"]).limits(limits)).await;
    assert!(matches!(outcome.error, Some(RunError::Timeout { .. })), "got {:?}", outcome.error);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_hits_the_memory_limit() {
    let limits = Limits::default().memory_bytes(32 << 20);
    let outcome = run_with(
        "const a = []; while (true) { a.push('x'.repeat(1 << 16) + a.length); }",
        echo(),
        RunContext::new(["github"]).limits(limits),
    )
    .await;
    assert!(matches!(outcome.error, Some(RunError::MemoryLimit { .. })), "got {:?}", outcome.error);
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_recursion_is_a_stack_overflow() {
    let outcome = run("function f(n) { return f(n + 1) + 1; } f(0);").await;
    assert!(matches!(outcome.error, Some(RunError::StackOverflow)), "got {:?}", outcome.error);
}

#[tokio::test(flavor = "multi_thread")]
async fn flooding_stdout_hits_the_output_limit() {
    let limits = Limits::default().stdout_bytes(10_000);
    let outcome =
        run_with("while (true) console.log('flood')", echo(), RunContext::new(["github"]).limits(limits)).await;
    assert!(
        matches!(outcome.error, Some(RunError::OutputLimit { stream: "stdout", limit: 10_000 })),
        "got {:?}",
        outcome.error
    );
    assert_eq!(outcome.stdout.len(), 10_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uncaught_exception_reports_its_message_and_location() {
    let outcome = run("const x = 1;\nfunction boom() { throw new TypeError('bad thing'); }\nboom();").await;
    match outcome.error {
        Some(RunError::Uncaught { message, stack, line, .. }) => {
            assert_eq!(message, "TypeError: bad thing");
            assert!(stack.contains("boom"), "stack: {stack}");
            assert_eq!(line, Some(2));
        }
        other => panic!("got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_promise_reports_its_message() {
    let awaited = run("await Promise.reject(new Error('nope'))").await;
    assert!(
        matches!(&awaited.error, Some(RunError::Uncaught { message, .. }) if message == "Error: nope"),
        "got {:?}",
        awaited.error
    );
    let failing_call = run("await github('GET', '/deny')").await;
    assert!(
        matches!(&failing_call.error, Some(RunError::Uncaught { message, .. }) if message.contains("path_not_allowed")),
        "got {:?}",
        failing_call.error
    );
    let floating = run("Promise.reject(new Error('floating')); console.log('done')").await;
    assert!(
        matches!(&floating.error, Some(RunError::Uncaught { message, .. }) if message.contains("floating")),
        "got {:?}",
        floating.error
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_syntax_error_is_a_typed_error_with_line_and_column() {
    let error = runtime().await.compile_js("const a = 1;\nconst b = ;\n").await.unwrap_err();
    match error {
        HostError::Syntax { message, line, column } => {
            assert!(message.starts_with("SyntaxError"), "message: {message}");
            assert_eq!(line, 2);
            assert!(column > 0);
        }
        other => panic!("got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn promise_all_runs_calls_concurrently() {
    let slow: Arc<dyn Outbound> = Arc::new(Echo { delay: Duration::from_millis(100) });
    let runtime = runtime().await;
    let script = runtime
        .compile_js(
            "const rs = await Promise.all([github('GET', '/a'), github('GET', '/b'), github('GET', '/c')]);\n\
             console.log(rs.map(r => r.path).join(','))",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let outcome = runtime.run(&script, slow, RunContext::new(["github"])).await.unwrap();
    let elapsed = started.elapsed();
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "/a,/b,/c\n");
    assert_eq!(outcome.calls.len(), 3);
    assert!(elapsed < Duration::from_millis(250), "three 100 ms calls took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_calls_per_run_limit_ends_the_run() {
    let limits = Limits::default().max_calls(2);
    let outcome = run_with(
        "for (let i = 0; i < 5; i++) { try { await github('GET', '/x'); } catch (e) {} } console.log('unreachable')",
        echo(),
        RunContext::new(["github"]).limits(limits),
    )
    .await;
    assert!(matches!(outcome.error, Some(RunError::CallLimit { limit: 2 })), "got {:?}", outcome.error);
    assert_eq!(outcome.stdout, "");
    assert_eq!(outcome.calls.len(), 3);
    assert_eq!(outcome.calls[2].reason, Some("call_limit"));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_runs_integrations_are_defined() {
    let outcome = run_with(
        "console.log(typeof github, typeof slack, typeof linear)",
        echo(),
        RunContext::new(["github", "linear"]),
    )
    .await;
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "function undefined function\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_integration_name_is_refused() {
    let runtime = runtime().await;
    let script = runtime.compile_js("1").await.unwrap();
    assert!(runtime.run(&script, echo(), RunContext::new(["not a name"])).await.is_err());
    assert!(runtime.run(&script, echo(), RunContext::new(["console"])).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_scripts_are_cached_by_source_hash() {
    let runtime = runtime().await;
    let a = runtime.compile_js("console.log(1)").await.unwrap();
    let b = runtime.compile_js("console.log(1)").await.unwrap();
    assert_eq!(a.source_hash(), b.source_hash());
    assert_eq!(a.source_hash().len(), 64);
}

/// Behaves as egress does around a run's end: `prepare` (rate limit,
/// secrets) is abandoned when the gate closes, the gate is checked right
/// before sending, and a call once sent takes `on_wire` and completes.
/// Records when each call was sent and what the sandbox reported refused.
struct Wire {
    prepare: Duration,
    on_wire: Duration,
    sent: std::sync::Mutex<Vec<Instant>>,
    reported: std::sync::atomic::AtomicU32,
}

impl Wire {
    fn new(prepare: Duration, on_wire: Duration) -> Arc<Wire> {
        Arc::new(Wire { prepare, on_wire, sent: Default::default(), reported: Default::default() })
    }

    fn sent(&self) -> Vec<Instant> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Outbound for Wire {
    async fn call(&self, call: GuestCall, gate: &CallGate) -> (Result<GuestResponse, CallError>, CallRecord) {
        let prepared = self.prepare.is_zero()
            || tokio::select! {
                biased;
                () = gate.closed() => false,
                () = tokio::time::sleep(self.prepare) => true,
            };
        if !prepared || gate.check().is_err() {
            return (Err(CallError::RunEnded), record(&call, Verdict::Deny, Some("run_ended"), None));
        }
        self.sent.lock().unwrap().push(Instant::now());
        tokio::time::sleep(self.on_wire).await;
        (Ok(json_response(200, json!({}))), record(&call, Verdict::Allow, None, Some(200)))
    }

    async fn refused(&self, _record: &CallRecord) {
        self.reported.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_on_the_wire_when_the_run_is_cut_off_finish_before_the_outcome() {
    let wire = Wire::new(Duration::ZERO, Duration::from_millis(300));
    let limits = Limits::default().wall_time(Duration::from_millis(100));
    // One call the run waits on, one it never awaits; then one it never
    // awaits while it spins.
    for code in ["github('GET', '/a'); await github('GET', '/b');", "github('GET', '/c'); for (;;) {}"] {
        let outcome = run_with(code, wire.clone(), RunContext::new(["github"]).limits(limits)).await;
        assert!(matches!(outcome.error, Some(RunError::Timeout { .. })), "got {:?}", outcome.error);
        assert!(outcome.calls.iter().all(|c| c.status == Some(200)), "{:?}", outcome.calls);
        assert!(outcome.duration >= Duration::from_millis(300), "the outcome waited for the calls on the wire");
    }
    assert_eq!(wire.sent().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_not_yet_sent_when_the_run_ends_is_never_sent() {
    let wire = Wire::new(Duration::from_millis(200), Duration::ZERO);
    // The run is cut off while the call is still preparing (a rate limit, a secret).
    let limits = Limits::default().wall_time(Duration::from_millis(100));
    let outcome =
        run_with("github('GET', '/a'); for (;;) {}", wire.clone(), RunContext::new(["github"]).limits(limits)).await;
    assert!(matches!(outcome.error, Some(RunError::Timeout { .. })), "got {:?}", outcome.error);
    assert_eq!(outcome.calls.len(), 1);
    assert_eq!(outcome.calls[0].reason, Some("run_ended"));
    assert_eq!(outcome.calls[0].decision.as_str(), "deny");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(wire.sent().is_empty(), "a call left after its run ended");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_past_the_call_limit_sends_nothing_after_the_run_ends() {
    let wire = Wire::new(Duration::from_millis(5), Duration::from_millis(20));
    let limits = Limits::default().max_calls(50).max_concurrent_calls(8);
    let code =
        "const all = []; for (let i = 0; i < 10000; i++) all.push(github('GET', '/x/' + i)); await Promise.all(all);";
    let outcome = run_with(code, wire.clone(), RunContext::new(["github"]).limits(limits)).await;
    let ended = Instant::now();
    assert!(matches!(outcome.error, Some(RunError::CallLimit { limit: 50 })), "got {:?}", outcome.error);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = wire.sent();
    assert!(
        sent.iter().all(|at| *at < ended),
        "{} of {} calls left after the run ended",
        sent.iter().filter(|at| **at >= ended).count(),
        sent.len()
    );
    // 50 started (each sent or refused at the gate) and the one past the limit.
    assert_eq!(outcome.calls.len(), 51, "{:?}", outcome.calls);
    let sent_records = outcome.calls.iter().filter(|c| c.status.is_some()).count();
    assert_eq!(sent_records, sent.len(), "every call sent is in the outcome");
    calls::unsent_calls_were_refused_at_the_end(&outcome.calls);
    assert_eq!(wire.reported.load(std::sync::atomic::Ordering::SeqCst), 1, "the sandbox's own refusal is reported");
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_a_run_leaves_in_its_slot_is_seen_by_the_next_run_there() {
    // One instance slot, so every run reuses it; the pages a run wrote stay
    // resident between runs (keep-resident) and must be reset all the same,
    // within the part kept resident and past it.
    let runtime = Runtime::new(RuntimeConfig::default().max_instances(1)).await.unwrap();
    let writer = runtime
        .compile_js(
            "globalThis.leftover = 'from the last run';
             Object.prototype.polluted = true;
             const big = new Uint8Array(8 << 20); big.fill(7); globalThis.kept = big;
             console.log(typeof leftover, big[(8 << 20) - 1]);",
        )
        .await
        .unwrap();
    let reader = runtime
        .compile_js("console.log(typeof globalThis.leftover, typeof globalThis.kept, ({}).polluted === undefined)")
        .await
        .unwrap();
    for _ in 0..3 {
        let wrote = runtime.run(&writer, echo(), RunContext::new(["github"])).await.unwrap();
        assert_ok(&wrote);
        assert_eq!(wrote.stdout, "string 7\n");
        let read = runtime.run(&reader, echo(), RunContext::new(["github"])).await.unwrap();
        assert_ok(&read);
        assert_eq!(read.stdout, "undefined undefined true\n");
    }
}
