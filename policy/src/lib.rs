//! `oauth3-policy`: the scoped-fetch spec, the whole security contract
//! between an owner and an agent. Pure: no I/O, no async.
//!
//! A spec is read ([`PermitSpec::from_json`], current or legacy format),
//! normalised, validated and compiled once ([`PermitSpec::compile`]) into an
//! immutable [`CompiledPermit`] that decides requests many times
//! ([`CompiledPermit::decide`]), describes itself to its owner
//! ([`CompiledPermit::describe`]) and to component authors
//! ([`CompiledPermit::wit`]). [`PermitSpec::spec_hash`] is what an approval
//! binds; [`PermitSpec::narrow`] is what an owner may take away before
//! approving. Rate limits are a pure model over explicit state ([`Gcra`]).
//!
//! ```
//! use oauth3_policy::{CompileOptions, DenyCode, OutboundRequest, PermitSpec};
//!
//! let spec = PermitSpec::from_json(r#"{
//!   "version": 1,
//!   "integrations": [{
//!     "name": "github",
//!     "base_url": "https://api.github.com",
//!     "rules": [
//!       {"method": "GET", "path": "/repos/o/r/issues"},
//!       {"method": "POST", "path": "/repos/o/r/issues",
//!        "body": {"type": "object", "required": ["title"], "additionalProperties": false,
//!                 "properties": {"title": {"type": "string"}, "body": {"type": "string"}}}}
//!     ],
//!     "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
//!     "secrets": ["GITHUB_TOKEN"],
//!     "rate_limit": {"max_calls": 30, "window_seconds": 60}
//!   }]
//! }"#)?;
//! let permit = spec.compile(&CompileOptions::default())?;
//!
//! let list = OutboundRequest::new("github", "GET", "/repos/o/r/issues");
//! assert!(permit.decide(&list).is_allow());
//!
//! let sneaky = OutboundRequest::new("github", "GET", "/repos/o/r/issues/..");
//! assert_eq!(permit.decide(&sneaky).deny_code(), Some(DenyCode::AmbiguousPath));
//!
//! let post = OutboundRequest::new("github", "POST", "/repos/o/r/issues").with_body(br#"["title"]"#);
//! assert_eq!(permit.decide(&post).deny_code(), Some(DenyCode::BodyInvalid));
//!
//! assert!(permit.describe().to_string().contains(
//!     "POST https://api.github.com/repos/o/r/issues — body: title (string, required), body (string); \
//!      at most 30 calls per minute (bursts of up to 30, then 1 every 2 s); \
//!      sends GITHUB_TOKEN as the Authorization header"));
//! assert_eq!(permit.spec_hash().to_string().len(), 64);
//! # Ok::<(), oauth3_policy::PolicyError>(())
//! ```

mod body;
mod canonical;
mod compile;
mod decide;
mod describe;
mod error;
mod glob;
mod headers;
mod legacy;
mod method;
mod names;
mod narrow;
mod origin;
mod parse;
pub mod path;
mod rate;
mod schema;
mod spec;
mod template;
mod text;
mod wit;

pub use body::{is_json_media_type, parse_strict as parse_strict_json};
pub use canonical::SpecHash;
pub use compile::{Ceilings, CompileOptions, CompiledIntegration, CompiledPermit, CompiledRule, EffectiveLimits};
pub use decide::{Allow, Decision, Deny, DenyCode, OutboundRequest, Redirect, Verdict};
pub use describe::{IntegrationSummary, Risk, RuleSummary, Summary};
pub use error::{Issue, PolicyError};
pub use glob::PathGlob;
pub use headers::{
    METHOD_OVERRIDE_NAMES, RESERVED_HEADER_PREFIXES, RESERVED_HEADERS, ROUTING_QUERY_NAMES, is_method_override,
    is_reserved as is_reserved_header, is_routing_query_name, same_header, same_parameter,
};
pub use method::{METHODS, Method, UnknownMethod};
pub use names::{IntegrationName, RESERVED_INTEGRATION_NAMES};
pub use narrow::Narrowing;
pub use origin::{HostPort, Origin, Scheme, is_public_ip};
pub use rate::{Gcra, RateDecision, RateKey};
pub use schema::permit_json_schema;
pub use spec::{BasicAuth, Inject, IntegrationSpec, Limits, PermitSpec, QueryParam, RateLimit, Rule, SPEC_VERSION};
pub use template::{MissingSecret, Template, is_secret_name};
pub use text::is_invisible;
pub use wit::{PERMIT_PACKAGE, SCOPED_FETCH_TYPES, SCOPED_FETCH_WIT, WASI_IO_POLL_WIT, interfaces_wit};
