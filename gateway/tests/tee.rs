//! Keys from the dstack guest agent, against a faithful fake agent on a Unix
//! socket (`oauth3_e2e::dstack`): the client, the key provider, and sealed
//! secrets shared by two gateways of one app on one Postgres database, and
//! unreadable to another app.

mod support;

use std::sync::Arc;
use std::time::Duration;

use oauth3_e2e::dstack::{
    APP_COMPOSE, FakeAgent, SAMPLE_COLLATERAL, SAMPLE_QUOTE, SIMULATOR_APP_KEY, derive, hex, hex_bytes, identity,
    patched_quote, receipt_id, receipt_verifies, replay_rtmr3,
};
use oauth3_e2e::{Stub, approved_permit, call, postgres};
use oauth3_gateway::keys::{KeyProvider, KeyPurpose, KeyVersion, Sealer};
use oauth3_gateway::tee::verify::{Expected, Measurements, Status, check_document, measurements_of, verify_quote};
use oauth3_gateway::tee::{Dstack, DstackKeys, Endpoint};
use oauth3_gateway::{Capabilities, Server};
use reqwest::StatusCode;
use serde_json::json;
use support::{Backend, config_for, fake_secret};

const OTHER_APP_KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

#[tokio::test]
async fn the_client_derives_the_apps_keys_as_dstack_does() {
    let agent = FakeAgent::start(SIMULATOR_APP_KEY).await;
    let dstack = Dstack::new(Endpoint::Socket(agent.socket.clone()));
    // dstack's own test vector, through the real client and the socket.
    let key = dstack.get_key("gateway/sealing/v1").await.unwrap();
    assert_eq!(hex(&key), "cb20ff7b7e28cac39072d4532668f4afa8984c76cbe0f5811886ae0de508e03e");

    let keys = DstackKeys::new(dstack);
    assert_eq!(DstackKeys::path(KeyPurpose::Sealing, KeyVersion::V1), "oauth3/sealing/v1");
    assert_eq!(DstackKeys::path(KeyPurpose::Jwt, KeyVersion::V1), "oauth3/jwt/v1");
    let v2 = "v2".parse().unwrap();
    assert_eq!(DstackKeys::path(KeyPurpose::Sealing, v2), "oauth3/sealing/v2");
    let app = hex_bytes(SIMULATOR_APP_KEY);
    assert_eq!(keys.key_at(KeyPurpose::Sealing, v2).await.unwrap(), derive(&app, "oauth3/sealing/v2"));
    assert_eq!(keys.key(KeyPurpose::Sealing).await.unwrap(), derive(&app, "oauth3/sealing/v1"));
    assert_ne!(keys.key(KeyPurpose::Sealing).await.unwrap(), keys.key(KeyPurpose::Jwt).await.unwrap());
    assert!(keys.name().starts_with("dstack ("), "{}", keys.name());
}

#[tokio::test]
async fn quotes_carry_the_report_data_and_agent_errors_are_surfaced() {
    let agent = FakeAgent::start(SIMULATOR_APP_KEY).await;
    let dstack = Dstack::new(Endpoint::Socket(agent.socket.clone()));
    let quote = dstack.get_quote(b"oauth3").await.unwrap();
    let bytes = hex_bytes(&quote.quote);
    assert_eq!(&bytes[568..574], b"oauth3", "report_data sits at its TDX v4 offset");
    assert!(dstack.get_quote(&[0; 65]).await.is_err(), "more than 64 bytes is refused");
    assert!(dstack.info().await.unwrap()["app_id"].is_string());

    let missing = Dstack::new(Endpoint::Socket("/nonexistent/dstack.sock".into()));
    let error = missing.get_key("oauth3/sealing/v1").await.unwrap_err().to_string();
    assert!(error.contains("/nonexistent/dstack.sock") && error.contains("GetKey"), "{error}");
}

