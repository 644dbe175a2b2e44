//! Grounding checks, run on every proposal whichever drafter made it, before
//! the owner sees it: the base URL is one the docs declare or mention, each
//! rule is a documented operation (when there is an API description),
//! secrets are among the intent's hints, write methods only when the goal
//! asks for a change, `**` only with a stated reason. A failed check blocks
//! the draft; anything merely unusual becomes a warning for the owner.

mod hosts;
mod paths;

use std::collections::BTreeSet;

use oauth3_policy::{IntegrationSpec, Method, PermitSpec, Rule, SPEC_VERSION, Template};
use serde_json::Value;
use url::Url;

use crate::error::{DraftError, GroundingFailure, Result, RuleRef};
use crate::goal::{self, Action, Goal};
use crate::model::{DocContent, DraftInput, FetchedDoc, Proposal};
use crate::openapi::ApiDoc;
use crate::text::clip;
use paths::Coverage;

/// Highest rate limit not flagged, in calls per hour.
pub const HIGH_RATE_PER_HOUR: u64 = 3600;

/// Checks `proposal` against its input; returns the warnings for the owner.
///
/// Every failed check is collected; any failure is
/// [`DraftError::NotGrounded`] listing them all.
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
    let asked = goal::without_addressed_sentences(&input.intent.goal);
    // Nor does a verb the goal negates ("don't delete anything").
    let (asked, negated) = goal::without_negated_actions(asked.as_deref().unwrap_or(&input.intent.goal));
    let goal = Goal::parse(&asked);
    let mut failures = Vec::new();
    let mut warnings = Vec::new();

    // Prompt injection: the drafter may have followed it; the owner should know.
    if let Some(quote) = goal::addressed_to_drafter(&input.intent.goal) {
        warnings.push(format!("the goal contains text addressed to the drafter: \"{quote}\""));
    }
    for doc in input.docs {
        if let Some(quote) = doc_texts(doc).iter().find_map(|t| goal::addressed_to_drafter(t)) {
            warnings.push(format!("the doc {} contains text addressed to the drafter: \"{quote}\"", doc.url));
        }
    }

    let base = Url::parse(&spec.base_url).ok().filter(|u| u.host_str().is_some());
    match &base {
        None => failures.push(GroundingFailure::BaseUrlNotAbsolute(spec.base_url.clone())),
        Some(base) => check_base(base, input.docs, &apis, &mut failures, &mut warnings),
    }
    // The path prefix as the policy reads it: as written, not as `Url`
    // resolves it.
    let base_path = raw_base_path(&spec.base_url);

    let server_paths: Vec<Vec<String>> = apis.iter().map(|api| paths::server_paths(api)).collect();
    // The operations the agent named: every rule must be one of them, and a
    // write it named counts as asked for unless the goal negates its verb.
    let named_ops: Vec<Vec<usize>> = apis
        .iter()
        .map(|api| input.intent.operations.iter().filter_map(|e| api.find_operation(e).ok()).collect())
        .collect();
    let hinted = !input.intent.operations.is_empty() && !apis.is_empty();
    let negated_actions: Vec<Action> = negated.iter().filter_map(|v| Action::of_verb(v)).collect();
    let ops = paths::documented_ops(&apis, &server_paths, &named_ops);
    let mut unrestricted_query = Vec::new();
    for rule in &spec.rules {
        let rule_ref = RuleRef { method: rule.method.clone(), path: rule.path.clone() };
        let name = rule_ref.to_string();
        let double_star = rule.path.split('/').any(|s| s == "**");
        if !apis.is_empty() {
            match paths::coverage(&rule.method, &base_path, &rule.path, &ops) {
                Coverage::Documented => {}
                Coverage::StarOverLiteral(op) => {
                    failures.push(GroundingFailure::StarOverLiteral { rule: rule_ref.clone(), operation: op })
                }
                Coverage::Undocumented => failures.push(GroundingFailure::Undocumented(rule_ref.clone())),
            }
        }
        if writes(rule).is_some() && !rule.confirm {
            let open = if apis.is_empty() {
                // Without an API description nothing says what a body holds.
                let body = !matches!(rule.body, None | Some(Value::Bool(false)));
                if body { vec!["the body (no API description says what it holds)".to_owned()] } else { vec![] }
            } else {
                open_parameters(rule, &base_path, &ops, goal.stated())
            };
            if !open.is_empty() {
                failures.push(GroundingFailure::ConfirmMissing { rule: rule_ref.clone(), open });
            }
        }
        let named = hinted && paths::named(&rule.method, &base_path, &rule.path, &ops);
        if hinted && !named {
            failures.push(GroundingFailure::NotAmongOperations(rule_ref.clone()));
        }
        let negated_here = Action::of_method(&rule.method).is_some_and(|a| negated_actions.contains(&a));
        if let Some(method) = writes(rule)
            && (!named || negated_here)
        {
            if method == Method::Delete && !goal.asks_for_delete() {
                failures.push(GroundingFailure::DeleteNotAsked(rule_ref.clone()));
            } else if !goal.asks_for_change() {
                failures.push(GroundingFailure::ChangeNotAsked(rule_ref.clone()));
            }
        }
        if double_star && rule.description.as_deref().is_none_or(|d| d.trim().is_empty()) {
            failures.push(GroundingFailure::DoubleStarWithoutReason(rule_ref));
        }
        rule_warnings(rule, &name, double_star, !apis.is_empty(), &mut warnings);
        if rule.query.is_none() {
            unrestricted_query.push(name);
        }
    }
    if !negated.is_empty() && spec.rules.iter().any(|r| writes(r).is_some()) {
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
        return Err(DraftError::NotGrounded { integration: spec.name.clone(), failures });
    }
    let mut seen = BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    Ok(warnings)
}

