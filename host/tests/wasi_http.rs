//! wasi:http components in the real sandbox: an ordinary HTTP client (the
//! `http-probe` guest, wstd over wasi:http) against a real upstream on
//! 127.0.0.1. Each request goes to the one integration with its base URL,
//! through the same egress (decided, credentialed, scrubbed, counted); what
//! is refused comes back as an HTTP error the guest reads.

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/stub.rs"]
mod stub;
#[path = "support/wasm32.rs"]
mod wasm32;
#[path = "support/world.rs"]
mod world;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use oauth3_host::{AgentComponent, ERROR_HEADER, HostError, Limits, Outcome, RunError, Runtime, RuntimeConfig};
use oauth3_policy::Verdict;
use serde_json::{Value, json};
use world::{World, runtime};

/// The probe guest's bytes, built once per test binary.
fn probe() -> &'static [u8] {
    static PROBE: OnceLock<Vec<u8>> = OnceLock::new();
    PROBE
        .get_or_init(|| wasm32::build_component(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/http-probe")))
}

/// The stub and a permit of `github` (at the stub's root, the fixture's
/// rules) and `nested` (at `/repos/o/r/contents` under it: a longer base
/// path, no credential).
async fn world(github_extra: Value) -> World {
    let mut w = World::start(json!({})).await;
    let nested = json!({"name": "nested", "base_url": format!("{}/repos/o/r/contents", w.stub.base_url()),
        "rules": [{"method": "GET", "path": "/docs/*"}]});
    w.permit = Arc::new(fixtures::compile(&w.stub, vec![fixtures::github(&w.stub, github_extra), nested]));
    w
}

impl World {
    /// Runs the probe with these requests: one result per request.
    async fn probe(&self, requests: Value, limits: Limits) -> (Vec<Value>, Outcome) {
        let (output, outcome) = self.run_probe(json!({ "requests": requests }), limits).await;
        let results = output.map(|o| serde_json::from_value(o).unwrap()).unwrap_or_default();
        (results, outcome)
    }

    async fn run_probe(&self, args: Value, limits: Limits) -> (Option<Value>, Outcome) {
        let runtime = runtime().await;
        let component = runtime.load_component(probe(), &self.permit).await.unwrap();
        let outbound = self.outbound("exec");
        let outcome = runtime.run_component(&component, &self.permit, outbound, &args, limits).await.unwrap();
        assert!(!format!("{outcome:?}").contains(&self.token), "the token reached the guest: {outcome:?}");
        (outcome.output.as_deref().map(|o| serde_json::from_str(o).unwrap()), outcome)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stub.base_url())
    }
}

fn limits() -> Limits {
    Limits::default().wall_time(Duration::from_secs(10))
}

fn reasons(outcome: &Outcome) -> Vec<Option<&'static str>> {
    outcome.calls.iter().map(|c| c.reason).collect()
}

