//! [`DstackKeys`]: each key from the guest agent's `GetKey` with a
//! versioned path (`oauth3/<purpose>/v1`). A key depends only on the app and
//! the path, so every replica of one app derives the same bytes; a new
//! version is a new path (re-encrypting what the old one sealed).

use super::dstack::Dstack;
use crate::error::Result;
use crate::keys::{KeyProvider, KeyPurpose, KeyVersion};

/// Keys derived by the dstack guest agent.
pub struct DstackKeys {
    agent: Dstack,
}

impl DstackKeys {
    /// Keys from `agent`.
    pub fn new(agent: Dstack) -> DstackKeys {
        DstackKeys { agent }
    }

    /// The `GetKey` path of `purpose` at `version`: `oauth3/sealing/v1`, ….
    pub fn path(purpose: KeyPurpose, version: KeyVersion) -> String {
        format!("oauth3/{}/{version}", purpose.name())
    }
}

#[async_trait::async_trait]
impl KeyProvider for DstackKeys {
    async fn key_at(&self, purpose: KeyPurpose, version: KeyVersion) -> Result<[u8; 32]> {
        self.agent.get_key(&DstackKeys::path(purpose, version)).await
    }

    fn name(&self) -> String {
        format!("dstack ({})", self.agent.endpoint())
    }
}
