//! The real `oauth3` binary with keys from a (fake) dstack guest agent: found
//! through `DSTACK_SIMULATOR_ENDPOINT`, logged by provider and never by key,
//! no key files written; and `OAUTH3_KEYS=dstack` without an agent refuses to
//! start.

use oauth3_e2e::dstack::{FakeAgent, SIMULATOR_APP_KEY, derive, hex, hex_bytes};
use oauth3_e2e::{Binary, Stub, approved_permit, fake_secret, oauth3_binary, shared_cache_dir};
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
