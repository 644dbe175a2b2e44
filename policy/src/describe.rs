//! `describe()`: the permit in plain language for the owner who approves it,
//! one line per rule, with risky things flagged.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::compile::{BodyRule, CompiledIntegration, CompiledPermit, CompiledRule};
use crate::method::Method;
use crate::origin::Scheme;
use crate::spec::{RateLimit, Rule};
use crate::template::Template;

/// A permit described for its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Summary {
    /// One entry per integration, in spec order.
    pub integrations: Vec<IntegrationSummary>,
}

/// One integration described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct IntegrationSummary {
    /// Integration name.
    pub name: String,
    /// How the agent calls it, e.g. `github(method, path, { body, query, headers })`.
    pub signature: String,
    /// One line per rule.
    pub rules: Vec<RuleSummary>,
    /// Risks that concern the whole integration.
    pub risks: Vec<Risk>,
}

/// One rule described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RuleSummary {
    /// E.g. `POST https://api.github.com/repos/o/r/issues — body: title (string, required); ...`.
    pub text: String,
    /// Risks of this rule.
    pub risks: Vec<Risk>,
}

/// Something an owner should look at twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// The rule changes data upstream (POST, PUT, PATCH, DELETE).
    WriteMethod,
    /// The path uses `**`, which matches any sub-path.
    DoubleStar,
    /// The rule lets any body through unchecked (`true`, or `{}`: any JSON).
    UncheckedBody,
    /// Any query parameters pass (the rule has no `query` allow-list).
    AnyQuery,
    /// Calls are not rate limited.
    NoRateLimit,
    /// The rate limit allows more than one call a second sustained, or
    /// bursts of more than 100.
    HighRateLimit,
    /// Calls go over plain http (operator allow-listed).
    InsecureUpstream,
}

impl Risk {
    /// Plain-language warning.
    pub fn message(self) -> &'static str {
        match self {
            Risk::WriteMethod => "changes data",
            Risk::DoubleStar => "'**' matches any sub-path",
            Risk::UncheckedBody => "the body is not checked",
            Risk::AnyQuery => "any query parameters",
            Risk::NoRateLimit => "no rate limit",
            Risk::HighRateLimit => "high rate limit",
            Risk::InsecureUpstream => "plain http, not https",
        }
    }
}

impl CompiledPermit {
    /// Describes the permit for its owner.
    pub fn describe(&self) -> Summary {
        let rules = self.spec.integrations.iter().map(|spec| &spec.rules);
        let integrations =
            self.integrations.iter().zip(rules).map(|(i, specs)| describe_integration(i, specs)).collect();
        Summary { integrations }
    }
}

fn describe_integration(integration: &CompiledIntegration, specs: &[Rule]) -> IntegrationSummary {
    let shared = shared_clauses(integration);
    let rules = integration
        .rules
        .iter()
        .zip(specs)
        .map(|(rule, spec)| {
            let mut clauses = Vec::new();
            clauses.extend(body_clause(rule.method, spec.body.as_ref()));
            clauses.extend(nested_pins_clause(spec.body.as_ref()));
            clauses.extend(query_clause(rule));
            if rule.confirm {
                clauses.push("each call waits for your confirmation of the exact request".into());
            }
            clauses.extend(shared.iter().cloned());
            let mut text = format!("{} {}{}", rule.method, integration.base_url(), rule.glob);
            if !clauses.is_empty() {
                text.push_str(" — ");
                text.push_str(&clauses.join("; "));
            }
            if let Some(why) = &spec.description {
                text.push_str(&format!(" (why: {why})"));
            }
            let mut risks = Vec::new();
            if rule.method.is_write() {
                risks.push(Risk::WriteMethod);
            }
            if rule.glob.has_double_star() {
                risks.push(Risk::DoubleStar);
            }
            if matches!(rule.body, BodyRule::Any)
                || spec.body.as_ref().and_then(Value::as_object).is_some_and(|o| o.is_empty())
            {
                risks.push(Risk::UncheckedBody);
            }
            if rule.query.is_none() {
                risks.push(Risk::AnyQuery);
            }
            RuleSummary { text, risks }
        })
        .collect();
    let mut risks = Vec::new();
    match integration.rate_limit {
        None => risks.push(Risk::NoRateLimit),
        Some(limit) if is_high(limit) => risks.push(Risk::HighRateLimit),
        Some(_) => {}
    }
    if integration.origin().scheme == Scheme::Http {
        risks.push(Risk::InsecureUpstream);
    }
    IntegrationSummary { name: integration.name.to_string(), signature: integration.signature(), rules, risks }
}

/// Clauses that hold for every rule of an integration: rate limit, injection.
fn shared_clauses(integration: &CompiledIntegration) -> Vec<String> {
    let mut clauses = vec![match integration.rate_limit {
        Some(limit) => rate_text(limit),
        None => "no rate limit".to_owned(),
    }];
    let injected = integration
        .inject_headers
        .iter()
        .map(|(n, t)| (n, t, "header"))
        .chain(integration.inject_query.iter().map(|(n, t)| (n, t, "query parameter")));
    for (name, template, kind) in injected {
        let secrets: Vec<&str> = template.secrets().collect();
        clauses.push(if secrets.is_empty() {
            format!("sets the {name} {kind} to \"{template}\"")
        } else {
            format!("sends {} as the {name} {kind}", secrets.join(" and "))
        });
    }
    if let Some((username, password)) = integration.inject_basic() {
        // Like a header: the secrets by name, or a fixed value as written.
        let shown = |template: &Template| {
            let secrets: Vec<&str> = template.secrets().collect();
            if secrets.is_empty() { format!("\"{template}\"") } else { secrets.join(" and ") }
        };
        let mut clause = format!("sends {} as the HTTP Basic username", shown(username));
        if !password.to_string().is_empty() {
            clause.push_str(&format!(" and {} as the password", shown(password)));
        }
        clauses.push(clause);
    }
    clauses
}

