//! Agent scripts compiled to QuickJS bytecode.

use std::fmt;
use std::sync::Arc;

/// An agent's script compiled to QuickJS bytecode by
/// [`crate::Runtime::compile_js`]. Cheap to clone; runs any number of times.
#[derive(Clone)]
pub struct Script {
    pub(crate) hash: [u8; 32],
    pub(crate) bytecode: Arc<[u8]>,
}

impl Script {
    /// SHA-256 of the source, lowercase hex.
    pub fn source_hash(&self) -> String {
        crate::runtime::hex(&self.hash)
    }

    /// Size of the bytecode in bytes.
    pub fn bytecode_len(&self) -> usize {
        self.bytecode.len()
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("source_hash", &self.source_hash())
            .field("bytecode_len", &self.bytecode.len())
            .finish()
    }
}
