//! The TEE: keys from the dstack guest agent, so that only the attested app
//! can unseal what it sealed, and the attestation an owner checks before
//! handing over a secret. Behind [`KeyProvider`](crate::keys::KeyProvider),
//! so development and tests run without a TEE.

pub mod attest;
pub mod cli;
pub mod dstack;
mod keys;
pub mod verify;

pub use dstack::{Dstack, Endpoint};
pub use keys::DstackKeys;

/// The gateway's TEE, as the attestation endpoint reads it.
pub struct Tee {
    /// The guest agent, inside a dstack CVM.
    pub agent: Option<Dstack>,
    /// `Info`, asked once.
    pub info: tokio::sync::OnceCell<serde_json::Value>,
    /// What supplies the keys (`KeyProvider::name`).
    pub key_provider: String,
    /// Signs receipts; its public half is bound into every attestation.
    pub signing: ring::signature::Ed25519KeyPair,
}
