//! The scoped-fetch spec as written by drafters and approved by owners
//! (format `"version": 1`). These types are plain data: nothing here is
//! checked until [`PermitSpec::compile`](crate::PermitSpec::compile).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only spec format version this crate reads and writes.
pub const SPEC_VERSION: u32 = 1;

/// A permit: one or more integrations an agent may call once it is approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PermitSpec {
    /// Format version; always 1.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// The integrations; names are unique within a permit.
    #[schemars(length(min = 1))]
    pub integrations: Vec<IntegrationSpec>,
}

/// One upstream API and what may be done with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSpec {
    /// Name of the sandbox function (`github(...)`): lower-case words joined
    /// by `_`, each starting with a letter, so it maps 1:1 onto a WIT name.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*$"), length(max = 64))]
    pub name: String,
    /// Scheme, host, port and optional path prefix every call is relative to.
    /// `https` only, except hosts the operator allow-lists.
    pub base_url: String,
    /// Where the drafter read about this API (provenance for the owner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doc_urls: Vec<String>,
    /// What may be called. A request must match at least one rule.
    #[schemars(length(min = 1))]
    pub rules: Vec<Rule>,
    /// Headers and query parameters the gateway adds to every call.
    #[serde(default, skip_serializing_if = "Inject::is_empty")]
    pub inject: Inject,
    /// Names of the owner's secrets that `inject` templates may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Calls allowed per window, shared by every execution of the permit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Size and time limits per call; omitted ones take operator defaults.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
}

/// One allowed kind of call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// HTTP method, upper case.
    #[schemars(regex(pattern = "^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$"))]
    pub method: String,
    /// Path glob relative to `base_url`, per segment: `*` is exactly one
    /// segment, `**` any number of segments, one `*` with text around it
    /// (`*.json`) one segment with that text around a non-empty rest,
    /// anything else is literal.
    pub path: String,
    /// Allowed query parameters. Absent: any; `{}`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<BTreeMap<String, QueryParam>>,
    /// The request body the call may carry. Absent (or `false`): no body.
    /// `true`: any body, not checked (any content type). A JSON Schema
    /// object: a JSON body that validates is required (`{}`: any JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BodyField>")]
    pub body: Option<Value>,
    /// Why this rule exists, for the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Each call this rule allows waits for the owner's confirmation of that
    /// exact request (a write whose recipient, target or amount the goal
    /// does not fix). Absent: `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm: bool,
}

/// The shape of [`Rule::body`] in the JSON Schema: a boolean or a schema object.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum BodyField {
    /// `true`: any body; `false`: none.
    Any(bool),
    /// A JSON Schema the body must satisfy.
    Schema(serde_json::Map<String, Value>),
}

/// One allowed query parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryParam {
    /// Allowed values; absent means any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// What the gateway adds to each call. Values are templates: `{NAME}` is
/// replaced by the owner's secret `NAME` inside egress only; `{{` and `}}`
/// are literal braces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Inject {
    /// Header name → value template, e.g. `Authorization: Bearer {GITHUB_TOKEN}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Query parameter name → value template, e.g. `api_key: {WEATHER_KEY}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// HTTP Basic credentials: egress sends `Authorization: Basic
    /// base64(username ":" password)`, computed from the filled-in templates
    /// (a template cannot compute base64). Excludes an injected
    /// `Authorization` header; the agent may not set that header either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
}

impl Inject {
    /// True when nothing is injected.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query.is_empty() && self.basic.is_none()
    }
}

/// HTTP Basic credentials (RFC 7617), as templates like header values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user-id, e.g. `{STRIPE_KEY}`: required, not empty, and without a
    /// literal `:` (RFC 7617 ends the user-id at the first `:`).
    #[schemars(length(min = 1))]
    pub username: String,
    /// The password, e.g. `{TWILIO_AUTH_TOKEN}`. Absent or empty: an empty
    /// password (`username:`), as APIs that take a key as the user-id expect.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
}

/// At most `max_calls` calls in any `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Calls allowed per window (also the largest burst).
    #[schemars(range(min = 1))]
    pub max_calls: u32,
    /// Window length in seconds.
    #[schemars(range(min = 1))]
    pub window_seconds: u32,
}

/// Per-call limits. Omitted fields take the operator's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_bytes: Option<u64>,
    /// Largest response body, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_bytes: Option<u64>,
    /// Whole-call timeout, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl Limits {
    /// True when every limit is left to the operator's defaults.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}
