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
