//! What drafting works on and with: an agent's [`Intent`], what a
//! [`Drafter`] is given ([`DraftInput`]) and returns ([`Proposal`]), and where
//! docs come from ([`DocSource`], [`FetchedDoc`]).

use oauth3_policy::{CompileOptions, IntegrationSpec};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::openapi::ApiDoc;

/// One thing an agent wants to do with one API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// Integration name the agent wants (`github`).
    pub name: String,
    /// What for, in the agent's words.
    pub goal: String,
    /// Where the API is documented.
    #[serde(default)]
    pub doc_urls: Vec<String>,
    /// Names of secrets the owner is expected to hold (`GITHUB_TOKEN`).
    #[serde(default)]
    pub secret_hints: Vec<String>,
    /// The operations the agent needs, each a documented `operationId` or
    /// `METHOD /path/template` (`GET /repos/{owner}/{repo}/issues`). When
    /// given, exactly these are drafted (still narrowed by the goal); empty:
    /// the drafter picks them from the goal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
}

/// One intent or several, as the API accepts them.
#[derive(Debug, Clone)]
pub enum Intents {
    /// `[{…}, {…}]`.
    Many(Vec<Intent>),
    /// `{…}`.
    One(Intent),
}

impl schemars::JsonSchema for Intents {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Intents".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = generator.subschema_for::<Intent>();
        schemars::json_schema!({
            "description": "One intent, or a list of them (one per API).",
            "anyOf": [one, {"type": "array", "items": one, "minItems": 1}]
        })
    }
}

// By hand rather than `untagged`, so a mistake inside an intent is reported
// as itself (`unknown field doc_url`), not as "matched no variant".
impl<'de> Deserialize<'de> for Intents {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Intents;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an intent object or a list of them")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> std::result::Result<Intents, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(Intents::Many)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> std::result::Result<Intents, A::Error> {
                Intent::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Intents::One)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Intents {
    /// As a list.
    pub fn into_vec(self) -> Vec<Intent> {
        match self {
            Intents::Many(intents) => intents,
            Intents::One(intent) => vec![intent],
        }
    }
}

/// What a drafter is given for one intent: the intent and its fetched docs
/// (in `doc_urls` order), nothing else.
#[derive(Debug, Clone, Copy)]
pub struct DraftInput<'a> {
    /// The agent's intent.
    pub intent: &'a Intent,
    /// The docs its `doc_urls` point at.
    pub docs: &'a [FetchedDoc],
    /// How the gateway compiles specs (which plain-http upstreams it allows),
    /// for drafters that check their output before returning it.
    pub compile: &'a CompileOptions,
}

/// One drafted integration and why it looks the way it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// The integration, named after the intent.
    pub integration: IntegrationSpec,
    /// One line per choice, for the owner.
    pub rationale: Vec<String>,
    /// Anything the drafter wants the owner to look at twice.
    pub warnings: Vec<String>,
}

/// Turns one intent and its docs into one integration. Implementations are
/// trusted to draft, not to decide: every proposal is grounded afterwards.
#[async_trait::async_trait]
pub trait Drafter: Send + Sync {
    /// Short name recorded with each request (`offline-openapi`, `anthropic`).
    fn name(&self) -> &str;
    /// The model, for LLM drafters.
    fn model(&self) -> Option<&str> {
        None
    }
    /// Drafts the integration for `input.intent`.
    async fn draft(&self, input: DraftInput<'_>) -> Result<Proposal>;
}

/// What a fetched doc turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// OpenAPI 3.x.
    Openapi,
    /// Swagger 2.0.
    Swagger,
    /// HTML, converted to text.
    Html,
    /// Markdown.
    Markdown,
    /// Plain text (or anything else textual).
    Text,
}

/// A doc's content, ready for a drafter.
#[derive(Debug, Clone, PartialEq)]
pub enum DocContent {
    /// An API description.
    Api(Box<ApiDoc>),
    /// Text (HTML already converted).
    Text(String),
}

/// One fetched doc.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedDoc {
    /// The URL as given in the intent.
    pub url: String,
    /// SHA-256 (lower-case hex) of the bytes received.
    pub sha256: String,
    /// How many bytes were received.
    pub bytes: usize,
    /// What it is.
    pub kind: DocKind,
    /// Its content.
    pub content: DocContent,
}

impl FetchedDoc {
    /// What the owner is shown about this doc.
    pub fn record(&self) -> DocRecord {
        DocRecord { url: self.url.clone(), sha256: self.sha256.clone(), bytes: self.bytes, kind: self.kind }
    }
}

/// What the owner is shown about a doc the drafter read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DocRecord {
    /// The URL.
    pub url: String,
    /// SHA-256 of the bytes received.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: usize,
    /// What it was read as.
    pub kind: DocKind,
}

/// Where docs come from. [`HttpDocs`] is the real one.
#[async_trait::async_trait]
pub trait DocSource: Send + Sync {
    /// Fetches and reads one doc URL.
    async fn fetch(&self, url: &str) -> Result<FetchedDoc>;
}
