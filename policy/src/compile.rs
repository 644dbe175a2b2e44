//! Validation and compilation, in one pass: a spec that compiles is valid,
//! and every string in it has been parsed into a typed value once.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::body::BodySchema;
use crate::glob::PathGlob;
use crate::method::Method;
use crate::names::IntegrationName;
use crate::origin::{BaseUrl, HostPort, Origin, Scheme};
use crate::spec::{IntegrationSpec, PermitSpec, RateLimit, Rule};
use crate::template::{Template, is_secret_name, mentions_template};
use crate::{Issue, PolicyError, SpecHash, headers};

/// What the operator decides, passed in by the caller.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Upstreams that may be reached over plain http and that bypass the
    /// non-public address checks (development and tests only).
    pub insecure_upstreams: BTreeSet<HostPort>,
    /// Upper bounds a spec may not exceed.
    pub ceilings: Ceilings,
}

/// Operator ceilings, and the defaults used where a spec sets no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceilings {
    /// Most integrations in one permit.
    pub max_integrations: usize,
    /// Most rules in one integration.
    pub max_rules: usize,
    /// Ceilings for the per-call limits.
    pub limits: EffectiveLimits,
    /// Limits used when a spec omits them (each capped by `limits`).
    pub defaults: EffectiveLimits,
}

impl Default for Ceilings {
    fn default() -> Self {
        Ceilings {
            max_integrations: 16,
            max_rules: 256,
            limits: EffectiveLimits { max_request_bytes: 10 << 20, max_response_bytes: 50 << 20, timeout_ms: 120_000 },
            defaults: EffectiveLimits { max_request_bytes: 1 << 20, max_response_bytes: 10 << 20, timeout_ms: 30_000 },
        }
    }
}

/// Per-call limits in force for an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// Largest request body, in bytes.
    pub max_request_bytes: u64,
    /// Largest response body, in bytes.
    pub max_response_bytes: u64,
    /// Whole-call timeout, in milliseconds.
    pub timeout_ms: u64,
}

/// A validated permit, ready to decide requests. Immutable; share it with `Arc`.
#[derive(Debug)]
pub struct CompiledPermit {
    pub(crate) spec: PermitSpec,
    pub(crate) hash: SpecHash,
    pub(crate) integrations: Box<[CompiledIntegration]>,
}

/// One compiled integration.
#[derive(Debug)]
pub struct CompiledIntegration {
    pub(crate) name: IntegrationName,
    pub(crate) base: BaseUrl,
    pub(crate) insecure: bool,
    pub(crate) rules: Box<[CompiledRule]>,
    pub(crate) inject_headers: Vec<(String, Template)>,
    pub(crate) inject_query: Vec<(String, Template)>,
    /// HTTP Basic (username, password) templates.
    pub(crate) inject_basic: Option<(Template, Template)>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) limits: EffectiveLimits,
}

/// One compiled rule.
#[derive(Debug)]
pub struct CompiledRule {
    pub(crate) method: Method,
    pub(crate) glob: PathGlob,
    pub(crate) query: Option<Vec<(String, Option<Vec<String>>)>>,
    pub(crate) body: BodyRule,
    /// Calls it allows wait for the owner's confirmation of each request.
    pub(crate) confirm: bool,
}

/// What body a rule lets a request carry.
#[derive(Debug)]
pub(crate) enum BodyRule {
    /// No body (the rule names none, or says `false`).
    None,
    /// Any body, unchecked (`true`).
    Any,
    /// A JSON body that validates.
    Json(BodySchema),
}

impl PermitSpec {
    /// Validates and compiles the (normalised) spec. Every problem found is
    /// reported, not just the first.
    pub fn compile(&self, options: &CompileOptions) -> Result<CompiledPermit, PolicyError> {
        let spec = self.normalized();
        let mut issues = Vec::new();
        if spec.integrations.is_empty() {
            issues.push(Issue::new("integrations", "must list at least one integration"));
        }
        if spec.integrations.len() > options.ceilings.max_integrations {
            let max = options.ceilings.max_integrations;
            issues.push(Issue::new("integrations", format!("at most {max} integrations per permit")));
        }
        let mut names = HashSet::new();
        let mut integrations = Vec::new();
        for (i, integration) in spec.integrations.iter().enumerate() {
            let at = format!("integrations[{i}]");
            if !names.insert(integration.name.as_str()) {
                issues.push(Issue::new(
                    format!("{at}.name"),
                    format!("'{}' is used twice; names must be unique", integration.name),
                ));
            }
            if let Some(compiled) = compile_integration(integration, &at, options, &mut issues) {
                integrations.push(compiled);
            }
        }
        if !issues.is_empty() {
            return Err(PolicyError::Invalid(issues));
        }
        let hash = SpecHash::of_normalized(&spec);
        Ok(CompiledPermit { spec, hash, integrations: integrations.into() })
    }