/// More than one call a second sustained, or bursts of more than 100.
fn is_high(limit: RateLimit) -> bool {
    limit.max_calls > 100 || limit.max_calls > limit.window_seconds
}

fn rate_text(limit: RateLimit) -> String {
    let calls = if limit.max_calls == 1 { "1 call".to_owned() } else { format!("{} calls", limit.max_calls) };
    let per = match limit.window_seconds {
        1 => "second".to_owned(),
        60 => "minute".to_owned(),
        3600 => "hour".to_owned(),
        86_400 => "day".to_owned(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    };
    // GCRA semantics (see `rate`): a sustained rate with bursts, not a hard
    // per-window cap, so say both.
    let every = u64::from(limit.window_seconds) * 1000 / u64::from(limit.max_calls.max(1));
    let every = if every % 1000 == 0 { format!("{} s", every / 1000) } else { format!("{every} ms") };
    if limit.max_calls == 1 {
        format!("at most {calls} per {per}")
    } else {
        format!("at most {calls} per {per} (bursts of up to {}, then 1 every {every})", limit.max_calls)
    }
}

fn query_clause(rule: &CompiledRule) -> Option<String> {
    let query = rule.query.as_ref()?;
    if query.is_empty() {
        return Some("no query parameters".into());
    }
    let params: Vec<String> = query
        .iter()
        .map(|(name, values)| match values {
            Some(v) => format!("{name} ({})", v.join(" or ")),
            None => name.clone(),
        })
        .collect();
    Some(format!("query: {}", params.join(", ")))
}

/// The values pinned below the body's top level
/// (`Data.Initiation.CreditorAccount.Identification = "DE89…"`), which the
/// body clause does not show.
fn nested_pins_clause(schema: Option<&Value>) -> Option<String> {
    fn walk(schema: &Value, at: &str, depth: usize, out: &mut Vec<String>) {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
        for (name, prop) in properties {
            let path = if at.is_empty() { name.clone() } else { format!("{at}.{name}") };
            let pinned = prop.get("const").map(Value::to_string).or_else(|| {
                prop.get("enum")
                    .and_then(Value::as_array)
                    .map(|v| v.iter().map(Value::to_string).collect::<Vec<_>>().join(" or "))
            });
            match pinned {
                Some(values) if depth > 0 => out.push(format!("{path} = {values}")),
                _ => {}
            }
            if depth < 8 {
                walk(prop, &path, depth + 1, out);
                if let Some(items) = prop.get("items") {
                    walk(items, &path, depth + 1, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(schema?, "", 0, &mut out);
    (!out.is_empty()).then(|| format!("pinned: {}", out.join(", ")))
}

fn body_clause(method: Method, schema: Option<&Value>) -> Option<String> {
    let Some(schema) = schema.filter(|s| **s != Value::Bool(false)) else {
        // Worth saying only where a body would be expected.
        return method.may_carry_body().then(|| "no body".into());
    };
    let Some(object) = schema.as_object() else {
        return Some("any body, not checked".into());
    };
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        return Some(if object.is_empty() { "body: any JSON".into() } else { "body: JSON matching a schema".into() });
    };
    let required: Vec<&str> =
        object.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let mut names: Vec<&String> = properties.keys().collect();
    // Required fields first, then by name: stable whatever the key order.
    names.sort_by_key(|n| (!required.contains(&n.as_str()), n.as_str()));
    let mut fields: Vec<String> = names
        .into_iter()
        .map(|name| {
            let prop = &properties[name];
            if prop == &Value::Bool(false) {
                return format!("{name} (forbidden)");
            }
            let mut notes = Vec::new();
            match prop.get("type") {
                Some(Value::String(t)) => notes.push(t.clone()),
                Some(Value::Array(ts)) => {
                    notes.push(ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "))
                }
                _ => {}
            }
            if required.contains(&name.as_str()) {
                notes.push("required".into());
            }
            if let Some(values) = prop.get("enum").and_then(Value::as_array) {
                notes.push(format!("one of {}", values.iter().map(Value::to_string).collect::<Vec<_>>().join(", ")));
            }
            if let Some(value) = prop.get("const") {
                notes.push(format!("exactly {value}"));
            }
            // A list pinned item by item.
            if let Some(items) = prop.get("items") {
                if let Some(value) = items.get("const") {
                    notes.push(format!("items exactly {value}"));
                } else if let Some(values) = items.get("enum").and_then(Value::as_array) {
                    let shown: Vec<String> = values.iter().map(Value::to_string).collect();
                    notes.push(format!("items one of {}", shown.join(", ")));
                }
            }
            if notes.is_empty() { name.clone() } else { format!("{name} ({})", notes.join(", ")) }
        })
        .collect();
    if object.get("additionalProperties") != Some(&Value::Bool(false)) {
        fields.push("other fields allowed".into());
    }
    Some(format!("body: {}", fields.join(", ")))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for integration in &self.integrations {
            write!(f, "{}", integration.signature)?;
            for risk in &integration.risks {
                write!(f, "  [! {}]", risk.message())?;
            }
            writeln!(f)?;
            for rule in &integration.rules {
                write!(f, "  {}", rule.text)?;
                for risk in &rule.risks {
                    write!(f, "  [! {}]", risk.message())?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}
