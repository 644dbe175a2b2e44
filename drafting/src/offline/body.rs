//! The body schema of a rule: the documented JSON body, trimmed to what
//! the goal needs.

use serde_json::{Map, Value, json};

use crate::goal::{Goal, Stated};
use crate::pin;
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
    /// Fields pinned to what the goal states (`to = "a@example.com"`).
    pub pinned: Vec<String>,
    /// Fields kept free.
    pub free: Vec<String>,
}

/// The rule body for `op`, asked for by clauses with `verbs`; with
/// `keep_all` (the agent named the operation), every documented property
/// is kept, not only those the goal names.
pub(super) fn body(
    op: &Operation,
    label: &str,
    goal: &Goal,
    stated: &[Stated],
    verbs: &[&str],
    keep_all: bool,
) -> Body {
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
        drop_time_formats(&mut schema);
        let chosen = pin::narrow_choices(&mut schema, goal);
        return Body {
            rationale: Some(format!("{label}: body checked against the documented schema (not an object)")),
            warning: dropped.then(|| format!("{label}: body `pattern`s the gateway cannot run were dropped")),
            schema: Some(schema),
            pinned: chosen,
            ..Body::default()
        };
    };
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    // A property the goal states a value for is needed, named or not.
    let pinned_names: Vec<String> = {
        let mut trial = schema.clone();
        let pins = pin::pin_body(&mut trial, stated, &doc.descriptions, true);
        pins.pinned.iter().filter_map(|p| p.split(['.', ' ']).next()).map(str::to_owned).collect()
    };
    let implied: Vec<&str> =
        IMPLIED.iter().filter(|(verb, _)| verbs.contains(verb)).flat_map(|(_, names)| names.iter().copied()).collect();
    let field = |name: &str| top_field(name, doc, properties).class_and_address();
    // With every documented property kept, a sensitive one the goal neither
    // pins nor names stays out when it is a file, or an address beside one
    // the goal pins (`Bcc` beside a pinned `To`): a way to send data
    // elsewhere, not a way to do the task.
    let addressed = pinned_names.iter().any(|s| field(s).2);
    let side_channel = |name: &str| {
        let (sensitive, class, address) = field(name);
        sensitive && !goal.mentions(name) && (class == pin::Class::File || (addressed && address))
    };
    let mut kept = Map::new();
    let (mut named, mut by_verb, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    for (name, property) in properties {
        let name = name.as_str();
        let pinned = pinned_names.iter().any(|s| s == name);
        let list = if pinned || (required.contains(&name) && (!keep_all || !side_channel(name))) {
            None
        } else if (keep_all && !side_channel(name)) || goal.mentions(name) {
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
    let free: Vec<String> = kept.keys().filter(|k| !pinned_names.contains(k)).cloned().collect();
    let mut out = json!({"type": "object", "properties": kept, "additionalProperties": false});
    // For an operation the agent named, the documented `required` is the
    // upstream's to enforce (documents get it wrong: Postmark "requires"
    // `Bcc`); only what the goal pins is required here.
    if !required.is_empty() && !keep_all {
        out["required"] = json!(required);
    }
    if keep_all {
        strip_required(&mut out);
    }
    let dropped = drop_unusable_patterns(&mut out);
    drop_time_formats(&mut out);
    flatten_deep(&mut out);
    let update = matches!(op.method.as_str(), "PUT" | "PATCH");
    let mut pins = pin::pin_body(&mut out, stated, &doc.descriptions, !update);
    let chosen = pin::narrow_choices(&mut out, goal);
    let free: Vec<String> =
        free.into_iter().filter(|f| !chosen.iter().any(|c| c.split([' ', '.']).next() == Some(f.as_str()))).collect();
    pins.pinned.extend(chosen);
    let mut parts = Vec::new();
    if !required.is_empty() {
        let shown: Vec<&str> = required.iter().copied().filter(|r| kept.contains_key(*r) || !keep_all).collect();
        if !shown.is_empty() {
            let what = if keep_all { "documented as required" } else { "required" };
            parts.push(format!("{what} {}", shown.join(", ")));
        }
    }
    if !named.is_empty() {
        parts.push(format!(
            "{} ({})",
            named.join(", "),
            if keep_all { "documented for the operation the agent named" } else { "named in the goal" }
        ));
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
        pinned: pins.pinned,
        free,
    }
}

/// A top-level body property as pinning reads it.
fn top_field<'a>(
    name: &'a str,
    doc: &'a crate::openapi::BodyDoc,
    properties: &'a Map<String, Value>,
) -> pin::Field<'a> {
    pin::Field {
        name,
        parents: &[],
        description: doc.descriptions.get(name).map(String::as_str),
        format: properties.get(name).and_then(|p| p.get("format")).and_then(Value::as_str),
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
    /// What a flattened object keeps of its parts; anything else (`oneOf`,
    /// `minProperties`, a part's `additionalProperties: false` …) is a
    /// constraint flattening would lose, so such a schema stays as it is.
    const KEPT: &[&str] = &["type", "properties", "required"];
    let Some(parts) = schema.get("allOf").and_then(Value::as_array) else { return schema.clone() };
    // Parts composed of parts themselves (Asana's TaskRequest) first.
    let parts: Vec<Value> = parts.iter().map(flatten_all_of).collect();
    let plain = |v: &Value, extra: &[&str]| {
        v.as_object().is_some_and(|o| o.keys().all(|k| KEPT.contains(&k.as_str()) || extra.contains(&k.as_str())))
    };
    if !plain(schema, &["allOf"])
        || schema.get("properties").is_some()
        || !parts.iter().all(|p| p.get("properties").is_some() && plain(p, &[]))
    {
        return schema.clone();
    }
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in &parts {
        for (name, property) in part.get("properties").and_then(Value::as_object).into_iter().flatten() {
            // Two parts describing one property: both hold.
            let merged = match properties.remove(name) {
                Some(earlier) if earlier != *property => json!({"allOf": [earlier, property]}),
                _ => property.clone(),
            };
            properties.insert(name.clone(), merged);
        }
        for name in part.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !required.contains(name) {
                required.push(name.clone());
            }
        }
    }
    json!({"type": "object", "properties": properties, "required": required})
}

