//! Reading OpenAPI 3.x and Swagger 2.0 documents into [`ApiDoc`].

use oauth3_policy::is_json_media_type;
use serde_json::{Map, Value, json};
use url::Url;

use super::schema::Schemas;
use super::{ApiDoc, BodyDoc, Operation, ParamDoc, SecurityScheme, Server};

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// See [`ApiDoc::from_value`].
pub(super) fn read(value: &Value, doc_url: &Url) -> Result<Option<ApiDoc>, String> {
    let Some(root) = value.as_object() else { return Ok(None) };
    let (version, swagger) = match (root.get("openapi"), root.get("swagger")) {
        (Some(Value::String(v)), _) if v.starts_with("3.") => (v.clone(), false),
        (_, Some(Value::String(v))) if v == "2.0" => (v.clone(), true),
        (Some(v), _) => return Err(format!("unsupported OpenAPI version {v} (3.x is read)")),
        (_, Some(v)) => return Err(format!("unsupported Swagger version {v} (2.0 is read)")),
        _ => return Ok(None),
    };
    let reader = Reader { root: value, schemas: Schemas::new(value), swagger };
    let operations = match root.get("paths") {
        None => Vec::new(),
        Some(Value::Object(paths)) => reader.operations(paths),
        Some(_) => return Err("`paths` is not an object".into()),
    };
    let schemes_at = if swagger { "/securityDefinitions" } else { "/components/securitySchemes" };
    let security_schemes = value
        .pointer(schemes_at)
        .and_then(Value::as_object)
        .map(|schemes| {
            schemes
                .iter()
                .filter_map(|(name, s)| Some((name.clone(), reader.security_scheme(reader.schemas.deref(s)?))))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(ApiDoc {
        version,
        title: value.pointer("/info/title").and_then(Value::as_str).map(str::to_owned),
        servers: if swagger { swagger_servers(root, doc_url) } else { servers(root, doc_url) },
        operations,
        security_schemes,
        security: root.get("security").map(security).unwrap_or_default(),
    }))
}

/// OpenAPI 3 `servers`; none means `/`, the document's own origin.
fn servers(root: &Map<String, Value>, doc_url: &Url) -> Vec<Server> {
    let declared = root.get("servers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut servers = Vec::new();
    for server in declared {
        let Some(url) = server.get("url").and_then(Value::as_str) else { continue };
        let mut filled = url.to_owned();
        if let Some(variables) = server.get("variables").and_then(Value::as_object) {
            for (name, variable) in variables {
                if let Some(default) = variable.get("default").and_then(Value::as_str) {
                    filled = filled.replace(&format!("{{{name}}}"), default);
                }
            }
        }
        if let Some(absolute) = absolute(doc_url, &filled) {
            servers.push(Server { url: absolute, declared: url.to_owned() });
        }
    }
    if declared.is_empty()
        && let Some(url) = absolute(doc_url, "/")
    {
        servers.push(Server { url, declared: "/".into() });
    }
    servers
}

/// Swagger 2 `schemes` × `host` + `basePath`, https first; a missing host
/// or scheme is the document's own.
fn swagger_servers(root: &Map<String, Value>, doc_url: &Url) -> Vec<Server> {
    let host = match root.get("host").and_then(Value::as_str) {
        Some(host) => host.to_owned(),
        None => match (doc_url.host_str(), doc_url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Vec::new(),
        },
    };
    let base_path = root.get("basePath").and_then(Value::as_str).unwrap_or("/");
    let mut schemes: Vec<&str> = root
        .get("schemes")
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(Value::as_str).filter(|s| matches!(*s, "https" | "http")).collect())
        .unwrap_or_default();
    if schemes.is_empty() {
        schemes.push(doc_url.scheme());
    }
    schemes.sort_by_key(|s| *s != "https");
    schemes
        .into_iter()
        .filter_map(|scheme| {
            let declared = format!("{scheme}://{host}{base_path}");
            absolute(doc_url, &declared).map(|url| Server { url, declared })
        })
        .collect()
}

/// `url` resolved against the document's URL, without a trailing `/`.
fn absolute(doc_url: &Url, url: &str) -> Option<String> {
    let joined = doc_url.join(url).ok()?;
    if !matches!(joined.scheme(), "https" | "http") || joined.host_str().is_none() {
        return None;
    }
    Some(joined.as_str().trim_end_matches('/').to_owned())
}

/// `security`: alternatives, each a set of scheme names (`{}` = none).
fn security(value: &Value) -> Vec<Vec<String>> {
    value
        .as_array()
        .map(|alternatives| {
            alternatives.iter().filter_map(Value::as_object).map(|names| names.keys().cloned().collect()).collect()
        })
        .unwrap_or_default()
}

struct Reader<'a> {
    root: &'a Value,
    schemas: Schemas<'a>,
    swagger: bool,
}

