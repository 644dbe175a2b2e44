//! One JSON POST to an LLM provider, with its failures mapped onto the
//! gateway's errors. No retries: a rate-limited or overloaded provider is
//! reported at once (503 with `Retry-After` when the provider gave one), so
//! the agent, not the gateway, decides when to try again.
//!
//! The API key travels only in its header (marked sensitive), and every
//! message built here is scrubbed of it, in case a provider echoes it back.

use std::time::Duration;

use oauth3_netguard::tls_config;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::Value;

use super::LlmConfig;
use crate::error::{DraftError, ProviderFailure, Result};
use crate::text::{clip, one_line};

/// Largest reply body read from a provider.
const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;
/// Longest provider message quoted in an error.
const PROVIDER_MESSAGE_CHARS: usize = 300;

/// A provider endpoint: the client, the key and how to name the provider.
pub(crate) struct Endpoint {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    timeout: Duration,
    /// How messages name the provider (`Anthropic`).
    pub(crate) label: &'static str,
}

// Never the key: the drafter's `LlmConfig` says whether one is set.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("label", &self.label).field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Checks `config.base_url` and builds the client: rustls with ring and
    /// the Mozilla roots, no proxy, no redirects, `config.timeout` per
    /// request. The base URL is the operator's and may be plain http (a
    /// model in the same CVM), so there is no address guard.
    pub(crate) fn new(config: &LlmConfig, label: &'static str) -> Result<Endpoint> {
        let parsed = url::Url::parse(&config.base_url)
            .map_err(|e| DraftError::Config(format!("{label} base URL `{}`: {e}", config.base_url)))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(DraftError::Config(format!(
                "{label} base URL `{}`: use an http(s) URL without query or fragment",
                config.base_url
            )));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(DraftError::Config(format!("{label} base URL: put credentials in the API key, not the URL")));
        }
        if config.timeout.is_zero() {
            return Err(DraftError::Config(format!("{label} timeout must be more than zero")));
        }
        if config.api_key.as_deref().is_some_and(|key| HeaderValue::from_str(key).is_err() || key.is_empty()) {
            return Err(DraftError::Config(format!("{label} API key is empty or not a valid header value")));
        }
        let tls = tls_config(&[]).map_err(|e| DraftError::Config(format!("{label} TLS: {e}")))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .user_agent(concat!("oauth3-drafter/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DraftError::Config(format!("{label} HTTP client: {e}")))?;
        Ok(Endpoint {
            client,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            api_key: config.api_key.clone(),
            timeout: config.timeout,
            label,
        })
    }

    /// The API key as a sensitive header value, if one is configured.
    pub(crate) fn key_header(&self, prefix: &str) -> Option<HeaderValue> {
        let key = self.api_key.as_deref()?;
        let mut value = HeaderValue::from_str(&format!("{prefix}{key}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// POSTs `body` as JSON to `{base_url}{path}` and returns the JSON reply
    /// of a 2xx answer; everything else becomes an error.
    pub(crate) async fn post(
        &self,
        path: &str,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: &Value,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base_url);
        let body = serde_json::to_vec(body).map_err(|e| DraftError::Internal(format!("drafter request: {e}")))?;
        let mut map = HeaderMap::new();
        map.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in headers {
            map.insert(name, value);
        }
        let response = self.client.post(&url).headers(map).body(body).send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let bytes = self.read(response).await?;
        if !status.is_success() {
            return Err(self.status_error(status, retry_after, &bytes));
        }
        // Strict: a reply with duplicate keys could be read two ways.
        oauth3_policy::parse_strict_json(&bytes).map_err(|_| {
            DraftError::provider(
                ProviderFailure::Failed,
                format!("{} answered {status} with a body that is not strict JSON", self.label),
            )
        })
    }

    /// Reads the body, at most [`MAX_REPLY_BYTES`].
    async fn read(&self, mut response: reqwest::Response) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(DraftError::provider(
                    ProviderFailure::Failed,
                    format!("{} sent a reply larger than {MAX_REPLY_BYTES} bytes", self.label),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// A failure to send or to read.
    fn transport(&self, error: reqwest::Error) -> DraftError {
        if error.is_timeout() {
            return DraftError::provider(
                ProviderFailure::Timeout,
                format!("{} did not answer within {}", self.label, humantime::format_duration(self.timeout)),
            );
        }
        let connect = error.is_connect();
        let reason = self.redact(&clip(&error_chain(&error.without_url()), PROVIDER_MESSAGE_CHARS));
        if connect {
            return DraftError::provider(
                ProviderFailure::Unreachable,
                format!("cannot reach {} at {}: {reason}", self.label, self.base_url),
            );
        }
        DraftError::provider(ProviderFailure::Unreachable, format!("{} connection failed: {reason}", self.label))
    }

    /// A non-2xx answer.
    fn status_error(&self, status: StatusCode, retry_after: Option<u64>, body: &[u8]) -> DraftError {
        let (kind, message) = provider_error(body);
        let message = self.redact(&clip(&message, PROVIDER_MESSAGE_CHARS));
        let label = self.label;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return DraftError::provider(
                ProviderFailure::RateLimited { retry_after },
                format!("{label} is rate-limiting the gateway's drafter; try again later ({message})"),
            );
        }
        if status.as_u16() == 529 || status == StatusCode::SERVICE_UNAVAILABLE || kind == "overloaded_error" {
            return DraftError::provider(
                ProviderFailure::Overloaded { retry_after },
                format!("{label} is overloaded; try again later ({message})"),
            );
        }
        DraftError::provider(ProviderFailure::Failed, format!("{label} answered {status}: {message}"))
    }

    /// `text` with the API key (if any) replaced.
    pub(crate) fn redact(&self, text: &str) -> String {
        match self.api_key.as_deref() {
            Some(key) if !key.is_empty() => text.replace(key, "[redacted]"),
            _ => text.to_owned(),
        }
    }
}

/// `(error.type, error.message)` from an Anthropic or OpenAI error body,
/// or the body itself when it is not one.
fn provider_error(body: &[u8]) -> (String, String) {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let error = value.as_ref().and_then(|v| v.get("error"));
    let kind = error.and_then(|e| e.get("type")).and_then(Value::as_str).unwrap_or_default().to_owned();
    let message = match error {
        Some(Value::Object(e)) => e.get("message").and_then(Value::as_str).map(str::to_owned),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let message = message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = one_line(&text);
        if text.is_empty() { "no message".to_owned() } else { text }
    });
    (kind, message)
}

/// `Retry-After` in whole seconds (fractions rounded up); HTTP dates are
/// ignored.
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(seconds);
    }
    let seconds: f64 = text.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| seconds.ceil() as u64)
}

/// The error and its causes, `: `-joined, without repeats.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("17"));
        assert_eq!(retry_after(&headers), Some(17));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1.2"));
        assert_eq!(retry_after(&headers), Some(2));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn provider_errors_are_read_from_both_formats() {
        let anthropic = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(provider_error(anthropic), ("overloaded_error".into(), "Overloaded".into()));
        let openai = br#"{"error":{"message":"busy","type":"server_error","code":null}}"#;
        assert_eq!(provider_error(openai), ("server_error".into(), "busy".into()));
        assert_eq!(provider_error(b"<html>\n Bad   gateway</html>").1, "<html> Bad gateway</html>");
    }
}
