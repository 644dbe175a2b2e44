//! One call out of the sandbox: what the guest asks for, what it gets back,
//! and what is recorded about it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use oauth3_policy::{DenyCode, OutboundRequest, Verdict};
use serde::Serialize;

/// A request as the guest made it (`github('GET', '/repos/o/r/issues', {query})`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestCall {
    /// Integration (sandbox function) name.
    pub integration: String,
    /// HTTP method.
    pub method: String,
    /// Path relative to the integration's base URL.
    pub path: String,
    /// Query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// Headers the agent asked for.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Option<Vec<u8>>,
}

impl GuestCall {
    /// The call as the policy sees it.
    pub fn as_request(&self) -> OutboundRequest<'_> {
        OutboundRequest {
            integration: &self.integration,
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: self.body.as_deref(),
        }
    }
}

/// An upstream response with every secret value scrubbed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (hop-by-hop ones removed).
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl GuestResponse {
    /// The first header of that name, ignoring letter case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a call returned no response. Messages are safe to show the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The permit does not allow the call; nothing was sent.
    #[error("{code}: {message}")]
    Denied {
        /// Policy deny code.
        code: DenyCode,
        /// Why.
        message: String,
    },
    /// The permit's rate limit is exhausted; nothing was sent.
    #[error("rate_limited: try again in {} ms", retry_after.as_millis())]
    RateLimited {
        /// When a call would be allowed again.
        retry_after: Duration,
    },
    /// A secret the integration injects is not set; nothing was sent.
    #[error("secret_missing: secret {0} is not set by the permit's owner")]
    SecretMissing(String),
    /// The resolved address is loopback, private, link-local or otherwise
    /// non-public and the operator has not allow-listed the upstream.
    #[error("address_not_allowed: {0}")]
    AddressNotAllowed(String),
    /// The response body exceeded the integration's limit.
    #[error("response_too_large: the response exceeded {limit} bytes")]
    ResponseTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The call did not finish within the integration's timeout.
    #[error("timeout: no response within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Too many calls in this run, or too many at once.
    #[error("call_limit: {0}")]
    CallLimit(String),
    /// Connecting or talking to the upstream failed.
    #[error("upstream_error: {0}")]
    Upstream(String),
    /// The run ended (it finished, failed or was cut off) before this call
    /// was sent, so it was not sent.
    #[error("run_ended: the run ended before this call was sent")]
    RunEnded,
    /// The rule that allows the call asks the owner to confirm each call,
    /// and this exact request has no approval (yet); nothing was sent. The
    /// message starts with the confirmation's id and `: ` (guests read it
    /// from there); running the identical call again once the owner has
    /// approved it sends it, once.
    #[error(
        "confirmation_required: {id}: the owner must confirm this exact call; run it again once they have approved it"
    )]
    ConfirmationRequired {
        /// The pending confirmation's id.
        id: String,
    },
    /// The owner's confirmations could not be checked; nothing was sent.
    #[error("confirmation_unavailable: the owner's confirmations could not be checked; nothing was sent")]
    ConfirmationUnavailable,
}

impl CallError {
    /// A stable snake_case code for the guest (`err.code`) and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::Denied { code, .. } => code.as_str(),
            CallError::RateLimited { .. } => "rate_limited",
            CallError::SecretMissing(_) => "secret_missing",
            CallError::AddressNotAllowed(_) => "address_not_allowed",
            CallError::ResponseTooLarge { .. } => "response_too_large",
            CallError::Timeout(_) => "timeout",
            CallError::CallLimit(_) => "call_limit",
            CallError::Upstream(_) => "upstream_error",
            CallError::RunEnded => "run_ended",
            CallError::ConfirmationRequired { .. } => "confirmation_required",
            CallError::ConfirmationUnavailable => "confirmation_unavailable",
        }
    }

    /// The message without its code: for where the code is a field of its own.
    pub fn detail(&self) -> String {
        let text = self.to_string();
        match text.strip_prefix(self.code()).and_then(|m| m.strip_prefix(": ")) {
            Some(detail) => detail.to_owned(),
            None => text,
        }
    }
}

