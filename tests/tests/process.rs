//! The real `oauth3` binary on 127.0.0.1:0 with the stub upstream: the
//! README quickstart run verbatim, a kill -9 and restart, and a search for
//! the secret value in everything the gateway wrote.

use oauth3_e2e::dstack::receipt_verifies;
use oauth3_e2e::{Backend, Binary, Stub, call, fake_secret, on_both_databases, shared_cache_dir};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn readme_quickstart() -> String {
    let script = oauth3_e2e::readme_block("quickstart");
    assert!(script.contains("curl"), "the quickstart block looks empty");
    script
}

fn require(tool: &str) {
    let found = std::process::Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "the quickstart test needs `{tool}` (./scripts/setup installs it)");
}

async fn runs_the_readme_quickstart_verbatim(backend: Backend) {
    require("curl");
    require("jq");
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Binary::start("oauth3", &data, dir.path(), &env_for(&backend, &stub));

    let output = tokio::task::spawn_blocking({
        let url = server.url.clone();
        let stub = stub.url();
        move || {
            std::process::Command::new("bash")
                .args(["-euo", "pipefail", "-c", &readme_quickstart()])
                .env("OAUTH3", url)
                .env("STUB", stub)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "quickstart failed:\n{stdout}\n{stderr}\nserver:\n{}", server.output());

    // The last JSON document is the execution's status.
    let last = stdout.rfind("\n{\n").map_or(stdout.as_ref(), |at| &stdout[at + 1..]);
    let status: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["result"]["success"], true);
    let issues: serde_json::Value = serde_json::from_str(status["result"]["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(issues[0]["title"], "Flaky test on CI");
    assert_eq!(status["result"]["calls"][0]["status"], 200);
    // Drafted from the stub's OpenAPI document with zero config, shown to the owner.
    assert!(stdout.contains(r#""drafter": "offline-openapi""#), "{stdout}");
    assert!(stdout.contains(r#""path": "/repos/owner/repo/issues""#), "{stdout}");
    // The credential the owner stored is nowhere in what the agent saw.
    assert!(!stdout.contains("ghp_example_not_a_real_token"));
    // Step 4's link opens in a browser: the sign-in page, then back to it.
    let link = stdout.lines().find_map(|l| l.strip_prefix("Approve in a browser: "));
    let link = link.unwrap_or_else(|| panic!("step 4 prints the link:\n{stdout}"));
    let browser = oauth3_e2e::WebClient::new(&server.url);
    let page = browser.get(link.strip_prefix(server.url.as_str()).expect("a link to this gateway")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().unwrap().starts_with("/login?next=%2Fapprove%2Freq_"), "{:?}", page.location());
}

on_both_databases!(
    runs_the_readme_quickstart_verbatim,
    state_survives_a_kill_and_a_running_execution_is_marked_interrupted,
    a_call_on_the_wire_when_the_gateway_is_killed_is_in_the_audit,
);

fn env_for(backend: &Backend, stub: &Stub) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("OAUTH3_INSECURE_UPSTREAMS", stub.host_port()),
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
    ];
    if let Backend::Postgres(url) = backend {
        env.push(("DATABASE_URL", url.clone()));
    }
    env
}

/// A stub upstream, a temporary dir (the data dir is its `data`), and the
/// environment for SQLite with `extra` set.
async fn on_sqlite(
    extra: (&'static str, &str),
) -> (Stub, tempfile::TempDir, std::path::PathBuf, Vec<(&'static str, String)>) {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut env = env_for(&Backend::Sqlite, &stub);
    env.push((extra.0, extra.1.to_owned()));
    (stub, dir, data, env)
}

/// The quickstart's permit for the stub, approved: (agent token, owner token, permit id).
async fn approved_permit(url: &str, stub: &Stub, secret: &str) -> (String, String, String) {
    let spec = json!({
        "name": "github",
        "base_url": stub.url(),
        "rules": [{"method": "GET", "path": "/repos/owner/repo/issues"}, {"method": "GET", "path": "/echo"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
        "secrets": ["GITHUB_TOKEN"]
    });
    oauth3_e2e::approved_permit(url, spec, secret).await
}

async fn submit(url: &str, agent: &str, permit: &str, action: &str, code: &str) -> String {
    let body = json!({"permit_id": permit, "action_id": action, "code": code});
    let (status, body) = call(url, "POST", "/execute", Some(agent), Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["request_id"].as_str().unwrap().to_owned()
}

async fn state_survives_a_kill_and_a_running_execution_is_marked_interrupted(backend: Backend) {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut env = env_for(&backend, &stub);
    // The spinning script must still be running when the process is killed.
    env.push(("OAUTH3_FUEL", u64::MAX.to_string()));
    env.push(("OAUTH3_TIMEOUT_SECS", "300".into()));
    let first = Binary::start("first", &data, dir.path(), &env);
    let (agent, owner, permit) = approved_permit(&first.url, &stub, &fake_secret()).await;
    let spinning = submit(&first.url, &agent, &permit, "spin", "for (;;) {}").await;
    let status_path = format!("/execute/{spinning}/status");
    loop {
        let (_, status) = call(&first.url, "GET", &status_path, Some(&agent), None).await;
        match status["status"].as_str() {
            Some("running") => break,
            Some("queued") => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            other => panic!("unexpected status {other:?}: {status}"),
        }
    }
    first.kill();

    let second = Binary::start("second", &data, dir.path(), &env);
    let url = &second.url;
    // Tokens still verify (same JWT key), and the execution was not re-run.
    let (status, interrupted) = call(url, "GET", &status_path, Some(&agent), None).await;
    assert_eq!(status, StatusCode::OK, "{interrupted}");
    assert_eq!(interrupted["status"], "failed", "{interrupted}");
    assert_eq!(interrupted["result"]["error"]["code"], "interrupted");
    assert!(interrupted["finished_at"].is_string());
    // Signed all the same, by the key the attestation binds.
    let (_, attestation) = call(url, "GET", "/attestation?nonce=000102030405060708090a0b0c0d0e0f", None, None).await;
    let receipt = &interrupted["receipt"];
    assert!(receipt_verifies(receipt, attestation["signing_key"].as_str().unwrap()), "{interrupted}");
    assert_eq!(receipt["payload"]["status"], "failed");
    assert_eq!(receipt["payload"]["result"], interrupted["result"]);
    assert!(receipt["payload"]["spec_hash"].is_string(), "{receipt}");
    let (_, again) = call(url, "GET", &status_path, Some(&agent), None).await;
    assert_eq!(again["receipt"], *receipt, "signed once, then stored");
    // The secret, the permit and its approval survived; the sealing key too,
    // since a new execution gets the credential injected.
    let (_, secrets) = call(url, "GET", "/secrets", Some(&owner), None).await;
    assert_eq!(secrets["secrets"][0]["name"], "GITHUB_TOKEN");
    let (_, shown) = call(url, "GET", &format!("/permits/{permit}"), Some(&agent), None).await;
    assert_eq!(shown["status"], "active");
    let again =
        submit(url, &agent, &permit, "list", "console.log((await github('GET', '/repos/owner/repo/issues')).length)")
            .await;
    let (_, done) =
        call(url, "GET", &format!("/execute/{again}/status?wait=true&timeout=60"), Some(&agent), None).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["stdout"], "2\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_value_appears_in_no_response_no_database_file_and_no_log() {
    let (stub, dir, data, env) = on_sqlite(("RUST_LOG", "debug")).await;
    let server = Binary::start("oauth3", &data, dir.path(), &env);
    let url = &server.url;
    let secret = fake_secret();
    let (agent, owner, permit) = approved_permit(url, &stub, &secret).await;

    let mut seen = Vec::new();
    // The stub's /echo reflects every request header, Authorization included.
    let code = "const echoed = await github('GET', '/echo'); console.log(JSON.stringify(echoed));\n\
                const issues = await github('GET', '/repos/owner/repo/issues'); console.log(issues.length);\n\
                try { await github('DELETE', '/repos/owner/repo') } catch (e) { console.log(e.code, e.message) }";
    let id = submit(url, &agent, &permit, "echo", code).await;
    let (_, done) = call(url, "GET", &format!("/execute/{id}/status?wait=true&timeout=60"), Some(&agent), None).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["result"]["stdout"].as_str().unwrap().contains("authorization"), "{done}");
    seen.push(done.to_string());
    for (token, path) in [
        (&owner, format!("/audit?permit_id={permit}")),
        (&owner, "/secrets".to_owned()),
        (&owner, format!("/permits/{permit}")),
        (&agent, format!("/permits/{permit}")),
        (&owner, format!("/execute/{id}/status")),
    ] {
        let (status, body) = call(url, "GET", &path, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        seen.push(body.to_string());
    }
    for body in &seen {
        assert!(!body.contains(&secret), "a response contains the secret value");
    }

    assert!(data.join("oauth3.db-wal").exists(), "SQLite runs in WAL mode");
    for file in ["oauth3.db", "oauth3.db-wal", "oauth3.db-shm"] {
        let bytes = std::fs::read(data.join(file)).unwrap_or_default();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{file} contains the secret value");
    }
    let logs = server.output();
    assert!(logs.contains("permit request decided"), "debug logs were captured");
    assert!(!logs.contains(&secret), "the log contains the secret value");
    assert!(!logs.contains(&agent) && !logs.contains(&owner), "the log contains a token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_mode_prints_one_code_at_first_start_and_owners_need_one() {
    let (_stub, dir, data, env) = on_sqlite(("OAUTH3_SIGNUP", "invite")).await;
    let first = Binary::start("first", &data, dir.path(), &env);
    let printed = std::fs::read_to_string(&first.stdout).unwrap();
    let code = printed.lines().find_map(|l| l.split("\"invite\"): ").nth(1)).expect("an invite code").to_owned();
    let signup = |body: Value| call(&first.url, "POST", "/signup", None, Some(body));

    let (status, refused) = signup(json!({"name": "o", "role": "owner"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, _) = signup(json!({"name": "o", "role": "owner", "invite": "inv_guessed"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, owner) = signup(json!({"name": "o", "role": "owner", "invite": code})).await;
    assert_eq!(status, StatusCode::CREATED, "{owner}");
    let (status, _) = signup(json!({"name": "o2", "role": "owner", "invite": code})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an invite is single use");
    let (status, _) = signup(json!({"name": "a", "role": "agent"})).await;
    assert_eq!(status, StatusCode::CREATED, "agents sign up freely");

    let (status, minted) = call(&first.url, "POST", "/invites", owner["token"].as_str(), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = signup(json!({"name": "o2", "role": "owner", "invite": minted["invite"]})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(!first.output().contains(minted["invite"].as_str().unwrap()), "minted invites are not logged");

    first.kill();
    let second = Binary::start("second", &data, dir.path(), &env);
    assert!(!second.output().contains("invite code"), "the first code is printed once");
}

/// The audit entry of an allowed call is written before the call is sent:
/// a kill while the upstream holds it leaves the entry, with no status.
async fn a_call_on_the_wire_when_the_gateway_is_killed_is_in_the_audit(backend: Backend) {
    let (upstream, mut arrived, release) = oauth3_e2e::held_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut env = vec![
        ("OAUTH3_INSECURE_UPSTREAMS", upstream.clone()),
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
    ];
    if let Backend::Postgres(url) = &backend {
        env.push(("DATABASE_URL", url.clone()));
    }
    let first = Binary::start("first", &data, dir.path(), &env);
    let spec = json!({"name": "slow", "base_url": format!("http://{upstream}"), "rules": [{"method": "GET", "path": "/wait"}]});
    let (agent, owner, permit) = oauth3_e2e::approved_permit(&first.url, spec, &fake_secret()).await;
    let held = submit(&first.url, &agent, &permit, "held", "await slow('GET', '/wait')").await;
    oauth3_e2e::within(arrived.recv()).await.expect("the call reaches the upstream");
    // While the call is on the wire, its entry is there already.
    let (_, audit) = call(&first.url, "GET", "/audit", Some(&owner), None).await;
    let entry = &audit["entries"][0];
    assert_eq!((entry["execution_id"].as_str(), entry["decision"].as_str()), (Some(held.as_str()), Some("allow")));
    assert!(entry["status"].is_null(), "no answer yet: {entry}");
    first.kill();
    release.notify_one();

    let second = Binary::start("second", &data, dir.path(), &env);
    let (_, done) = call(&second.url, "GET", &format!("/execute/{held}/status"), Some(&agent), None).await;
    assert_eq!(done["result"]["error"]["code"], "interrupted", "{done}");
    let (_, audit) = call(&second.url, "GET", "/audit", Some(&owner), None).await;
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "the call is audited once: {audit}");
    assert_eq!(entries[0]["execution_id"], json!(held));
    assert!(entries[0]["status"].is_null(), "its answer never came back: {audit}");
}
