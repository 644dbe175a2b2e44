//! A faithful fake of the dstack guest agent for tests (the official
//! simulator cannot be installed here): HTTP/1.1 on a Unix socket, the real
//! agent's JSON shapes, and `GetKey` derived as the agent does, HKDF-SHA256
//! with salt `RATLS` over the app's key and the path as info, so dstack's
//! own test vector reproduces.

use std::path::PathBuf;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The dstack simulator's app key (`sdk/simulator/appkeys.json`, `k256_key`).
pub const SIMULATOR_APP_KEY: &str = "d6e88992cdeeee35fe70b5db61ab66cdb191fb9b6ec9313757ef162dd7214d5d";

/// A fake guest agent serving one app.
pub struct FakeAgent {
    /// Its socket.
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeAgent {
    /// Starts an agent for the app whose key is `app_key` (hex).
    pub async fn start(app_key: &str) -> FakeAgent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("dstack.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let key = hex_bytes(app_key);
        let app = axum::Router::new()
            .route("/GetKey", post(move |Json(body): Json<Value>| get_key(key.clone(), body)))
            .route("/GetQuote", post(get_quote))
            .route("/Info", post(info));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeAgent { socket, _dir: dir }
    }
}

/// HKDF-SHA256(salt = "RATLS", ikm = the app key, info = path), 32 bytes.
pub fn derive(app_key: &[u8], path: &str) -> [u8; 32] {
    struct Len;
    impl ring::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"RATLS").extract(app_key);
    let info = [path.as_bytes()];
    let mut key = [0u8; 32];
    prk.expand(&info, Len).unwrap().fill(&mut key).unwrap();
    key
}

async fn get_key(app_key: Vec<u8>, body: Value) -> Response {
    let path = body["path"].as_str().unwrap_or("");
    let key = derive(&app_key, path);
    // The signature chain is not checked by the gateway; its shape is kept.
    Json(json!({"key": hex(&key), "signature_chain": [hex(&[1; 65]), hex(&[2; 65])]})).into_response()
}

/// The app-compose.json the fake CVM "runs": its SHA-256 is the compose
/// hash the event log measures and `Info` reports.
pub const APP_COMPOSE: &str = r#"{"manifest_version":2,"name":"oauth3","runner":"docker-compose","docker_compose_file":"services:\n  oauth3:\n    image: oauth3@sha256:0000\n","kms_enabled":true,"gateway_enabled":true,"public_logs":false,"public_sysinfo":true,"allowed_envs":["OAUTH3_PUBLIC_URL"]}"#;

/// dstack's sample TDX v4 quote, shipped with dcap-qvl (see
/// `fixtures/dcap-qvl/README.md`), which the fake's quotes are patched from.
pub const SAMPLE_QUOTE: &[u8] = include_bytes!("../fixtures/dcap-qvl/tdx_quote");

/// Intel's collateral for [`SAMPLE_QUOTE`] (dcap-qvl's JSON).
pub const SAMPLE_COLLATERAL: &str = include_str!("../fixtures/dcap-qvl/tdx_quote_collateral.json");

/// The fake CVM's identity: compose hash, app id (the compose hash's first
/// 20 bytes, as dstack derives it by default) and instance id.
pub fn identity() -> ([u8; 32], Vec<u8>, Vec<u8>) {
    let compose_hash: [u8; 32] =
        ring::digest::digest(&ring::digest::SHA256, APP_COMPOSE.as_bytes()).as_ref().try_into().unwrap();
    (compose_hash, compose_hash[..20].to_vec(), vec![0x1d; 20])
}

