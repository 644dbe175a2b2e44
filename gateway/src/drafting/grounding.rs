//! Grounding checks, run on every proposal whichever drafter made it, before
//! the owner sees it: the base URL is one the docs declare or mention, each
//! rule is a documented operation (when there is an API description),
//! secrets are among the intent's hints, write methods only when the goal
//! asks for a change, `**` only with a stated reason. A failed check blocks
//! the draft; anything merely unusual becomes a warning for the owner.

mod paths;
mod text;

pub(super) use text::without_negated_actions;

use std::collections::BTreeSet;

use oauth3_policy::{IntegrationSpec, PermitSpec, Rule, SPEC_VERSION, Template, is_write_method};
use serde_json::Value;
use url::Url;

use super::openapi::ApiDoc;
use super::{DocContent, DraftInput, FetchedDoc, Goal, Proposal};
use crate::error::{Error, Result};
use paths::Coverage;

/// Highest rate limit not flagged, in calls per hour.
pub const HIGH_RATE_PER_HOUR: u64 = 3600;

/// Checks `proposal` against its input; returns the warnings for the owner.
///
/// Every failed check is collected; any failure is
/// `422 draft_not_grounded` listing them all.
pub fn check(input: DraftInput<'_>, proposal: &Proposal) -> Result<Vec<String>> {
    // Judge the spec as it will be compiled and enforced (`delete` is
    // `DELETE`, `https://API.x.com\\v1` is `https://api.x.com`), not as the
    // drafter spelled it.
    let normalized = normalize(&proposal.integration);
    let spec = &normalized;
    let apis: Vec<&ApiDoc> = input
        .docs
        .iter()
        .filter_map(|d| match &d.content {
            DocContent::Api(api) => Some(&**api),
            DocContent::Text(_) => None,
        })
        .collect();
    // Text addressed to the drafter does not count as asking for a change.
    let asked = text::without_addressed_sentences(&input.intent.goal);
    // Nor does a verb the goal negates ("don't delete anything").
    let (asked, negated) = text::without_negated_actions(asked.as_deref().unwrap_or(&input.intent.goal));
    let goal = Goal::parse(&asked);
    let mut failures = Vec::new();
    let mut warnings = Vec::new();

    // Prompt injection: the drafter may have followed it; the owner should know.
    if let Some(quote) = text::addressed_to_drafter(&input.intent.goal) {
        warnings.push(format!("the goal contains text addressed to the drafter: \"{quote}\""));
    }
    for doc in input.docs {
        if let Some(quote) = doc_texts(doc).iter().find_map(|t| text::addressed_to_drafter(t)) {
            warnings.push(format!("the doc {} contains text addressed to the drafter: \"{quote}\"", doc.url));
        }
    }

    let base = Url::parse(&spec.base_url).ok().filter(|u| u.host_str().is_some());
    match &base {
        None => failures.push(format!("base_url `{}` is not an absolute URL with a host", spec.base_url)),
        Some(base) => check_base(base, input.docs, &apis, &mut failures, &mut warnings),
    }
    // The path prefix as the policy reads it: as written, not as `Url`
    // resolves it.
    let base_path = raw_base_path(&spec.base_url);

    let server_paths: Vec<Vec<String>> = apis.iter().map(|api| paths::server_paths(api)).collect();
    let ops = paths::documented_ops(&apis, &server_paths);
    let mut unrestricted_query = Vec::new();
    for rule in &spec.rules {
        let name = format!("`{} {}`", rule.method, rule.path);
        let double_star = rule.path.split('/').any(|s| s == "**");
        if !apis.is_empty() {
            match paths::coverage(&rule.method, &base_path, &rule.path, &ops) {
                Coverage::Documented => {}
                Coverage::StarOverLiteral(op) => failures.push(format!(
                    "{name} is not a documented operation: its `*` stands where `{op}` has a literal \
                     segment, so it would also allow undocumented paths"
                )),
                Coverage::Undocumented => {
                    failures.push(format!("{name} is not a documented operation of the API description"))
                }
            }
        }
        if is_write_method(&rule.method) {
            if rule.method == "DELETE" && !goal.asks_for_delete() {
                failures.push(format!("{name} deletes data upstream, but the goal does not ask to delete anything"));
            } else if !goal.asks_for_change() {
                failures.push(format!("{name} changes data upstream, but the goal does not ask for a change"));
            }
        }
        if double_star && rule.description.as_deref().is_none_or(|d| d.trim().is_empty()) {
            failures.push(format!("{name} uses `**` without a stated reason (give the rule a description)"));
        }
        rule_warnings(rule, &name, double_star, !apis.is_empty(), &mut warnings);
        if rule.query.is_none() {
            unrestricted_query.push(name);
        }
    }
    if !negated.is_empty() && spec.rules.iter().any(|r| is_write_method(&r.method)) {
        let mut verbs = negated.clone();
        verbs.dedup();
        warnings.push(format!(
            "the goal says not to {}; only the verbs it does not negate were read as asking for a change",
            verbs.join(", ")
        ));
    }
    if apis.is_empty() && !spec.rules.is_empty() {
        warnings.push(
            "no API description was read: the rules' paths were not checked against documented operations".into(),
        );
    }
    if !unrestricted_query.is_empty() {
        warnings.push(format!("any query parameters are allowed on {}", unrestricted_query.join(", ")));
    }

    check_secrets(spec, &input.intent.secret_hints, &mut failures, &mut warnings);
    warnings.extend(rate_warning(spec));

    if !failures.is_empty() {
        let listed: Vec<String> = failures.iter().enumerate().map(|(i, f)| format!("{}) {f}", i + 1)).collect();
        return Err(Error::unprocessable(
            "draft_not_grounded",
            format!("the draft for `{}` failed its grounding checks: {}", spec.name, listed.join("; ")),
        ));
    }
    let mut seen = BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    Ok(warnings)
}

