//! The examples, built as their READMEs say and run through the real
//! gateway against the stub upstream: `examples/js`,
//! `examples/rust-component` and `examples/wasi-http-component`, under the
//! permit of `examples/rust-component/spec.json`.

#[path = "../../host/tests/support/wasm32.rs"]
mod wasm32;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use oauth3_e2e::{Binary, Stub, approved_permit, call, fake_secret, oauth3_binary, shared_cache_dir};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
}

/// Builds an example for wasm32-wasip2 as its README says.
fn build_component(name: &str) -> Vec<u8> {
    wasm32::build_component(&example(name))
}

/// A gateway on SQLite with the example spec (pointed at `stub`) approved:
/// (binary, agent token, owner token, permit id, the owner's secret).
async fn gateway_with_the_example_permit(stub: &Stub, dir: &Path) -> (Binary, String, String, String, String) {
    let env = [
        ("OAUTH3_INSECURE_UPSTREAMS", stub.host_port()),
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
    ];
    let binary = Binary::start("gateway", &dir.join("data"), dir, &env);
    // The example's spec, pointed at the stub: the same world, another upstream.
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(example("rust-component/spec.json")).unwrap()).unwrap();
    let mut github = spec["integrations"][0].clone();
    github["base_url"] = json!(stub.url());
    let secret = fake_secret();
    let (agent, owner, permit) = approved_permit(&binary.url, github, &secret).await;
    (binary, agent, owner, permit, secret)
}