/// The fake's event log: a boot event on another register, then dstack's
/// runtime events on RTMR3, each digest `SHA-384(u32le(0x08000001) ‖ ":" ‖
/// name ‖ ":" ‖ payload)`.
pub fn event_log() -> Value {
    let (compose_hash, app_id, instance_id) = identity();
    let runtime = |name: &str, payload: &[u8]| {
        let message = [&0x0800_0001u32.to_le_bytes()[..], b":", name.as_bytes(), b":", payload].concat();
        let digest = ring::digest::digest(&ring::digest::SHA384, &message);
        json!({"imr": 3, "event_type": 0x0800_0001u32, "digest": hex(digest.as_ref()), "event": name, "event_payload": hex(payload)})
    };
    json!([
        {"imr": 0, "event_type": 1, "digest": hex(&[0x42; 48]), "event": "", "event_payload": ""},
        runtime("system-preparing", b""),
        runtime("app-id", &app_id),
        runtime("compose-hash", &compose_hash),
        runtime("instance-id", &instance_id),
        runtime("boot-mr-done", b""),
        runtime("key-provider", br#"{"name":"kms","id":"fake"}"#),
        runtime("system-ready", b""),
    ])
}

/// RTMR3 replayed from `log`: from 48 zero bytes, `SHA-384(mr ‖ digest)`
/// for each IMR 3 event.
pub fn replay_rtmr3(log: &Value) -> [u8; 48] {
    let mut mr = [0u8; 48];
    for event in log.as_array().unwrap().iter().filter(|e| e["imr"] == 3) {
        let extended = ring::digest::digest(
            &ring::digest::SHA384,
            &[&mr[..], &hex_bytes(event["digest"].as_str().unwrap())].concat(),
        );
        mr.copy_from_slice(extended.as_ref());
    }
    mr
}

/// [`SAMPLE_QUOTE`] with `report_data` at [568, 632) and `rtmr3` at
/// [520, 568): structurally valid, its Intel signature no longer.
pub fn patched_quote(report_data: &[u8], rtmr3: &[u8; 48]) -> Vec<u8> {
    let mut quote = SAMPLE_QUOTE.to_vec();
    let mut data = report_data.to_vec();
    data.resize(64, 0);
    quote[568..632].copy_from_slice(&data);
    quote[520..568].copy_from_slice(rtmr3);
    quote
}

async fn get_quote(Json(body): Json<Value>) -> Response {
    let data = hex_bytes(body["report_data"].as_str().unwrap_or(""));
    if data.len() > 64 {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "Report data is too long"}))).into_response();
    }
    let log = event_log();
    let quote = patched_quote(&data, &replay_rtmr3(&log));
    let mut padded = data.clone();
    padded.resize(64, 0);
    Json(json!({"quote": hex(&quote), "event_log": log.to_string(), "report_data": hex(&padded), "vm_config": "{}"}))
        .into_response()
}

async fn info() -> Response {
    let (compose_hash, app_id, instance_id) = identity();
    let log = event_log();
    let tcb_info = json!({
        "mrtd": hex(&SAMPLE_QUOTE[184..232]),
        "rtmr3": hex(&replay_rtmr3(&log)),
        "compose_hash": hex(&compose_hash),
        "app_compose": APP_COMPOSE,
        "event_log": log,
    });
    Json(json!({
        "app_id": hex(&app_id),
        "instance_id": hex(&instance_id),
        "app_name": "oauth3",
        "compose_hash": hex(&compose_hash),
        "tcb_info": tcb_info.to_string(),
    }))
    .into_response()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex (an optional `0x` prefix allowed); panics on anything else.
pub fn hex_bytes(text: &str) -> Vec<u8> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    assert!(text.len().is_multiple_of(2), "odd-length hex: {text}");
    (0..text.len() / 2).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

/// Whether `receipt` (`{payload, signature, signing_key}`) was signed by
/// `key_hex`: Ed25519 over the JCS (RFC 8785) bytes of its payload, checked
/// independently of the gateway's code.
pub fn receipt_verifies(receipt: &Value, key_hex: &str) -> bool {
    let (Some(signature), Some(signer)) = (receipt["signature"].as_str(), receipt["signing_key"].as_str()) else {
        return false;
    };
    let message = serde_json_canonicalizer::to_vec(&receipt["payload"]).unwrap();
    signer == key_hex
        && ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, hex_bytes(key_hex))
            .verify(&message, &hex_bytes(signature))
            .is_ok()
}

/// A receipt's id: the hex SHA-256 of its payload's JCS bytes.
pub fn receipt_id(receipt: &Value) -> String {
    let message = serde_json_canonicalizer::to_vec(&receipt["payload"]).unwrap();
    hex(ring::digest::digest(&ring::digest::SHA256, &message).as_ref())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_derivation_reproduces_dstacks_test_vector() {
        let key = super::derive(&super::hex_bytes(super::SIMULATOR_APP_KEY), "gateway/sealing/v1");
        assert_eq!(super::hex(&key), "cb20ff7b7e28cac39072d4532668f4afa8984c76cbe0f5811886ae0de508e03e");
    }
}
