//! The holes found by adversarial testing, each tried end to end against the
//! real `oauth3` binary and a hostile upstream on 127.0.0.1 that obeys
//! routing headers, acts on GET bodies and reflects the credential; plus
//! the graceful shutdown and the secure-by-default signup of the binary.

use std::time::{Duration, SystemTime};

use oauth3_e2e::hostile::Hostile;
use oauth3_e2e::{Backend, Binary, Stub, call, fake_secret, on_both_databases, shared_cache_dir};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A running binary in front of the hostile upstream, with an agent, an
/// owner holding GITHUB_TOKEN = `secret`, and an approved permit.
struct Setup {
    hostile: Hostile,
    server: Binary,
    data: std::path::PathBuf,
    _dir: tempfile::TempDir,
    agent: String,
    owner: String,
    permit: String,
    secret: String,
}

async fn setup(backend: &Backend, extra_env: &[(&'static str, String)]) -> Setup {
    let hostile = Hostile::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut env = vec![
        ("OAUTH3_INSECURE_UPSTREAMS", hostile.host_port()),
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
        ("RUST_LOG", "debug".to_owned()),
    ];
    if let Backend::Postgres(url) = backend {
        env.push(("DATABASE_URL", url.clone()));
    }
    env.extend(extra_env.iter().cloned());
    let server = Binary::start("oauth3", &data, dir.path(), &env);
    let secret = fake_secret();
    let spec = json!({
        "name": "github",
        "base_url": hostile.url(),
        "rules": [
            {"method": "GET", "path": "/repos/o/r/issues"},
            {"method": "GET", "path": "/reflect/*"},
            {"method": "GET", "path": "/sleep/*"}
        ],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
        "secrets": ["GITHUB_TOKEN"]
    });
    let (agent, owner, permit) = oauth3_e2e::approved_permit(&server.url, spec, &secret).await;
    Setup { hostile, server, data, _dir: dir, agent, owner, permit, secret }
}

impl Setup {
    /// Submits `code` and waits for the execution to end; its status body.
    async fn execute(&self, code: &str) -> Value {
        let id = self.submit(code).await;
        self.wait(&id).await
    }

    async fn submit(&self, code: &str) -> String {
        let action = format!("act_{}", oauth3_e2e::random_hex(16));
        let body = json!({"permit_id": self.permit, "action_id": action, "code": code});
        let (status, body) = call(&self.server.url, "POST", "/execute", Some(&self.agent), Some(body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["request_id"].as_str().unwrap().to_owned()
    }

    async fn wait(&self, id: &str) -> Value {
        let path = format!("/execute/{id}/status?wait=true&timeout=60");
        let (status, body) = call(&self.server.url, "GET", &path, Some(&self.agent), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(matches!(body["status"].as_str(), Some("completed" | "failed")), "{body}");
        body
    }

    fn stdout(done: &Value) -> &str {
        done["result"]["stdout"].as_str().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_reroute_a_request_upstream_never_leave_the_gateway() {
    let s = setup(&Backend::Sqlite, &[]).await;
    let tries = [
        ("X-Original-URL", "/user/emails"),
        ("X-Rewrite-URL", "/user/emails"),
        ("X_Original_URL", "/user/emails"),
        ("x-original-uri", "/user/emails"),
        ("X-Forwarded-Prefix", "/user"),
        ("X-Forwarded-Uri", "/user/emails"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-HTTP-Method", "DELETE"),
        ("Forwarded", "host=evil.example;proto=http"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Envoy-Original-Path", "/user/emails"),
        ("X-Host", "evil.example"),
    ];
    let code = format!(
        "console.log(JSON.stringify(await github('GET', '/repos/o/r/issues')));
         for (const [name, value] of {}) {{
           try {{ await github('GET', '/repos/o/r/issues', {{headers: {{[name]: value}}}}); console.log(name, 'sent') }}
           catch (e) {{ console.log(name, e.code) }}
         }}",
        serde_json::to_string(&tries).unwrap()
    );
    let done = s.execute(&code).await;
    assert_eq!(done["status"], "completed", "{done}");
    let lines: Vec<&str> = Setup::stdout(&done).lines().collect();
    assert_eq!(lines[0], r#"[{"number":1,"title":"first"}]"#, "the allowed call went through");
    for ((name, _), line) in tries.iter().zip(&lines[1..]) {
        assert_eq!(*line, format!("{name} header_not_allowed"));
    }
    let received = s.hostile.received();
    assert_eq!(received.len(), 1, "only the plain call reached the upstream: {received:?}");
    assert!(received[0].header("x-original-url").is_none() && received[0].path == "/repos/o/r/issues");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_on_a_rule_that_names_none_never_leaves_the_gateway() {
    let s = setup(&Backend::Sqlite, &[]).await;
    let code = "for (const body of [{assignees: ['mallory']}, 'assignees=mallory', ' ']) {
                  try { await github('GET', '/repos/o/r/issues', {body}); console.log('sent') }
                  catch (e) { console.log(e.code) }
                }";
    let done = s.execute(code).await;
    assert_eq!(Setup::stdout(&done), "body_invalid\nbody_invalid\nbody_invalid\n", "{done}");
    assert!(s.hostile.received().is_empty(), "{:?}", s.hostile.received());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflected_secret_reaches_no_output_no_result_no_database_file_and_no_log() {
    let s = setup(&Backend::Sqlite, &[]).await;
    // As the agent would read each reflection: JSON parsed by the runtime,
    // HTML references and percent-escapes decoded by the script.
    let code = r#"const a = await github('GET', '/reflect/json-unicode'); console.log(a.authorization);
        const h = await github('GET', '/reflect/html');
        console.log(h.replace(/&#x([0-9a-f]+);/g, (_, x) => String.fromCharCode(parseInt(x, 16))));
        console.log(decodeURIComponent(await github('GET', '/reflect/percent')));"#;
    let done = s.execute(code).await;
    assert_eq!(done["status"], "completed", "{done}");
    let stdout = Setup::stdout(&done);
    assert_eq!(stdout.matches("[REDACTED]").count(), 3, "{stdout}");
    // The upstream did have the secret: this was a real reflection.
    let sent = s.hostile.received();
    assert!(sent.iter().all(|r| r.header("authorization") == Some(&format!("Bearer {}", s.secret))));

    let mut seen = vec![done.to_string()];
    let id = done["request_id"].as_str().unwrap();
    for (token, path) in
        [(&s.owner, format!("/execute/{id}/status")), (&s.owner, format!("/audit?permit_id={}", s.permit))]
    {
        seen.push(call(&s.server.url, "GET", &path, Some(token), None).await.1.to_string());
    }
    for text in &seen {
        assert!(!text.contains(&s.secret), "a response holds the secret");
    }
    assert!(s.data.join("oauth3.db-wal").exists(), "SQLite runs in WAL mode");
    for file in ["oauth3.db", "oauth3.db-wal", "oauth3.db-shm"] {
        let bytes = std::fs::read(s.data.join(file)).unwrap_or_default();
        assert!(!bytes.windows(s.secret.len()).any(|w| w == s.secret.as_bytes()), "{file} holds the secret");
    }
    let logs = s.server.output();
    assert!(logs.contains("egress call"), "debug logs were captured");
    assert!(!logs.contains(&s.secret), "the log holds the secret");
}

async fn no_call_leaves_after_the_execution_is_reported_finished(backend: Backend) {
    let s = setup(&backend, &[("OAUTH3_MAX_CALLS", "50".into())]).await;
    // One call is on the wire when the burst ends the run; it may finish.
    let code = "const slow = github('GET', '/sleep/400'); await github('GET', '/sleep/10');
                const all = [slow]; for (let i = 0; i < 10000; i++) all.push(github('GET', '/sleep/50'));
                await Promise.all(all);";
    let done = s.execute(code).await;
    let seen_when_finished = s.hostile.received().len();
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["result"]["error"]["code"], "call_limit");
    let finished = humantime::parse_rfc3339(done["finished_at"].as_str().unwrap()).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = s.hostile.received();
    assert_eq!(received.len(), seen_when_finished, "calls reached the upstream after the execution finished");
    let late: Vec<_> = received.iter().filter(|r| r.at > finished + Duration::from_millis(1)).collect();
    assert!(late.is_empty(), "{} calls arrived after finished_at", late.len());

    // The execution's calls and the audit log agree, call for call.
    let calls = done["result"]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 51, "50 started and the one past the limit");
    let sent = calls.iter().filter(|c| !c["status"].is_null()).count();
    assert_eq!(sent, received.len(), "every call the upstream saw is listed");
    assert!(sent >= 2, "the call on the wire when the run ended finished ({sent} sent)");
    // Calls started but not sent when the run ended were never sent: at most
    // those holding one of the 8 concurrency slots could have been on the wire.
    let refused = calls.iter().filter(|c| c["reason"] == "run_ended").count();
    assert!(sent <= 9 && refused >= 40, "{sent} sent, {refused} refused at the run's end");
    assert!(calls.iter().any(|c| c["url"].as_str().unwrap().ends_with("/sleep/400") && c["status"] == 200));
    let id = done["request_id"].as_str().unwrap();
    let (_, audit) =
        call(&s.server.url, "GET", &format!("/audit?permit_id={}&limit=1000", s.permit), Some(&s.owner), None).await;
    let key = |c: &Value| format!("{} {} {} {}", c["url"], c["decision"], c["reason"], c["status"]);
    let mut audited: Vec<String> =
        audit["entries"].as_array().unwrap().iter().filter(|e| e["execution_id"] == id).map(key).collect();
    let mut listed: Vec<String> = calls.iter().map(key).collect();
    audited.sort();
    listed.sort();
    assert_eq!(audited, listed);
}

on_both_databases!(
    no_call_leaves_after_the_execution_is_reported_finished,
    sigterm_lets_running_executions_finish_and_keeps_queued_ones
);

async fn sigterm_lets_running_executions_finish_and_keeps_queued_ones(backend: Backend) {
    let env = [
        ("OAUTH3_SHUTDOWN_GRACE_SECS", "4".to_owned()),
        ("OAUTH3_MAX_CONCURRENT", "2".to_owned()),
        ("OAUTH3_TIMEOUT_SECS", "120".to_owned()),
        ("OAUTH3_FUEL", u64::MAX.to_string()),
    ];
    let mut s = setup(&backend, &env).await;
    let finishing = s.submit("await github('GET', '/sleep/1500'); console.log('finished')").await;
    let spinning = s.submit("for (;;) {}").await;
    // Both workers are busy, so this one stays queued.
    let queued = s.submit("console.log('ran after the restart')").await;
    for id in [&finishing, &spinning] {
        let path = format!("/execute/{id}/status");
        loop {
            let (_, status) = call(&s.server.url, "GET", &path, Some(&s.agent), None).await;
            if status["status"] == "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let started = SystemTime::now();
    let exit = tokio::task::block_in_place(|| s.server.signal_and_wait("TERM", Duration::from_secs(20)));
    let took = started.elapsed().unwrap();
    assert!(exit.success(), "exit status {exit}: {}", s.server.output());
    assert!(took >= Duration::from_secs(3), "it waited for the grace period ({took:?})");
    assert!(s.server.output().contains("marked executions still running as interrupted"), "{}", s.server.output());

    // Started again on the same data: the queued execution runs now.
    let mut env = env.to_vec();
    env.push(("OAUTH3_INSECURE_UPSTREAMS", s.hostile.host_port()));
    env.push(("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()));
    if let Backend::Postgres(url) = &backend {
        env.push(("DATABASE_URL", url.clone()));
    }
    let logs = s.data.parent().unwrap().to_owned();
    s.server = Binary::start("second", &s.data, &logs, &env);
    let done = s.wait(&finishing).await;
    assert_eq!((done["status"].as_str(), Setup::stdout(&done)), (Some("completed"), "finished\n"), "{done}");
    let interrupted = s.wait(&spinning).await;
    assert_eq!(interrupted["status"], "failed");
    assert_eq!(interrupted["result"]["error"]["code"], "interrupted");
    let later = s.wait(&queued).await;
    assert_eq!((later["status"].as_str(), Setup::stdout(&later)), (Some("completed"), "ran after the restart\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exposed_gateway_requires_invites_for_owners_unless_told_otherwise_loudly() {
    let stub = Stub::start().await;
    let env = |extra: &[(&'static str, &str)]| {
        let mut env = vec![
            ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
            ("OAUTH3_LISTEN", "0.0.0.0:0".to_owned()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        env
    };
    let owner = json!({"name": "o", "role": "owner"});

    // Listening on every address: invite mode, the first code printed once.
    let dir = tempfile::tempdir().unwrap();
    let exposed = Binary::start("exposed", &dir.path().join("data"), dir.path(), &env(&[]));
    let (status, _) = call(&exposed.url, "POST", "/signup", None, Some(owner.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "owners need an invite");
    assert!(std::fs::read_to_string(&exposed.stdout).unwrap().contains("first owner invite code"));
    assert!(!exposed.output().contains("WARNING"), "{}", exposed.output());

    // Open signup chosen there anyway, and insecure upstreams: both warned about.
    let dir = tempfile::tempdir().unwrap();
    let upstream = stub.host_port();
    let chosen = env(&[("OAUTH3_SIGNUP", "open"), ("OAUTH3_INSECURE_UPSTREAMS", &upstream)]);
    let open = Binary::start("open", &dir.path().join("data"), dir.path(), &chosen);
    let (status, _) = call(&open.url, "POST", "/signup", None, Some(owner.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let logs = open.output();
    assert!(logs.contains("WARNING: OAUTH3_SIGNUP=open on a gateway other machines can reach"), "{logs}");
    assert!(logs.contains("WARNING: OAUTH3_INSECURE_UPSTREAMS is set on a gateway listening on 0.0.0.0"), "{logs}");

    // On loopback behind an https public URL: invite mode too.
    let dir = tempfile::tempdir().unwrap();
    let mut behind_tls = vec![
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
        ("OAUTH3_PUBLIC_URL", "https://oauth3.example.com".to_owned()),
    ];
    behind_tls.push(("OAUTH3_LOG_FORMAT", "text".to_owned()));
    let proxied = Binary::start("proxied", &dir.path().join("data"), dir.path(), &behind_tls);
    let (status, _) = call(&proxied.url, "POST", "/signup", None, Some(owner)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_data_dir_leaves_the_firsts_executions_alone() {
    let env = [("OAUTH3_TIMEOUT_SECS", "120".to_owned()), ("OAUTH3_FUEL", u64::MAX.to_string())];
    let s = setup(&Backend::Sqlite, &env).await;
    let spinning = s.submit("for (;;) {}").await;
    let path = format!("/execute/{spinning}/status");
    while call(&s.server.url, "GET", &path, Some(&s.agent), None).await.1["status"] != "running" {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // As in an overlapping restart: the first is still running.
    let mut env = env.to_vec();
    env.push(("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()));
    let second = Binary::start("second", &s.data, s.data.parent().unwrap(), &env);
    assert!(second.output().contains("another oauth3 process uses this data dir"), "{}", second.output());
    let (_, status) = call(&second.url, "GET", &path, Some(&s.agent), None).await;
    assert_eq!(status["status"], "running", "the live process's execution was marked: {status}");
}
