//! The crate's one error type. A guest's failed call is not an error of the
//! host: see [`crate::CallError`].

/// Why the host could not do what the embedder asked.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Building the HTTP client failed (TLS configuration).
    #[error("http client: {0}")]
    Client(String),
}
