//! The real `oauth3` binary with keys from a (fake) dstack guest agent: found
//! through `DSTACK_SIMULATOR_ENDPOINT`, logged by provider and never by key,
//! no key files written; `OAUTH3_KEYS=dstack` without an agent refuses to
//! start; and an owner checks the gateway (`oauth3 attest verify`) and its
//! receipts (`oauth3 receipt verify`) with the same binary.

use oauth3_e2e::dstack::{
    APP_COMPOSE, FakeAgent, SAMPLE_COLLATERAL, SAMPLE_QUOTE, SIMULATOR_APP_KEY, derive, hex, hex_bytes, identity,
};
use oauth3_e2e::{Binary, Stub, approved_permit, call, fake_secret, oauth3_binary, shared_cache_dir};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_takes_its_keys_from_the_guest_agent_and_never_shows_them() {
    let agent = FakeAgent::start(SIMULATOR_APP_KEY).await;
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [
        ("DSTACK_SIMULATOR_ENDPOINT", agent.socket.display().to_string()),
        ("OAUTH3_INSECURE_UPSTREAMS", stub.host_port()),
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
        ("RUST_LOG", "debug".to_owned()),
    ];
    let gateway = Binary::start("gateway", &data, dir.path(), &env);
    let spec = json!({"name": "github", "base_url": stub.url(), "rules": [{"method": "GET", "path": "/repos/owner/repo/issues"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]});
    approved_permit(&gateway.url, spec, &fake_secret()).await;

    let output = gateway.output();
    assert!(output.contains("provider=dstack ("), "the provider is logged:\n{output}");
    for file in ["sealing.key", "jwt.key", "receipts.key"] {
        assert!(!data.join(file).exists(), "{file} was written");
    }
    let app = hex_bytes(SIMULATOR_APP_KEY);
    for path in ["oauth3/sealing/v1", "oauth3/jwt/v1", "oauth3/receipts/v1"] {
        let key = hex(&derive(&app, path));
        assert!(!output.contains(&key), "the {path} key is in the log");
    }
}

#[test]
fn dstack_keys_without_a_guest_agent_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(oauth3_binary())
        .arg("serve")
        .env_clear()
        .env("OAUTH3_KEYS", "dstack")
        .env("OAUTH3_LISTEN", "127.0.0.1:0")
        .env("OAUTH3_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no dstack guest agent was found"), "{stderr}");
}

