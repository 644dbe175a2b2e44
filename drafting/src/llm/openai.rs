//! OpenAI-compatible chat completions (OpenAI, or vLLM / llama.cpp / Ollama
//! in the same CVM): `POST {base_url}/chat/completions` with a `json_schema`
//! response format. The reply's `content` must be exactly one JSON object; a
//! reply carrying a function call instead is read from its `arguments`. The
//! repair round sends the reply back as the assistant's turn and the
//! problems as the user's.

use reqwest::header::{AUTHORIZATION, HeaderName};
use serde_json::{Value, json};

use super::LlmConfig;
use super::output;
use super::prompt::{self, TOOL_NAME};
use super::protocol::{LlmDrafter, Protocol, Reply};

/// Drafts with an OpenAI-compatible chat completions API. `base_url`
/// includes `/v1` (`http://127.0.0.1:8000/v1`); without an API key no
/// `Authorization` header is sent.
pub type OpenAiDrafter = LlmDrafter<OpenAi>;

/// The OpenAI-compatible chat completions protocol.
#[derive(Debug)]
pub enum OpenAi {}

impl Protocol for OpenAi {
    const NAME: &'static str = "openai-compatible";
    const LABEL: &'static str = "the OpenAI-compatible server";
    const PATH: &'static str = "/chat/completions";
    const KEY_HEADER: (HeaderName, &'static str) = (AUTHORIZATION, "Bearer ");

    fn opening(user_prompt: String) -> Vec<Value> {
        vec![json!({"role": "system", "content": prompt::SYSTEM}), json!({"role": "user", "content": user_prompt})]
    }

    fn body(config: &LlmConfig, messages: &[Value]) -> Value {
        json!({
            "model": config.model,
            "messages": messages,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": TOOL_NAME, "schema": output::output_schema(), "strict": false},
            },
            "max_tokens": config.max_output_tokens,
        })
    }

    fn read(reply: &Value) -> Result<Reply, String> {
        let choice = reply.get("choices").and_then(Value::as_array).and_then(|c| c.first());
        let Some(message) = choice.and_then(|c| c.get("message")) else {
            return Err("answered without a message".into());
        };
        let truncated = choice.and_then(|c| c.get("finish_reason")).and_then(Value::as_str) == Some("length");
        let content = message.get("content").and_then(Value::as_str).filter(|c| !c.trim().is_empty());
        let calls = message.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let text: Result<&str, String> = match (content, calls) {
            (Some(text), _) => Ok(text),
            (None, [call]) => call
                .get("function")
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
                .ok_or_else(|| "the function call has no arguments".to_owned()),
            (None, []) => Err("the reply is empty; answer with the JSON object".into()),
            (None, _) => Err("answer with one JSON object, not several function calls".into()),
        };
        let said = match text {
            Ok(text) if !text.is_empty() => text.to_owned(),
            _ => "(empty reply)".to_owned(),
        };
        Ok(Reply {
            submitted: text.and_then(output::parse_strict),
            truncated,
            assistant: json!({"role": "assistant", "content": said}),
            call_ids: Vec::new(),
        })
    }

    fn repair(_: &Reply, feedback: String) -> Value {
        json!({"role": "user", "content": feedback})
    }
}