/// The code and status of a response the host wrote itself.
fn refusal(result: &Value) -> (u64, &str, &str) {
    assert!(result["body"].is_string(), "not a response: {result}");
    let body: Value = serde_json::from_str(result["body"].as_str().unwrap()).unwrap();
    assert_eq!(result["headers"][ERROR_HEADER], body["error"]["code"], "{result}");
    let code = result["headers"][ERROR_HEADER].as_str().unwrap();
    let message = result["body"].as_str().unwrap();
    (result["status"].as_u64().unwrap(), code, message)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_goes_to_the_integration_with_that_base_url_with_the_credential_added_and_scrubbed_back() {
    let w = world(json!({})).await;
    let (results, outcome) = w.probe(json!([{"method": "GET", "url": w.url("/echo")}]), limits()).await;
    assert_eq!(outcome.error, None, "{outcome:?}");
    assert_eq!(results[0]["status"], 200, "{results:?}");
    // The upstream got the owner's token; the guest got it back scrubbed.
    let seen = w.stub.last().unwrap();
    assert!(seen.headers.iter().any(|(n, v)| n == "authorization" && *v == format!("Bearer {}", w.token)));
    assert!(!results[0].to_string().contains(&w.token));
    assert!(results[0]["headers"]["x-echo"].as_str().unwrap().contains("REDACTED"), "{results:?}");
    let call = &outcome.calls[0];
    assert_eq!((call.integration.as_str(), call.decision, call.status), ("github", Verdict::Allow, Some(200)));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_longest_base_path_decides_the_integration_and_the_path_under_it_is_what_policy_sees() {
    let w = world(json!({})).await;
    // `github` allows all of /repos/o/r/contents/**, `nested` only /docs/*
    // under it: the longer base path decides, so only that is allowed.
    let requests = json!([
        {"method": "GET", "url": w.url("/repos/o/r/contents/docs/a.md?ref=main")},
        {"method": "GET", "url": w.url("/repos/o/r/contents/src/b.rs")},
    ]);
    let (results, outcome) = w.probe(requests, limits()).await;
    assert_eq!(results[0]["status"], 404, "the stub has no such file: {results:?}");
    assert_eq!(refusal(&results[1]).1, "path_not_allowed");
    let calls: Vec<(&str, Verdict)> = outcome.calls.iter().map(|c| (c.integration.as_str(), c.decision)).collect();
    assert_eq!(calls, [("nested", Verdict::Allow), ("nested", Verdict::Deny)]);
    assert_eq!(w.stub.hits(), 1);
    assert_eq!(w.stub.last().unwrap().uri, "/repos/o/r/contents/docs/a.md?ref=main");
    // No injected credential: `nested` injects none.
    assert!(!w.stub.last().unwrap().headers.iter().any(|(n, _)| n == "authorization"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_no_integration_has_is_refused_with_unknown_integration_and_nothing_is_sent() {
    let w = world(json!({})).await;
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_port = format!("http://{}/echo", elsewhere.local_addr().unwrap());
    let other_scheme = format!("https://{}/echo", w.stub.host_port());
    let other_host = format!("http://localhost:{}/echo", w.stub.addr.port());
    let requests: Vec<Value> =
        [other_port, other_scheme, other_host].iter().map(|url| json!({"method": "GET", "url": url})).collect();
    let (results, outcome) = w.probe(json!(requests), limits()).await;
    for result in &results {
        let (status, code, message) = refusal(result);
        assert_eq!((status, code), (403, "unknown_integration"), "{result}");
        assert!(message.contains("no single integration"), "{message}");
    }
    assert_eq!(reasons(&outcome), [Some("unknown_integration"); 3]);
    assert_eq!(outcome.calls[0].integration, format!("http://{}", elsewhere.local_addr().unwrap()));
    assert_eq!(w.stub.hits(), 0);
    let accepted = tokio::time::timeout(Duration::from_millis(100), elsewhere.accept()).await;
    assert!(accepted.is_err(), "a request reached the other origin");
}

#[tokio::test(flavor = "multi_thread")]
async fn integrations_sharing_a_base_url_are_not_guessed_between() {
    let w = World::start(json!({})).await; // github and weather share the stub's root
    let (results, outcome) = w.probe(json!([{"method": "GET", "url": w.url("/forecast")}]), limits()).await;
    assert_eq!(refusal(&results[0]).1, "unknown_integration", "{results:?}");
    assert_eq!(reasons(&outcome), [Some("unknown_integration")]);
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_the_rules_deny_gets_the_deny_code_as_a_403_and_nothing_is_sent() {
    let w = world(json!({})).await;
    let requests = json!([
        {"method": "DELETE", "url": w.url("/repos/o/r/issues")},
        {"method": "GET", "url": w.url("/admin/../echo")},
        {"method": "POST", "url": w.url("/repos/o/r/issues"), "headers": [["content-type", "application/json"]],
         "body": "{\"title\": 1}"},
        {"method": "GET", "url": w.url("/echo"), "headers": [["x-forwarded-host", "evil.example"]]},
    ]);
    let (results, outcome) = w.probe(requests, limits()).await;
    let codes: Vec<(u64, String)> = results
        .iter()
        .map(|r| {
            let (status, code, _) = refusal(r);
            (status, code.to_owned())
        })
        .collect();
    let expected = ["method_not_allowed", "ambiguous_path", "body_invalid", "header_not_allowed"];
    assert_eq!(codes, expected.map(|c| (403, c.to_owned())));
    assert!(outcome.calls.iter().all(|c| c.decision == Verdict::Deny), "{outcome:?}");
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_post_sends_the_guests_body_and_framing_is_the_hosts() {
    let w = world(json!({})).await;
    let sent = r#"{"title": "from wasi:http"}"#;
    let requests = json!([{"method": "POST", "url": w.url("/repos/o/r/issues"),
        "headers": [["content-type", "application/json"]], "body": sent}]);
    let (results, outcome) = w.probe(requests, limits()).await;
    assert_eq!(results[0]["status"], 201, "{results:?}");
    let text = results[0]["body"].as_str().unwrap();
    let body: Value = serde_json::from_str(text).unwrap();
    assert_eq!(body["received"], json!({"title": "from wasi:http"}));
    assert_eq!(outcome.calls[0].request_bytes, sent.len() as u64);
    // wstd states the length it sends; the upstream saw the host's framing.
    assert_eq!(results[0]["headers"]["content-length"], text.len().to_string());
    let seen = w.stub.last().unwrap();
    assert_eq!(seen.body, sent.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_integrations_limit_is_refused_unsent() {
    let w = world(json!({"limits": {"max_request_bytes": 64}})).await;
    let title = "x".repeat(200);
    let requests = json!([{"method": "POST", "url": w.url("/repos/o/r/issues"),
        "headers": [["content-type", "application/json"]], "body": format!("{{\"title\": \"{title}\"}}")}]);
    let (results, outcome) = w.probe(requests, limits()).await;
    assert_eq!(refusal(&results[0]).0, 413);
    assert_eq!(refusal(&results[0]).1, "body_too_large");
    assert_eq!(reasons(&outcome), [Some("body_too_large")]);
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_call_limit_the_run_stops_as_with_scoped_fetch() {
    let w = world(json!({})).await;
    let echo = json!({"method": "GET", "url": w.url("/echo")});
    let (_, outcome) = w.probe(json!([echo, echo, echo]), limits().max_calls(2)).await;
    assert!(matches!(outcome.error, Some(RunError::CallLimit { limit: 2 })), "{outcome:?}");
    let mut reasons = reasons(&outcome);
    reasons.sort();
    assert_eq!(reasons, [None, None, Some("call_limit")]);
    assert!(outcome.calls.iter().all(|c| c.integration == "github"));
    assert_eq!(w.stub.hits(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_request_still_finishes_and_is_recorded() {
    let w = world(json!({})).await;
    // The run lasts long enough for the dropped request to reach the wire:
    // once the run ends, what was not sent is not sent.
    let requests = json!([
        {"method": "GET", "url": w.url("/sleep/200"), "drop": true},
        {"method": "GET", "url": w.url("/sleep/500")},
    ]);
    let (results, outcome) = w.probe(requests, limits()).await;
    assert_eq!(results[0], json!({"dropped": true}));
    assert_eq!(outcome.error, None, "{outcome:?}");
    let mut calls: Vec<(&str, Option<u16>)> = outcome.calls.iter().map(|c| (c.url.as_str(), c.status)).collect();
    calls.sort();
    let (dropped, awaited) = (w.url("/sleep/200"), w.url("/sleep/500"));
    assert_eq!(calls, [(dropped.as_str(), Some(200)), (awaited.as_str(), Some(200))]);
    assert_eq!(w.stub.hits(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_wasi_http_off_the_component_is_rejected_by_name() {
    let w = world(json!({})).await;
    let off = Runtime::new(RuntimeConfig::default().max_instances(2).wasi_http(false)).await.unwrap();
    let refusals = match off.load_component(probe(), &w.permit).await {
        Err(HostError::ComponentRejected(rejected)) => rejected.refusals,
        other => panic!("expected a rejection, got {other:?}"),
    };
    let items: Vec<&str> = refusals.iter().map(|r| r.item.as_str()).collect();
    assert!(items.iter().all(|i| i.starts_with("wasi:http/")), "{items:?}");
    assert!(items.iter().any(|i| i.starts_with("wasi:http/outgoing-handler@0.2.")), "{items:?}");
    assert!(refusals[0].reason.contains("turned off"), "{refusals:?}");
    // The same bytes load where it is on.
    let loaded: AgentComponent = runtime().await.load_component(probe(), &w.permit).await.unwrap();
    assert!(loaded.imports().iter().any(|i| i.starts_with("wasi:http/outgoing-handler@0.2.")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_cannot_pile_request_bodies_up_in_host_memory() {
    let w = world(json!({})).await;
    // Each unsent body takes at most one small chunk of what is written...
    let (output, outcome) = w.run_probe(json!({"hoard": 3, "bytes": 1 << 20}), limits()).await;
    let output = output.unwrap_or_else(|| panic!("{outcome:?}"));
    assert_eq!(output["hoarded"], 3);
    let largest = output["largest_write"].as_u64().unwrap();
    assert!(largest > 0 && largest <= 32 << 10, "{output}");
    // ...and the handles that hold them are capped by the run's call limit
    // (256 + 16 per call): the run is stopped long before 100,000.
    let (output, outcome) = w.run_probe(json!({"hoard": 100_000, "bytes": 1 << 20}), limits().max_calls(10)).await;
    assert_eq!(output, None);
    assert!(matches!(&outcome.error, Some(RunError::Trap(message)) if message.contains("table")), "{outcome:?}");
    assert!(outcome.calls.is_empty());
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_cannot_pass_its_response_off_as_the_hosts() {
    let w = world(json!({"rules": [{"method": "GET", "path": "/forged"}]})).await;
    let requests = json!([{"method": "GET", "url": w.url("/forged")}, {"method": "GET", "url": w.url("/nope")}]);
    let (results, outcome) = w.probe(requests, limits()).await;
    assert_eq!(results[0]["status"], 403);
    assert!(results[0]["headers"].get(ERROR_HEADER).is_none(), "{results:?}");
    assert_eq!(outcome.calls[0].decision, Verdict::Allow);
    assert_eq!(refusal(&results[1]).1, "path_not_allowed");
}

#[tokio::test(flavor = "multi_thread")]
async fn as_many_requests_in_flight_as_the_call_limit_allows_all_complete() {
    // The gateway's default call limit, every request in flight at once:
    // the handle cap must leave room for each request and its response.
    let w = world(json!({})).await;
    let requests: Vec<Value> = (0..100).map(|_| json!({"method": "GET", "url": w.url("/sleep/50")})).collect();
    let args = json!({"requests": requests, "at_once": true});
    let (output, outcome) = w.run_probe(args, limits().max_calls(100)).await;
    assert_eq!(outcome.error, None, "{outcome:?}");
    let results = output.unwrap();
    let statuses: Vec<&Value> = results.as_array().unwrap().iter().map(|r| &r["status"]).collect();
    assert_eq!(statuses, vec![&json!(200); 100]);
    assert_eq!(outcome.calls.len(), 100);
    assert_eq!(w.stub.hits(), 100);
}
