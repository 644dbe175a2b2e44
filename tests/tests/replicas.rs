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
