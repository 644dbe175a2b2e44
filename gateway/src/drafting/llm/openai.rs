//! Drafting with an OpenAI-compatible chat completions API (OpenAI, or
//! vLLM / llama.cpp / Ollama in the same CVM): `POST
//! {base_url}/chat/completions` with a `json_schema` response format. The
//! reply's `content` must be exactly one JSON object; a reply carrying a
//! function call instead is read from its `arguments`. The repair round
//! sends the reply back as the assistant's turn and the problems as the
//! user's.

use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};

use super::LlmConfig;
use super::http::Endpoint;
use super::output::{self, Problem};
use super::prompt::{self, TOOL_NAME};
use crate::drafting::{DraftInput, Drafter, Proposal};
use crate::error::{Error, Result};

/// Drafts with an OpenAI-compatible chat completions API.
#[derive(Debug)]
pub struct OpenAiDrafter {
    config: LlmConfig,
    endpoint: Endpoint,
}

impl OpenAiDrafter {
    /// A drafter using `config` (`base_url` including `/v1`, e.g.
    /// `http://127.0.0.1:8000/v1`). Without an API key no `Authorization`
    /// header is sent. Fails on an unusable base URL or key.
    pub fn new(config: LlmConfig) -> Result<OpenAiDrafter> {
        let endpoint = Endpoint::new(&config, "the OpenAI-compatible server")?;
        Ok(OpenAiDrafter { config, endpoint })
    }

    async fn send(&self, messages: &[Value]) -> Result<Value> {
        let body = json!({
            "model": self.config.model,
            "messages": messages,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": TOOL_NAME, "schema": output::output_schema(), "strict": false},
            },
            "max_tokens": self.config.max_output_tokens,
        });
        let mut headers: Vec<(_, HeaderValue)> = Vec::new();
        if let Some(key) = self.endpoint.key_header("Bearer ") {
            headers.push((AUTHORIZATION, key));
        }
        self.endpoint.post("/chat/completions", headers, &body).await
    }
}

/// One reply, read: the text it submitted (echoed back in a repair round)
/// and the checked draft or its problem.
struct Turn {
    text: String,
    outcome: std::result::Result<Proposal, Problem>,
}

fn read_reply(input: DraftInput<'_>, label: &str, reply: &Value) -> Result<Turn> {
    let choice = reply.get("choices").and_then(Value::as_array).and_then(|c| c.first());
    let Some(message) = choice.and_then(|c| c.get("message")) else {
        return Err(Error::bad_gateway("drafter_failed", format!("{label} answered without a message")));
    };
    let truncated = choice.and_then(|c| c.get("finish_reason")).and_then(Value::as_str) == Some("length");
    let content = message.get("content").and_then(Value::as_str).filter(|c| !c.trim().is_empty());
    let calls = message.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let submitted: std::result::Result<&str, Problem> = match (content, calls) {
        (Some(text), _) => Ok(text),
        (None, [call]) => call
            .get("function")
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .ok_or_else(|| Problem::invalid("the function call has no arguments")),
        (None, []) => Err(Problem::invalid("the reply is empty; answer with the JSON object")),
        (None, _) => Err(Problem::invalid("answer with one JSON object, not several function calls")),
    };
    let text = submitted.as_ref().map(|t| (*t).to_owned()).unwrap_or_default();
    let outcome = match submitted.and_then(output::parse_strict) {
        Ok(value) => output::evaluate(input, &value)?,
        Err(problem) => Err(problem),
    };
    let outcome = match outcome {
        Err(Problem::Invalid(mut problems)) if truncated => {
            problems.push("the reply was cut off at the output token limit; submit a smaller draft".into());
            Err(Problem::Invalid(problems))
        }
        other => other,
    };
    Ok(Turn { text, outcome })
}

#[async_trait::async_trait]
impl Drafter for OpenAiDrafter {
    fn name(&self) -> &str {
        "openai-compatible"
    }

    fn model(&self) -> Option<&str> {
        Some(&self.config.model)
    }

    async fn draft(&self, input: DraftInput<'_>) -> Result<Proposal> {
        let label = self.endpoint.label;
        let mut messages = vec![
            json!({"role": "system", "content": prompt::SYSTEM}),
            json!({"role": "user", "content": prompt::user_prompt(&input)}),
        ];
        let first = read_reply(input, label, &self.send(&messages).await?)?;
        let problem = match first.outcome {
            Ok(proposal) => return Ok(proposal),
            Err(problem) => problem,
        };
        let said = if first.text.is_empty() { "(empty reply)".to_owned() } else { first.text };
        messages.push(json!({"role": "assistant", "content": said}));
        messages.push(json!({"role": "user", "content": problem.feedback()}));
        let second = read_reply(input, label, &self.send(&messages).await?)?;
        second.outcome.map_err(|again| output::give_up(label, problem, again))
    }
}
