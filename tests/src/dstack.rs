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

async fn get_quote(Json(body): Json<Value>) -> Response {
    let data = hex_bytes(body["report_data"].as_str().unwrap_or(""));
    if data.len() > 64 {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "Report data is too long"}))).into_response();
    }
    // A TDX v4 quote's report_data is at [568, 632).
    let mut quote = vec![0u8; 632];
    quote[568..568 + data.len()].copy_from_slice(&data);
    let mut padded = data.clone();
    padded.resize(64, 0);
    Json(json!({"quote": hex(&quote), "event_log": "[]", "report_data": hex(&padded), "vm_config": "{}"}))
        .into_response()
}

async fn info() -> Response {
    Json(json!({
        "app_id": "fakeapp0000000000000000000000000000000000",
        "instance_id": "fakeinstance",
        "app_name": "oauth3",
        "compose_hash": hex(&[7; 32]),
        "tcb_info": "{}",
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
