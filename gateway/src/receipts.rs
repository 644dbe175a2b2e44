//! Signed receipts: what the gateway vouches it ran, and what an owner
//! approved. A receipt is `{payload, signature, signing_key}`, where
//! `signature` is Ed25519 over the JCS (RFC 8785) bytes of `payload` and
//! `signing_key` is the key `GET /attestation` binds into its quote. Anyone
//! holding a receipt and that key checks it offline ([`Receipt::verify`]).

use ring::digest::{SHA256, digest};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::db::rfc3339_opt;
use crate::error::{Error, Result};
use crate::keys::hex;

/// The payload type of an execution's receipt.
pub const EXECUTION: &str = "oauth3-receipt-v1";
/// The payload type of an approval's receipt.
pub const APPROVAL: &str = "oauth3-approval-v1";

/// A signed statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Receipt {
    /// What is vouched for; `type` names which kind.
    pub payload: Value,
    /// Hex Ed25519 signature over the JCS bytes of `payload`.
    pub signature: String,
    /// Hex of the 32-byte Ed25519 public key that signed.
    pub signing_key: String,
}

/// Why a receipt does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Not signed by the key the verifier trusts.
    #[error("signed by {found}, not by the expected key {expected}")]
    OtherKey {
        /// The receipt's `signing_key`.
        found: String,
        /// The trusted key.
        expected: String,
    },
    /// The signature does not match the payload.
    #[error("the signature does not match the payload")]
    BadSignature,
    /// Not a receipt this version understands.
    #[error("malformed receipt: {0}")]
    Malformed(String),
}

/// A receipt just signed, with its id: both from one canonical form.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The receipt.
    pub receipt: Receipt,
    /// Its id ([`Receipt::id`]).
    pub id: String,
}

impl Receipt {
    /// Signs `payload` with `key`.
    pub fn sign(key: &Ed25519KeyPair, payload: Value) -> Result<Receipt> {
        Receipt::issue(key, payload).map(|issued| issued.receipt)
    }

    /// Signs `payload` with `key`, and names the receipt by its id, without
    /// canonicalising the payload twice.
    pub fn issue(key: &Ed25519KeyPair, payload: Value) -> Result<Issued> {
        let message = canonical(&payload).map_err(Error::Internal)?;
        let signature = key.sign(&message);
        let receipt =
            Receipt { payload, signature: hex(signature.as_ref()), signing_key: hex(key.public_key().as_ref()) };
        Ok(Issued { receipt, id: hex(digest(&SHA256, &message).as_ref()) })
    }

    /// Its id: the hex SHA-256 of the JCS bytes of its payload (what audit
    /// rows name).
    pub fn id(&self) -> Result<String> {
        Ok(hex(digest(&SHA256, &canonical(&self.payload).map_err(Error::Internal)?).as_ref()))
    }

    /// Checks that `trusted_key` (32 bytes) signed exactly this payload.
    pub fn verify(&self, trusted_key: &[u8]) -> std::result::Result<(), Invalid> {
        if !self.signing_key.eq_ignore_ascii_case(&hex(trusted_key)) {
            return Err(Invalid::OtherKey { found: self.signing_key.clone(), expected: hex(trusted_key) });
        }
        if !exact_numbers(&self.payload) {
            // JCS writes numbers as doubles: two integers past 2^53 could
            // share one canonical form, so one signature would cover both.
            return Err(Invalid::Malformed("an integer beyond 2^53 cannot be signed exactly".into()));
        }
        let signature = crate::tee::dstack::hex_bytes(&self.signature).map_err(Invalid::Malformed)?;
        let message = canonical(&self.payload).map_err(Invalid::Malformed)?;
        UnparsedPublicKey::new(&ED25519, trusted_key).verify(&message, &signature).map_err(|_| Invalid::BadSignature)
    }
}

/// What an execution's receipt states.
#[derive(Debug)]
pub struct ExecutionFacts<'a> {
    /// `exe_…`.
    pub request_id: &'a str,
    /// The permit it ran under.
    pub permit_id: &'a str,
    /// The approved spec it ran under, when it got that far.
    pub spec_hash: Option<&'a str>,
    /// Hex SHA-256 of the script's or the component's bytes.
    pub code_hash: Option<&'a str>,
    /// `completed` or `failed`.
    pub status: &'a str,
    /// Unix milliseconds.
    pub finished_at: Option<i64>,
    /// The result, as the status response shows it.
    pub result: &'a Value,
}

