//! `oauth3-netguard`: what every outbound fetch made on an agent's behalf
//! shares, whichever crate makes it (egress calling an upstream, drafting
//! fetching an API's docs or asking its LLM):
//!
//! - [`GuardedResolver`]: DNS that drops non-public addresses unless the
//!   operator allow-listed the host, failing with [`AddressRefused`];
//! - [`check_url`]: which URLs a fetch the gateway makes itself (docs,
//!   webhooks) may target, before connecting;
//! - [`tls_config`]: the one rustls setup (ring, Mozilla roots plus the
//!   operator's extra roots).
//!
//! It is its own crate so drafting can use the guard without linking the
//! wasmtime sandbox.

mod guard;
mod target;
mod tls;

pub use guard::{AddressRefused, GuardedResolver};
pub use target::check_url;
pub use tls::tls_config;
