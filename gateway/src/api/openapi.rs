//! `GET /openapi.json`: the OpenAPI 3.1 document of [`ENDPOINTS`], built
//! from each row's [`Doc`]: the handlers' own request, query and view types
//! (their `JsonSchema`, the same schemars the spec format and the MCP tools
//! use), the errors they answer with, and examples the tests check against
//! those schemas.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use super::{ENDPOINTS, Endpoint};
use crate::error::ErrorBody;
use crate::state::Gateway;

/// A type's schema, by reference into the document's components.
pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// [`SchemaFn`] of `T`.
pub(crate) fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What a successful call answers with.
#[derive(Clone, Copy)]
pub(crate) enum Answer {
    /// JSON of this type.
    Json(SchemaFn),
    /// Bytes of this media type.
    Bytes(&'static str),
    /// No body.
    Empty,
}

/// What an endpoint takes and answers, for the document.
#[derive(Clone, Copy)]
pub(crate) struct Doc {
    /// Its JSON body.
    pub body: Option<SchemaFn>,
    /// An example body.
    pub body_example: Option<&'static str>,
    /// Another media type its body may be sent as.
    pub raw_body: Option<&'static str>,
    /// Its query string, as a struct.
    pub query: Option<SchemaFn>,
    /// The success status.
    pub ok: u16,
    /// Another success status with the same body.
    pub also_ok: Option<u16>,
    /// Another success status with a JSON body of its own.
    pub other_answer: Option<(u16, SchemaFn)>,
    /// Another success status, with no body.
    pub also_empty: Option<u16>,
    /// Whether the JSON body may be left out.
    pub optional_body: bool,
    /// The success body.
    pub answer: Answer,
    /// An example success body.
    pub answer_example: Option<&'static str>,
    /// Statuses besides the ones every endpoint of its kind may answer.
    pub errors: &'static [u16],
}

impl Doc {
    /// Answers `ok` with JSON of `answer`.
    pub(crate) const fn json(ok: u16, answer: SchemaFn) -> Doc {
        Doc::answers(ok, Answer::Json(answer))
    }

    /// Answers `ok` with `answer`.
    pub(crate) const fn answers(ok: u16, answer: Answer) -> Doc {
        Doc {
            body: None,
            body_example: None,
            raw_body: None,
            query: None,
            ok,
            also_ok: None,
            other_answer: None,
            also_empty: None,
            optional_body: false,
            answer,
            answer_example: None,
            errors: &[],
        }
    }

    /// Takes a JSON body.
    pub(crate) const fn body(mut self, body: SchemaFn, example: &'static str) -> Doc {
        self.body = Some(body);
        self.body_example = Some(example);
        self
    }

    /// Takes a body of `media_type` instead, if sent with that type.
    pub(crate) const fn or_raw(mut self, media_type: &'static str) -> Doc {
        self.raw_body = Some(media_type);
        self
    }

    /// Takes a query string.
    pub(crate) const fn query(mut self, query: SchemaFn) -> Doc {
        self.query = Some(query);
        self
    }

    /// An example answer.
    pub(crate) const fn example(mut self, example: &'static str) -> Doc {
        self.answer_example = Some(example);
        self
    }

    /// It also succeeds with `status`, answering JSON of `answer`.
    pub(crate) const fn or_answer(mut self, status: u16, answer: SchemaFn) -> Doc {
        self.other_answer = Some((status, answer));
        self
    }

    /// It also succeeds with `status` and no body.
    pub(crate) const fn or_empty(mut self, status: u16) -> Doc {
        self.also_empty = Some(status);
        self
    }

    /// Its body may be left out.
    pub(crate) const fn body_optional(mut self) -> Doc {
        self.optional_body = true;
        self
    }

    /// It also succeeds with `status`, the same body.
    pub(crate) const fn or_status(mut self, status: u16) -> Doc {
        self.also_ok = Some(status);
        self
    }

    /// It may also answer with these statuses.
    pub(crate) const fn errors(mut self, errors: &'static [u16]) -> Doc {
        self.errors = errors;
        self
    }
}

/// `GET /openapi.json`: built once per process (per public URL), then served as bytes.
pub async fn openapi(State(gateway): State<Arc<Gateway>>) -> impl axum::response::IntoResponse {
    static BUILT: Mutex<Option<(String, Bytes)>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let bytes = match &*built {
        Some((url, bytes)) if *url == gateway.public_url => bytes.clone(),
        _ => {
            let bytes = Bytes::from(document(&gateway.public_url).to_string());
            *built = Some((gateway.public_url.clone(), bytes.clone()));
            bytes
        }
    };
    ([(axum::http::header::CONTENT_TYPE, "application/json")], bytes)
}

/// The document, with `public_url` as its server.
pub(crate) fn document(public_url: &str) -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    let error = generator.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    for endpoint in ENDPOINTS {
        let operation = operation(endpoint, &mut generator, &error);
        let path = paths.entry(endpoint.path).or_insert_with(|| json!({}));
        path[endpoint.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "oauth3",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "An API gateway that lets AI agents call HTTP APIs without holding their credentials. \
                            Agents sign up, request permits and execute code; owners store sealed secrets and \
                            approve exact spec hashes. Paths the owner's web UI shares also answer browsers \
                            (text/html, form posts); this document describes their JSON.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": public_url}],
        "paths": paths,
        "components": {
            "schemas": generator.take_definitions(true),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "The token POST /signup returns."}},
        },
    })
}

