//! `oauth3-host`: the embeddable runtime. Untrusted agent JavaScript (or a
//! component) runs in a wasmtime sandbox whose only way out is [`Egress`],
//! the one enforcement point: decide → confirm (rules marked `confirm`) →
//! rate limit → resolve secrets → send → scrub → record.

mod call;
mod capabilities;
mod code_cache;
mod component;
mod confirm;
mod egress;
mod error;
mod js_component;
mod limits;
mod outcome;
mod runtime;
mod sandbox;
mod scoped_fetch;
mod script;
mod wasi;
mod wasi_http;

pub use call::{CallError, CallGate, CallRecord, GuestCall, GuestResponse, Outbound};
pub use capabilities::{AuditSink, MemoryRateLimiter, NoAudit, RateLimiter, Secret, SecretResolver, StaticSecrets};
pub use component::{AgentComponent, ComponentRejected, Refusal};
pub use confirm::{Confirmation, ConfirmationRequest, Confirmations, MemoryConfirmations, request_hash};
pub use egress::{BoundEgress, CallContext, Egress, EgressConfig, Scrubber};
pub use error::{BoxedError, HostError};
pub use limits::Limits;
pub use outcome::{Outcome, RunError};
pub use runtime::{RunContext, Runtime, RuntimeConfig};
pub use sandbox::StdoutTap;
pub use script::Script;
pub use wasi_http::ERROR_HEADER;
