//! Drafting with the Anthropic Messages API: `POST {base_url}/v1/messages`
//! with one tool, `submit_integration`, whose `input_schema` is the output
//! schema, and `tool_choice` forcing it. The repair round answers the
//! tool call with an error `tool_result` listing the problems.

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::LlmConfig;
use super::http::Endpoint;
use super::output::{self, Problem};
use super::prompt::{self, TOOL_NAME};
use crate::drafting::{DraftInput, Drafter, Proposal};
use crate::error::{Error, Result};

/// The `anthropic-version` header sent.
const API_VERSION: &str = "2023-06-01";

/// Drafts with the Anthropic Messages API.
#[derive(Debug)]
pub struct AnthropicDrafter {
    config: LlmConfig,
    endpoint: Endpoint,
}

impl AnthropicDrafter {
    /// A drafter using `config` (`base_url` without `/v1`, e.g.
    /// `https://api.anthropic.com`). Fails on an unusable base URL or key.
    /// Without a key no `x-api-key` is sent (for a proxy that adds it).
    pub fn new(config: LlmConfig) -> Result<AnthropicDrafter> {
        let endpoint = Endpoint::new(&config, "Anthropic")?;
        Ok(AnthropicDrafter { config, endpoint })
    }

    async fn send(&self, messages: &[Value]) -> Result<Value> {
        let body = json!({
            "model": self.config.model,
            "max_tokens": self.config.max_output_tokens,
            "system": prompt::SYSTEM,
            "messages": messages,
            "tools": [{
                "name": TOOL_NAME,
                "description": "Submit the drafted integration with its rationale and warnings.",
                "input_schema": output::output_schema(),
            }],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        });
        let mut headers = vec![(HeaderName::from_static("anthropic-version"), HeaderValue::from_static(API_VERSION))];
        if let Some(key) = self.endpoint.key_header("") {
            headers.push((HeaderName::from_static("x-api-key"), key));
        }
        self.endpoint.post("/v1/messages", headers, &body).await
    }
}

/// One reply, read: the content blocks (echoed back in a repair round), the
/// ids of its tool calls, and the checked draft or its problem.
struct Turn {
    content: Value,
    tool_use_ids: Vec<String>,
    outcome: std::result::Result<Proposal, Problem>,
}

fn read_reply(input: DraftInput<'_>, label: &str, reply: &Value) -> Result<Turn> {
    let Some(blocks) = reply.get("content").and_then(Value::as_array) else {
        return Err(Error::bad_gateway("drafter_failed", format!("{label} answered without message content")));
    };
    let truncated = reply.get("stop_reason").and_then(Value::as_str) == Some("max_tokens");
    let tool_uses: Vec<&Value> =
        blocks.iter().filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use")).collect();
    let tool_use_ids =
        tool_uses.iter().filter_map(|b| b.get("id").and_then(Value::as_str)).map(str::to_owned).collect();
    let content = if blocks.is_empty() { json!([{"type": "text", "text": "(no content)"}]) } else { json!(blocks) };
    let outcome = match tool_uses.as_slice() {
        [] => Err(Problem::invalid(format!("no `{TOOL_NAME}` tool call; submit the draft by calling `{TOOL_NAME}`"))),
        [one] if one.get("name").and_then(Value::as_str) == Some(TOOL_NAME) => match one.get("input") {
            Some(value) => output::evaluate(input, value)?,
            None => Err(Problem::invalid("the tool call has no input")),
        },
        [_] => Err(Problem::invalid(format!("call the `{TOOL_NAME}` tool, no other"))),
        _ => Err(Problem::invalid(format!("call `{TOOL_NAME}` exactly once, with the whole draft"))),
    };
    let outcome = match outcome {
        Err(Problem::Invalid(mut problems)) if truncated => {
            problems.push("the reply was cut off at the output token limit; submit a smaller draft".into());
            Err(Problem::Invalid(problems))
        }
        other => other,
    };
    Ok(Turn { content, tool_use_ids, outcome })
}

#[async_trait::async_trait]
impl Drafter for AnthropicDrafter {
    fn name(&self) -> &str {
        "anthropic"
    }

    fn model(&self) -> Option<&str> {
        Some(&self.config.model)
    }

    async fn draft(&self, input: DraftInput<'_>) -> Result<Proposal> {
        let label = self.endpoint.label;
        let mut messages = vec![json!({"role": "user", "content": prompt::user_prompt(&input)})];
        let first = read_reply(input, label, &self.send(&messages).await?)?;
        let problem = match first.outcome {
            Ok(proposal) => return Ok(proposal),
            Err(problem) => problem,
        };
        let feedback = problem.feedback();
        let answer: Value = if first.tool_use_ids.is_empty() {
            json!(feedback)
        } else {
            first
                .tool_use_ids
                .iter()
                .map(|id| json!({"type": "tool_result", "tool_use_id": id, "is_error": true, "content": feedback}))
                .collect()
        };
        messages.push(json!({"role": "assistant", "content": first.content}));
        messages.push(json!({"role": "user", "content": answer}));
        let second = read_reply(input, label, &self.send(&messages).await?)?;
        second.outcome.map_err(|again| output::give_up(label, problem, again))
    }
}
