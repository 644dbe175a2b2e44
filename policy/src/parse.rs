//! Reading specs: the current format, the legacy format, and normalisation
//! into the one form that is hashed, shown and compiled.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::spec::{IntegrationSpec, PermitSpec, SPEC_VERSION};
use crate::{PolicyError, legacy};

impl PermitSpec {
    /// Reads a spec from JSON text: a permit (`{"version": 1, "integrations": [...]}`),
    /// one integration, or an array of integrations, each in the current or
    /// legacy (`"type": "scoped-fetch"`) format. The result is normalised.
    pub fn from_json(text: &str) -> Result<PermitSpec, PolicyError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| PolicyError::Parse { path: ".".into(), message: format!("not valid JSON: {e}") })?;
        PermitSpec::from_value(value)
    }

    /// Like [`PermitSpec::from_json`], from a parsed value.
    pub fn from_value(value: Value) -> Result<PermitSpec, PolicyError> {
        match value {
            Value::Object(mut map) if map.contains_key("integrations") || map.contains_key("version") => {
                for key in map.keys() {
                    if key != "version" && key != "integrations" {
                        return Err(parse_error(key, "unknown field; a permit has `version` and `integrations`"));
                    }
                }
                let version = map.remove("version").unwrap_or(Value::Null);
                if version.as_u64() != Some(SPEC_VERSION.into()) {
                    return Err(parse_error("version", format!("must be {SPEC_VERSION} (got {version})")));
                }
                match map.remove("integrations") {
                    Some(Value::Array(items)) => PermitSpec::from_integrations(items, "integrations"),
                    _ => Err(parse_error("integrations", "must be an array of integration specs")),
                }
            }
            Value::Array(items) => PermitSpec::from_integrations(items, ""),
            single @ Value::Object(_) => PermitSpec::from_integrations(vec![single], "<single>"),
            _ => Err(parse_error(".", "expected a permit, an integration spec or an array of them")),
        }
    }

    /// Builds a permit from integration specs given one by one (for example
    /// the `capabilities` an agent proposes), each current or legacy.
    pub fn from_capabilities(items: Vec<Value>) -> Result<PermitSpec, PolicyError> {
        PermitSpec::from_integrations(items, "capabilities")
    }

    fn from_integrations(items: Vec<Value>, field: &str) -> Result<PermitSpec, PolicyError> {
        let integrations = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let at = if field == "<single>" { String::new() } else { format!("{field}[{i}]") };
                IntegrationSpec::parse_at(item, &at)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PermitSpec { version: SPEC_VERSION, integrations })
    }

    /// The normal form: what is hashed, described and compiled. Idempotent.
    pub fn normalized(&self) -> PermitSpec {
        let mut spec = self.clone();
        spec.integrations.iter_mut().for_each(IntegrationSpec::normalize);
        spec
    }
}

impl IntegrationSpec {
    /// Reads one integration spec in the current or legacy format, normalised.
    pub fn from_value(value: Value) -> Result<IntegrationSpec, PolicyError> {
        IntegrationSpec::parse_at(value, "")
    }

    fn parse_at(value: Value, at: &str) -> Result<IntegrationSpec, PolicyError> {
        let is_legacy = value.get("type").is_some() || value.get("scope").is_some();
        if let Some(kind) = value.get("type").filter(|k| k.as_str() != Some("scoped-fetch")) {
            let path = if at.is_empty() { "type".to_owned() } else { format!("{at}.type") };
            return Err(parse_error(&path, format!("must be \"scoped-fetch\" (got {kind})")));
        }
        let mut spec = if is_legacy {
            legacy::to_current(typed::<legacy::LegacySpec>(value, at)?)
        } else {
            typed::<IntegrationSpec>(value, at)?
        };
        spec.normalize();
        Ok(spec)
    }

    /// Cosmetic normalisation only: nothing here widens what is allowed.
    fn normalize(&mut self) {
        self.name = self.name.trim().to_owned();
        if let Some(base) = normalize_base_url(&self.base_url) {
            self.base_url = base;
        }
        for rule in &mut self.rules {
            rule.method = rule.method.trim().to_ascii_uppercase();
            if !rule.path.starts_with('/') {
                rule.path.insert(0, '/');
            }
            // `false` and no body mean the same: none.
            if rule.body == Some(Value::Bool(false)) {
                rule.body = None;
            }
        }
        self.secrets.sort();
        self.secrets.dedup();
    }
}

/// Lower-cases scheme and host, drops a default port and a trailing `/`.
/// Leaves anything odd alone for validation to report.
fn normalize_base_url(text: &str) -> Option<String> {
    let url = url::Url::parse(text.trim()).ok()?;
    let (scheme_end, rest) = text.trim().split_once("://")?;
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || path.contains(['?', '#']) {
        return None;
    }
    let mut out = format!("{}://{}", scheme_end.to_ascii_lowercase(), url.host_str()?);
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.ends_with('/') {
        return None; // `//`: left as written, for validation to refuse
    }
    out.push_str(path);
    Some(out)
}

fn typed<T: DeserializeOwned>(value: Value, at: &str) -> Result<T, PolicyError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (at, inner.as_str()) {
            ("", p) => p.to_owned(),
            (a, ".") => a.to_owned(),
            (a, p) => format!("{a}.{p}"),
        };
        PolicyError::Parse { path, message: e.into_inner().to_string() }
    })
}

fn parse_error(path: &str, message: impl Into<String>) -> PolicyError {
    PolicyError::Parse { path: path.into(), message: message.into() }
}