/// `oauth3 <args>`: (success, stdout, stderr).
fn oauth3(args: &[&str]) -> (bool, String, String) {
    oauth3_e2e::run_oauth3(args, &[], "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_checks_the_gateway_and_its_receipts_with_the_cli() {
    let agent = FakeAgent::start(SIMULATOR_APP_KEY).await;
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("DSTACK_SIMULATOR_ENDPOINT", agent.socket.display().to_string()),
        ("OAUTH3_INSECURE_UPSTREAMS", stub.host_port()),
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
    ];
    let gateway = Binary::start("gateway", &dir.path().join("data"), dir.path(), &env);
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (compose, collateral) = (file("app-compose.json", APP_COMPOSE), file("collateral.json", SAMPLE_COLLATERAL));

    // Every link holds but Intel's signature, which a patched sample quote
    // cannot carry: the command says which check failed, and exits 1.
    let (_, app_id, _) = identity();
    let measured = &SAMPLE_QUOTE[184..232];
    let rtmr = |i: usize| hex(&SAMPLE_QUOTE[376 + 48 * i..424 + 48 * i]);
    let measurements = file(
        "measurements.json",
        &json!({"mrtd": hex(measured), "rtmr0": rtmr(0), "rtmr1": rtmr(1), "rtmr2": rtmr(2)}).to_string(),
    );
    let app_id = hex(&app_id);
    let pinned = |compose: &str| {
        vec![
            "attest",
            "verify",
            "--url",
            &gateway.url,
            "--compose",
            compose,
            "--collateral",
            &collateral,
            "--app-id",
            &app_id,
            "--measurements",
            &measurements,
            "--key-provider-id",
            "fake",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<String>>()
    };
    let run = |args: Vec<String>| oauth3(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (ok, stdout, stderr) = run(pinned(&compose));
    assert!(!ok, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("app_id        {app_id}")), "{stdout}");
    assert!(stdout.contains("\"key_provider\": \"dstack\""), "the config is printed: {stdout}");
    let ok_lines: Vec<&str> =
        stdout.lines().filter(|l| l.starts_with("ok ")).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(
        ok_lines,
        [
            "transport",
            "nonce",
            "public_url",
            "config_hash",
            "report_data",
            "quote_report_data",
            "os_measurements",
            "rtmr3",
            "app_id",
            "expected_app_id",
            "compose_hash",
            "expected_compose",
            "key_provider",
            "expected_key_provider"
        ],
        "{stdout}"
    );
    assert!(stdout.contains("FAIL     quote_signature"), "{stdout}");
    assert!(stdout.contains("NOT verified: 1 of 15 checks failed"), "{stdout}");
    let (ok, stdout, _) = run(pinned(&file("other.json", "{}")));
    assert!(!ok && stdout.contains("FAIL     expected_compose"), "{stdout}");
    // Without expectations nothing it could not compare is called verified.
    let (ok, stdout, _) = oauth3(&["attest", "verify", "--url", &gateway.url, "--collateral", &collateral]);
    assert!(
        !ok && stdout.contains("UNPINNED os_measurements") && stdout.contains("UNPINNED expected_compose"),
        "{stdout}"
    );

    // A receipt, saved as the agent got it, checks offline; changed, it does not.
    let spec = json!({"name": "github", "base_url": stub.url(), "rules": [{"method": "GET", "path": "/repos/owner/repo/issues"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]});
    let (agent_token, _, permit) = approved_permit(&gateway.url, spec, &fake_secret()).await;
    let code = "console.log((await github('GET', '/repos/owner/repo/issues')).length)";
    let body = json!({"permit_id": permit, "action_id": "cli-receipt", "code": code});
    let (_, accepted) = call(&gateway.url, "POST", "/execute", Some(&agent_token), Some(body)).await;
    let path = format!("/execute/{}/status?wait=true&timeout=60", accepted["request_id"].as_str().unwrap());
    let (_, done) = call(&gateway.url, "GET", &path, Some(&agent_token), None).await;
    assert_eq!(done["status"], "completed", "{done}");
    let saved = file("status.json", &done.to_string());
    let key = done["receipt"]["signing_key"].as_str().unwrap();
    let (ok, stdout, stderr) = oauth3(&["receipt", "verify", &saved, "--key", key]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.starts_with("valid oauth3-receipt-v1 signed by "), "{stdout}");
    let receipt_only = file("receipt.json", &done["receipt"].to_string());
    assert!(oauth3(&["receipt", "verify", &receipt_only, "--key", key]).0);
    // --url trusts the gateway's key only once its attestation verifies,
    // which a fake quote never does.
    let (ok, _, stderr) = oauth3(&["receipt", "verify", &saved, "--url", &gateway.url, "--collateral", &collateral]);
    assert!(!ok && stderr.contains("did not verify, so its key is not trusted"), "{stderr}");

    let mut changed = done["receipt"].clone();
    changed["payload"]["result"]["stdout"] = json!("3\n");
    let (ok, _, stderr) = oauth3(&["receipt", "verify", &file("changed.json", &changed.to_string()), "--key", key]);
    assert!(!ok && stderr.contains("INVALID: the signature does not match the payload"), "{stderr}");
    let (ok, _, stderr) = oauth3(&["receipt", "verify", &receipt_only, "--key", &hex(&[3; 32])]);
    assert!(!ok && stderr.contains("INVALID: signed by"), "{stderr}");
}