    /// All validation problems; empty when the spec compiles.
    pub fn validate(&self, options: &CompileOptions) -> Vec<Issue> {
        match self.compile(options) {
            Ok(_) => Vec::new(),
            Err(PolicyError::Invalid(issues)) => issues,
            Err(other) => vec![Issue::new(".", other.to_string())],
        }
    }
}

fn compile_integration(
    spec: &IntegrationSpec,
    at: &str,
    options: &CompileOptions,
    issues: &mut Vec<Issue>,
) -> Option<CompiledIntegration> {
    let before = issues.len();
    let mut issue = |field: &str, message: String| issues.push(Issue::new(format!("{at}.{field}"), message));

    let name = IntegrationName::parse(&spec.name).map_err(|why| issue("name", why)).ok();
    let insecure = |hp: &HostPort| options.insecure_upstreams.contains(hp);
    let base = if mentions_template(&spec.base_url) {
        issue("base_url", "must not contain {SECRET} templates; secrets go only in inject".into());
        None
    } else {
        BaseUrl::parse(&spec.base_url, insecure).map_err(|why| issue("base_url", why)).ok()
    };
    for (i, doc) in spec.doc_urls.iter().enumerate() {
        if !url::Url::parse(doc).is_ok_and(|u| matches!(u.scheme(), "https" | "http")) {
            issue(&format!("doc_urls[{i}]"), format!("'{doc}' is not an http(s) URL"));
        }
    }

    let declared: HashSet<&str> = spec.secrets.iter().map(String::as_str).collect();
    for (i, name) in spec.secrets.iter().enumerate() {
        if !is_secret_name(name) {
            issue(
                &format!("secrets[{i}]"),
                format!("'{name}' is not a secret name: a letter or '_' then letters, digits or '_'"),
            );
        }
    }
    let mut template = |field: String, text: &str| match Template::parse(text) {
        Ok(t) => {
            for name in t.secrets().filter(|n| !declared.contains(n)) {
                issue(&field, format!("uses secret {name}, which is not declared in `secrets`"));
            }
            if headers::has_forbidden_value_bytes(text) {
                issue(&field, "contains a control character".into());
            }
            Some(t)
        }
        Err(why) => {
            issue(&field, why);
            None
        }
    };
    let mut inject_headers = Vec::new();
    for (name, value) in &spec.inject.headers {
        let field = format!("inject.headers.{name}");
        if let Some(t) = template(field, value) {
            inject_headers.push((name.clone(), t));
        }
    }
    let mut inject_query = Vec::new();
    for (name, value) in &spec.inject.query {
        if let Some(t) = template(format!("inject.query.{name}"), value) {
            inject_query.push((name.clone(), t));
        }
    }
    let inject_basic = spec.inject.basic.as_ref().and_then(|basic| {
        let username = template("inject.basic.username".into(), &basic.username);
        let password = template("inject.basic.password".into(), &basic.password);
        Some((username?, password?))
    });
    if let Some(basic) = &spec.inject.basic {
        // The literal text alone (secret references filled in empty): a
        // secret's own value is only known, and checked, in egress.
        let literal = Template::parse(&basic.username).ok().and_then(|t| t.render(|_| Some("")).ok());
        if basic.username.is_empty() {
            issue("inject.basic.username", "must not be empty: HTTP Basic needs a user-id".into());
        } else if literal.is_some_and(|text| text.contains(':')) {
            issue(
                "inject.basic.username",
                "must not contain ':' (RFC 7617: the user-id ends at the first ':'); put the rest in `password`".into(),
            );
        }
        for name in spec.inject.headers.keys().filter(|n| headers::same_header(n, "Authorization")) {
            issue(
                "inject.basic",
                format!("sets the Authorization header, and so does inject.headers.{name}; keep one of them"),
            );
        }
    }
    let mut seen_headers = HashSet::new();
    for name in spec.inject.headers.keys() {
        let field = format!("inject.headers.{name}");
        if !headers::is_token(name) {
            issue(&field, "is not a valid header name".into());
        } else if headers::is_reserved(name) {
            issue(&field, "is set by the gateway itself (Host, Connection, Content-Length, Proxy-*, ...)".into());
        } else if !seen_headers.insert(headers::canonical(name)) {
            issue(
                &field,
                "is injected twice (header names ignore letter case, and '_', '.' and other symbols read as '-')"
                    .into(),
            );
        }
    }
    for name in spec.inject.query.keys().filter(|n| n.is_empty() || mentions_template(n)) {
        issue(&format!("inject.query.{name}"), "is not a valid query parameter name".into());
    }

    if spec.rules.is_empty() {
        issue("rules", "must list at least one rule".into());
    }
    if spec.rules.len() > options.ceilings.max_rules {
        issue("rules", format!("at most {} rules per integration", options.ceilings.max_rules));
    }
    let mut rules = Vec::new();
    for (i, rule) in spec.rules.iter().enumerate() {
        let mut rule_issue = |field: &str, message: String| issue(&format!("rules[{i}].{field}"), message);
        if let Some(compiled) = compile_rule(rule, &spec.inject.query, &mut rule_issue) {
            rules.push(compiled);
        }
    }

    if let Some(rate) = spec.rate_limit {
        if !(1..=1_000_000).contains(&rate.max_calls) {
            issue("rate_limit.max_calls", format!("must be between 1 and 1000000 (got {})", rate.max_calls));
        }
        if !(1..=2_678_400).contains(&rate.window_seconds) {
            issue(
                "rate_limit.window_seconds",
                format!("must be between 1 and 2678400 (31 days) (got {})", rate.window_seconds),
            );
        }
    }
    let ceilings = &options.ceilings;
    let mut limit = |field: &str, value: Option<u64>, ceiling: u64, default: u64| match value {
        Some(0) => {
            issue(&format!("limits.{field}"), "must be greater than 0".into());
            0
        }
        Some(v) if v > ceiling => {
            issue(&format!("limits.{field}"), format!("{v} exceeds the operator's ceiling of {ceiling}"));
            0
        }
        Some(v) => v,
        None => default.min(ceiling),
    };
    let limits = EffectiveLimits {
        max_request_bytes: limit(
            "max_request_bytes",
            spec.limits.max_request_bytes,
            ceilings.limits.max_request_bytes,
            ceilings.defaults.max_request_bytes,
        ),
        max_response_bytes: limit(
            "max_response_bytes",
            spec.limits.max_response_bytes,
            ceilings.limits.max_response_bytes,
            ceilings.defaults.max_response_bytes,
        ),
        timeout_ms: limit(
            "timeout_ms",
            spec.limits.timeout_ms,
            ceilings.limits.timeout_ms,
            ceilings.defaults.timeout_ms,
        ),
    };

    if issues.len() > before {
        return None;
    }
    let (name, base) = (name?, base?);
    let insecure = options.insecure_upstreams.contains(&base.origin.host_port());
    Some(CompiledIntegration {
        name,
        base,
        insecure,
        rules: rules.into(),
        inject_headers,
        inject_query,
        inject_basic,
        rate_limit: spec.rate_limit,
        limits,
    })
}