/// Check 1: the base URL's host is declared by an API description's servers
/// or mentioned in the docs; warnings when it is not a doc URL's host or its
/// scheme or port is not the one declared.
fn check_base(
    base: &Url,
    docs: &[FetchedDoc],
    apis: &[&ApiDoc],
    failures: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let host = base.host_str().unwrap_or_default().to_ascii_lowercase();
    let servers: Vec<Url> = apis.iter().flat_map(|a| &a.servers).filter_map(|s| Url::parse(&s.url).ok()).collect();
    let same_host: Vec<&Url> =
        servers.iter().filter(|s| s.host_str().is_some_and(|h| h.eq_ignore_ascii_case(&host))).collect();
    let mentioned = || docs.iter().any(|d| doc_texts(d).iter().any(|t| text::mentions_host(t, &host)));
    if same_host.is_empty() && !mentioned() {
        let unseen = if apis.is_empty() {
            "is not mentioned in the docs"
        } else {
            "is neither declared by the API description's servers nor mentioned in the docs"
        };
        failures.push(format!("base_url host `{host}` {unseen}; a host named only in the goal does not count"));
    } else if same_host.is_empty()
        && let Some(port) = base.port()
    {
        // A host the docs mention, on a port they never give: another
        // service on the same machine.
        let with_port = format!("{host}:{port}");
        if !docs.iter().any(|d| doc_texts(d).iter().any(|t| text::mentions_host(t, &with_port))) {
            failures.push(format!("base_url port {port} is not given by the docs for `{host}`"));
        }
    }
    let doc_hosts: BTreeSet<String> =
        docs.iter().filter_map(|d| Url::parse(&d.url).ok()?.host_str().map(str::to_ascii_lowercase)).collect();
    if !doc_hosts.is_empty() && !doc_hosts.contains(&host) {
        let listed: Vec<&str> = doc_hosts.iter().map(String::as_str).collect();
        warnings.push(format!("base_url host `{host}` is not the host of any doc URL ({})", listed.join(", ")));
    }
    let origin = |u: &Url| format!("{}://{}:{}", u.scheme(), host, u.port_or_known_default().unwrap_or(0));
    if !same_host.is_empty() && !same_host.iter().any(|s| origin(s) == origin(base)) {
        let declared: BTreeSet<String> = same_host.iter().map(|s| origin(s)).collect();
        warnings.push(format!(
            "base_url uses {} but the API description declares {}",
            origin(base),
            declared.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
}

/// Per-rule warnings, in a fixed order.
fn rule_warnings(rule: &Rule, name: &str, double_star: bool, has_api: bool, warnings: &mut Vec<String>) {
    if is_write_method(&rule.method) {
        warnings.push(format!("{name} changes data upstream"));
    }
    match &rule.body {
        Some(Value::Bool(true)) => warnings.push(format!("{name} takes any body: it is not checked")),
        Some(Value::Object(schema)) if schema.is_empty() => {
            warnings.push(format!("{name} takes any JSON body: it is not checked"))
        }
        _ => {}
    }
    if double_star {
        warnings.push(if has_api {
            format!("{name} also allows paths the docs do not list")
        } else {
            format!("{name} allows any path where `**` stands")
        });
    }
}

/// Check 3: every secret named in `secrets` or an inject template is among
/// the hints; warnings for secrets in the query string and for injected
/// headers that do not look like credentials.
fn check_secrets(spec: &IntegrationSpec, hints: &[String], failures: &mut Vec<String>, warnings: &mut Vec<String>) {
    let mut referenced: BTreeSet<&str> = spec.secrets.iter().map(String::as_str).collect();
    let templates = spec.inject.headers.values().chain(spec.inject.query.values());
    let parsed: Vec<Template> = templates.filter_map(|t| Template::parse(t).ok()).collect();
    referenced.extend(parsed.iter().flat_map(Template::secrets));
    let hinted = if hints.is_empty() { "none were given".to_owned() } else { hints.join(", ") };
    for name in referenced {
        if !hints.iter().any(|h| h == name) {
            failures.push(format!("secret `{name}` is not among the intent's secret_hints ({hinted})"));
        }
    }
    for (param, value) in &spec.inject.query {
        if oauth3_policy::is_method_override(param) {
            failures.push(format!(
                "the injected query parameter `{param}` overrides the HTTP method upstream; the rules' methods \
                 are what the owner approves"
            ));
        } else if oauth3_policy::is_routing_query_name(param) {
            failures.push(format!(
                "the injected query parameter `{param}` chooses the route upstream; the rules' paths are what \
                 the owner approves"
            ));
        }
        if fixed_value(value) {
            warnings.push(format!(
                "the query parameter `{param}` is injected with the fixed value `{}` on every call, not a secret",
                clip(value)
            ));
        } else {
            warnings.push(format!(
                "a value is injected as the query parameter `{param}`: it travels in URLs and upstream logs"
            ));
        }
    }
    for (header, value) in &spec.inject.headers {
        // A credential written into the spec itself (a non-credential
        // header is flagged below either way).
        if credential_header(header) && fixed_value(value) {
            warnings.push(format!(
                "the header `{header}` is injected with the fixed value `{}` on every call, not a secret",
                clip(value)
            ));
        }
    }
    for header in spec.inject.headers.keys() {
        if !credential_header(header) {
            warnings.push(format!("the header `{header}` is injected but does not look like a credential header"));
        }
    }
}

/// An inject template that names no secret (a value fixed in the spec).
fn fixed_value(template: &str) -> bool {
    Template::parse(template).is_ok_and(|t| t.secrets().next().is_none())
}

/// At most 60 characters, for a warning.
fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(60).collect();
    if text.chars().nth(60).is_some() {
        out.push('…');
    }
    out
}

/// The spec as the policy normalises it before compiling and hashing.
pub(super) fn normalize(spec: &IntegrationSpec) -> IntegrationSpec {
    let permit = PermitSpec { version: SPEC_VERSION, integrations: vec![spec.clone()] }.normalized();
    permit.integrations.into_iter().next().unwrap_or_else(|| spec.clone())
}

/// The base URL's path prefix as the policy takes it: as written after the
/// authority, without a trailing `/`.
fn raw_base_path(base_url: &str) -> String {
    let text = base_url.trim();
    let after_scheme = &text[text.find("://").map_or(0, |i| i + 3)..];
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    path.strip_suffix('/').unwrap_or(path).to_owned()
}

/// `Authorization` and the usual API-key and token headers.
fn credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "authorization" || ["auth", "token", "key", "secret", "signature"].iter().any(|w| name.contains(w))
}

/// Warning for a missing or high rate limit.
fn rate_warning(spec: &IntegrationSpec) -> Option<String> {
    match spec.rate_limit {
        None => Some("no rate limit: the agent may call as often as the upstream allows".into()),
        Some(rate) if u64::from(rate.max_calls) * 3600 > HIGH_RATE_PER_HOUR * u64::from(rate.window_seconds) => {
            Some(format!(
                "the rate limit of {} calls per {} s is high (over {HIGH_RATE_PER_HOUR} calls per hour)",
                rate.max_calls, rate.window_seconds
            ))
        }
        Some(_) => None,
    }
}

/// The prose of a doc: a text doc's text, or an API description's title and
/// operation summaries and descriptions.
fn doc_texts(doc: &FetchedDoc) -> Vec<&str> {
    match &doc.content {
        DocContent::Text(text) => vec![text],
        DocContent::Api(api) => api
            .title
            .iter()
            .chain(api.operations.iter().flat_map(|op| op.summary.iter().chain(&op.description)))
            .map(String::as_str)
            .collect(),
    }
}