/// What the audit log keeps about one call. Never holds a secret value: the
/// URL is built from the spec and the agent's request, with injected query
/// parameters shown by name only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// Integration name.
    pub integration: String,
    /// HTTP method as the guest gave it.
    pub method: String,
    /// Upstream URL (or the guest's path when the call was refused before
    /// a URL existed), injected values redacted.
    pub url: String,
    /// Whether the call went ahead (`allow`) or was refused (`deny`).
    pub decision: Verdict,
    /// Deny or failure code (`path_not_allowed`, `rate_limited`, `timeout`, ...).
    pub reason: Option<&'static str>,
    /// Upstream status, when a response arrived.
    pub status: Option<u16>,
    /// Request body bytes sent.
    pub request_bytes: u64,
    /// Response body bytes received.
    pub response_bytes: u64,
    /// When the call started.
    #[serde(with = "unix_millis")]
    pub started_at: SystemTime,
    /// How long it took.
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
    /// The confirmation this call waits for (`confirmation_required`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_id: Option<String>,
    /// The audit entry written before it was sent, if the sink wrote one
    /// ([`crate::AuditSink::sending`]).
    #[serde(skip)]
    pub audit_entry: Option<i64>,
}

impl CallRecord {
    /// A record of `call` started now, allowed until something says otherwise.
    pub fn started(call: &GuestCall) -> CallRecord {
        CallRecord {
            integration: call.integration.clone(),
            method: call.method.clone(),
            url: call.path.clone(),
            decision: Verdict::Allow,
            reason: None,
            status: None,
            request_bytes: 0,
            response_bytes: 0,
            started_at: SystemTime::now(),
            duration: Duration::ZERO,
            confirmation_id: None,
            audit_entry: None,
        }
    }

    /// A record of `call` refused for `reason` before anything was sent.
    pub fn refused(call: &GuestCall, reason: &'static str) -> CallRecord {
        CallRecord { decision: Verdict::Deny, reason: Some(reason), ..CallRecord::started(call) }
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

mod unix_millis {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64))
    }
}

/// The sandbox's only way out: something that performs a guest's call and
/// records it. [`crate::Egress`] bound to a run's context is the real one.
#[async_trait::async_trait]
pub trait Outbound: Send + Sync {
    /// Performs one call. It must not be sent once `gate` is closed (answer
    /// [`CallError::RunEnded`] instead); a call already sent may finish.
    async fn call(&self, call: GuestCall, gate: &CallGate) -> (Result<GuestResponse, CallError>, CallRecord);

    /// Records a call the sandbox refused itself (past the run's call
    /// limit), so that whatever keeps the audit log sees every call the
    /// outcome lists. Does nothing by default.
    async fn refused(&self, _record: &CallRecord) {}
}

/// Whether a run's calls may still leave the sandbox. Open while the run
/// lasts; the runtime closes it when the run ends, for any reason, and from
/// then on a call that has not been sent is not sent.
#[derive(Clone, Default)]
pub struct CallGate(Arc<Gate>);

#[derive(Default)]
struct Gate {
    closed: AtomicBool,
    changed: tokio::sync::Notify,
}

impl CallGate {
    /// An open gate.
    pub fn new() -> CallGate {
        CallGate::default()
    }

    /// True until [`CallGate::close`].
    pub fn is_open(&self) -> bool {
        !self.0.closed.load(Ordering::SeqCst)
    }

    /// Closes the gate for good and wakes every [`CallGate::closed`].
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }

    /// Resolves once the gate is closed.
    pub async fn closed(&self) {
        loop {
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.is_open() {
                return;
            }
            changed.await;
        }
    }

    /// `Err(RunEnded)` once closed: what egress asks right before sending.
    pub fn check(&self) -> Result<(), CallError> {
        if self.is_open() { Ok(()) } else { Err(CallError::RunEnded) }
    }
}

impl std::fmt::Debug for CallGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallGate").field("open", &self.is_open()).finish()
    }
}