impl Reader<'_> {
    fn operations(&self, paths: &Map<String, Value>) -> Vec<Operation> {
        let mut operations = Vec::new();
        for (path, item) in paths {
            let Some(item) = self.schemas.deref(item).and_then(Value::as_object) else { continue };
            let shared = self.parameters(item.get("parameters"));
            for (method, op) in item {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                let Some(op) = op.as_object() else { continue };
                operations.push(self.operation(method, path, op, &shared));
            }
        }
        operations
    }

    fn operation(&self, method: &str, path: &str, op: &Map<String, Value>, shared: &[Value]) -> Operation {
        // Operation-level parameters override path-level ones of the same name and place.
        let own = self.parameters(op.get("parameters"));
        let key = |p: &Value| (p.get("name").cloned(), p.get("in").cloned());
        let mut params: Vec<Value> = shared.iter().filter(|s| !own.iter().any(|o| key(o) == key(s))).cloned().collect();
        params.extend(own);
        let of =
            |place: &'static str| params.iter().filter(move |p| p.get("in").and_then(Value::as_str) == Some(place));
        let text = |key: &str| op.get(key).and_then(Value::as_str).map(str::to_owned);
        let body = if self.swagger {
            self.swagger_body(op, of("body").next(), &of("formData").collect::<Vec<_>>())
        } else {
            op.get("requestBody").and_then(|b| self.request_body(b))
        };
        Operation {
            method: method.to_ascii_uppercase(),
            // Box keys variants of one path as `/files/{file_id}#add_shared_link`:
            // a fragment is never sent, so it is no part of the path.
            path: path.split('#').next().unwrap_or(path).to_owned(),
            operation_id: text("operationId"),
            summary: text("summary"),
            description: text("description"),
            tags: op
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            path_params: of("path").map(|p| self.param(p, true)).collect(),
            query_params: of("query").map(|p| self.param(p, false)).collect(),
            body,
            security: op.get("security").map(security),
        }
    }

    /// Parameters with `$ref`s followed; unreadable ones are skipped.
    fn parameters(&self, list: Option<&Value>) -> Vec<Value> {
        let list = list.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        list.iter().filter_map(|p| self.schemas.deref(p)).filter(|p| p.get("name").is_some()).cloned().collect()
    }

    fn param(&self, param: &Value, path: bool) -> ParamDoc {
        // OpenAPI 3 puts the type under `schema`; Swagger 2 on the parameter.
        let schema = match param.get("schema") {
            Some(schema) if !self.swagger => self.schemas.normalise(schema),
            _ => self.schemas.normalise(param),
        };
        let values = schema
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|values| values.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>());
        let description = param.get("description").or_else(|| param.get("schema").and_then(|s| s.get("description")));
        ParamDoc {
            name: param.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            required: path || param.get("required") == Some(&Value::Bool(true)),
            values,
            description: description.and_then(Value::as_str).map(super::schema::clip_description),
            format: schema.get("format").and_then(Value::as_str).map(str::to_owned),
        }
    }

    /// OpenAPI 3 `requestBody`: JSON preferred, then a form, then the first.
    fn request_body(&self, body: &Value) -> Option<BodyDoc> {
        let body = self.schemas.deref(body)?;
        let content = body.get("content")?.as_object()?;
        let (content_type, media) = content
            .iter()
            .find(|(t, _)| is_json_media_type(t))
            .or_else(|| content.iter().find(|(t, _)| t.starts_with("application/x-www-form-urlencoded")))
            .or_else(|| content.iter().next())?;
        let schema = media.get("schema");
        Some(BodyDoc {
            content_type: content_type.clone(),
            schema: schema.map(|s| self.schemas.normalise(s)).unwrap_or_else(|| json!({})),
            required: body.get("required") == Some(&Value::Bool(true)),
            descriptions: schema.map(|s| self.schemas.descriptions(s)).unwrap_or_default(),
        })
    }

    /// Swagger 2: an `in: body` parameter, or `formData` parameters as the
    /// fields of an object.
    fn swagger_body(&self, op: &Map<String, Value>, body: Option<&Value>, form: &[&Value]) -> Option<BodyDoc> {
        let mut consumes = consumes_of(op.get("consumes"));
        if consumes.is_empty() {
            consumes = consumes_of(self.root.get("consumes"));
        }
        if let Some(body) = body {
            let content_type =
                consumes.iter().find(|t| is_json_media_type(t)).cloned().unwrap_or("application/json".into());
            let schema = body.get("schema");
            return Some(BodyDoc {
                content_type,
                schema: schema.map(|s| self.schemas.normalise(s)).unwrap_or_else(|| json!({})),
                required: body.get("required") == Some(&Value::Bool(true)),
                descriptions: schema.map(|s| self.schemas.descriptions(s)).unwrap_or_default(),
            });
        }
        if form.is_empty() {
            return None;
        }
        let multipart = form.iter().any(|p| p.get("type").and_then(Value::as_str) == Some("file"))
            || consumes.iter().any(|t| t.starts_with("multipart/form-data"));
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut descriptions = std::collections::BTreeMap::new();
        for param in form {
            let name = param.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
            if let Some(text) = param.get("description").and_then(Value::as_str) {
                descriptions.insert(name.clone(), super::schema::clip_description(text));
            }
            if param.get("required") == Some(&Value::Bool(true)) {
                required.push(Value::String(name.clone()));
            }
            properties.insert(name, self.schemas.normalise(param));
        }
        let mut schema = json!({"type": "object", "properties": properties});
        if !required.is_empty() {
            schema["required"] = Value::Array(required.clone());
        }
        Some(BodyDoc {
            content_type: if multipart { "multipart/form-data" } else { "application/x-www-form-urlencoded" }.into(),
            schema,
            required: !required.is_empty(),
            descriptions,
        })
    }

    fn security_scheme(&self, scheme: &Value) -> SecurityScheme {
        let text = |key: &str| scheme.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        match text("type").as_str() {
            "http" => match text("scheme").to_ascii_lowercase().as_str() {
                "bearer" => SecurityScheme::Bearer,
                "basic" => SecurityScheme::Basic,
                other => SecurityScheme::Other(format!("http {other}")),
            },
            "basic" if self.swagger => SecurityScheme::Basic,
            "apiKey" => SecurityScheme::ApiKey { location: text("in"), name: text("name") },
            "oauth2" | "openIdConnect" => SecurityScheme::OAuth2,
            other => SecurityScheme::Other(other.to_owned()),
        }
    }
}

fn consumes_of(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|c| c.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}
