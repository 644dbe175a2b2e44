//! `oauth3-drafting`: turning an agent's intent into the smallest spec that
//! does the job, from the intent and the docs it names and nothing else.
//! Advisory: the owner approves what it drafts, and the policy enforces
//! only what was approved.
//!
//! [`Drafting::draft`] is the whole pipeline: fetch each doc URL through the
//! address guard ([`HttpDocs`]), ask the configured [`Drafter`] for one
//! integration per intent (the [`OfflineDrafter`] reading an OpenAPI
//! document, or an LLM), then run the grounding checks, whichever drafter it
//! was. The owner sees the spec with its rationale, warnings and the hashes
//! of the docs read.

mod docs;
mod error;
mod goal;
mod grounding;
mod llm;
mod model;
mod offline;
mod openapi;
mod pin;
mod pipeline;
mod text;

pub use docs::{DocsConfig, HttpDocs, read_doc};
pub use error::{DraftError, GroundingFailure, ProviderFailure, Result, RuleRef};
pub use goal::Goal;
pub use llm::{Anthropic, AnthropicDrafter, LlmConfig, LlmDrafter, OpenAi, OpenAiDrafter, Protocol, Reply};
pub use model::{
    DocContent, DocKind, DocRecord, DocSource, DraftInput, Drafter, FetchedDoc, Intent, Intents, Proposal,
};
pub use offline::OfflineDrafter;
pub use openapi::{ApiDoc, BodyDoc, Operation, ParamDoc, SecurityScheme, Server};
pub use pipeline::{Draft, Drafting, IntegrationNotes, Provenance};