/// The receipt of a finished execution, with its id.
pub fn execution(key: &Ed25519KeyPair, facts: &ExecutionFacts<'_>) -> Result<Issued> {
    Receipt::issue(
        key,
        json!({
            "type": EXECUTION,
            "request_id": facts.request_id,
            "permit_id": facts.permit_id,
            "spec_hash": facts.spec_hash,
            "code_hash": facts.code_hash,
            "status": facts.status,
            "finished_at": rfc3339_opt(facts.finished_at),
            "result": facts.result,
        }),
    )
}

/// What an approval's receipt states.
#[derive(Debug)]
pub struct ApprovalFacts<'a> {
    /// `req_…`.
    pub request_id: &'a str,
    /// The permit it approved.
    pub permit_id: &'a str,
    /// The spec hash the approval bound.
    pub spec_hash: &'a str,
    /// The owner who approved.
    pub owner_id: &'a str,
    /// Unix milliseconds.
    pub approved_at: i64,
    /// The permit's expiry (unix milliseconds), or none.
    pub expires_at: Option<i64>,
}

/// The receipt of an approval: what an agent shows to prove what its owner
/// approved.
pub fn approval(key: &Ed25519KeyPair, facts: &ApprovalFacts<'_>) -> Result<Receipt> {
    Receipt::sign(
        key,
        json!({
            "type": APPROVAL,
            "request_id": facts.request_id,
            "permit_id": facts.permit_id,
            "spec_hash": facts.spec_hash,
            "owner_id": facts.owner_id,
            "approved_at": rfc3339_opt(Some(facts.approved_at)),
            "expires_at": rfc3339_opt(facts.expires_at),
        }),
    )
}

/// Whether every integer in `value` is one a double holds exactly.
fn exact_numbers(value: &Value) -> bool {
    const LIMIT: u64 = 1 << 53;
    match value {
        Value::Number(n) => {
            n.as_u64().is_none_or(|u| u <= LIMIT) && n.as_i64().is_none_or(|i| i.unsigned_abs() <= LIMIT)
        }
        Value::Array(items) => items.iter().all(exact_numbers),
        Value::Object(map) => map.values().all(exact_numbers),
        _ => true,
    }
}

/// The hex SHA-256 of code an agent submitted.
pub fn code_hash(code: &[u8]) -> String {
    hex(digest(&SHA256, code).as_ref())
}

fn canonical(payload: &Value) -> std::result::Result<Vec<u8>, String> {
    serde_json_canonicalizer::to_vec(payload).map_err(|e| format!("canonicalising the payload: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&crate::keys::random_bytes::<32>().unwrap()).unwrap()
    }

    #[test]
    fn a_receipt_verifies_under_its_key_only_and_not_once_changed() {
        let (signer, other) = (key(), key());
        let result = json!({"success": true, "stdout": "2\n", "calls": [{"status": 200}]});
        let facts = ExecutionFacts {
            request_id: "exe_1",
            permit_id: "prm_1",
            spec_hash: Some("ab"),
            code_hash: Some("cd"),
            status: "completed",
            finished_at: Some(1_700_000_000_000),
            result: &result,
        };
        let issued = execution(&signer, &facts).unwrap();
        let receipt = issued.receipt;
        assert_eq!(receipt.id().unwrap(), issued.id, "the id issued is the receipt's");
        let public = signer.public_key().as_ref().to_vec();
        assert_eq!(receipt.verify(&public), Ok(()));
        // Through JSON text and back, as a saved receipt travels.
        let saved: Receipt = serde_json::from_str(&serde_json::to_string_pretty(&receipt).unwrap()).unwrap();
        assert_eq!(saved.verify(&public), Ok(()));
        assert!(matches!(receipt.verify(other.public_key().as_ref()), Err(Invalid::OtherKey { .. })));

        let mut changed = receipt.clone();
        changed.payload["result"]["stdout"] = json!("3\n");
        assert_eq!(changed.verify(&public), Err(Invalid::BadSignature));
        let mut forged = receipt.clone();
        forged.signing_key = hex(other.public_key().as_ref());
        assert!(forged.verify(other.public_key().as_ref()).is_err());
        assert_ne!(changed.id().unwrap(), receipt.id().unwrap());
        // Integers a double cannot hold are refused, not rounded.
        let mut big = receipt.clone();
        big.payload["result"]["calls"][0]["status"] = json!(9_007_199_254_740_993u64);
        assert!(matches!(big.verify(&public), Err(Invalid::Malformed(_))));
    }
}
