//! The body schema of a rule: the documented JSON body, trimmed to what
//! the goal needs.

use serde_json::{Map, Value, json};

use crate::goal::Goal;
use oauth3_policy::is_json_media_type;

use crate::openapi::Operation;

/// Properties a verb implies even when the goal does not name them:
/// closing an issue sets its `state`, posting a message needs its text.
const IMPLIED: &[(&str, &[&str])] = &[
    ("post", CONTENT),
    ("send", CONTENT),
    ("message", CONTENT),
    ("reply", CONTENT),
    ("comment", CONTENT),
    ("write", CONTENT),
    ("publish", CONTENT),
    ("close", &["state", "status"]),
    ("reopen", &["state", "status"]),
    ("label", &["labels", "label"]),
    ("assign", &["assignees", "assignee"]),
    ("rename", &["name", "title"]),
];

/// What a message or comment says.
const CONTENT: &[&str] = &["text", "body", "content", "message"];

/// What the rule says about the body.
#[derive(Debug, Default)]
pub(super) struct Body {
    /// The `body` schema, if any.
    pub schema: Option<Value>,
    /// Rationale line.
    pub rationale: Option<String>,
    /// Warning for the owner.
    pub warning: Option<String>,
}

/// The rule body for `op`, asked for by clauses with `verbs`.
pub(super) fn body(op: &Operation, label: &str, goal: &Goal, verbs: &[&str]) -> Body {
    let Some(doc) = &op.body else { return Body::default() };
    if !doc.required && documents_no_fields(&doc.schema) {
        // Stripe documents an empty optional form body on every GET and DELETE.
        return Body {
            rationale: Some(format!(
                "{label}: the documented {} body is optional and has no fields; none is expected",
                doc.content_type
            )),
            ..Body::default()
        };
    }
    if !is_json_media_type(&doc.content_type) {
        return Body {
            schema: Some(Value::Bool(true)),
            warning: Some(format!(
                "{label}: the request body is {}, which the spec cannot check (a `body` schema needs JSON); \
                 any body is allowed",
                doc.content_type
            )),
            ..Body::default()
        };
    }
    let schema = flatten_all_of(&doc.schema);
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        let mut schema = schema.clone();
        let dropped = drop_unusable_patterns(&mut schema);
        return Body {
            rationale: Some(format!("{label}: body checked against the documented schema (not an object)")),
            warning: dropped.then(|| format!("{label}: body `pattern`s the gateway cannot run were dropped")),
            schema: Some(schema),
        };
    };
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let implied: Vec<&str> =
        IMPLIED.iter().filter(|(verb, _)| verbs.contains(verb)).flat_map(|(_, names)| names.iter().copied()).collect();
    let mut kept = Map::new();
    let (mut named, mut by_verb, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    for (name, property) in properties {
        let name = name.as_str();
        let list = if required.contains(&name) {
            None
        } else if goal.mentions(name) {
            Some(&mut named)
        } else if implied.contains(&name) {
            Some(&mut by_verb)
        } else {
            refused.push(name);
            continue;
        };
        if let Some(list) = list {
            list.push(name);
        }
        kept.insert(name.to_owned(), property.clone());
    }
    // Sorted: the document's property order is not kept by every build.
    named.sort_unstable();
    by_verb.sort_unstable();
    refused.sort_unstable();
    let mut out = json!({"type": "object", "properties": kept, "additionalProperties": false});
    if !required.is_empty() {
        out["required"] = json!(required);
    }
    let dropped = drop_unusable_patterns(&mut out);
    let mut parts = Vec::new();
    if !required.is_empty() {
        parts.push(format!("required {}", required.join(", ")));
    }
    if !named.is_empty() {
        parts.push(format!("{} (named in the goal)", named.join(", ")));
    }
    if !by_verb.is_empty() {
        let why: Vec<&str> = verbs
            .iter()
            .copied()
            .filter(|v| IMPLIED.iter().any(|(verb, names)| verb == v && names.iter().any(|n| by_verb.contains(n))))
            .collect();
        parts.push(format!("{} (implied by \"{}\")", by_verb.join(", "), why.join("\", \"")));
    }
    if parts.is_empty() {
        parts.push("no properties (none required or named in the goal)".into());
    }
    let mut line = format!("{label}: body keeps {}", parts.join("; "));
    if !refused.is_empty() {
        line.push_str(&format!("; other documented properties refused: {}", refused.join(", ")));
    }
    Body {
        schema: Some(out),
        rationale: Some(line),
        warning: dropped.then(|| format!("{label}: body `pattern`s the gateway cannot run were dropped")),
    }
}

/// An object schema with no properties and no others allowed.
fn documents_no_fields(schema: &Value) -> bool {
    schema.get("properties").and_then(Value::as_object).is_some_and(Map::is_empty)
        && schema.get("additionalProperties") == Some(&Value::Bool(false))
}

/// `allOf: [{properties…}, {properties…}]` read as one object, so the
/// properties can be trimmed; anything else as it is.
fn flatten_all_of(schema: &Value) -> Value {
    let Some(parts) = schema.get("allOf").and_then(Value::as_array) else { return schema.clone() };
    if schema.get("properties").is_some() || !parts.iter().all(|p| p.get("properties").is_some()) {
        return schema.clone();
    }
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in parts {
        if let Some(p) = part.get("properties").and_then(Value::as_object) {
            properties.extend(p.clone());
        }
        for name in part.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !required.contains(name) {
                required.push(name.clone());
            }
        }
    }
    json!({"type": "object", "properties": properties, "required": required})
}

/// Removes every `pattern` when the schema does not compile with the
/// gateway's (linear-time) regex engine; true when it did.
fn drop_unusable_patterns(schema: &mut Value) -> bool {
    let compiles =
        |s: &Value| jsonschema::options().with_pattern_options(jsonschema::PatternOptions::regex()).build(s).is_ok();
    if compiles(schema) {
        return false;
    }
    strip(schema, "pattern");
    true
}

fn strip(value: &mut Value, keyword: &str) {
    let Value::Object(map) = value else { return };
    map.remove(keyword);
    for (key, child) in map.iter_mut() {
        match (key.as_str(), child) {
            ("properties", Value::Object(properties)) => properties.values_mut().for_each(|p| strip(p, keyword)),
            ("items" | "additionalProperties" | "not", child) => strip(child, keyword),
            ("oneOf" | "anyOf" | "allOf", Value::Array(list)) => list.iter_mut().for_each(|s| strip(s, keyword)),
            _ => {}
        }
    }
}
