//! The crate's one error type: what the embedder asked for could not be done.
//! What a script does is not an error of the host: it ends up in the
//! [`crate::Outcome`] ([`crate::RunError`]), and a guest's refused or failed
//! call is a [`crate::CallError`].

use std::path::PathBuf;

use crate::{ComponentRejected, RunError};

/// A wrapped failure from wasmtime, whose error type converts to this.
pub type BoxedError = Box<dyn std::error::Error + Send + Sync>;

/// Why the host could not build, compile or start something. Wrapped
/// failures are kept as the [`std::error::Error::source`]; the message says
/// what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Egress's TLS configuration is invalid (an extra root, the provider).
    #[error("http client TLS configuration")]
    Client(#[source] rustls::Error),
    /// Building egress's HTTP client failed.
    #[error("http client")]
    HttpClient(#[source] reqwest::Error),
    /// Configuring or creating the wasmtime engine failed.
    #[error("engine")]
    Engine(#[source] BoxedError),
    /// Snapshotting, compiling or linking the guest runtime failed.
    #[error("guest runtime")]
    GuestRuntime(#[source] BoxedError),
    /// Reading or writing the on-disk cache failed.
    #[error("cache {path}")]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A run's context is invalid (integration name, args).
    #[error("invalid run context: {0}")]
    InvalidContext(String),
    /// The script is not valid JavaScript.
    #[error("{message} (line {line}, column {column})")]
    Syntax {
        /// `SyntaxError: ...` as QuickJS reports it.
        message: String,
        /// 1-based line (0 when QuickJS did not say).
        line: u32,
        /// 1-based column (0 when QuickJS did not say).
        column: u32,
    },
    /// The script is larger than [`crate::RuntimeConfig::max_source_bytes`].
    #[error("the script is {size} bytes; at most {limit} are allowed")]
    ScriptTooLarge {
        /// Size of the source.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The compiler ran out of fuel, memory or time.
    #[error("compiling the script failed")]
    CompileFailed(#[source] RunError),
    /// A submitted component may not run (its imports, its exports, its
    /// size, or it is not a component).
    #[error(transparent)]
    ComponentRejected(#[from] ComponentRejected),
}
