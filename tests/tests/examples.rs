//! The examples, built as their READMEs say and run through the real
//! gateway against the stub upstream: `examples/js` and
//! `examples/rust-component`, under the permit of the latter's `spec.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use oauth3_e2e::{Binary, Stub, approved_permit, call, fake_secret, oauth3_binary, shared_cache_dir};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
}

/// Builds an example for wasm32-wasip2 (release, its own lock file) into
/// the target dir's `examples/`; returns the component's bytes.
fn build_component(name: &str) -> Vec<u8> {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        // <target>/<profile>/deps/<test>
        None => std::env::current_exe().unwrap().ancestors().nth(3).unwrap().to_owned(),
    }
    .join("examples");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--release", "--locked", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target)
        .current_dir(example(name))
        .status()
        .expect("run cargo");
    assert!(status.success(), "building examples/{name} failed");
    let file = name.replace('-', "_") + ".wasm";
    std::fs::read(target.join("wasm32-wasip2/release").join(file)).unwrap()
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

    let (_, audit) = call(&binary.url, "GET", &format!("/audit?permit_id={permit}"), Some(&owner), None).await;
    let mut calls: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["method"].as_str().unwrap().to_owned(), e["decision"].as_str().unwrap().to_owned()))
        .collect();
    calls.sort();
    assert_eq!(calls, [("GET".into(), "allow".into()), ("POST".into(), "allow".into())]);
}
