//! The Anthropic Messages API: `POST {base_url}/v1/messages` with one tool,
//! `submit_integration`, whose `input_schema` is the output schema, and
//! `tool_choice` forcing it. The repair round answers the tool call with an
//! error `tool_result` listing the problems.

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::LlmConfig;
use super::output;
use super::prompt::{self, TOOL_NAME};
use super::protocol::{LlmDrafter, Protocol, Reply};

/// The `anthropic-version` header sent.
const API_VERSION: &str = "2023-06-01";

/// Drafts with the Anthropic Messages API. `base_url` is without `/v1`
/// (`https://api.anthropic.com`); without a key no `x-api-key` is sent (for
/// a proxy that adds it).
pub type AnthropicDrafter = LlmDrafter<Anthropic>;

/// The Anthropic Messages protocol.
#[derive(Debug)]
pub enum Anthropic {}

impl Protocol for Anthropic {
    const NAME: &'static str = "anthropic";
    const LABEL: &'static str = "Anthropic";
    const PATH: &'static str = "/v1/messages";
    const KEY_HEADER: (HeaderName, &'static str) = (HeaderName::from_static("x-api-key"), "");

    fn headers() -> Vec<(HeaderName, HeaderValue)> {
        vec![(HeaderName::from_static("anthropic-version"), HeaderValue::from_static(API_VERSION))]
    }

    fn opening(user_prompt: String) -> Vec<Value> {
        vec![json!({"role": "user", "content": user_prompt})]
    }

    fn body(config: &LlmConfig, messages: &[Value]) -> Value {
        json!({
            "model": config.model,
            "max_tokens": config.max_output_tokens,
            "system": prompt::SYSTEM,
            "messages": messages,
            "tools": [{
                "name": TOOL_NAME,
                "description": "Submit the drafted integration with its rationale and warnings.",
                "input_schema": output::output_schema(),
            }],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        })
    }

    fn read(reply: &Value) -> Result<Reply, String> {
        let Some(blocks) = reply.get("content").and_then(Value::as_array) else {
            return Err("answered without message content".into());
        };
        let truncated = reply.get("stop_reason").and_then(Value::as_str) == Some("max_tokens");
        let tool_uses: Vec<&Value> =
            blocks.iter().filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use")).collect();
        let call_ids =
            tool_uses.iter().filter_map(|b| b.get("id").and_then(Value::as_str)).map(str::to_owned).collect();
        let content = if blocks.is_empty() { json!([{"type": "text", "text": "(no content)"}]) } else { json!(blocks) };
        let submitted = match tool_uses.as_slice() {
            [] => Err(format!("no `{TOOL_NAME}` tool call; submit the draft by calling `{TOOL_NAME}`")),
            [one] if one.get("name").and_then(Value::as_str) == Some(TOOL_NAME) => {
                one.get("input").cloned().ok_or_else(|| "the tool call has no input".to_owned())
            }
            [_] => Err(format!("call the `{TOOL_NAME}` tool, no other")),
            _ => Err(format!("call `{TOOL_NAME}` exactly once, with the whole draft")),
        };
        Ok(Reply { submitted, truncated, assistant: json!({"role": "assistant", "content": content}), call_ids })
    }

    fn repair(reply: &Reply, feedback: String) -> Value {
        let answer: Value = if reply.call_ids.is_empty() {
            json!(feedback)
        } else {
            reply
                .call_ids
                .iter()
                .map(|id| json!({"type": "tool_result", "tool_use_id": id, "is_error": true, "content": feedback}))
                .collect()
        };
        json!({"role": "user", "content": answer})
    }
}
