//! Gateway processes sharing one database: keys shared through one
//! `OAUTH3_KEY_DIR`, a process with other keys refused at start, and
//! `/ready` as a load balancer sees it.

use oauth3_e2e::{Backend, Binary, call, fake_secret, oauth3_binary, on_both_databases, shared_cache_dir, within};
use serde_json::json;

on_both_databases!(replicas_share_one_key_dir_and_a_replica_with_other_keys_refuses_to_start);

/// The environment of a replica on `backend` whose keys are in `key_dir`;
/// on SQLite the database is the file in `shared`.
fn replica_env(backend: &Backend, shared: &std::path::Path, key_dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let database = match backend {
        Backend::Postgres(url) => url.clone(),
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", shared.join("oauth3.db").display()),
    };
    vec![
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
        ("OAUTH3_KEYS", "file".into()),
        ("OAUTH3_KEY_DIR", key_dir.display().to_string()),
        ("DATABASE_URL", database),
    ]
}

async fn replicas_share_one_key_dir_and_a_replica_with_other_keys_refuses_to_start(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let first = Binary::start("first", &dir.path().join("a"), dir.path(), &replica_env(&backend, dir.path(), &keys));
    let second = Binary::start("second", &dir.path().join("b"), dir.path(), &replica_env(&backend, dir.path(), &keys));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&keys).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the key dir is made private");

    // A token from one replica works on the other, and a secret sealed by
    // one is known to the other.
    let (_, owner) = call(&first.url, "POST", "/signup", None, Some(json!({"name": "o", "role": "owner"}))).await;
    let owner = owner["token"].as_str().unwrap();
    let secret = json!({"name": "GITHUB_TOKEN", "value": fake_secret()});
    assert_eq!(call(&first.url, "POST", "/secrets", Some(owner), Some(secret)).await.0, 201);
    let (status, listed) = call(&second.url, "GET", "/secrets", Some(owner), None).await;
    assert_eq!((status.as_u16(), &listed["secrets"][0]["name"]), (200, &json!("GITHUB_TOKEN")), "{listed}");
    for replica in [&first, &second] {
        let (status, ready) = call(&replica.url, "GET", "/ready", None, None).await;
        assert_eq!(
            (status.as_u16(), ready),
            (
                200,
                json!({"status": "ready", "database": "ok", "sandbox": "ok",
            "process": "serving"})
            )
        );
    }

    // A replica with keys of its own is refused before it serves anything.
    let other_keys = dir.path().join("other-keys");
    let output = std::process::Command::new(oauth3_binary())
        .arg("serve")
        .env_clear()
        .env("OAUTH3_LISTEN", "127.0.0.1:0")
        .env("OAUTH3_DATA_DIR", dir.path().join("c"))
        .envs(replica_env(&backend, dir.path(), &other_keys))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a replica with other keys started: {stderr}");
    assert!(stderr.contains("key (v1) is not the one this database was set up with"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening"), "it never listened");
    // The others still serve.
    assert_eq!(call(&second.url, "GET", "/secrets", Some(owner), None).await.0, 200);

    // A database from before key checks: a fresh key dir is refused because
    // its sealing key does not open the stored secret, and nothing is recorded.
    let database = replica_env(&backend, dir.path(), &keys).pop().unwrap().1;
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&database).await.unwrap();
    sqlx::query("DELETE FROM key_checks").execute(&mut db).await.unwrap();
    let output = std::process::Command::new(oauth3_binary())
        .arg("serve")
        .env_clear()
        .env("OAUTH3_LISTEN", "127.0.0.1:0")
        .env("OAUTH3_DATA_DIR", dir.path().join("d"))
        .envs(replica_env(&backend, dir.path(), &dir.path().join("fresh-keys")))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a fresh key dir was taken for a database with secrets: {stderr}");
    assert!(stderr.contains("sealing key does not open"), "{stderr}");
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_checks").fetch_one(&mut db).await.unwrap();
    assert_eq!(recorded, 0, "the refused process recorded a check value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_wait_on_one_replica_answers_the_run_another_finished() {
    let Some(backend) = oauth3_e2e::postgres("replicas_notify").await else { return };
    let (upstream, mut arrived, release) = oauth3_e2e::held_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let mut env = replica_env(&backend, dir.path(), &keys);
    env.push(("OAUTH3_INSECURE_UPSTREAMS", upstream.clone()));
    // Re-reading is pushed out past the wait: only NOTIFY ends it before its
    // timeout (after which it reads once more). How soon is the bench's to show
    // (`cargo bench -p oauth3-gateway --bench replicas`), not this test's.
    env.push(("OAUTH3_REREAD_MS", "600000".into()));
    let first = Binary::start("first", &dir.path().join("a"), dir.path(), &env);
    let second = Binary::start("second", &dir.path().join("b"), dir.path(), &env);
    let spec = json!({"name": "slow", "base_url": format!("http://{upstream}"), "rules": [{"method": "GET", "path": "/wait"}]});
    let (agent, _, permit) = oauth3_e2e::approved_permit(&first.url, spec, &fake_secret()).await;

    let run =
        json!({"permit_id": permit, "action_id": "held", "code": "await slow('GET', '/wait'); console.log('done')"});
    let (status, accepted) = call(&first.url, "POST", "/execute", Some(&agent), Some(run)).await;
    assert_eq!(status.as_u16(), 202, "{accepted}");
    let id = accepted["request_id"].as_str().unwrap().to_owned();
    within(arrived.recv()).await.expect("the run's call reaches the upstream");
    // The second replica's wait starts while the run is held on the first.
    let waiting = tokio::spawn({
        let (url, agent) = (second.url.clone(), agent.clone());
        async move { call(&url, "GET", &format!("/execute/{id}/status?wait=true&timeout=45"), Some(&agent), None).await }
    });
    let (status, early) = call(
        &second.url,
        "GET",
        &format!("/execute/{}/status", accepted["request_id"].as_str().unwrap()),
        Some(&agent),
        None,
    )
    .await;
    assert_eq!((status.as_u16(), early["status"].as_str()), (200, Some("running")), "{early}");
    // Time for the wait to be registered before the run ends.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    release.notify_one();
    let (status, done) = within(waiting).await.unwrap();
    assert_eq!(status.as_u16(), 200);
    assert_eq!(done["status"], "completed", "the wait on the other replica ended with the run: {done}");
    assert_eq!(done["result"]["stdout"], "done\n");
}

/// What the counting upstream saw: hits per key, and calls to `/limited`.
#[derive(Default)]
struct Counts {
    hits: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    limited: std::sync::atomic::AtomicU32,
    /// The `Authorization` header of the last `GET /whoami`.
    authorization: std::sync::Mutex<Option<String>>,
}

/// An upstream on 127.0.0.1 that counts `GET /hit/{key}` per key (answering
/// `{"n": <count so far>}`) and `GET /limited`, and keeps the credential of
/// the last `GET /whoami`: (its `host:port`, counts).
async fn counting_upstream() -> (String, std::sync::Arc<Counts>) {
    use axum::extract::{Path, State};
    use std::sync::Arc;
    let counts = Arc::new(Counts::default());
    let app = axum::Router::new()
        .route(
            "/hit/{key}",
            axum::routing::get(|State(counts): State<Arc<Counts>>, Path(key): Path<String>| async move {
                let mut hits = counts.hits.lock().unwrap();
                let n = hits.entry(key).or_default();
                *n += 1;
                axum::Json(json!({"n": *n}))
            }),
        )
        .route(
            "/limited",
            axum::routing::get(|State(counts): State<Arc<Counts>>| async move {
                counts.limited.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                axum::Json(json!({"ok": true}))
            }),
        )
        .route(
            "/whoami",
            axum::routing::get(|State(counts): State<Arc<Counts>>, headers: axum::http::HeaderMap| async move {
                let seen = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                *counts.authorization.lock().unwrap() = seen;
                axum::Json(json!({"ok": true}))
            }),
        )
        .with_state(Arc::clone(&counts));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, counts)
}

