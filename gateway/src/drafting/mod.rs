//! Drafting: turning an agent's intent into the smallest spec that does the
//! job, from the intent and the docs it names and nothing else.
//!
//! [`Drafting::draft`] is the whole pipeline: fetch each doc URL through the
//! address guard ([`docs`]), ask the configured [`Drafter`] for one
//! integration per intent (the offline OpenAPI drafter, or an LLM), then run
//! the [`grounding`] checks, whichever drafter it was. The owner sees the
//! spec with its rationale, warnings and the hashes of the docs read.

mod docs;
mod goal;
mod grounding;
mod llm;
mod offline;
mod openapi;
mod pipeline;

pub use docs::{DocContent, DocKind, DocRecord, DocSource, DocsConfig, FetchedDoc, HttpDocs};
pub use goal::Goal;
pub use llm::{AnthropicDrafter, LlmConfig, OpenAiDrafter};
pub use offline::OfflineDrafter;
pub use openapi::{ApiDoc, BodyDoc, Operation, ParamDoc, SecurityScheme, Server};
pub use pipeline::{Draft, Drafting, IntegrationNotes, Provenance};

use oauth3_policy::{CompileOptions, IntegrationSpec};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One thing an agent wants to do with one API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// One intent or several, as the API accepts them.
#[derive(Debug, Clone)]
pub enum Intents {
    /// `[{…}, {…}]`.
    Many(Vec<Intent>),
    /// `{…}`.
    One(Intent),
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