/// Removes `required` from an object schema and the objects under its
/// properties and items, not from inside `not`/`oneOf`/`anyOf` (where
/// removing it would change what they reject).
fn strip_required(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    map.remove("required");
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        properties.values_mut().for_each(strip_required);
    }
    if let Some(items) = map.get_mut("items") {
        strip_required(items);
    }
}

/// [`flatten_all_of`] at every depth (Asana wraps each body's fields in a
/// `data` object composed with `allOf`), so nested fields can be pinned.
fn flatten_deep(schema: &mut Value) {
    if schema.get("allOf").is_some() {
        let flat = flatten_all_of(schema);
        if flat.get("allOf").is_none() {
            *schema = flat;
        }
    }
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.values_mut().for_each(flatten_deep);
    }
    if let Some(items) = schema.get_mut("items") {
        flatten_deep(items);
    }
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

/// Drops the date and time `format`s a document gives. The policy checks
/// formats strictly (RFC 3339), and APIs take and document looser forms
/// (Jira's `2025-03-12T09:00:00.000+0000`): kept, they would refuse the
/// upstream's own examples, and a timestamp names no recipient or target.
fn drop_time_formats(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    if map.get("format").is_some_and(|f| matches!(f.as_str(), Some("date-time" | "date" | "time" | "duration"))) {
        map.remove("format");
    }
    // Not inside `oneOf` (variants told apart by their format would all
    // match, and then none would) or `not` (it would refuse more).
    for (key, child) in map.iter_mut() {
        match (key.as_str(), child) {
            ("properties", Value::Object(properties)) => properties.values_mut().for_each(drop_time_formats),
            ("items" | "additionalProperties", child) => drop_time_formats(child),
            ("anyOf" | "allOf", Value::Array(list)) => list.iter_mut().for_each(drop_time_formats),
            _ => {}
        }
    }
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
