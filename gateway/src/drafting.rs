//! Drafting: turning an agent's intent into a spec for its owner to approve.
//! The [`Drafter`] trait is the seam; real drafters (offline OpenAPI, LLM
//! providers) arrive with the drafting issue. Until then [`NoDrafter`]
//! refuses intents with a clear 501.

use oauth3_policy::PermitSpec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

/// A drafted spec and how it came about.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The proposed spec.
    pub spec: PermitSpec,
    /// Which drafter (and model) produced it.
    pub drafter: String,
}

/// Turns intents into a spec, using only the intents and the docs they name.
#[async_trait::async_trait]
pub trait Drafter: Send + Sync {
    /// Drafts one spec covering every intent.
    async fn draft(&self, intents: &[Intent]) -> Result<Draft>;
}

/// No drafter configured: intents are refused with 501.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDrafter;

#[async_trait::async_trait]
impl Drafter for NoDrafter {
    async fn draft(&self, _: &[Intent]) -> Result<Draft> {
        Err(Error::NotImplemented {
            code: "drafter_unavailable",
            message: "this gateway has no drafter yet, so `intent` cannot be turned into a spec; \
                      propose the spec yourself in `capabilities` (see policy/README.md for the format)"
                .into(),
        })
    }
}