/// Executions the client spreads across the replicas.
const EXECUTIONS: usize = 3000;
/// Client tasks submitting at once.
const CLIENTS: usize = 24;
/// The shared rate limit: calls per minute across every replica.
const LIMIT: u32 = 5;

/// One HTTP client for the whole test (connections reused).
fn client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(oauth3_e2e::http_client)
}

/// Submits `body` to the replica at `first` (then the next ones while a
/// replica does not answer): the 202's execution id and the replica that took it.
async fn submit_somewhere(urls: &[String], first: usize, agent: &str, body: &serde_json::Value) -> (String, usize) {
    for turn in 0..urls.len() * 20 {
        let at = (first + turn) % urls.len();
        let sent = client().post(format!("{}/execute", urls[at])).bearer_auth(agent).json(body).send().await;
        let Ok(reply) = sent else { continue }; // that replica is gone: the same action_id elsewhere
        let status = reply.status().as_u16();
        let answer: serde_json::Value = reply.json().await.unwrap_or_default();
        assert_eq!(status, 202, "{answer}");
        return (answer["request_id"].as_str().unwrap().to_owned(), at);
    }
    panic!("no replica accepted {body}");
}

/// Waits for execution `id` on the replica at `first` (then the next ones
/// while one does not answer) until it ends: its final status.
async fn wait_somewhere(urls: &[String], first: usize, agent: &str, id: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut turn = 0;
    loop {
        assert!(std::time::Instant::now() < deadline, "execution {id} did not end within 120 s");
        let at = (first + turn) % urls.len();
        let sent = client()
            .get(format!("{}/execute/{id}/status?wait=true&timeout=10", urls[at]))
            .bearer_auth(agent)
            .send()
            .await;
        let Ok(reply) = sent else {
            turn += 1;
            continue;
        };
        let status = reply.status().as_u16();
        let view: serde_json::Value = reply.json().await.unwrap_or_default();
        if status == 200 && matches!(view["status"].as_str(), Some("completed" | "failed")) {
            return view;
        }
        // Still queued or running, or the replica is stopping: ask again (elsewhere).
        turn += usize::from(status != 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_lose_nothing_run_nothing_twice_and_share_limits_and_revokes_when_one_is_killed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let Some(backend) = oauth3_e2e::postgres("replicas_three").await else { return };
    let Backend::Postgres(database) = backend.clone() else { unreachable!() };
    let (upstream, counts) = counting_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = replica_env(&backend, dir.path(), &dir.path().join("keys"));
    env.push(("OAUTH3_INSECURE_UPSTREAMS", upstream.clone()));
    // A dead replica's running executions are interrupted after 4 s, not a minute.
    env.push(("OAUTH3_REPLICA_TIMEOUT_MS", "4000".into()));
    let replicas: Vec<Binary> =
        ["a", "b", "c"].iter().map(|name| Binary::start(name, &dir.path().join(name), dir.path(), &env)).collect();
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let spec = json!({"name": "counter", "base_url": format!("http://{upstream}"),
        "rules": [{"method": "GET", "path": "/hit/*"}, {"method": "GET", "path": "/whoami"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]});
    let first_secret = fake_secret();
    let (agent, owner, permit) = oauth3_e2e::approved_permit(&urls[0], spec, &first_secret).await;

    // 3,000 executions, each submitted to one replica and waited on at the
    // next; the third replica is killed (SIGKILL) a third of the way in.
    let code = "const r = await counter('GET', '/hit/' + args.key); console.log(r.n)";
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (urls, agent, permit, next, done) =
                (urls.clone(), agent.clone(), permit.clone(), Arc::clone(&next), Arc::clone(&done));
            tokio::spawn(async move {
                let mut ended = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= EXECUTIONS {
                        return ended;
                    }
                    let key = format!("k{i}");
                    let body = json!({"permit_id": permit, "action_id": key, "code": code, "args": {"key": key}});
                    let (id, at) = submit_somewhere(&urls, i % 3, &agent, &body).await;
                    let view = wait_somewhere(&urls, at + 1, &agent, &id).await;
                    done.fetch_add(1, Ordering::SeqCst);
                    ended.push((key, id, view));
                }
            })
        })
        .collect();
    let mut replicas = replicas;
    let third = async {
        while done.load(Ordering::SeqCst) < EXECUTIONS / 3 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    // Three unoptimised gateways on two cores: minutes at worst.
    tokio::time::timeout(std::time::Duration::from_secs(600), third).await.expect("a third done within 10 minutes");
    replicas.pop().unwrap().kill();
    let mut ended = Vec::new();
    for client in clients {
        ended.extend(client.await.unwrap());
    }

    // Every execution ended, completed or interrupted, and none ran twice.
    assert_eq!(ended.len(), EXECUTIONS);
    let hits = counts.hits.lock().unwrap().clone();
    let (mut completed, mut interrupted) = (Vec::new(), Vec::new());
    for (key, id, view) in &ended {
        let calls = hits.get(key).copied().unwrap_or(0);
        assert!(calls <= 1, "{key} ({id}) reached the upstream {calls} times");
        match (view["status"].as_str(), view["result"]["error"]["code"].as_str()) {
            (Some("completed"), _) => {
                assert_eq!((calls, view["result"]["stdout"].as_str()), (1, Some("1\n")), "{view}");
                completed.push(id.clone());
            }
            (Some("failed"), Some("interrupted")) => interrupted.push((id.clone(), calls)),
            _ => panic!("{key} ended neither completed nor interrupted: {view}"),
        }
    }
    assert!(completed.len() >= EXECUTIONS * 9 / 10, "{} of {EXECUTIONS} completed", completed.len());
    let total_hits: u32 = hits.values().sum();
    assert!(hits.keys().all(|key| key.starts_with('k')) && hits.len() <= EXECUTIONS);

    // The audit has every upstream call exactly once: written ahead of the
    // call, so a call the kill cut short is there too (without a status, at
    // most one entry for a call that the kill stopped before it went out).
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&database).await.unwrap();
    let audited: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT execution_id, COUNT(*), COUNT(status) FROM audit WHERE permit_id = $1 GROUP BY execution_id",
    )
    .bind(&permit)
    .fetch_all(&mut db)
    .await
    .unwrap();
    let audited: std::collections::HashMap<String, (i64, i64)> =
        audited.into_iter().map(|(id, rows, answered)| (id, (rows, answered))).collect();
    for id in &completed {
        assert_eq!(audited.get(id), Some(&(1, 1)), "execution {id}'s call is audited once, with its answer");
    }
    for (id, calls) in &interrupted {
        let (rows, _) = audited.get(id).copied().unwrap_or((0, 0));
        assert!(i64::from(*calls) <= rows && rows <= 1, "execution {id}: {rows} audit entries for {calls} calls");
    }
    assert_eq!(audited.len(), completed.len() + interrupted.iter().filter(|(id, _)| audited.contains_key(id)).count());
    let audit_rows: i64 = audited.values().map(|(rows, _)| rows).sum();
    eprintln!(
        "{} completed, {} interrupted ({} of them after their call); {total_hits} upstream calls, {audit_rows} audited",
        completed.len(),
        interrupted.len(),
        interrupted.iter().filter(|(_, calls)| *calls == 1).count()
    );

    // A rate limit of LIMIT per minute on another permit, shared by the two
    // replicas left: exactly LIMIT calls pass, however they are spread.
    let limited = json!({"name": "limited", "base_url": format!("http://{upstream}"),
        "rules": [{"method": "GET", "path": "/limited"}],
        "rate_limit": {"max_calls": LIMIT, "window_seconds": 60}});
    let body = json!({"description": "limited", "capabilities": [limited]});
    let (status, request) = call(&urls[1], "POST", "/permit", Some(&agent), Some(body)).await;
    assert_eq!(status.as_u16(), 201, "{request}");
    let approve = format!("/approve/{}", request["request_id"].as_str().unwrap());
    assert_eq!(call(&urls[0], "POST", &approve, Some(&owner), Some(json!({"action": "approve"}))).await.0, 200);
    let limited_permit = request["permit_id"].as_str().unwrap().to_owned();
    let code = "try { await limited('GET', '/limited'); console.log('passed') } catch (e) { console.log(e.code) }";
    let runs: Vec<_> = (0..4 * LIMIT as usize)
        .map(|i| {
            let (urls, agent) = (urls[..2].to_vec(), agent.clone());
            let body = json!({"permit_id": limited_permit, "action_id": format!("limited-{i}"), "code": code});
            tokio::spawn(async move {
                let (id, at) = submit_somewhere(&urls, i % 2, &agent, &body).await;
                wait_somewhere(&urls, at, &agent, &id).await["result"]["stdout"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut outputs = Vec::new();
    for run in runs {
        outputs.push(run.await.unwrap());
    }
    let passed = outputs.iter().filter(|out| *out == "passed\n").count();
    let refused = outputs.iter().filter(|out| *out == "rate_limited\n").count();
    assert_eq!((passed, refused), (LIMIT as usize, 3 * LIMIT as usize), "{outputs:?}");
    assert_eq!(counts.limited.load(Ordering::SeqCst), LIMIT, "exactly the limit reached the upstream");

    // A secret changed or deleted through one replica is what the other
    // uses from its next execution, though it has the old one cached.
    let whoami = "try { await counter('GET', '/whoami'); console.log('sent') } catch (e) { console.log(e.code) }";
    let seen = || counts.authorization.lock().unwrap().take();
    let run_whoami = |turn: &'static str| {
        let body = json!({"permit_id": permit, "action_id": format!("whoami-{turn}"), "code": whoami});
        let (urls, agent) = (urls.clone(), agent.clone());
        async move {
            let (id, at) = submit_somewhere(&urls[..1], 0, &agent, &body).await;
            wait_somewhere(&urls[..1], at, &agent, &id).await["result"]["stdout"].as_str().unwrap().to_owned()
        }
    };
    for turn in ["cached-1", "cached-2"] {
        assert_eq!(run_whoami(turn).await, "sent\n");
        assert!(seen() == Some(format!("Bearer {first_secret}")), "the first secret was sent");
    }
    let second_secret = fake_secret();
    let body = json!({"name": "GITHUB_TOKEN", "value": second_secret});
    assert_eq!(call(&urls[1], "POST", "/secrets", Some(&owner), Some(body)).await.0, 200);
    assert_eq!(run_whoami("changed").await, "sent\n");
    assert!(seen() == Some(format!("Bearer {second_secret}")), "the changed secret was sent, not the cached one");
    assert_eq!(call(&urls[1], "DELETE", "/secrets/GITHUB_TOKEN", Some(&owner), None).await.0, 204);
    assert_eq!(run_whoami("deleted").await, "secret_missing\n");
    assert!(seen().is_none(), "nothing was sent without the secret");

    // A revoke on one replica stops executions on the other at once.
    let revoke = format!("/permits/{permit}/revoke");
    assert_eq!(call(&urls[1], "POST", &revoke, Some(&owner), None).await.0, 200);
    for url in &urls[..2] {
        let body = json!({"permit_id": permit, "action_id": format!("after-revoke-{url}"), "code": code,
            "args": {"key": "after-revoke"}});
        let (status, refused) = call(url, "POST", "/execute", Some(&agent), Some(body)).await;
        assert_eq!((status.as_u16(), refused["error"]["code"].as_str()), (409, Some("permit_not_active")));
    }
    assert!(!counts.hits.lock().unwrap().contains_key("after-revoke"));
}