/// Submits `body` (without `permit_id`) and waits for the execution to end.
async fn execute(binary: &Binary, agent: &str, permit: &str, mut body: Value) -> Value {
    body["permit_id"] = json!(permit);
    let (status, accepted) = call(&binary.url, "POST", "/execute", Some(agent), Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let path = format!("/execute/{}/status?wait=true&timeout=60", accepted["request_id"].as_str().unwrap());
    call(&binary.url, "GET", &path, Some(agent), None).await.1
}

/// The permit's audit log as (method, decision) pairs, sorted.
async fn audited_calls(binary: &Binary, owner: &str, permit: &str) -> Vec<(String, String)> {
    let (_, audit) = call(&binary.url, "GET", &format!("/audit?permit_id={permit}"), Some(owner), None).await;
    let mut calls: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["method"].as_str().unwrap().to_owned(), e["decision"].as_str().unwrap().to_owned()))
        .collect();
    calls.sort();
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_examples_run_under_the_example_permit() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (binary, agent, _, permit, secret) = gateway_with_the_example_permit(&stub, dir.path()).await;
    let script = |name: &str| std::fs::read_to_string(example("js").join(name)).unwrap();

    let body = json!({"action_id": "list-1", "code": script("list-issues.js"), "args": {"repo": "octo/hello"}});
    let done = execute(&binary, &agent, &permit, body).await;
    assert_eq!(done["status"], "completed", "{done}");
    let issues: Value = serde_json::from_str(done["result"]["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(issues[0]["title"], "Flaky test on CI");

    let args = json!({"repo": "octo/hello", "title": "Filed by a script"});
    let done =
        execute(&binary, &agent, &permit, json!({"action_id": "triage-1", "code": script("triage.js"), "args": args}))
            .await;
    assert_eq!(done["status"], "completed", "{done}");
    let output: Value = serde_json::from_str(done["result"]["stdout"].as_str().unwrap().trim()).unwrap();
    assert_eq!(output, json!({"open_issues": ["Flaky test on CI", "README typo"], "created": 3}));
    assert!(done["result"]["stderr"].as_str().unwrap().starts_with("not allowed, as expected: "), "{done}");
    assert!(!done.to_string().contains(&secret));
}

#[test]
fn the_rust_components_wit_is_what_oauth3_spec_wit_prints_for_its_spec() {
    let dir = example("rust-component");
    let output = Command::new(oauth3_binary()).args(["spec", "wit"]).arg(dir.join("spec.json")).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let committed = std::fs::read_to_string(dir.join("wit/permit.wit")).unwrap();
    assert!(
        committed == String::from_utf8(output.stdout).unwrap(),
        "examples/rust-component/wit/permit.wit is stale: run `oauth3 spec wit spec.json > wit/permit.wit` there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_component_lists_issues_and_files_one_with_two_concurrent_calls() {
    let bytes = build_component("rust-component");
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (binary, agent, owner, permit, secret) = gateway_with_the_example_permit(&stub, dir.path()).await;

    let component = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let args = json!({"repo": "octo/hello", "title": "Filed by a component"});
    let done =
        execute(&binary, &agent, &permit, json!({"action_id": "rust-1", "component": component, "args": args})).await;
    assert_eq!(done["status"], "completed", "{done}");
    let output: Value = serde_json::from_str(done["result"]["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, json!({"open_issues": ["Flaky test on CI", "README typo"], "created": 3}));
    assert!(!done.to_string().contains(&secret));

    let calls = audited_calls(&binary, &owner, &permit).await;
    assert_eq!(calls, [("GET".into(), "allow".into()), ("POST".into(), "allow".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wasi_http_component_calls_the_same_api_with_an_ordinary_http_client() {
    let bytes = build_component("wasi-http-component");
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (binary, agent, owner, permit, secret) = gateway_with_the_example_permit(&stub, dir.path()).await;
    let component = base64::engine::general_purpose::STANDARD.encode(&bytes);

    let args = json!({"repo": "octo/hello", "title": "Filed over wasi:http", "api": stub.url()});
    let body = json!({"action_id": "http-1", "component": component, "args": args});
    let done = execute(&binary, &agent, &permit, body).await;
    assert_eq!(done["status"], "completed", "{done}");
    let output: Value = serde_json::from_str(done["result"]["output"].as_str().unwrap()).unwrap();
    // The stub answers 401 without the owner's token: the gateway added it.
    assert_eq!(output, json!({"open_issues": ["Flaky test on CI", "README typo"], "created": 3}));
    assert!(!done.to_string().contains(&secret));

    // A URL no integration of the permit has: refused as an HTTP error the
    // component reads, audited, and nothing reaches that origin.
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let args =
        json!({"repo": "octo/hello", "title": "x", "api": format!("http://{}", elsewhere.local_addr().unwrap())});
    let body = json!({"action_id": "http-2", "component": component, "args": args});
    let done = execute(&binary, &agent, &permit, body).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["result"]["error"]["message"].as_str().unwrap_or_default();
    assert!(error.contains("HTTP 403") && error.contains("no single integration"), "{done}");
    let reasons: Vec<&str> =
        done["result"]["calls"].as_array().unwrap().iter().map(|c| c["reason"].as_str().unwrap()).collect();
    // `try_zip` stops at the first refusal, so the second request may
    // never be sent: one or two, each refused the same way.
    assert!(!reasons.is_empty() && reasons.iter().all(|r| *r == "unknown_integration"), "{done}");
    let accepted = tokio::time::timeout(std::time::Duration::from_millis(200), elsewhere.accept()).await;
    assert!(accepted.is_err(), "a request reached the origin no integration has");

    let calls = audited_calls(&binary, &owner, &permit).await;
    let allowed: Vec<&(String, String)> = calls.iter().filter(|(_, decision)| decision == "allow").collect();
    assert_eq!(allowed, [&("GET".to_owned(), "allow".to_owned()), &("POST".to_owned(), "allow".to_owned())]);
    assert_eq!(calls.len() - allowed.len(), reasons.len(), "every refusal is audited: {calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_wasi_http_off_rejects_the_wasi_http_component_by_name() {
    let bytes = build_component("wasi-http-component");
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("OAUTH3_INSECURE_UPSTREAMS", stub.host_port()),
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
        ("OAUTH3_WASI_HTTP", "off".to_owned()),
    ];
    let binary = Binary::start("gateway", &dir.path().join("data"), dir.path(), &env);
    let github = json!({"name": "github", "base_url": stub.url(), "rules": [{"method": "GET", "path": "/**"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]});
    let (agent, _, permit) = approved_permit(&binary.url, github, &fake_secret()).await;

    let component = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let body = json!({"permit_id": permit, "action_id": "off-1", "component": component, "args": {}});
    let (status, rejected) = call(&binary.url, "POST", "/execute", Some(&agent), Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{rejected}");
    assert_eq!(rejected["error"]["code"], "component_rejected");
    let refused: Vec<&str> =
        rejected["error"]["refusals"].as_array().unwrap().iter().map(|r| r["item"].as_str().unwrap()).collect();
    assert!(refused.iter().any(|item| item.starts_with("wasi:http/outgoing-handler@0.2.")), "{rejected}");
}