/// The parameters that name a recipient, destination, account, URL, email,
/// amount or file and that `rule` leaves open, over every documented
/// operation it reaches: path parameters under a `*` or `**`, query
/// parameters it allows without `values` (all of them without an
/// allow-list), documented body fields it neither refuses nor fixes.
fn open_parameters(
    rule: &Rule,
    base_path: &str,
    ops: &[paths::DocumentedOp<'_>],
    stated: &[crate::goal::Stated],
) -> Vec<String> {
    let sensitive = |p: &crate::openapi::ParamDoc| {
        crate::pin::Field {
            name: &p.name,
            parents: &[],
            description: p.description.as_deref(),
            format: p.format.as_deref(),
        }
        .is_sensitive()
    };
    let mut open: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !open.contains(&name) {
            open.push(name);
        }
    };
    for (op, open_path) in paths::operations_reached(&rule.method, base_path, &rule.path, ops) {
        for param in op.path_params.iter().filter(|p| open_path.contains(&p.name.as_str()) && sensitive(p)) {
            add(format!("{{{}}}", param.name));
        }
        for param in &op.query_params {
            if !sensitive(param) {
                continue;
            }
            let values = match &rule.query {
                None => param.values.clone(),
                Some(query) => match query.get(&param.name) {
                    None => continue,
                    Some(q) => q.values.clone(),
                },
            };
            match values {
                None => add(param.name.clone()),
                // Values the document lists, or the goal states; not others.
                Some(values) => {
                    let grounded = |v: &String| {
                        param.values.as_ref().is_some_and(|d| d.contains(v))
                            || crate::pin::stated_value(&Value::String(v.clone()), stated)
                    };
                    if !values.iter().all(grounded) {
                        add(format!("{} (pinned to a value the goal does not state)", param.name));
                    }
                }
            }
        }
        for field in crate::pin::open_body(op.body.as_ref(), rule.body.as_ref(), stated) {
            add(field);
        }
    }
    open
}

/// [`open_parameters`] of `rule` under `base_url`, for a drafter holding
/// itself to the grounding rule before it proposes.
pub(crate) fn open_parameters_of(
    rule: &Rule,
    base_url: &str,
    api: &ApiDoc,
    stated: &[crate::goal::Stated],
) -> Vec<String> {
    let server_paths = vec![paths::server_paths(api)];
    let ops = paths::documented_ops(&[api], &server_paths, &[]);
    open_parameters(rule, &raw_base_path(base_url), &ops, stated)
}

