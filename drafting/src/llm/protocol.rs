//! The protocol loop every LLM drafter shares: ask, check the submitted
//! draft (schema, compiler, grounding), and when it is refused, one repair
//! round that sends the problems back; then give up. A [`Protocol`] is the
//! half that differs between APIs: the request body, reading a reply, and
//! the repair message.

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use super::LlmConfig;
use super::http::Endpoint;
use super::output::{self, Problem};
use crate::error::{DraftError, ProviderFailure, Result};
use crate::model::{DraftInput, Drafter, Proposal};

/// The provider-specific half of an LLM drafter.
pub trait Protocol: Send + Sync + 'static {
    /// The drafter's name, recorded with each draft (`anthropic`).
    const NAME: &'static str;
    /// How messages name the provider (`Anthropic`).
    const LABEL: &'static str;
    /// The request path under the base URL (`/v1/messages`).
    const PATH: &'static str;
    /// The header carrying the API key, and the text before the key.
    const KEY_HEADER: (HeaderName, &'static str);

    /// Headers sent on every request besides the key and Content-Type.
    fn headers() -> Vec<(HeaderName, HeaderValue)> {
        Vec::new()
    }
    /// The conversation's opening messages, given the user prompt.
    fn opening(user_prompt: String) -> Vec<Value>;
    /// The request body for a conversation so far.
    fn body(config: &LlmConfig, messages: &[Value]) -> Value;
    /// Reads a 2xx reply, or says what is missing from it (`answered
    /// without a message`), which fails the draft as `drafter_failed`.
    fn read(reply: &Value) -> std::result::Result<Reply, String>;
    /// The user's turn in the repair round, answering `reply` with `feedback`.
    fn repair(reply: &Reply, feedback: String) -> Value;
}

/// One reply, read.
#[derive(Debug)]
pub struct Reply {
    /// The submitted output, or what to tell the model instead.
    pub submitted: std::result::Result<Value, String>,
    /// The reply was cut off at the output token limit.
    pub truncated: bool,
    /// The assistant's turn, echoed back in a repair round.
    pub assistant: Value,
    /// Ids of the tool calls the repair message answers.
    pub call_ids: Vec<String>,
}

/// An LLM drafter speaking `P`.
#[derive(Debug)]
pub struct LlmDrafter<P> {
    config: LlmConfig,
    endpoint: Endpoint,
    protocol: std::marker::PhantomData<P>,
}

impl<P: Protocol> LlmDrafter<P> {
    /// A drafter using `config`. Fails on an unusable base URL, key or
    /// timeout. Without a key no key header is sent.
    pub fn new(config: LlmConfig) -> Result<LlmDrafter<P>> {
        let endpoint = Endpoint::new(&config, P::LABEL)?;
        Ok(LlmDrafter { config, endpoint, protocol: std::marker::PhantomData })
    }

    /// Sends the conversation, reads the reply and checks what it submitted.
    async fn turn(&self, input: DraftInput<'_>, messages: &[Value]) -> Result<(Reply, Result<Proposal, Problem>)> {
        let mut headers = P::headers();
        let (name, prefix) = P::KEY_HEADER;
        if let Some(key) = self.endpoint.key_header(prefix) {
            headers.push((name, key));
        }
        let reply = self.endpoint.post(P::PATH, headers, &P::body(&self.config, messages)).await?;
        let mut reply = P::read(&reply)
            .map_err(|what| DraftError::provider(ProviderFailure::Failed, format!("{} {what}", P::LABEL)))?;
        let outcome = match std::mem::replace(&mut reply.submitted, Ok(Value::Null)) {
            Ok(value) => output::evaluate(input, &value)?,
            Err(problem) => Err(Problem::invalid(problem)),
        };
        let outcome = match outcome {
            Err(Problem::Invalid(mut problems)) if reply.truncated => {
                problems.push("the reply was cut off at the output token limit; submit a smaller draft".into());
                Err(Problem::Invalid(problems))
            }
            other => other,
        };
        Ok((reply, outcome))
    }
}

#[async_trait::async_trait]
impl<P: Protocol> Drafter for LlmDrafter<P> {
    fn name(&self) -> &str {
        P::NAME
    }

    fn model(&self) -> Option<&str> {
        Some(&self.config.model)
    }

    async fn draft(&self, input: DraftInput<'_>) -> Result<Proposal> {
        let mut messages = P::opening(super::prompt::user_prompt(&input));
        let (first, outcome) = self.turn(input, &messages).await?;
        let problem = match outcome {
            Ok(proposal) => return Ok(proposal),
            Err(problem) => problem,
        };
        let answer = P::repair(&first, problem.feedback());
        messages.push(first.assistant);
        messages.push(answer);
        let (_, again) = self.turn(input, &messages).await?;
        again.map_err(|again| output::give_up(P::LABEL, problem, again))
    }
}
