//! `decide`: the pure, total function egress calls for every request and
//! every redirect hop. It never fails and never panics: it allows, naming the
//! rule, or denies with a code and a message safe to show the agent (it
//! holds no secret values: the policy never sees them).

use std::fmt;

use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::compile::{BodyRule, CompiledIntegration, CompiledPermit, CompiledRule};
use crate::method::{METHODS, Method};
use crate::origin::Scheme;
use crate::{body, headers, path};

/// One outbound call as the guest asked for it. The query is decoded
/// name/value pairs; the body is the exact bytes that would be sent.
#[derive(Debug, Clone, Copy)]
pub struct OutboundRequest<'a> {
    /// Integration (sandbox function) name.
    pub integration: &'a str,
    /// HTTP method, as given (upper case expected).
    pub method: &'a str,
    /// Path relative to the integration's base URL, percent-encoded.
    pub path: &'a str,
    /// Query parameters.
    pub query: &'a [(String, String)],
    /// Headers the agent asked for.
    pub headers: &'a [(String, String)],
    /// Request body.
    pub body: Option<&'a [u8]>,
}

impl<'a> OutboundRequest<'a> {
    /// A request with no query, headers or body.
    pub fn new(integration: &'a str, method: &'a str, path: &'a str) -> Self {
        OutboundRequest { integration, method, path, query: &[], headers: &[], body: None }
    }

    /// Sets the query parameters.
    pub fn with_query(self, query: &'a [(String, String)]) -> Self {
        OutboundRequest { query, ..self }
    }

    /// Sets the agent's headers.
    pub fn with_headers(self, headers: &'a [(String, String)]) -> Self {
        OutboundRequest { headers, ..self }
    }

    /// Sets the body.
    pub fn with_body(self, body: &'a [u8]) -> Self {
        OutboundRequest { body: Some(body), ..self }
    }
}

/// The outcome of [`CompiledPermit::decide`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The request matches a rule.
    Allow(Allow),
    /// The request is refused.
    Deny(Deny),
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The deny code, if denied.
    pub fn deny_code(&self) -> Option<DenyCode> {
        match self {
            Decision::Deny(d) => Some(d.code),
            Decision::Allow(_) => None,
        }
    }

    /// Allow or deny, without the details.
    pub fn verdict(&self) -> Verdict {
        match self {
            Decision::Allow(_) => Verdict::Allow,
            Decision::Deny(_) => Verdict::Deny,
        }
    }
}

/// Allow or deny, as audit records keep it (`"allow"`, `"deny"`): the
/// policy's [`Decision`], or a call refused after it (rate limit, a missing
/// secret, the run ending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The call went ahead.
    Allow,
    /// The call was refused.
    Deny,
}

impl Verdict {
    /// `allow` or `deny`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which integration and rule allowed a request (indexes into the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Allow {
    /// Index into `integrations`.
    pub integration: usize,
    /// Index into that integration's `rules`.
    pub rule: usize,
    /// The rule says `confirm`: the call may be sent only once the owner has
    /// confirmed this exact request. Only when no rule without `confirm`
    /// allows it.
    pub confirm: bool,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deny {
    /// Machine-readable reason.
    pub code: DenyCode,
    /// Human-readable reason, safe to show the agent.
    pub message: String,
}

/// Machine-readable deny reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyCode {
    /// No integration of that name in the permit.
    UnknownIntegration,
    /// The path matches a rule, but not for this method.
    MethodNotAllowed,
    /// No rule matches the path.
    PathNotAllowed,
    /// The path is not in normal form (see [`crate::path`]).
    AmbiguousPath,
    /// A query parameter or value outside the rule's allow-list.
    QueryNotAllowed,
    /// The body is not JSON or fails the rule's schema.
    BodyInvalid,
    /// The body exceeds `limits.max_request_bytes`.
    BodyTooLarge,
    /// A header the agent may not set.
    HeaderNotAllowed,
    /// A redirect hop that is not followed.
    RedirectNotAllowed,
}

