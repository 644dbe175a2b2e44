//! The legacy `scoped-fetch` format agents already speak, normalised into the
//! current model: `scope` globs × `methods` become rules, `auth` becomes an
//! injected header, `body_schema` key lists become a JSON Schema on every
//! method that carries a body (without `body_schema` those methods take any
//! body; GET, HEAD and OPTIONS take none).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::method::Method;
use crate::spec::{Inject, IntegrationSpec, Limits, RateLimit, Rule};
use crate::template::Template;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LegacySpec {
    /// Checked by the caller's dispatch (must be `scoped-fetch`).
    #[serde(rename = "type", default)]
    _kind: Option<String>,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    doc_url: Option<String>,
    base_url: String,
    #[serde(default)]
    auth: Option<LegacyAuth>,
    scope: Vec<String>,
    /// Defaults to `["GET"]`: the narrowest reading of an omitted list.
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    body_schema: Option<LegacyBody>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyAuth {
    header: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyBody {
    #[serde(default)]
    allow_keys: Option<Vec<String>>,
    #[serde(default)]
    deny_keys: Vec<String>,
}

pub(crate) fn to_current(legacy: LegacySpec) -> IntegrationSpec {
    let methods = if legacy.methods.is_empty() { vec!["GET".to_owned()] } else { legacy.methods };
    // The legacy format has no per-method bodies: its constraints (or, with
    // no `body_schema`, "any body") hold for every method that carries one.
    let constraint = legacy.body_schema.map(body_schema);
    let mut rules = Vec::new();
    let description = legacy.description;
    for glob in &legacy.scope {
        // Legacy globs may omit the leading '/' and carry a trailing one.
        let trimmed = glob.trim().trim_end_matches('/');
        let path = format!("/{}", trimmed.trim_start_matches('/'));
        for method in &methods {
            let method = method.trim().to_ascii_uppercase();
            let rule = |body| Rule {
                method: method.clone(),
                path: path.clone(),
                query: None,
                body,
                description: description.clone(),
                confirm: false,
            };
            // An unknown method is kept as written, for the compiler to refuse.
            let parsed = method.parse::<Method>().ok();
            if !parsed.is_some_and(Method::may_carry_body) {
                rules.push(rule(None));
                continue;
            }
            match &constraint {
                None => rules.push(rule(Some(Value::Bool(true)))),
                // A schema requires a body; DELETE is also allowed without one.
                Some(schema) if parsed == Some(Method::Delete) => {
                    rules.push(rule(None));
                    rules.push(rule(Some(schema.clone())));
                }
                Some(schema) => rules.push(rule(Some(schema.clone()))),
            }
        }
    }
    let mut inject = Inject::default();
    let mut secrets = Vec::new();
    if let Some(auth) = legacy.auth {
        if let Ok(template) = Template::parse(&auth.value) {
            secrets.extend(template.secrets().map(str::to_owned));
        }
        inject.headers.insert(auth.header, auth.value);
    }
    IntegrationSpec {
        name: legacy.name,
        base_url: legacy.base_url,
        doc_urls: legacy.doc_url.into_iter().collect(),
        rules,
        inject,
        secrets,
        rate_limit: legacy.rate_limit,
        limits: Limits::default(),
    }
}

/// `allow_keys` → `properties` with `additionalProperties: false`;
/// `deny_keys` → properties whose schema is `false` (forbidden).
fn body_schema(body: LegacyBody) -> Value {
    let mut properties = Map::new();
    let restricted = body.allow_keys.is_some();
    for key in body.allow_keys.unwrap_or_default() {
        properties.insert(key, json!({}));
    }
    for key in body.deny_keys {
        properties.insert(key, Value::Bool(false));
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if restricted {
        schema["additionalProperties"] = Value::Bool(false);
    }
    schema
}