fn compile_rule(
    rule: &Rule,
    injected_query: &std::collections::BTreeMap<String, String>,
    issue: &mut impl FnMut(&str, String),
) -> Option<CompiledRule> {
    let mut ok = true;
    let mut fail = |field: &str, message: String| {
        ok = false;
        issue(field, message);
    };
    let method = rule.method.parse::<Method>().map_err(|unknown| fail("method", unknown.to_string())).ok();
    let glob = PathGlob::parse(&rule.path).map_err(|why| fail("path", format!("'{}' {why}", rule.path))).ok();
    if let Some(query) = &rule.query {
        for (name, param) in query {
            let field = format!("query.{name}");
            if name.is_empty() {
                fail(&field, "query parameter names must not be empty".into());
            }
            if injected_query.keys().any(|k| crate::headers::same_parameter(k, name)) {
                fail(&field, "is injected by the gateway; the agent may not set it".into());
            }
            let values = param.values.iter().flatten();
            if mentions_template(name) || values.clone().any(|v| mentions_template(v)) {
                fail(&field, "must not contain {SECRET} templates; secrets go only in inject".into());
            }
            if param.values.as_ref().is_some_and(Vec::is_empty) {
                fail(&field, "`values` must list at least one value (omit it to allow any value)".into());
            }
        }
    }
    let body = match &rule.body {
        None | Some(Value::Bool(false)) => Some(BodyRule::None),
        Some(Value::Bool(true)) => Some(BodyRule::Any),
        Some(schema) => BodySchema::compile(schema).map(BodyRule::Json).map_err(|why| fail("body", why)).ok(),
    };
    if rule.description.as_ref().is_some_and(|d| d.len() > 2000) {
        fail("description", "must be at most 2000 bytes".into());
    }
    if !ok {
        return None;
    }
    let query = rule.query.as_ref().map(|q| q.iter().map(|(name, p)| (name.clone(), p.values.clone())).collect());
    Some(CompiledRule { method: method?, glob: glob?, query, body: body?, confirm: rule.confirm })
}

