//! Agent JavaScript in the real sandbox, calling a real upstream on 127.0.0.1
//! through the real egress: the guest never holds the credential, and every
//! bypass of the earlier implementation fails from inside a script too.

#[path = "support/calls.rs"]
mod calls;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/stub.rs"]
mod stub;
#[path = "support/world.rs"]
mod world;

use std::time::{Duration, Instant};

use base64::Engine;
use oauth3_host::{Limits, Outcome, RunContext, RunError};
use serde_json::json;
use stub::Stub;
use world::{World, runtime};

async fn world(rate_limit: Option<(u32, u32)>) -> World {
    let extra = match rate_limit {
        Some((max_calls, window_seconds)) => {
            json!({"rate_limit": {"max_calls": max_calls, "window_seconds": window_seconds}})
        }
        None => json!({}),
    };
    World::start(extra).await
}

impl World {
    async fn run(&self, source: &str) -> Outcome {
        self.run_as("exec", source).await
    }

    async fn run_as(&self, execution_id: &str, source: &str) -> Outcome {
        let runtime = runtime().await;
        let script = runtime.compile_js(source).await.unwrap();
        let run = RunContext::for_permit(&self.permit).limits(Limits::default().wall_time(Duration::from_secs(10)));
        let outcome = runtime.run(&script, self.outbound(execution_id), run).await.unwrap();
        assert!(!outcome.stdout.contains(&self.token) && !outcome.stderr.contains(&self.token), "{outcome:?}");
        outcome
    }
}