#[test]
fn endpoints_are_a_socket_path_or_an_http_url() {
    assert_eq!(Endpoint::parse("/var/run/dstack.sock"), Endpoint::Socket("/var/run/dstack.sock".into()));
    assert_eq!(Endpoint::parse("unix:/tmp/d.sock"), Endpoint::Socket("/tmp/d.sock".into()));
    assert_eq!(Endpoint::parse("http://127.0.0.1:8090/"), Endpoint::Http("http://127.0.0.1:8090".into()));
}

/// A gateway on `database` whose keys come from the fake agent for `app_key`.
async fn gateway_of_app(app_key: &str, database: &str, stub: &Stub) -> (Server, FakeAgent, tempfile::TempDir) {
    let agent = FakeAgent::start(app_key).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(&Backend::Postgres(database.to_owned()), dir.path(), stub);
    let mut capabilities = Capabilities::local(&config).unwrap();
    let dstack = Dstack::new(Endpoint::Socket(agent.socket.clone()));
    capabilities.keys = Arc::new(DstackKeys::new(dstack.clone()));
    capabilities.tee = Some(dstack);
    let server = Server::start_with(config, capabilities).await.expect("gateway starts");
    (server, agent, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_sealed_by_one_gateway_open_in_another_of_the_same_app_only() {
    let Some(Backend::Postgres(database)) = postgres("tee_shared_keys").await else { return };
    let stub = Stub::start().await;
    let secret = fake_secret();
    let (first, _agent1, dir1) = gateway_of_app(SIMULATOR_APP_KEY, &database, &stub).await;
    let url = format!("http://{}", first.addr());
    let spec = json!({"name": "github", "base_url": stub.url(), "rules": [{"method": "GET", "path": "/repos/owner/repo/issues"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]});
    let (agent, _, permit) = approved_permit(&url, spec, &secret).await;
    assert!(!dir1.path().join("sealing.key").exists() && !dir1.path().join("jwt.key").exists(), "no key files");

    // A second replica of the same app: the same keys, so the agent's token
    // works and the owner's sealed secret opens for the call.
    let (second, _agent2, _dir2) = gateway_of_app(SIMULATOR_APP_KEY, &database, &stub).await;
    let url2 = format!("http://{}", second.addr());
    let code = "const issues = await github('GET', '/repos/owner/repo/issues'); console.log(issues.length);";
    let body = json!({"permit_id": permit, "action_id": "replica-1", "code": code});
    let (status, accepted) = call(&url2, "POST", "/execute", Some(&agent), Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let path = format!("/execute/{}/status?wait=true&timeout=60", accepted["request_id"].as_str().unwrap());
    let (_, done) = call(&url2, "GET", &path, Some(&agent), None).await;
    assert_eq!(done["result"]["stdout"], "2\n", "the stub answers 401 without the secret: {done}");

    // Another app on the same database has other keys: it is refused at
    // start, and the sealed bytes do not open under its sealing key anyway.
    let other = FakeAgent::start(OTHER_APP_KEY).await;
    let dir3 = tempfile::tempdir().unwrap();
    let config = config_for(&Backend::Postgres(database.clone()), dir3.path(), &stub);
    let mut capabilities = Capabilities::local(&config).unwrap();
    capabilities.keys = Arc::new(DstackKeys::new(Dstack::new(Endpoint::Socket(other.socket.clone()))));
    let refused = Server::start_with(config, capabilities).await.err().expect("another app's keys are refused");
    assert!(refused.to_string().contains("is not the one this database was set up with"), "{refused}");
    let db = oauth3_gateway::db::Db::connect(&database).await.unwrap();
    let (owner, sealed): (String, Vec<u8>) =
        sqlx::query_as("SELECT owner_id, sealed FROM secrets WHERE name = 'GITHUB_TOKEN'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let ours = Sealer::new(&derive(&hex_bytes(SIMULATOR_APP_KEY), "oauth3/sealing/v1")).unwrap();
    assert_eq!(ours.open(&owner, "GITHUB_TOKEN", &sealed).unwrap(), secret.as_bytes());
    let theirs = Sealer::new(&derive(&hex_bytes(OTHER_APP_KEY), "oauth3/sealing/v1")).unwrap();
    assert!(theirs.open(&owner, "GITHUB_TOKEN", &sealed).is_err(), "nothing decrypts under another app's key");
    for server in [first, second] {
        server.shutdown().await.unwrap();
    }
}

/// Recomputes the binding from the document's own fields, independently of
/// the gateway's code: `SHA-512("oauth3-attest-v1" ‖ key ‖ SHA-256(JCS(config)) ‖ nonce)`.
fn binding_holds(document: &serde_json::Value) -> bool {
    let config = serde_json_canonicalizer::to_vec(&document["config"]).unwrap();
    let config_hash = ring::digest::digest(&ring::digest::SHA256, &config);
    if hex(config_hash.as_ref()) != document["config_hash"] {
        return false;
    }
    let field = |name: &str| hex_bytes(document[name].as_str().unwrap());
    let bound = [b"oauth3-attest-v1".as_slice(), &field("signing_key"), config_hash.as_ref(), &field("nonce")].concat();
    hex(ring::digest::digest(&ring::digest::SHA512, &bound).as_ref()) == document["report_data"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attestation_binds_the_key_the_config_and_the_nonce() {
    // Outside a TEE: everything but the quote.
    let gateway = support::TestGateway::start(Backend::Sqlite).await;
    let nonce = "00112233445566778899aabbccddeeff";
    let (status, document) = gateway.call("GET", &format!("/attestation?nonce={nonce}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    let keys: Vec<&str> = document.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "tee",
            "report_data",
            "signing_key",
            "config_hash",
            "config",
            "nonce",
            "quote",
            "event_log",
            "app_id",
            "compose_hash",
            "instance_id"
        ]
    );
    assert_eq!(document["tee"], false);
    assert!(document["quote"].is_null() && document["app_id"].is_null());
    assert_eq!(document["nonce"], nonce);
    assert_eq!(document["config"]["key_provider"], "file");
    assert_eq!(document["config"]["public_url"], gateway.url.as_str());
    assert_eq!(document["config"]["insecure_upstreams"], json!([gateway.stub.host_port()]));
    assert!(binding_holds(&document), "{document}");
    // Any change breaks it.
    for (pointer, value) in [
        ("/nonce", json!("ffeeddccbbaa99887766554433221100")),
        ("/signing_key", json!(hex(&[9; 32]))),
        ("/config/public_url", json!("https://elsewhere.example")),
        ("/report_data", json!(hex(&[0; 64]))),
    ] {
        let mut changed = document.clone();
        *changed.pointer_mut(pointer).unwrap() = value;
        assert!(!binding_holds(&changed), "{pointer} changed but the binding still held");
    }
    for bad in ["00", "zz112233445566778899aabbccddeeff", &"00".repeat(33), ""] {
        let (status, _) = gateway.call("GET", &format!("/attestation?nonce={bad}"), None, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
    }
    let secret_free = document.to_string();
    assert!(!secret_free.contains("api_key") && !secret_free.contains("DATABASE"), "{secret_free}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_a_tee_the_quote_carries_the_binding() {
    let Some(Backend::Postgres(database)) = postgres("tee_attestation").await else { return };
    let stub = Stub::start().await;
    let (server, _agent, _dir) = gateway_of_app(SIMULATOR_APP_KEY, &database, &stub).await;
    let url = format!("http://{}", server.addr());
    let (status, document) = call(&url, "GET", "/attestation?nonce=000102030405060708090a0b0c0d0e0f", None, None).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    assert_eq!(document["tee"], true);
    assert_eq!(document["config"]["key_provider"], "dstack");
    assert!(binding_holds(&document), "{document}");
    let quote = hex_bytes(document["quote"].as_str().unwrap());
    assert_eq!(hex(&quote[568..632]), document["report_data"].as_str().unwrap(), "the quote is over the binding");
    assert!(document["app_id"].is_string() && document["compose_hash"].is_string());
    // What `oauth3 attest verify` checks offline all holds, and each tamper
    // is caught by the check it targets.
    let nonce = hex_bytes("000102030405060708090a0b0c0d0e0f");
    let (_, app_id, _) = identity();
    let app_id = hex(&app_id);
    let measured = measurements_of(&quote).unwrap();
    let pins = |nonce, compose| everything_pinned(nonce, compose, &app_id, &measured);
    let nonce = nonce.as_slice();
    let compose = APP_COMPOSE.as_bytes();
    let failing = |document: &serde_json::Value, expected: &Expected<'_>| -> Vec<&'static str> {
        let checks = check_document(document, expected);
        checks.iter().filter(|c| c.status != Status::Ok).map(|c| c.name).collect()
    };
    assert_eq!(failing(&document, &pins(nonce, compose)), Vec::<&str>::new(), "{document}");
    assert_eq!(failing(&document, &pins(&[0; 16], compose)), ["nonce", "report_data"]);
    assert_eq!(failing(&document, &pins(nonce, b"{}")), ["expected_compose"]);
    let asked_elsewhere = Expected { url: Some("https://oauth3.example"), ..pins(nonce, compose) };
    assert_eq!(failing(&document, &asked_elsewhere), ["public_url"]);
    let other_os = Measurements { rtmr1: hex(&[1; 48]), ..measured.clone() };
    assert_eq!(
        failing(&document, &Expected { measurements: Some(&other_os), ..pins(nonce, compose) }),
        ["os_measurements"]
    );
    assert_eq!(failing(&document, &Expected { app_id: Some("00"), ..pins(nonce, compose) }), ["expected_app_id"]);
    let other_kms = Expected { key_provider_id: Some("other"), ..pins(nonce, compose) };
    assert_eq!(failing(&document, &other_kms), ["expected_key_provider"]);
    // Without expectations the checks that need them are unpinned, not passed.
    let unpinned: Vec<&str> = check_document(&document, &Expected { nonce, ..Expected::default() })
        .into_iter()
        .filter(|c| c.status == Status::Unpinned)
        .map(|c| c.name)
        .collect();
    assert_eq!(unpinned, ["os_measurements", "expected_app_id", "expected_compose", "expected_key_provider"]);
    let tampered = |pointer: &str, value: serde_json::Value| {
        let mut changed = document.clone();
        *changed.pointer_mut(pointer).unwrap() = value;
        failing(&changed, &pins(nonce, compose))
    };
    assert_eq!(tampered("/config/public_url", json!("https://phish.example")), ["config_hash", "report_data"]);
    assert_eq!(tampered("/signing_key", json!(hex(&[9; 32]))), ["report_data"]);
    assert_eq!(tampered("/compose_hash", json!(hex(&[1; 32]))), ["compose_hash", "expected_compose"]);
    assert_eq!(tampered("/app_id", json!(hex(&[1; 20]))), ["app_id"]);
    // A key that is not 32 bytes is refused even when the binding is
    // recomputed over it.
    let mut short = document.clone();
    short["signing_key"] = json!(hex(&[9; 31]));
    let config = serde_json_canonicalizer::to_vec(&short["config"]).unwrap();
    let config_hash = ring::digest::digest(&ring::digest::SHA256, &config);
    let bound = [b"oauth3-attest-v1".as_slice(), &[9; 31], config_hash.as_ref(), nonce].concat();
    short["report_data"] = json!(hex(ring::digest::digest(&ring::digest::SHA512, &bound).as_ref()));
    assert!(failing(&short, &pins(nonce, compose)).contains(&"report_data"));
    // A compose-hash event rewritten to claim another compose: its digest no
    // longer matches (so nothing in the log is believed); with the digest
    // recomputed, RTMR3 no longer replays.
    let event = document["event_log"].as_array().unwrap().iter().position(|e| e["event"] == "compose-hash").unwrap();
    assert_eq!(
        tampered(&format!("/event_log/{event}/event_payload"), json!(hex(&[1; 32]))),
        ["rtmr3", "app_id", "expected_app_id", "compose_hash", "key_provider", "expected_key_provider"]
    );
    let forged = hex(&oauth3_gateway::tee::verify::runtime_event_digest("compose-hash", &[1; 32]));
    let mut changed = document.clone();
    changed["event_log"][event]["event_payload"] = json!(hex(&[1; 32]));
    changed["event_log"][event]["digest"] = json!(forged);
    changed["compose_hash"] = json!(hex(&[1; 32]));
    assert_eq!(failing(&changed, &pins(nonce, compose)), ["rtmr3", "expected_compose"]);
    // A quote over other report data.
    let other = hex(&patched_quote(&[5; 64], &replay_rtmr3(&document["event_log"])));
    assert_eq!(tampered("/quote", json!(other)), ["quote_report_data"]);
    assert_eq!(tampered("/tee", json!(false)), ["tee"]);
    // The receipt key is the app's: the same in every replica.
    let app = hex_bytes(SIMULATOR_APP_KEY);
    let seed = derive(&app, "oauth3/receipts/v1");
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    assert_eq!(document["signing_key"], hex(ring::signature::KeyPair::public_key(&pair).as_ref()));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_and_approvals_carry_receipts_signed_by_the_attested_key() {
    let gateway = support::TestGateway::start(Backend::Sqlite).await;
    let (_, attestation) = gateway.call("GET", "/attestation?nonce=000102030405060708090a0b0c0d0e0f", None, None).await;
    let key = attestation["signing_key"].as_str().unwrap().to_owned();

    // The approval: what the owner bound, as the agent can show it.
    let (owner_id, owner) = gateway.signup("owner", "owner").await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (status, _) = gateway.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": fake_secret()})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (request, permit) = gateway.request_permit(&agent).await;
    let decision = gateway.approve(&owner, &request).await;
    let approval = &decision["approval_receipt"];
    assert!(receipt_verifies(approval, &key), "{decision}");
    let payload = &approval["payload"];
    assert_eq!(payload["type"], "oauth3-approval-v1");
    assert_eq!((&payload["request_id"], &payload["permit_id"]), (&json!(request), &json!(permit)));
    assert_eq!((&payload["spec_hash"], &payload["owner_id"]), (&decision["spec_hash"], &json!(owner_id)));
    assert_eq!(payload["expires_at"], decision["expires_at"]);
    let (_, shown) = gateway.get(&format!("/permit/{request}"), &agent).await;
    assert_eq!(shown["approval_receipt"], *approval, "the agent reads the same receipt");

    // An execution: what ran, under which spec, and how it ended.
    let code = "console.log((await github('GET', '/repos/owner/repo/issues')).length)";
    let done = gateway.execute(&agent, &permit, code).await;
    let receipt = &done["receipt"];
    assert!(receipt_verifies(receipt, &key), "{done}");
    let payload = &receipt["payload"];
    assert_eq!(payload["type"], "oauth3-receipt-v1");
    assert_eq!((&payload["request_id"], &payload["permit_id"]), (&done["request_id"], &json!(permit)));
    assert_eq!(payload["spec_hash"], decision["spec_hash"]);
    assert_eq!(payload["code_hash"], hex(ring::digest::digest(&ring::digest::SHA256, code.as_bytes()).as_ref()));
    assert_eq!((&payload["status"], &payload["finished_at"]), (&json!("completed"), &done["finished_at"]));
    assert_eq!(payload["result"], done["result"]);

    // Any change to the payload, however small, breaks it; so does another key.
    for (pointer, value) in [
        ("/payload/status", json!("failed")),
        ("/payload/result/stdout", json!("3\n")),
        ("/payload/code_hash", json!(hex(&[0; 32]))),
        ("/payload/finished_at", json!("2020-01-01T00:00:00Z")),
    ] {
        let mut changed = receipt.clone();
        *changed.pointer_mut(pointer).unwrap() = value;
        assert!(!receipt_verifies(&changed, &key), "{pointer} changed but the receipt still verified");
    }
    assert!(!receipt_verifies(receipt, &hex(&[7; 32])));

    // The audit rows of its calls name it.
    let (_, audit) = gateway.get(&format!("/audit?permit_id={permit}"), &owner).await;
    let entries = audit["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    for entry in entries {
        assert_eq!(entry["receipt_id"], receipt_id(receipt), "{entry}");
    }
}

/// Every expectation `oauth3 attest verify` takes, as the fake CVM meets them.
fn everything_pinned<'a>(
    nonce: &'a [u8],
    compose: &'a [u8],
    app_id: &'a str,
    measured: &'a Measurements,
) -> Expected<'a> {
    Expected {
        nonce,
        url: None,
        compose: Some(compose),
        app_id: Some(app_id),
        key_provider_id: Some("fake"),
        measurements: Some(measured),
    }
}

#[test]
fn dcap_qvl_verifies_the_sample_quote_offline_and_refuses_a_patched_one() {
    let collateral: dcap_qvl::QuoteCollateralV3 = serde_json::from_str(SAMPLE_COLLATERAL).unwrap();
    // Inside the collateral's validity (its TCB info and QE identity were
    // issued 2025-06-19 and are next updated 2025-07-19).
    let issued = |json: &str| {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        humantime::parse_rfc3339(value["issueDate"].as_str().unwrap()).unwrap()
    };
    let at = issued(&collateral.tcb_info).max(issued(&collateral.qe_identity)) + std::time::Duration::from_secs(3600);
    let now = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let check = verify_quote(SAMPLE_QUOTE, &collateral, now, &[]);
    assert!(check.ok(), "{check:?}");
    // One changed byte of report data breaks Intel's signature.
    let patched = patched_quote(&[5; 64], SAMPLE_QUOTE[520..568].try_into().unwrap());
    assert!(!verify_quote(&patched, &collateral, now, &[]).ok());
    // So does expired collateral.
    assert!(!verify_quote(SAMPLE_QUOTE, &collateral, now + 365 * 24 * 3600, &[]).ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_with_the_wrong_keys_or_backwards_changes_nothing() {
    use oauth3_gateway::db::Db;
    use oauth3_gateway::keyring::Keyring;
    use oauth3_gateway::keys::LocalKeyFile;
    use oauth3_gateway::rotate::{Rotation, rotate};

    let gateway = support::TestGateway::start(Backend::Sqlite).await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let (status, _) = gateway.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": fake_secret()})).await;
    assert_eq!(status, StatusCode::CREATED);
    let db = Db::connect(&gateway.database_url()).await.unwrap();
    let sealing_version = || async {
        sqlx::query_scalar::<_, String>("SELECT version FROM key_versions WHERE purpose = 'sealing'")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    let to = |version: &str| Rotation { to: version.parse().unwrap(), batch: 10, pause: Duration::ZERO };

    // Another data dir's keys (a mistyped OAUTH3_DATA_DIR): refused before
    // the version moves, and no v2 key is left behind for a gateway to use.
    let elsewhere = tempfile::tempdir().unwrap();
    let wrong = Keyring::new(Arc::new(LocalKeyFile::new(elsewhere.path())));
    let refused = rotate(&db, &wrong, &to("v2"), |_| {}).await.unwrap_err().to_string();
    assert!(refused.contains("the sealing key (v1) is not the one this database was set up with"), "{refused}");
    assert_eq!(sealing_version().await, "v1");

    let right = Keyring::new(Arc::new(LocalKeyFile::new(gateway.data_dir.path())));
    let done = rotate(&db, &right, &to("v2"), |_| {}).await.unwrap();
    assert_eq!((done.done, done.left), (1, 0));
    assert_eq!(sealing_version().await, "v2");
    let back = rotate(&db, &right, &to("v1"), |_| {}).await.unwrap_err().to_string();
    assert!(back.contains("rotating back to v1 is refused"), "{back}");
    assert_eq!(sealing_version().await, "v2");
}