impl CompiledIntegration {
    /// The integration's name (its sandbox function).
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The integration's name, typed (for its WIT interface).
    pub fn integration_name(&self) -> &IntegrationName {
        &self.name
    }

    /// Where calls go.
    pub fn origin(&self) -> &Origin {
        &self.base.origin
    }

    /// The base URL, normalised, without a trailing `/`.
    pub fn base_url(&self) -> String {
        self.base.to_string()
    }

    /// The full URL path for a request path: the base path prefix, then
    /// `path`; `/` under a base path is the base path itself.
    pub fn upstream_path(&self, path: &str) -> String {
        match (self.base.path.as_str(), path) {
            ("", path) => path.to_owned(),
            (base, "/") => base.to_owned(),
            (base, path) => format!("{base}{path}"),
        }
    }

    /// True when the operator allow-lists this origin: plain http allowed and
    /// the non-public address checks skipped.
    pub fn is_insecure_upstream(&self) -> bool {
        self.insecure
    }

    /// Headers to inject, as (name, template).
    pub fn inject_headers(&self) -> &[(String, Template)] {
        &self.inject_headers
    }

    /// Query parameters to inject, as (name, template).
    pub fn inject_query(&self) -> &[(String, Template)] {
        &self.inject_query
    }

    /// HTTP Basic credentials to inject, as (username, password) templates.
    /// Egress fills both in and sends `Authorization: Basic
    /// base64(username ":" password)`; the agent may not set `Authorization`.
    pub fn inject_basic(&self) -> Option<(&Template, &Template)> {
        self.inject_basic.as_ref().map(|(username, password)| (username, password))
    }

    /// Secrets this integration's calls need, sorted and deduplicated.
    pub fn secrets(&self) -> BTreeSet<&str> {
        let templates = self.inject_headers.iter().chain(&self.inject_query).map(|(_, t)| t);
        let basic = self.inject_basic.iter().flat_map(|(username, password)| [username, password]);
        templates.chain(basic).flat_map(Template::secrets).collect()
    }

    /// The rate limit, if any.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    /// Per-call limits in force.
    pub fn limits(&self) -> EffectiveLimits {
        self.limits
    }

    /// How the sandbox function is called.
    pub fn signature(&self) -> String {
        format!("{}(method, path, {{ body, query, headers }})", self.name)
    }
}

impl CompiledPermit {
    /// The normalised spec this was compiled from.
    pub fn spec(&self) -> &PermitSpec {
        &self.spec
    }

    /// SHA-256 of the canonical form: what an owner approves.
    pub fn spec_hash(&self) -> &SpecHash {
        &self.hash
    }

    /// The integrations, in spec order.
    pub fn integrations(&self) -> &[CompiledIntegration] {
        &self.integrations
    }

    /// Looks an integration up by name.
    pub fn integration(&self, name: &str) -> Option<&CompiledIntegration> {
        self.integrations.iter().find(|i| i.name == name)
    }

    /// The integration a request to a whole URL belongs to, for clients that
    /// name URLs rather than integrations (wasi:http): the one whose origin
    /// is exactly `scheme`, `host` (any letter case) and `port` (the
    /// scheme's default when `None`) and whose base path is the longest that
    /// contains `path` segment-wise, with `path` relative to that base (the
    /// path [`CompiledPermit::decide`] takes). `path` is the URL's path
    /// without its query. `None`: no integration, or several sharing that
    /// longest base URL (only their names tell them apart); refuse the
    /// request.
    pub fn route<'p>(
        &self,
        scheme: Scheme,
        host: &str,
        port: Option<u16>,
        path: &'p str,
    ) -> Option<(&CompiledIntegration, &'p str)> {
        let port = port.unwrap_or(match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        });
        let host = host.to_ascii_lowercase();
        let mut best: Option<(&CompiledIntegration, &'p str)> = None;
        let mut tied = false;
        for integration in &self.integrations {
            let origin = &integration.base.origin;
            if origin.scheme != scheme || origin.port != port || origin.host.to_string() != host {
                continue;
            }
            let rest = match path.strip_prefix(integration.base.path.as_str()) {
                Some("") => "/",
                Some(rest) if rest.starts_with('/') => rest,
                _ => continue,
            };
            let length = integration.base.path.len();
            match best {
                Some((current, _)) if current.base.path.len() > length => {}
                Some((current, _)) if current.base.path.len() == length => tied = true,
                _ => (best, tied) = (Some((integration, rest)), false),
            }
        }
        if tied { None } else { best }
    }
}