impl DenyCode {
    /// The snake_case code, e.g. `ambiguous_path`.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyCode::UnknownIntegration => "unknown_integration",
            DenyCode::MethodNotAllowed => "method_not_allowed",
            DenyCode::PathNotAllowed => "path_not_allowed",
            DenyCode::AmbiguousPath => "ambiguous_path",
            DenyCode::QueryNotAllowed => "query_not_allowed",
            DenyCode::BodyInvalid => "body_invalid",
            DenyCode::BodyTooLarge => "body_too_large",
            DenyCode::HeaderNotAllowed => "header_not_allowed",
            DenyCode::RedirectNotAllowed => "redirect_not_allowed",
        }
    }
}

impl fmt::Display for DenyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Deny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

fn deny(code: DenyCode, message: impl Into<String>) -> Deny {
    Deny { code, message: message.into() }
}

/// Agent-supplied text inside a message: escaped and at most 120 characters.
fn quote(text: &str) -> String {
    let mut out: String = text.chars().take(120).flat_map(char::escape_debug).collect();
    if text.chars().nth(120).is_some() {
        out.push('…');
    }
    format!("'{out}'")
}

impl CompiledPermit {
    /// Decides one request. Total: every input gets a decision.
    pub fn decide(&self, request: &OutboundRequest<'_>) -> Decision {
        let found = self.integrations.iter().enumerate().find(|(_, i)| i.name == request.integration);
        let Some((index, integration)) = found else {
            let names: Vec<&str> = self.integrations.iter().map(|i| i.name.as_str()).collect();
            return Decision::Deny(deny(
                DenyCode::UnknownIntegration,
                format!(
                    "no integration named {} in this permit (it has: {})",
                    quote(request.integration),
                    names.join(", ")
                ),
            ));
        };
        match integration.decide(request) {
            Ok(rule) => Decision::Allow(Allow { integration: index, rule, confirm: integration.rules[rule].confirm }),
            Err(d) => Decision::Deny(d),
        }
    }
}

impl CompiledIntegration {
    fn decide(&self, req: &OutboundRequest<'_>) -> Result<usize, Deny> {
        if let Some(body) = req.body
            && body.len() as u64 > self.limits.max_request_bytes
        {
            return Err(deny(
                DenyCode::BodyTooLarge,
                format!(
                    "body is {} bytes; this integration allows at most {}",
                    body.len(),
                    self.limits.max_request_bytes
                ),
            ));
        }
        let Ok(method) = req.method.parse::<Method>() else {
            let hint = match METHODS.iter().find(|m| m.eq_ignore_ascii_case(req.method)) {
                Some(m) => format!("methods are case-sensitive: write '{m}'"),
                None => format!("use one of {}", METHODS.join(", ")),
            };
            return Err(deny(
                DenyCode::MethodNotAllowed,
                format!("method {} is not allowed; {hint}", quote(req.method)),
            ));
        };
        let segments = path::segments(req.path)
            .map_err(|why| deny(DenyCode::AmbiguousPath, format!("path {} {why}", quote(req.path))))?;
        self.check_headers(req.headers)?;
        for (name, _) in req.query {
            if headers::is_routing_query_name(name) {
                return Err(deny(
                    DenyCode::QueryNotAllowed,
                    format!("query parameter {} would override the method or route upstream", quote(name)),
                ));
            }
            if self.inject_query.iter().any(|(n, _)| headers::same_parameter(n, name)) {
                return Err(deny(
                    DenyCode::QueryNotAllowed,
                    format!("query parameter {} is set by the gateway", quote(name)),
                ));
            }
        }

        let mut path_matched = false;
        let mut first_failure = None;
        let mut parsed_body = None;
        // A rule that needs no confirmation wins over one that does.
        let mut confirmed_by = None;
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.glob.matches(&segments) {
                continue;
            }
            path_matched = true;
            if rule.method != method || (rule.confirm && confirmed_by.is_some()) {
                continue;
            }
            match check_query(rule, req.query).and_then(|()| check_body(rule, req, &mut parsed_body)) {
                Ok(()) if rule.confirm => confirmed_by = Some(index),
                Ok(()) => return Ok(index),
                Err(d) => {
                    first_failure.get_or_insert(d);
                }
            }
        }
        if let Some(index) = confirmed_by {
            return Ok(index);
        }
        Err(first_failure.unwrap_or_else(|| {
            if path_matched {
                let methods: Vec<&str> =
                    self.rules.iter().filter(|r| r.glob.matches(&segments)).map(|r| r.method.as_str()).collect();
                deny(
                    DenyCode::MethodNotAllowed,
                    format!(
                        "{} {} is not allowed; this path allows {}",
                        req.method,
                        quote(req.path),
                        methods.join(", ")
                    ),
                )
            } else {
                deny(
                    DenyCode::PathNotAllowed,
                    format!("{} {} matches no rule of {}", req.method, quote(req.path), self.name),
                )
            }
        }))
    }

    fn check_headers(&self, headers: &[(String, String)]) -> Result<(), Deny> {
        for (name, value) in headers {
            let why = if !headers::is_token(name) {
                "is not a valid header name"
            } else if headers::has_forbidden_value_bytes(value) {
                "has a control character (CR, LF, NUL, ...) in its value"
            } else if headers::is_reserved(name) {
                "is set by the gateway, not the agent"
            } else if self.inject_headers.iter().any(|(n, _)| headers::same_header(n, name))
                || (self.inject_basic.is_some() && headers::same_header("Authorization", name))
            {
                "is injected by the gateway and cannot be set or overridden"
            } else {
                continue;
            };
            return Err(deny(DenyCode::HeaderNotAllowed, format!("header {} {why}", quote(name))));
        }
        Ok(())
    }
}

