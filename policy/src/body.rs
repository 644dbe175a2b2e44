//! Request bodies a rule restricts: strict JSON, then JSON Schema.
//!
//! Strict means duplicate object keys are refused: a schema would check one
//! copy while an upstream parser might use the other.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A compiled body schema. Remote `$ref`s cannot resolve (no I/O), and
/// `pattern` uses the linear-time `regex` engine.
pub(crate) struct BodySchema {
    validator: jsonschema::Validator,
}

impl fmt::Debug for BodySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodySchema")
    }
}

impl BodySchema {
    pub fn compile(schema: &Value) -> Result<BodySchema, String> {
        if !(schema.is_object() || schema.is_boolean()) {
            return Err("must be a JSON Schema (an object or a boolean)".into());
        }
        jsonschema::options()
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .should_validate_formats(true)
            .build(schema)
            .map(|validator| BodySchema { validator })
            .map_err(|e| format!("is not a usable JSON Schema: {e}"))
    }

    /// Validates a parsed body; the error names the failing location.
    pub fn check(&self, body: &Value) -> Result<(), String> {
        self.validator.validate(body).map_err(|e| {
            let at = e.instance_path().to_string();
            format!("body{at}: {e}")
        })
    }
}

/// True for a JSON media type: `application/json` or `application/*+json`
/// (`application/vnd.github+json`), parameters ignored, any letter case.
/// The one definition every crate uses.
pub fn is_json_media_type(value: &str) -> bool {
    let essence = essence(value);
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A media type without its parameters, lower case.
fn essence(value: &str) -> String {
    value.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// The method-override parameter a body carries, if any: a top-level key of
/// a JSON object, a form field (`application/x-www-form-urlencoded`), or a
/// multipart part's name. Frameworks read `_method` from all three (Laravel
/// even from JSON), turning an allowed POST into a DELETE upstream.
pub(crate) fn method_override_in(bytes: &[u8], content_type: Option<&str>, json: Option<&Value>) -> Option<String> {
    let essence = content_type.map(essence);
    let keys = match json {
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        Some(_) => Vec::new(),
        // Not strict JSON (a duplicate key, an out-of-range number, data
        // after it): PHP's json_decode may still read it, so read its keys.
        None => top_level_keys(bytes),
    };
    if let Some(key) = keys.into_iter().find(|k| crate::headers::is_method_override(k)) {
        return Some(key);
    }
    match essence.as_deref() {
        Some("application/x-www-form-urlencoded") => url::form_urlencoded::parse(bytes)
            .map(|(name, _)| name)
            .find(|name| crate::headers::is_method_override(name))
            .map(|name| name.into_owned()),
        Some("multipart/form-data") => multipart_names(bytes).find(|name| crate::headers::is_method_override(name)),
        _ => None,
    }
}

/// The keys of a JSON object's top level, duplicates included, read as
/// leniently as serde_json allows (values are skipped, not converted);
/// empty for anything else.
fn top_level_keys(bytes: &[u8]) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct KeysVisitor;
            impl<'de> Visitor<'de> for KeysVisitor {
                type Value = Keys;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some(key) = access.next_key::<String>()? {
                        access.next_value::<de::IgnoredAny>()?;
                        keys.push(key);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(KeysVisitor)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Keys::deserialize(&mut de).map(|k| k.0).unwrap_or_default()
}

/// The names of a multipart body's parts: every `name` parameter, read
/// leniently (quoted with `\` escapes or bare, spaces around `=`, and RFC 2231
/// `name*=UTF-8''…` and `name*0=…; name*1=…` continuations, joined), so a
/// part an upstream would see is never missed.
fn multipart_names(bytes: &[u8]) -> impl Iterator<Item = String> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let lower = text.to_ascii_lowercase();
    let mut names = Vec::new();
    let mut continued = String::new();
    for (at, _) in lower.match_indices("name") {
        // `filename` and the like are other parameters.
        if at > 0 && !matches!(lower.as_bytes()[at - 1], b';' | b' ' | b'\t' | b'\r' | b'\n') {
            continue;
        }
        let mut rest = &text[at + 4..];
        let extended = rest.starts_with('*');
        let segment = rest.trim_start_matches('*').chars().next().is_some_and(|c| c.is_ascii_digit());
        rest = rest.trim_start_matches(|c: char| c == '*' || c.is_ascii_digit()).trim_start_matches([' ', '\t']);
        let Some(rest) = rest.strip_prefix('=') else { continue };
        let rest = rest.trim_start_matches([' ', '\t']);
        let mut value = match rest.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
                value
            }
            None => rest.split([';', '\r', '\n', ' ', '\t']).next().unwrap_or("").to_owned(),
        };
        if extended {
            // charset'language'percent-encoded
            let encoded = value.rsplit('\'').next().unwrap_or("").to_owned();
            value = url::form_urlencoded::parse(format!("v={}", encoded.replace('+', "%2B")).as_bytes())
                .map(|(_, v)| v.into_owned())
                .next()
                .unwrap_or_default();
        }
        if segment {
            continued.push_str(&value);
            names.push(continued.clone());
        } else {
            continued.clear();
        }
        names.push(value);
    }
    names.into_iter()
}

/// Parses JSON strictly: duplicate object keys (at any depth) and trailing
/// data are refused, so no two readers of the same bytes can disagree on
/// what they hold. Nesting is capped by serde_json's recursion limit.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value.0)
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<StrictValue, E> {
        serde_json::Number::from_f64(v)
            .map(|n| StrictValue(Value::Number(n)))
            .ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(StrictValue(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictValue, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let StrictValue(value) = access.next_value()?;
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            map.insert(key, value);
        }
        Ok(StrictValue(Value::Object(map)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        assert!(parse_strict(br#"{"a":1,"a":2}"#).unwrap_err().contains("duplicate key"));
        assert!(parse_strict(br#"{"x":[{"b":1,"b":1}]}"#).is_err());
        assert_eq!(parse_strict(br#"{"a":[1,2.5,"s",null,true]}"#).unwrap()["a"][1], 2.5);
    }

    #[test]
    fn refuses_trailing_data_and_non_json() {
        for bad in [&b"{} {}"[..], b"{", b"title=x", b"", b"1e400"] {
            assert!(parse_strict(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn schema_with_remote_ref_does_not_compile() {
        let schema = serde_json::json!({"$ref": "https://example.com/schema.json"});
        assert!(BodySchema::compile(&schema).is_err());
    }
}
