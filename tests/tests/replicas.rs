//! Gateway processes sharing one database: keys shared through one
//! `OAUTH3_KEY_DIR`, a process with other keys refused at start, and
//! `/ready` as a load balancer sees it.

use oauth3_e2e::{Backend, Binary, call, fake_secret, oauth3_binary, on_both_databases, shared_cache_dir};
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
}
