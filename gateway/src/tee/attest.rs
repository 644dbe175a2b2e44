//! `GET /attestation`: what an owner checks before handing over a secret.
//! The quote's report_data binds the receipt-signing key, the gateway's
//! public configuration and the caller's nonce:
//! `SHA-512("oauth3-attest-v1" ‖ signing_key ‖ config_hash ‖ nonce)` over raw
//! bytes, where `config_hash` is the SHA-256 of the JCS (RFC 8785) form of
//! `config`. Outside a TEE the same document comes without a quote.

use ring::digest::{SHA256, SHA512, digest};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{Config, DrafterSettings};
use crate::error::{Error, Result};

/// The domain-separation tag: a quote made for this cannot pass for another.
pub const TAG: &[u8] = b"oauth3-attest-v1";

/// The attestation document, in the field order clients verify.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Attestation {
    /// Whether a TEE quote is attached.
    pub tee: bool,
    /// Hex of the 64-byte binding.
    pub report_data: String,
    /// Hex of the Ed25519 public key that signs receipts.
    pub signing_key: String,
    /// Hex SHA-256 of the JCS form of `config`.
    pub config_hash: String,
    /// The public configuration.
    pub config: Value,
    /// Hex, as given.
    pub nonce: String,
    /// Hex TDX quote over `report_data`, inside a TEE.
    pub quote: Option<String>,
    /// The event log that replays RTMR3, inside a TEE.
    pub event_log: Option<Value>,
    /// The dstack app id.
    pub app_id: Option<String>,
    /// Hex SHA-256 of the app-compose.json the CVM runs.
    pub compose_hash: Option<String>,
    /// The CVM instance.
    pub instance_id: Option<String>,
}

/// The 64-byte binding of `signing_key`, `config_hash` and `nonce`.
pub fn report_data(signing_key: &[u8], config_hash: &[u8], nonce: &[u8]) -> [u8; 64] {
    let bound = digest(&SHA512, &[TAG, signing_key, config_hash, nonce].concat());
    bound.as_ref().try_into().expect("SHA-512 is 64 bytes")
}

/// The SHA-256 of the JCS form of `config`.
pub fn config_hash(config: &Value) -> Result<[u8; 32]> {
    let canonical =
        serde_json_canonicalizer::to_vec(config).map_err(|e| Error::Internal(format!("canonicalising: {e}")))?;
    Ok(digest(&SHA256, &canonical).as_ref().try_into().expect("SHA-256 is 32 bytes"))
}

/// What the gateway is configured to do, and nothing secret: the public URL,
/// the limits, the insecure upstreams, the drafter, the key provider and
/// the version.
pub fn public_config(config: &Config, public_url: &str, key_provider: &str) -> Value {
    let drafter = match config.drafter_settings() {
        Ok(DrafterSettings::Offline) => json!({"kind": "offline"}),
        Ok(DrafterSettings::Anthropic(llm)) => {
            json!({"kind": "anthropic", "model": llm.model, "base_url": llm.base_url})
        }
        Ok(DrafterSettings::OpenAi(llm)) => json!({"kind": "openai", "model": llm.model, "base_url": llm.base_url}),
        Err(_) => json!({"kind": "misconfigured"}),
    };
    json!({
        "public_url": public_url,
        "limits": {
            "fuel": config.fuel,
            "memory_mb": config.memory_mb,
            "timeout_secs": config.timeout_secs,
            "max_concurrent": config.max_concurrent,
            "max_calls": config.max_calls,
            "max_executions_per_agent": config.max_executions_per_agent,
            "max_body_bytes": config.max_body_bytes,
            "max_component_bytes": config.max_component_bytes,
            "wasi_http": format!("{:?}", config.wasi_http).to_lowercase(),
            "token_ttl_secs": config.token_ttl_secs,
            "request_ttl_secs": config.request_ttl_secs,
            "session_ttl_secs": config.session_ttl_secs,
        },
        // Parsed, as enforced (the gateway refuses to start on a bad one).
        "insecure_upstreams": config
            .insecure_upstreams()
            .map(|upstreams| upstreams.iter().map(ToString::to_string).collect::<Vec<_>>())
            .unwrap_or_default(),
        "signup": format!("{:?}", config.signup_mode()).to_lowercase(),
        "drafter": drafter,
        "key_provider": key_provider,
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// Parses the caller's nonce: 16 to 32 bytes of hex.
pub fn nonce(text: &str) -> Result<Vec<u8>> {
    let bytes = super::dstack::hex_bytes(text)
        .map_err(|e| Error::bad_request("invalid_request", format!("nonce: hex ({e})")))?;
    if !(16..=32).contains(&bytes.len()) {
        return Err(Error::bad_request("invalid_request", "nonce: 16 to 32 bytes of hex"));
    }
    Ok(bytes)
}
