//! The JSON Schema of the spec format, generated from the types so the two
//! cannot drift. A copy is committed as `policy/spec.schema.json` (a test
//! keeps it current); drafters' output is validated against it and the API
//! serves it.

use serde_json::Value;

use crate::spec::PermitSpec;

/// JSON Schema (draft 2020-12) of a version-1 permit spec. It describes the
/// current format only; legacy input is accepted by the parser, not here.
pub fn permit_json_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(PermitSpec)).unwrap_or(Value::Null);
    schema["$id"] = Value::String("urn:oauth3:schema:permit-spec:1".into());
    schema
}
