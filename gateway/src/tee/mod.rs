//! The TEE: keys from the dstack guest agent, so that only the attested app
//! can unseal what it sealed. Behind [`KeyProvider`](crate::keys::KeyProvider),
//! so development and tests run without a TEE.

pub mod dstack;
mod keys;

pub use dstack::{Dstack, Endpoint};
pub use keys::DstackKeys;
