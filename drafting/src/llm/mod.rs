//! LLM drafters: the Anthropic Messages API and OpenAI-compatible chat
//! completions (vLLM, llama.cpp, Ollama inside the same CVM). Structured
//! output (a forced tool call / a JSON-schema response format) validated
//! against the spec's JSON Schema, with one repair round that feeds the
//! errors back. The prompt holds the system instructions, the intent, the
//! docs trimmed to budget and secret names, never values.
//!
//! Each draft is at most two requests: the first, and one repair round when
//! the output is not valid JSON of the right shape, does not compile, or
//! fails the grounding checks. Provider failures are not retried: 429 is
//! `drafter_rate_limited` and 529/503/`overloaded_error` `drafter_overloaded`
//! (both 503 with the provider's `Retry-After`), a timeout
//! `drafter_timeout`, anything else `drafter_unreachable` or
//! `drafter_failed`.

mod anthropic;
mod http;
mod openai;
mod output;
mod prompt;
mod protocol;

pub use anthropic::{Anthropic, AnthropicDrafter};
pub use openai::{OpenAi, OpenAiDrafter};
pub use protocol::{LlmDrafter, Protocol, Reply};

use std::time::Duration;

/// How to reach one LLM provider.
#[derive(Clone)]
pub struct LlmConfig {
    /// API base (`https://api.anthropic.com`, `http://127.0.0.1:8000/v1`).
    pub base_url: String,
    /// API key; never logged. Optional for local OpenAI-compatible servers.
    pub api_key: Option<String>,
    /// Model name.
    pub model: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Largest reply, in tokens.
    pub max_output_tokens: u32,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("max_output_tokens", &self.max_output_tokens)
            .finish()
    }
}