fn operation(endpoint: &Endpoint, generator: &mut SchemaGenerator, error: &Schema) -> Value {
    let doc = endpoint.doc;
    let mut operation = json!({
        "operationId": operation_id(endpoint),
        "summary": endpoint.description,
        "tags": [tag(endpoint.path)],
    });
    if endpoint.auth != "none" {
        operation["security"] = json!([{"bearer": []}]);
        operation["description"] = json!(format!("Who may call it: {}.", endpoint.auth));
    }
    let mut parameters: Vec<Value> = path_parameters(endpoint.path);
    if let Some(query) = doc.query {
        let mut query = query_parameters(query, generator);
        if doc.raw_body.is_some() {
            // The query carries what the JSON form has in its body.
            for parameter in &mut query {
                parameter["required"] = json!(false);
                let description = parameter["description"].as_str().unwrap_or_default().to_owned();
                parameter["description"] = json!(format!("With a {} body: {description}", doc.raw_body.unwrap_or("")));
            }
        }
        parameters.extend(query);
    }
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = doc.body {
        let mut content = Map::new();
        let mut json_content = json!({"schema": body(generator)});
        if let Some(example) = doc.body_example {
            json_content["example"] = parse_example(example);
        }
        content.insert("application/json".into(), json_content);
        if let Some(media_type) = doc.raw_body {
            content.insert(media_type.into(), json!({"schema": {"type": "string", "contentMediaType": media_type}}));
        }
        operation["requestBody"] = json!({"required": !doc.optional_body, "content": content});
    }
    let mut responses = Map::new();
    let ok = match doc.answer {
        Answer::Json(answer) => {
            let mut content = json!({"schema": answer(generator)});
            if let Some(example) = doc.answer_example {
                content["example"] = parse_example(example);
            }
            json!({"description": reason(doc.ok), "content": {"application/json": content}})
        }
        Answer::Bytes(media_type) => json!({"description": reason(doc.ok), "content": {media_type:
            {"schema": {"type": "string", "contentMediaType": media_type}}}}),
        Answer::Empty => json!({"description": reason(doc.ok)}),
    };
    if let Some(also) = doc.also_ok {
        let mut same = ok.clone();
        same["description"] = json!(reason(also));
        responses.insert(also.to_string(), same);
    }
    responses.insert(doc.ok.to_string(), ok);
    if let Some((status, answer)) = doc.other_answer {
        let content = json!({"application/json": {"schema": answer(generator)}});
        responses.insert(status.to_string(), json!({"description": reason(status), "content": content}));
    }
    if let Some(empty) = doc.also_empty {
        responses.insert(empty.to_string(), json!({"description": reason(empty)}));
    }
    for status in error_statuses(endpoint) {
        let example = json!({"error": {"code": example_code(status), "message": reason(status)}});
        responses.insert(
            status.to_string(),
            json!({"description": reason(status), "content": {"application/json": {"schema": error, "example": example}}}),
        );
    }
    operation["responses"] = Value::Object(responses);
    operation
}

/// The group an endpoint is listed under.
fn tag(path: &str) -> &'static str {
    match path.split('/').nth(1).unwrap_or("") {
        "signup" | "invites" | "tokens" => "accounts",
        "secrets" => "secrets",
        "draft" | "permit" | "approve" | "permits" => "permits",
        "execute" | "audit" => "executions",
        "mcp" => "mcp",
        _ => "meta",
    }
}

/// `GET /permits/{permit_id}/wit` → `get_permits_permit_id_wit`.
fn operation_id(endpoint: &Endpoint) -> String {
    let words: Vec<&str> =
        endpoint.path.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').filter(|w| !w.is_empty()).collect();
    let name = if words.is_empty() { "root".to_owned() } else { words.join("_") };
    format!("{}_{name}", endpoint.method.to_ascii_lowercase())
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// The query struct's properties, one parameter each.
fn query_parameters(query: SchemaFn, generator: &mut SchemaGenerator) -> Vec<Value> {
    let reference = query(generator);
    let schema = reference
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| generator.definitions().get(name))
        .cloned()
        .unwrap_or_else(|| reference.to_value());
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else { return Vec::new() };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = property.clone();
            let description = property.as_object_mut().and_then(|p| p.remove("description"));
            let mut parameter = json!({"name": name, "in": "query", "required": required.contains(&name.as_str()),
                "schema": property});
            if let Some(description) = description {
                parameter["description"] = description;
            }
            parameter
        })
        .collect()
}

/// The statuses an endpoint may fail with: its own, and those its kind
/// implies (authentication, a body or query to check, an id to find).
fn error_statuses(endpoint: &Endpoint) -> Vec<u16> {
    let doc = endpoint.doc;
    let mut statuses: Vec<u16> = doc.errors.to_vec();
    if doc.body.is_some() || doc.query.is_some() {
        statuses.push(400);
    }
    if doc.body.is_some() {
        statuses.extend([413, 415]);
    }
    if endpoint.auth != "none" {
        statuses.push(401);
    }
    if matches!(endpoint.auth, "agent" | "owner") {
        statuses.push(403);
    }
    if endpoint.path.contains('{') {
        statuses.push(404);
    }
    statuses.push(500);
    let other = doc.other_answer.map(|(status, _)| status);
    statuses.retain(|s| *s != doc.ok && Some(*s) != doc.also_ok && Some(*s) != doc.also_empty && Some(*s) != other);
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

fn reason(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}

fn example_code(status: u16) -> &'static str {
    match status {
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "too_many_requests",
        501 => "not_implemented",
        502..=504 => "upstream_unavailable",
        _ => "internal",
    }
}

/// An example, which the tests check against its schema.
fn parse_example(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| json!(format!("(example does not parse: {e})")))
}
