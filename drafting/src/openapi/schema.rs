//! JSON Schemas from API descriptions, normalised for `jsonschema` (draft
//! 2020-12): local `$ref`s inlined, only validation keywords kept, OpenAPI
//! 3.0 `nullable` turned into a type array, `readOnly` properties dropped
//! (a client never sends them).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// Deepest nesting inlined; deeper schemas accept anything.
const MAX_DEPTH: usize = 12;

/// Keywords whose value is kept as written.
const PLAIN: &[&str] = &[
    "type",
    "enum",
    "const",
    "format",
    "minimum",
    "maximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
];

/// Most property descriptions kept per body (a guard against huge schemas).
const MAX_DESCRIPTIONS: usize = 2000;

/// A description as kept for matching: one line, at most 300 characters.
pub(super) fn clip_description(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(300).collect()
}

/// Keywords holding one schema.
const ONE: &[&str] = &["items", "additionalProperties", "not"];
/// Keywords holding a list of schemas.
const MANY: &[&str] = &["oneOf", "anyOf", "allOf"];

/// Resolves `$ref`s against one document.
pub(super) struct Schemas<'a> {
    root: &'a Value,
}

impl<'a> Schemas<'a> {
    pub(super) fn new(root: &'a Value) -> Schemas<'a> {
        Schemas { root }
    }

    /// The value a local `$ref` (`#/components/schemas/Issue`) points at.
    pub(super) fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        let decoded = percent_decode(pointer)?;
        self.root.pointer(&decoded)
    }

    /// Follows `$ref` chains on a non-schema object (a parameter, a request
    /// body, a security scheme), at most a few hops.
    pub(super) fn deref(&self, mut value: &'a Value) -> Option<&'a Value> {
        for _ in 0..8 {
            match value.get("$ref").and_then(Value::as_str) {
                Some(reference) => value = self.resolve(reference)?,
                None => return Some(value),
            }
        }
        None
    }

    /// The descriptions of `schema`'s object properties, at any depth, by
    /// dotted path (`Data.Initiation.CreditorAccount`); `allOf`/`oneOf`/
    /// `anyOf` parts are read as the object they describe.
    pub(super) fn descriptions(&self, schema: &Value) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        self.describe(schema, "", &mut Vec::new(), &mut out);
        out
    }

    fn describe(&self, schema: &Value, at: &str, stack: &mut Vec<String>, out: &mut BTreeMap<String, String>) {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            if stack.len() >= MAX_DEPTH || stack.iter().any(|r| r == reference) {
                return;
            }
            let Some(target) = self.resolve(reference) else { return };
            stack.push(reference.to_owned());
            self.describe(target, at, stack, out);
            stack.pop();
            return;
        }
        if stack.len() >= MAX_DEPTH || out.len() >= MAX_DESCRIPTIONS {
            return;
        }
        stack.push(String::new());
        // Parts and array items describe the same place.
        for key in MANY {
            for part in schema.get(*key).and_then(Value::as_array).into_iter().flatten() {
                self.describe(part, at, stack, out);
            }
        }
        if let Some(items) = schema.get("items") {
            self.describe(items, at, stack, out);
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                let path = if at.is_empty() { name.clone() } else { format!("{at}.{name}") };
                let resolved = self.deref(property).unwrap_or(property);
                let text = property.get("description").or_else(|| resolved.get("description"));
                if let Some(text) = text.and_then(Value::as_str) {
                    out.entry(path.clone()).or_insert_with(|| clip_description(text));
                }
                self.describe(property, &path, stack, out);
            }
        }
        stack.pop();
    }

    /// `schema`, normalised.
    pub(super) fn normalise(&self, schema: &Value) -> Value {
        self.walk(schema, &mut Vec::new())
    }

    fn walk(&self, schema: &Value, stack: &mut Vec<String>) -> Value {
        let Some(object) = schema.as_object() else {
            return if schema.is_boolean() { schema.clone() } else { json!({}) };
        };
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            // A cycle, a remote or broken reference, or too deep: anything.
            if stack.len() >= MAX_DEPTH || stack.iter().any(|r| r == reference) {
                return json!({});
            }
            let Some(target) = self.resolve(reference) else { return json!({}) };
            stack.push(reference.to_owned());
            let out = self.walk(target, stack);
            stack.pop();
            return out;
        }
        if stack.len() >= MAX_DEPTH {
            return json!({});
        }
        stack.push(String::new());
        let out = self.walk_object(object, stack);
        stack.pop();
        Value::Object(out)
    }

    fn walk_object(&self, object: &Map<String, Value>, stack: &mut Vec<String>) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in object {
            let key = key.as_str();
            if PLAIN.contains(&key) {
                out.insert(key.to_owned(), value.clone());
            } else if ONE.contains(&key) {
                out.insert(key.to_owned(), self.walk(value, stack));
            } else if MANY.contains(&key) {
                let list =
                    value.as_array().map(|l| l.iter().map(|s| self.walk(s, stack)).collect()).unwrap_or_default();
                out.insert(key.to_owned(), Value::Array(list));
            }
        }
        if let Some(properties) = object.get("properties").and_then(Value::as_object) {
            let mut kept = Map::new();
            for (name, property) in properties {
                let resolved = self.deref(property).unwrap_or(property);
                if resolved.get("readOnly") == Some(&Value::Bool(true)) {
                    continue;
                }
                kept.insert(name.clone(), self.walk(property, stack));
            }
            if let Some(required) = object.get("required").and_then(Value::as_array) {
                let required: Vec<Value> =
                    required.iter().filter(|r| r.as_str().is_some_and(|r| kept.contains_key(r))).cloned().collect();
                if !required.is_empty() {
                    out.insert("required".into(), Value::Array(required));
                }
            }
            out.insert("properties".into(), Value::Object(kept));
        } else if let Some(required) = object.get("required").filter(|r| r.is_array()) {
            out.insert("required".into(), required.clone());
        }
        exclusive_bounds(object, &mut out);
        // Swagger's `file` type is no JSON type.
        if out.get("type").and_then(Value::as_str) == Some("file") {
            out.remove("type");
        }
        let nullable = ["nullable", "x-nullable"].iter().any(|k| object.get(*k) == Some(&Value::Bool(true)));
        if nullable {
            make_nullable(&mut out);
        }
        out
    }
}

