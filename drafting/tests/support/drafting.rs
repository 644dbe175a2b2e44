//! Test doubles for the drafting pipeline: docs served from memory (with a
//! fetch count) and a drafter that always proposes the same thing.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use oauth3_drafting::{
    ApiDoc, DocContent, DocKind, DocSource, DraftError, DraftInput, Drafter, FetchedDoc, Operation, Proposal, Server,
};
use serde_json::{Value, json};

/// Serves prepared docs by URL (404 for others) and counts fetches.
pub struct MemoryDocs {
    docs: HashMap<String, FetchedDoc>,
    fetches: AtomicUsize,
}

impl MemoryDocs {
    /// Serves each doc at its own `url`.
    pub fn new(docs: impl IntoIterator<Item = FetchedDoc>) -> MemoryDocs {
        MemoryDocs { docs: docs.into_iter().map(|d| (d.url.clone(), d)).collect(), fetches: AtomicUsize::new(0) }
    }

    /// Fetches so far.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl DocSource for MemoryDocs {
    async fn fetch(&self, url: &str) -> Result<FetchedDoc, DraftError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.docs.get(url).cloned().ok_or_else(|| DraftError::DocFetchFailed(format!("{url} answered 404")))
    }
}

/// Returns the same proposal whatever it is asked.
pub struct FixedDrafter(pub Proposal);

#[async_trait::async_trait]
impl Drafter for FixedDrafter {
    fn name(&self) -> &str {
        "fixed"
    }

    async fn draft(&self, _input: DraftInput<'_>) -> Result<Proposal, DraftError> {
        Ok(self.0.clone())
    }
}

/// Where [`issues_api`] is served.
pub const API_DOC_URL: &str = "https://docs.issues.example/openapi.json";

/// An OpenAPI description of an issues API at https://api.issues.example/v1
/// with these `(method, path template)` operations, served at [`API_DOC_URL`].
pub fn issues_api(operations: &[(&str, &str)]) -> FetchedDoc {
    let api = ApiDoc {
        version: "3.0.3".into(),
        title: Some("Issues".into()),
        servers: vec![Server {
            url: "https://api.issues.example/v1".into(),
            declared: "https://api.issues.example/v1".into(),
        }],
        operations: operations.iter().map(|(method, path)| Operation::new(method, path)).collect(),
        security_schemes: BTreeMap::new(),
        security: vec![],
    };
    FetchedDoc {
        url: API_DOC_URL.into(),
        sha256: "0".repeat(64),
        bytes: 1,
        kind: DocKind::Openapi,
        content: DocContent::Api(Box::new(api)),
    }
}

/// A Markdown doc at `url`.
pub fn markdown_doc(url: &str, text: &str) -> FetchedDoc {
    FetchedDoc {
        url: url.into(),
        sha256: "0".repeat(64),
        bytes: text.len(),
        kind: DocKind::Markdown,
        content: DocContent::Text(text.into()),
    }
}

/// The issues integration as JSON, with `overrides` replacing top-level fields.
pub fn spec_with(mut spec: Value, overrides: Value) -> oauth3_policy::IntegrationSpec {
    for (key, value) in overrides.as_object().unwrap() {
        spec[key] = value.clone();
    }
    serde_json::from_value(spec).unwrap()
}

/// The fields every issues integration in these tests shares.
pub fn issues_spec(query: Value, rate_limit: Value) -> Value {
    json!({
        "name": "issues",
        "base_url": "https://api.issues.example/v1",
        "rules": [{"method": "GET", "path": "/repos/o/r/issues", "query": query}],
        "inject": {"headers": {"Authorization": "Bearer {ISSUES_TOKEN}"}},
        "secrets": ["ISSUES_TOKEN"],
        "rate_limit": rate_limit
    })
}
