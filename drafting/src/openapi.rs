//! OpenAPI 3.x and Swagger 2.0 documents, read into one small model: where
//! the API lives, its operations, their parameters and JSON bodies, and its
//! security schemes. Local `$ref`s are inlined; nothing is fetched.

mod matching;
mod read;
mod schema;

use std::collections::BTreeMap;

use serde_json::Value;

pub(crate) use matching::{IN_IDENT, Vocab, closest_operations};

/// An API description.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiDoc {
    /// `openapi` or `swagger` version string as written.
    pub version: String,
    /// `info.title`.
    pub title: Option<String>,
    /// Where the API lives, absolute (relative server URLs resolved against
    /// the document's URL, variables replaced by their defaults).
    pub servers: Vec<Server>,
    /// Every operation, in document order.
    pub operations: Vec<Operation>,
    /// `components.securitySchemes` / `securityDefinitions`, by name.
    pub security_schemes: BTreeMap<String, SecurityScheme>,
    /// Top-level `security`: alternatives, each a set of scheme names.
    pub security: Vec<Vec<String>>,
}

/// One server.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Absolute URL.
    pub url: String,
    /// As written in the document.
    pub declared: String,
}

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Upper case.
    pub method: String,
    /// Path template as documented (`/repos/{owner}/{repo}/issues`).
    pub path: String,
    /// `operationId`.
    pub operation_id: Option<String>,
    /// `summary`.
    pub summary: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// Path parameters (path-level and operation-level merged).
    pub path_params: Vec<ParamDoc>,
    /// Query parameters.
    pub query_params: Vec<ParamDoc>,
    /// The request body, if any.
    pub body: Option<BodyDoc>,
    /// Operation-level `security`, overriding the document's when present.
    pub security: Option<Vec<Vec<String>>>,
}

/// One parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDoc {
    /// Name.
    pub name: String,
    /// `required`.
    pub required: bool,
    /// Allowed values when the schema has a string `enum`.
    pub values: Option<Vec<String>>,
    /// `description` (clipped), for matching goal values to it.
    pub description: Option<String>,
    /// The schema's `format` (`email`, `uri`, `date-time` …).
    pub format: Option<String>,
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyDoc {
    /// The media type chosen (JSON preferred).
    pub content_type: String,
    /// Its schema, local `$ref`s inlined (a cycle or more than 12 levels
    /// becomes `{}`), reduced to validation keywords, `nullable` turned into
    /// a type array with `"null"`, `readOnly` properties dropped. Form
    /// bodies (Swagger `formData`, `application/x-www-form-urlencoded`)
    /// describe their fields as an object schema all the same.
    pub schema: Value,
    /// `required`.
    pub required: bool,
    /// Descriptions of the schema's object properties, by dotted path from
    /// the body (`Data.Initiation.InstructedAmount`), clipped; for matching
    /// goal values to fields.
    pub descriptions: BTreeMap<String, String>,
}

/// How the API authenticates.
#[derive(Debug, Clone, PartialEq)]
pub enum SecurityScheme {
    /// `Authorization: Bearer …`.
    Bearer,
    /// `Authorization: Basic …`.
    Basic,
    /// An API key in a header, query parameter or cookie.
    ApiKey {
        /// `header`, `query` or `cookie`.
        location: String,
        /// Header or parameter name.
        name: String,
    },
    /// OAuth 2 or OpenID Connect (a bearer token in practice).
    OAuth2,
    /// Anything else, by its `type`.
    Other(String),
}

impl Operation {
    /// An operation with nothing documented but its method and path
    /// (drafters and tests build richer ones field by field).
    pub fn new(method: &str, path: &str) -> Operation {
        Operation {
            method: method.to_owned(),
            path: path.to_owned(),
            operation_id: None,
            summary: None,
            description: None,
            tags: vec![],
            path_params: vec![],
            query_params: vec![],
            body: None,
            security: None,
        }
    }
}

/// A path template with its parameter names dropped and no trailing `/`
/// (`/repos/{owner}/{repo}/` → `/repos/{}/{}`).
fn template_shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0;
    for c in path.trim_end_matches('/').chars() {
        match c {
            '{' => {
                if depth == 0 {
                    out.push_str("{}");
                }
                depth += 1;
            }
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

impl ApiDoc {
    /// Reads an OpenAPI 3.x or Swagger 2.0 document fetched from `doc_url`.
    /// `Ok(None)` when `value` is not an API description at all.
    /// `Err` when it claims to be one but cannot be read (an unsupported
    /// version, `paths` not an object). Request bodies are normalised to
    /// validation keywords only (see [`BodyDoc::schema`]).
    pub fn from_value(value: &Value, doc_url: &url::Url) -> Result<Option<ApiDoc>, String> {
        read::read(value, doc_url)
    }

    /// Every operation, the ones most relevant to `goal` first (document
    /// order among equals, so all of them in document order when nothing
    /// matches); used to trim docs for LLM prompts.
    pub fn relevant_operations(&self, goal: &super::Goal) -> Vec<&Operation> {
        let mut scored: Vec<(u32, &Operation)> =
            self.operations.iter().map(|op| (matching::relevance(op, goal), op)).collect();
        scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
        scored.into_iter().map(|(_, op)| op).collect()
    }

    /// The operation an intent's `operations` entry names: an `operationId`
    /// (exactly, else the one matching without regard to case), or `METHOD
    /// /path/template` as documented (parameter names and a trailing `/`
    /// need not match). `Err` says why not, listing the closest documented
    /// operations.
    pub fn find_operation(&self, entry: &str) -> Result<usize, String> {
        let entry = entry.trim();
        if let Some(i) = self.operations.iter().position(|o| o.operation_id.as_deref() == Some(entry)) {
            return Ok(i);
        }
        let folded: Vec<usize> = (0..self.operations.len())
            .filter(|&i| self.operations[i].operation_id.as_deref().is_some_and(|id| id.eq_ignore_ascii_case(entry)))
            .collect();
        if let [one] = folded[..] {
            return Ok(one);
        }
        if let Some((method, path)) = entry.split_once(char::is_whitespace) {
            let method = method.to_ascii_uppercase();
            let shape = template_shape(path.trim());
            let found: Vec<usize> = (0..self.operations.len())
                .filter(|&i| self.operations[i].method == method && template_shape(&self.operations[i].path) == shape)
                .collect();
            if let [one] = found[..] {
                return Ok(one);
            }
            if let Some(&exact) = found.iter().find(|&&i| self.operations[i].path == path.trim()) {
                return Ok(exact);
            }
        }
        Err(matching::closest(self, entry))
    }

    /// The security requirement alternatives that apply to `operation`:
    /// its own when it declares them, else the document's.
    pub fn security_for<'a>(&'a self, operation: &'a Operation) -> &'a [Vec<String>] {
        operation.security.as_deref().unwrap_or(&self.security)
    }
}