/// Check 1: the base URL's host is declared by an API description's servers
/// or mentioned in the docs; warnings when it is not a doc URL's host or its
/// scheme or port is not the one declared.
fn check_base(
    base: &Url,
    docs: &[FetchedDoc],
    apis: &[&ApiDoc],
    failures: &mut Vec<GroundingFailure>,
    warnings: &mut Vec<String>,
) {
    let host = base.host_str().unwrap_or_default().to_ascii_lowercase();
    let servers: Vec<Url> = apis.iter().flat_map(|a| &a.servers).filter_map(|s| Url::parse(&s.url).ok()).collect();
    let same_host: Vec<&Url> =
        servers.iter().filter(|s| s.host_str().is_some_and(|h| h.eq_ignore_ascii_case(&host))).collect();
    let mentioned = || docs.iter().any(|d| doc_texts(d).iter().any(|t| hosts::mentions_host(t, &host)));
    if same_host.is_empty() && !mentioned() {
        failures.push(GroundingFailure::HostNotInDocs { host: host.clone(), has_api: !apis.is_empty() });
    } else if same_host.is_empty()
        && let Some(port) = base.port()
    {
        // A host the docs mention, on a port they never give: another
        // service on the same machine.
        let with_port = format!("{host}:{port}");
        if !docs.iter().any(|d| doc_texts(d).iter().any(|t| hosts::mentions_host(t, &with_port))) {
            failures.push(GroundingFailure::PortNotInDocs { host: host.clone(), port });
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
    if writes(rule).is_some() {
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

/// Check 3: every secret named in `secrets` or an inject template (headers,
/// query, HTTP Basic) is among the hints; warnings for secrets in the query
/// string, for injected headers that do not look like credentials, and for
/// Basic credentials that name no secret.
fn check_secrets(
    spec: &IntegrationSpec,
    hints: &[String],
    failures: &mut Vec<GroundingFailure>,
    warnings: &mut Vec<String>,
) {
    let mut referenced: BTreeSet<&str> = spec.secrets.iter().map(String::as_str).collect();
    let basic = spec.inject.basic.iter().flat_map(|b| [&b.username, &b.password]);
    let templates = spec.inject.headers.values().chain(spec.inject.query.values()).chain(basic);
    let parsed: Vec<Template> = templates.filter_map(|t| Template::parse(t).ok()).collect();
    referenced.extend(parsed.iter().flat_map(Template::secrets));
    for name in referenced {
        if !hints.iter().any(|h| h == name) {
            failures.push(GroundingFailure::SecretNotHinted { secret: name.to_owned(), hints: hints.to_vec() });
        }
    }
    for (param, value) in &spec.inject.query {
        if oauth3_policy::is_method_override(param) {
            failures.push(GroundingFailure::InjectedMethodOverride(param.clone()));
        } else if oauth3_policy::is_routing_query_name(param) {
            failures.push(GroundingFailure::InjectedRoute(param.clone()));
        }
        if fixed_value(value) {
            warnings.push(format!(
                "the query parameter `{param}` is injected with the fixed value `{}` on every call, not a secret",
                clip(value, FIXED_VALUE_CHARS)
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
                clip(value, FIXED_VALUE_CHARS)
            ));
        }
    }
    if let Some(basic) = &spec.inject.basic
        && fixed_value(&basic.username)
        && fixed_value(&basic.password)
    {
        // Not quoted: a password written into the spec.
        warnings.push("the HTTP Basic credentials are fixed values written in the spec, not a secret".into());
    }
    for header in spec.inject.headers.keys() {
        if !credential_header(header) {
            warnings.push(format!("the header `{header}` is injected but does not look like a credential header"));
        }
    }
}

/// The rule's method when it changes data upstream. Grounding runs before
/// the spec is compiled, so a method the policy does not know is not one.
fn writes(rule: &Rule) -> Option<Method> {
    rule.method.parse::<Method>().ok().filter(|m| m.is_write())
}

/// True when `method` changes data upstream ([`Method::is_write`]); a
/// method the policy does not know is not one.
pub(crate) fn is_write(method: &str) -> bool {
    method.parse::<Method>().is_ok_and(Method::is_write)
}

/// An inject template that names no secret (a value fixed in the spec).
fn fixed_value(template: &str) -> bool {
    Template::parse(template).is_ok_and(|t| t.secrets().next().is_none())
}

/// Longest fixed value quoted in a warning, `…` included.
const FIXED_VALUE_CHARS: usize = 61;

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
