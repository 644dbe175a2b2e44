//! The canonical form and `spec_hash`: what an owner's approval binds.
//!
//! Canonical JSON is the RFC 8785 (JCS) serialisation of the *normalised*
//! spec: object keys sorted, no whitespace, numbers in their shortest
//! ECMAScript form, and fields that are absent, empty or default left out
//! (so `"doc_urls": []` and no `doc_urls` hash alike). Legacy input is
//! normalised into the current format first, so a legacy spec and its
//! current-format equivalent have the same hash. `spec_hash` is the SHA-256
//! of those UTF-8 bytes, written as 64 lower-case hex digits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::spec::PermitSpec;

/// SHA-256 of a spec's canonical JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpecHash([u8; 32]);

impl PermitSpec {
    /// The canonical JSON text of the normalised spec (see the module docs).
    pub fn canonical_json(&self) -> String {
        jcs(&self.normalized())
    }

    /// SHA-256 of [`PermitSpec::canonical_json`].
    pub fn spec_hash(&self) -> SpecHash {
        SpecHash::of_normalized(&self.normalized())
    }
}

/// RFC 8785 text of a spec that is already normalised.
fn jcs(normalized: &PermitSpec) -> String {
    // Serialising plain data with string keys and finite numbers cannot fail.
    serde_json_canonicalizer::to_string(normalized).expect("spec serialises")
}

impl SpecHash {
    /// The hash of a spec that is already normalised (compile has one).
    pub(crate) fn of_normalized(normalized: &PermitSpec) -> SpecHash {
        let digest = ring::digest::digest(&ring::digest::SHA256, jcs(normalized).as_bytes());
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        SpecHash(bytes)
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SpecHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for SpecHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpecHash({self})")
    }
}

impl FromStr for SpecHash {
    type Err = String;

    /// Parses 64 lower-case hex digits.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || "a spec hash is 64 lower-case hex digits".to_owned();
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad());
        }
        let mut bytes = [0; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(SpecHash(bytes))
    }
}

impl Serialize for SpecHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SpecHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}