fn assert_ok(outcome: &Outcome) {
    assert!(outcome.error.is_none(), "{:?}\nstderr: {}", outcome.error, outcome.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quickstart_script_lists_issues_with_the_owners_token() {
    let w = world(None).await;
    let outcome = w.run("const r = await github('GET','/repos/o/r/issues'); console.log(JSON.stringify(r));").await;
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "[{\"number\":1,\"title\":\"first\"}]\n");
    let seen = w.stub.last().unwrap();
    assert!(seen.headers.contains(&("authorization".into(), format!("Bearer {}", w.token))));
    assert_eq!(outcome.calls.len(), 1);
    assert_eq!((outcome.calls[0].decision.as_str(), outcome.calls[0].status), ("allow", Some(200)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reflecting_upstream_does_not_leak_the_secret_into_stdout() {
    let w = world(None).await;
    let outcome = w.run("const r = await github('GET', '/echo'); console.log(JSON.stringify(r));").await;
    assert_ok(&outcome);
    assert!(outcome.stdout.contains("[REDACTED]"), "{}", outcome.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reflecting_upstream_cannot_hand_the_secret_back_in_any_reversible_encoding() {
    let w = world(None).await;
    // Each reflection decoded the way an agent would, raw text beside it.
    let outcome = w
        .run(
            r#"const raw = {}, out = {};
               for (const e of ['json-unicode', 'json-mixed', 'html', 'percent', 'hex', 'basic', 'utf16', 'gzip-file', 'upper'])
                 raw[e] = await github('GET', '/reflect/' + e);
               out.json_unicode = raw['json-unicode'].auth;
               out.json_mixed = raw['json-mixed'].auth;
               out.html = raw.html.replace(/&#(\d+);/g, (_, d) => String.fromCharCode(+d));
               out.percent = decodeURIComponent(raw.percent);
               out.hex = (raw.hex.match(/[0-9A-F]{2}/g) || []).map(h => String.fromCharCode(parseInt(h, 16))).join('');
               console.log(JSON.stringify({raw, out}));"#,
        )
        .await;
    assert_ok(&outcome);
    let printed: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
    let token = &w.token;
    for (name, value) in printed["out"].as_object().unwrap() {
        assert!(!value.to_string().contains(token.as_str()), "{name} decoded to the token");
    }
    let raw = &printed["raw"];
    for (name, value) in raw.as_object().unwrap() {
        let text = value.to_string();
        assert!(text.contains("[REDACTED]") || text.contains("W1JFREFDVEVEXQ"), "{name} was not redacted: {text}");
    }
    // What an agent would decode from the base64 and binary answers.
    let b64 = base64::engine::general_purpose::STANDARD;
    let basic = b64.decode(raw["basic"].as_str().unwrap().replace("[REDACTED]", "")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&basic).contains(token.as_str()));
    for binary in ["utf16", "gzip-file"] {
        let data = raw[binary]["data"].as_str().map(|d| b64.decode(d).unwrap()).unwrap_or_default();
        assert_eq!(data, b"[REDACTED]", "{binary}: the whole body is withheld");
    }
    assert!(!outcome.stdout.to_lowercase().contains(&token.to_lowercase()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_past_the_call_limit_sends_nothing_after_the_run_ends() {
    let w = world(None).await;
    let runtime = runtime().await;
    let script = runtime
        .compile_js(
            "const all = []; for (let i = 0; i < 10000; i++) all.push(github('GET', '/sleep/20')); await Promise.all(all);",
        )
        .await
        .unwrap();
    let limits = Limits::default().max_calls(50).wall_time(Duration::from_secs(10));
    let run = RunContext::for_permit(&w.permit).limits(limits);
    let outcome = runtime.run(&script, w.outbound("burst"), run).await.unwrap();
    let hits_at_the_end = w.stub.hits();
    assert!(matches!(outcome.error, Some(RunError::CallLimit { limit: 50 })), "{:?}", outcome.error);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.stub.hits(), hits_at_the_end, "calls reached the upstream after the run ended");
    let sent = outcome.calls.iter().filter(|c| c.status.is_some()).count();
    assert_eq!(sent, hits_at_the_end, "the outcome lists every call that was sent");
    assert_eq!(outcome.calls.len(), 51, "50 started (sent or refused at the end) and the one past the limit");
    calls::unsent_calls_were_refused_at_the_end(&outcome.calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_script_has_no_way_to_the_secret_or_the_network() {
    let w = world(None).await;
    let outcome = w
        .run(
            "console.log(typeof fetch, typeof setTimeout, typeof process, typeof require, typeof GITHUB_TOKEN);\n\
             console.log(JSON.stringify(Object.getOwnPropertyNames(globalThis).filter(n => /TOKEN|secret/i.test(n))));",
        )
        .await;
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "undefined undefined undefined undefined undefined\n[]\n");
}

async fn deny_code(w: &World, call: &str) -> String {
    let source = format!("try {{ await {call}; console.log('sent') }} catch (e) {{ console.log(e.code) }}");
    let outcome = w.run(&source).await;
    assert_ok(&outcome);
    outcome.stdout.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trailing_dot_dot_is_refused_inside_the_script() {
    let w = world(None).await;
    assert_eq!(deny_code(&w, "github('GET', '/repos/o/r/issues/..')").await, "ambiguous_path");
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn double_star_then_dot_dot_is_refused_inside_the_script() {
    let w = world(None).await;
    assert_eq!(deny_code(&w, "github('GET', '/repos/o/r/contents/../../../../user')").await, "ambiguous_path");
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encoded_slash_is_refused_inside_the_script() {
    let w = world(None).await;
    assert_eq!(deny_code(&w, "github('GET', '/repos/o/r%2Fissues')").await, "ambiguous_path");
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn string_and_array_bodies_are_refused_inside_the_script() {
    let w = world(None).await;
    for body in ["'title'", "['title']", "{title: 't', admin: true}"] {
        let call = format!("github('POST', '/repos/o/r/issues', {{body: {body}}})");
        assert_eq!(deny_code(&w, &call).await, "body_invalid", "{body}");
    }
    assert_eq!(w.stub.hits(), 0);
    let created = w.run("console.log((await github('POST', '/repos/o/r/issues', {body: {title: 't'}})).number)").await;
    assert_eq!(created.stdout, "2\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lower_case_authorization_header_cannot_replace_the_real_one() {
    let w = world(None).await;
    let call = "github('GET', '/repos/o/r/issues', {headers: {authorization: 'Bearer agent'}})";
    assert_eq!(deny_code(&w, call).await, "header_not_allowed");
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_origin_is_not_followed() {
    let w = world(None).await;
    let elsewhere = Stub::start().await;
    let call = format!("github('GET', '/redirect/to/{}')", elsewhere.host_port());
    assert_eq!(deny_code(&w, &call).await, "redirect_not_allowed");
    assert_eq!(elsewhere.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_holds_across_executions() {
    let w = world(Some((2, 3600))).await;
    let call = "github('GET', '/repos/o/r/issues')";
    assert_eq!(deny_code(&w, call).await, "sent");
    assert_eq!(deny_code(&w, call).await, "sent");
    assert_eq!(deny_code(&w, call).await, "rate_limited", "a new execution does not reset the counter");
    assert_eq!(w.stub.hits(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_the_script_never_uses_does_not_fail_the_run() {
    let w = world(None).await;
    // WEATHER_KEY is not set, and this script only calls github.
    let outcome = w.run("console.log((await github('GET', '/repos/o/r/issues')).length)").await;
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "1\n");
    assert_eq!(deny_code(&w, "weather('GET', '/forecast')").await, "secret_missing");
}

#[tokio::test(flavor = "multi_thread")]
async fn error_statuses_throw_with_status_and_body() {
    let w = world(None).await;
    let outcome = w
        .run("try { await github('GET', '/missing') } catch (e) { console.log(e.status, JSON.stringify(e.body)) }")
        .await;
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "404 {\"message\":\"Not Found\"}\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn promise_all_sends_calls_concurrently_through_egress() {
    let w = world(None).await;
    let started = Instant::now();
    let outcome = w
        .run(
            "const rs = await Promise.all([1, 2, 3].map(() => github('GET', '/sleep/100')));\n\
             console.log(rs.map(r => r.slept_ms).join(','))",
        )
        .await;
    let elapsed = started.elapsed();
    assert_ok(&outcome);
    assert_eq!(outcome.stdout, "100,100,100\n");
    assert!(elapsed < Duration::from_millis(290), "three 100 ms calls took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runaway_script_is_stopped_and_its_calls_are_recorded() {
    let w = world(None).await;
    let outcome = w.run("await github('GET', '/repos/o/r/issues'); while (true) {}").await;
    assert!(
        matches!(outcome.error, Some(RunError::OutOfFuel { .. } | RunError::Timeout { .. })),
        "{:?}",
        outcome.error
    );
    assert_eq!(outcome.calls.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_script_catches_confirmation_required_with_its_id_and_the_approved_call_passes_once() {
    let rules = json!([{"method": "POST", "path": "/repos/o/r/issues", "confirm": true, "body": {"type": "object"}}]);
    let w = World::start(json!({"rules": rules})).await;
    let source = "try { const r = await github('POST', '/repos/o/r/issues', {body: {title: 'x'}}); console.log('sent', r.number) }\n\
                  catch (e) { console.log(e.code, e.confirmation_id, e instanceof Error) }";
    let outcome = w.run(source).await;
    assert_ok(&outcome);
    let pending = w.confirmations.pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(outcome.stdout, format!("confirmation_required {} true\n", pending[0]));
    assert_eq!(outcome.calls[0].confirmation_id.as_deref(), Some(pending[0].as_str()));
    assert_eq!(w.stub.hits(), 0);

    assert!(w.confirmations.approve(&pending[0]));
    assert_eq!(w.run(source).await.stdout, "sent 2\n");
    assert!(w.run(source).await.stdout.starts_with("confirmation_required cfm_"), "used once");
    assert_eq!(w.stub.hits(), 1);
}