/// OpenAPI 3.0 (draft 4) writes `exclusiveMinimum: true` next to `minimum`;
/// 2020-12 wants the bound itself.
fn exclusive_bounds(object: &Map<String, Value>, out: &mut Map<String, Value>) {
    for (exclusive, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        match object.get(exclusive) {
            Some(Value::Bool(true)) => {
                if let Some(value) = out.remove(bound) {
                    out.insert(exclusive.into(), value);
                }
            }
            Some(number @ Value::Number(_)) => {
                out.insert(exclusive.into(), number.clone());
            }
            _ => {}
        }
    }
}

/// Lets `null` through as well: `"type": "string"` → `["string", "null"]`,
/// and `null` joins an `enum`.
fn make_nullable(out: &mut Map<String, Value>) {
    match out.get_mut("type") {
        Some(Value::String(one)) if one != "null" => {
            let one = std::mem::take(one);
            out.insert("type".into(), json!([one, "null"]));
        }
        Some(Value::Array(types)) if !types.contains(&json!("null")) => types.push(json!("null")),
        _ => {}
    }
    if let Some(Value::Array(values)) = out.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

/// Decodes `%XX` in a JSON pointer taken from a URI fragment.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_inlined_and_cycles_cut() {
        let doc = json!({"components": {"schemas": {
            "Node": {"type": "object", "description": "a tree", "required": ["name"], "properties": {
                "name": {"type": "string", "example": "x"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
            }}
        }}});
        let schema = Schemas::new(&doc).normalise(&json!({"$ref": "#/components/schemas/Node"}));
        assert_eq!(
            schema,
            json!({"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {}}
            }})
        );
    }

    #[test]
    fn nullable_read_only_and_exclusive_bounds() {
        let doc = json!({"components": {"schemas": {"Id": {"type": "integer", "readOnly": true}}}});
        let schema = Schemas::new(&doc).normalise(&json!({
            "type": "object", "required": ["id", "state"], "properties": {
                "id": {"$ref": "#/components/schemas/Id"},
                "state": {"type": "string", "enum": ["open", "closed"], "nullable": true},
                "count": {"type": "integer", "minimum": 0, "exclusiveMinimum": true, "x-extra": 1},
                "when": {"type": "string", "format": "date-time", "readOnly": false}
            }
        }));
        assert_eq!(
            schema,
            json!({"type": "object", "required": ["state"], "properties": {
                "state": {"type": ["string", "null"], "enum": ["open", "closed", null]},
                "count": {"type": "integer", "exclusiveMinimum": 0},
                "when": {"type": "string", "format": "date-time"}
            }})
        );
    }

    #[test]
    fn remote_and_broken_refs_accept_anything() {
        let doc = json!({});
        let schemas = Schemas::new(&doc);
        assert_eq!(schemas.normalise(&json!({"$ref": "https://x.example/s.json"})), json!({}));
        assert_eq!(schemas.normalise(&json!({"$ref": "#/nowhere"})), json!({}));
        assert_eq!(schemas.normalise(&json!(true)), json!(true));
    }
}