fn check_query(rule: &CompiledRule, query: &[(String, String)]) -> Result<(), Deny> {
    let Some(allowed) = &rule.query else { return Ok(()) };
    for (name, value) in query {
        match allowed.iter().find(|(n, _)| n == name) {
            None if allowed.is_empty() => {
                return Err(deny(DenyCode::QueryNotAllowed, "this call takes no query parameters"));
            }
            None => {
                let names: Vec<&str> = allowed.iter().map(|(n, _)| n.as_str()).collect();
                return Err(deny(
                    DenyCode::QueryNotAllowed,
                    format!("query parameter {} is not allowed; allowed: {}", quote(name), names.join(", ")),
                ));
            }
            Some((_, Some(values))) if !values.contains(value) => {
                return Err(deny(
                    DenyCode::QueryNotAllowed,
                    format!("{} is not an allowed value of {name}; allowed: {}", quote(value), values.join(", ")),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn check_body(
    rule: &CompiledRule,
    req: &OutboundRequest<'_>,
    parsed: &mut Option<Result<Value, String>>,
) -> Result<(), Deny> {
    // An empty body carries nothing: it counts as none.
    let bytes = req.body.filter(|b| !b.is_empty());
    let mut content_types = req.headers.iter().filter(|(n, _)| headers::same_header(n, "content-type"));
    let content_type = content_types.next().map(|(_, v)| v.as_str());
    if bytes.is_some() && content_types.next().is_some() {
        // Which one an upstream reads is up to it: the body is checked as neither.
        return Err(deny(DenyCode::BodyInvalid, "Content-Type is given more than once"));
    }
    let (schema, bytes) = match (&rule.body, bytes) {
        (BodyRule::Any | BodyRule::None, None) => return Ok(()),
        (BodyRule::None, Some(_)) => {
            return Err(deny(DenyCode::BodyInvalid, "this call takes no body; the permit's rule allows none"));
        }
        (BodyRule::Json(_), None) => {
            return Err(deny(DenyCode::BodyInvalid, "this call needs a JSON body matching the rule's schema"));
        }
        (BodyRule::Any, Some(bytes)) => return no_method_override(bytes, content_type, None),
        (BodyRule::Json(schema), Some(bytes)) => (schema, bytes),
    };
    if content_type.is_some_and(|v| !body::is_json_media_type(v)) {
        return Err(deny(DenyCode::BodyInvalid, "this call takes a JSON body; Content-Type must be application/json"));
    }
    match parsed.get_or_insert_with(|| body::parse_strict(bytes)) {
        Err(e) => Err(deny(DenyCode::BodyInvalid, format!("body is not valid JSON: {e}"))),
        Ok(value) => {
            schema.check(value).map_err(|why| deny(DenyCode::BodyInvalid, clip(why)))?;
            no_method_override(bytes, content_type, Some(value))
        }
    }
}

fn no_method_override(bytes: &[u8], content_type: Option<&str>, json: Option<&Value>) -> Result<(), Deny> {
    match body::method_override_in(bytes, content_type, json) {
        Some(name) => Err(deny(
            DenyCode::BodyInvalid,
            format!("the body sets {}, which would override the HTTP method upstream", quote(&name)),
        )),
        None => Ok(()),
    }
}

fn clip(mut text: String) -> String {
    if text.len() > 400 {
        let cut = (0..=400).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// The outcome of [`CompiledPermit::redirect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// Follow the hop with this request, which the rules allow.
    Follow {
        /// The rule that allows the new request.
        allow: Allow,
        /// Method for the new request (303, and 301/302 after POST, become GET).
        method: String,
        /// New path relative to the base URL, in normal form.
        path: String,
        /// New query parameters, decoded.
        query: Vec<(String, String)>,
        /// Whether the original body is sent again (307 and 308).
        keep_body: bool,
    },
    /// Do not follow; the response is not returned either.
    Deny(Deny),
}

impl CompiledPermit {
    /// Decides a redirect hop: `from` (already allowed) got `status` with
    /// `location`. Only same-origin hops under the base path that the rules
    /// allow are followed; credentials never go to another origin. Messages
    /// do not echo the location, which comes from the upstream.
    pub fn redirect(&self, from: &OutboundRequest<'_>, status: u16, location: &str) -> Redirect {
        let refuse = |why: String| Redirect::Deny(deny(DenyCode::RedirectNotAllowed, why));
        let Some(integration) = self.integration(from.integration) else {
            return refuse("redirect from an unknown integration".into());
        };
        let (method, keep_body) = match (status, from.method) {
            (301 | 302, "POST") | (303, _) if from.method != "HEAD" => ("GET", false),
            (301..=303, m) => (m, false),
            (307 | 308, m) => (m, true),
            _ => return refuse(format!("status {status} is not a redirect")),
        };
        let current = format!("{}{}", integration.origin(), integration.upstream_path(from.path));
        let Some(next) = Url::parse(&current).ok().and_then(|base| base.join(location).ok()) else {
            return refuse("the redirect Location is not a valid URL".into());
        };
        let scheme_matches =
            matches!((next.scheme(), integration.origin().scheme), ("https", Scheme::Https) | ("http", Scheme::Http));
        let same_origin = scheme_matches
            && next.host().map(|h| h.to_owned()).as_ref() == Some(&integration.origin().host)
            && next.port_or_known_default() == Some(integration.origin().port);
        if !same_origin || !next.username().is_empty() || next.password().is_some() {
            return refuse(format!(
                "redirect to another origin is not followed; credentials never leave {}",
                integration.origin()
            ));
        }
        let base_path = &integration.base.path;
        let Some(rest) = next.path().strip_prefix(base_path.as_str()).filter(|r| r.is_empty() || r.starts_with('/'))
        else {
            return refuse(format!("redirect outside {} is not followed", integration.base_url()));
        };
        let path = if rest.is_empty() { "/".to_owned() } else { rest.to_owned() };
        let query: Vec<(String, String)> = next.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let body = if keep_body { from.body } else { None };
        let request = OutboundRequest { method, path: &path, query: &query, body, ..*from };
        match self.decide(&request) {
            Decision::Allow(allow) => Redirect::Follow { allow, method: method.to_owned(), path, query, keep_body },
            Decision::Deny(d) => refuse(format!("the redirect target is not allowed by this permit ({})", d.code)),
        }
    }
}
