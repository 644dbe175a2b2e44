//! `oauth3 rotate-keys --to v2` against a running gateway whose keys come
//! from a (fake) dstack guest agent: killed mid-way, the database holds
//! both versions and the gateway serves both; run again, it finishes, and
//! every secret opens under `oauth3/sealing/v2` alone, with its value intact
//! (checked here with the key derived independently).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use oauth3_e2e::dstack::{FakeAgent, SIMULATOR_APP_KEY, derive, hex_bytes};
use oauth3_e2e::{Backend, Binary, Stub, approved_permit, call, fake_secret, oauth3_binary, shared_cache_dir};
use reqwest::StatusCode;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde_json::{Value, json};
use sqlx::Connection;

const SECRETS: usize = 120;

oauth3_e2e::on_both_databases!(rotation_survives_a_crash_while_the_gateway_serves_both_versions);

async fn rotation_survives_a_crash_while_the_gateway_serves_both_versions(backend: Backend) {
    let agent = FakeAgent::start(SIMULATOR_APP_KEY).await;
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let database_url = match &backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", data.join("oauth3.db").display()),
        Backend::Postgres(url) => url.clone(),
    };
    let env = vec![
        ("DSTACK_SIMULATOR_ENDPOINT", agent.socket.display().to_string()),
        ("OAUTH3_INSECURE_UPSTREAMS", stub.host_port()),
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
        ("DATABASE_URL", database_url.clone()),
    ];
    let gateway = Binary::start("gateway", &data, dir.path(), &env);
    let spec = json!({"name": "github", "base_url": stub.url(), "rules": [{"method": "GET", "path": "/repos/*/*/issues"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]});
    let (agent_token, owner, permit) = approved_permit(&gateway.url, spec, &fake_secret()).await;
    let mut values = vec![];
    for i in 0..SECRETS {
        // Sorted before GITHUB_TOKEN, so an early stop leaves that one at v1.
        let (name, value) = (format!("AAA_{i:03}"), fake_secret());
        let (status, _) =
            call(&gateway.url, "POST", "/secrets", Some(&owner), Some(json!({"name": name, "value": value}))).await;
        assert_eq!(status, StatusCode::CREATED);
        values.push((name, value));
    }

    // Killed after its first batches: some rows moved, most not.
    let mut rotation =
        rotate_keys(&data, &env, &["--batch", "5", "--pause-ms", "150"], &dir.path().join("first.stderr"));
    let mut lines = BufReader::new(rotation.stdout.take().unwrap()).lines();
    let progress = lines.find(|line| line.as_ref().unwrap().starts_with("re-encrypted 10 ")).unwrap().unwrap();
    rotation.kill().unwrap();
    rotation.wait().unwrap();
    assert!(progress.ends_with("left under other versions"), "{progress}");
    let rows = versions(&database_url).await;
    let (v1, v2) = (count(&rows, "v1"), count(&rows, "v2"));
    assert!(v1 > 0 && v2 >= 10, "a crash mid-way leaves both versions: v1 {v1}, v2 {v2}");
    assert_eq!(sealing_version(&database_url).await, "v2");

    // The gateway never stopped: it opens both (GITHUB_TOKEN is still v1),
    // and seals new secrets under v2.
    assert_eq!(rows.iter().find(|(name, _)| name == "GITHUB_TOKEN").unwrap().1, "v1");
    assert_eq!(list_issues(&gateway, &agent_token, &permit).await["status"], "completed");
    let (status, _) = call(
        &gateway.url,
        "POST",
        "/secrets",
        Some(&owner),
        Some(json!({"name": "GITHUB_TOKEN", "value": fake_secret()})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rows = versions(&database_url).await;
    assert_eq!(rows.iter().find(|(name, _)| name == "GITHUB_TOKEN").unwrap().1, "v2");
    assert_eq!(list_issues(&gateway, &agent_token, &permit).await["status"], "completed");

    // Run again: it finishes.
    let finished = rotate_keys(&data, &env, &[], &dir.path().join("second.stderr")).wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&finished.stdout);
    let logged = std::fs::read_to_string(dir.path().join("first.stderr")).unwrap()
        + &std::fs::read_to_string(dir.path().join("second.stderr")).unwrap();
    assert!(finished.status.success(), "{stdout}\n{logged}");
    assert!(stdout.contains("done: every secret is sealed under v2"), "{stdout}");
    let rows = versions(&database_url).await;
    assert_eq!(count(&rows, "v2"), rows.len());
    // Neither key in any output (the rotation logs at debug here).
    let app = hex_bytes(SIMULATOR_APP_KEY);
    let said = format!("{progress}{stdout}{logged}{}", gateway.output());
    for path in ["oauth3/sealing/v1", "oauth3/sealing/v2"] {
        assert!(!said.contains(&oauth3_e2e::dstack::hex(&derive(&app, path))), "the {path} key was shown");
    }

    // Every value opens under the v2 key alone, unchanged; a fresh gateway
    // process (v2 from the start) still injects the credential.
    let v2_key = derive(&hex_bytes(SIMULATOR_APP_KEY), "oauth3/sealing/v2");
    for (name, value) in &values {
        let (owner_id, sealed) = sealed(&database_url, name).await;
        assert_eq!(open(&v2_key, &owner_id, name, &sealed).as_deref(), Some(value.as_bytes()), "{name}");
    }
    drop(gateway);
    let gateway = Binary::start("gateway-after", &data, dir.path(), &env);
    assert_eq!(list_issues(&gateway, &agent_token, &permit).await["status"], "completed");
}

/// `oauth3 rotate-keys --to v2` with the gateway's settings, stdout piped,
/// stderr to `stderr` (a file: never a pipe left unread).
fn rotate_keys(data: &Path, env: &[(&str, String)], extra: &[&str], stderr: &Path) -> std::process::Child {
    Command::new(oauth3_binary())
        .args(["rotate-keys", "--to", "v2"])
        .args(extra)
        .env_clear()
        .env("OAUTH3_DATA_DIR", data)
        .env("RUST_LOG", "debug")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

async fn list_issues(gateway: &Binary, agent: &str, permit: &str) -> Value {
    let code = "const issues = await github('GET', '/repos/octo/hello/issues'); console.log(issues.length);";
    let body = json!({"permit_id": permit, "action_id": oauth3_e2e::random_hex(8), "code": code});
    let (status, accepted) = call(&gateway.url, "POST", "/execute", Some(agent), Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let path = format!("/execute/{}/status?wait=true&timeout=60", accepted["request_id"].as_str().unwrap());
    let (_, done) = call(&gateway.url, "GET", &path, Some(agent), None).await;
    assert_eq!(done["result"]["stdout"].as_str().map(str::trim), Some("2"), "{done}");
    done
}

async fn connect(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url).await.unwrap()
}

/// Each secret's (name, key_version).
async fn versions(url: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT name, key_version FROM secrets ORDER BY name")
        .fetch_all(&mut connect(url).await)
        .await
        .unwrap()
}

fn count(versions: &[(String, String)], version: &str) -> usize {
    versions.iter().filter(|(_, v)| v == version).count()
}

async fn sealing_version(url: &str) -> String {
    sqlx::query_scalar("SELECT version FROM key_versions WHERE purpose = 'sealing'")
        .fetch_one(&mut connect(url).await)
        .await
        .unwrap()
}

/// The (only) owner's id and sealed secret `name`.
async fn sealed(url: &str, name: &str) -> (String, Vec<u8>) {
    sqlx::query_as("SELECT owner_id, sealed FROM secrets WHERE name = $1")
        .bind(name)
        .fetch_one(&mut connect(url).await)
        .await
        .unwrap()
}

/// The gateway's sealing format, reimplemented: nonce ‖ AES-256-GCM(value),
/// associated data `oauth3-secret-v1\0owner\0name`.
fn open(key: &[u8; 32], owner: &str, name: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let mut body = body.to_vec();
    let aad = format!("oauth3-secret-v1\0{owner}\0{name}");
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    key.open_in_place(nonce, Aad::from(aad.as_bytes()), &mut body).ok().map(|plain| plain.to_vec())
}
