//! [`DstackKeys`]: each key from the guest agent's `GetKey` with a
//! versioned path (`oauth3/<purpose>/v1`). A key depends only on the app and
//! the path, so every replica of one app derives the same bytes; a new
//! version is a new path (re-encrypting what the old one sealed).

use super::dstack::Dstack;
use crate::error::Result;
use crate::keys::{KeyProvider, KeyPurpose};

/// The key version every purpose uses now.
pub const KEY_VERSION: &str = "v1";

/// Keys derived by the dstack guest agent.
pub struct DstackKeys {
    agent: Dstack,
}

impl DstackKeys {
    /// Keys from `agent`.
    pub fn new(agent: Dstack) -> DstackKeys {
        DstackKeys { agent }
    }

    /// The `GetKey` path of `purpose`.
    pub fn path(purpose: KeyPurpose) -> String {
        format!("oauth3/{}/{KEY_VERSION}", purpose.name())
    }
}

#[async_trait::async_trait]
impl KeyProvider for DstackKeys {
    async fn key(&self, purpose: KeyPurpose) -> Result<[u8; 32]> {
        self.agent.get_key(&DstackKeys::path(purpose)).await
    }

    fn name(&self) -> String {
        format!("dstack ({})", self.agent.endpoint())
    }
}
