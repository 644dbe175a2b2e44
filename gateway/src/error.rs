//! The gateway's one error type, and its mapping to HTTP: always
//! `{"error": {"code", "message"}}` with the matching status, never a stack
//! trace. Internal failures are logged in full and shown as a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oauth3_drafting::{DraftError, ProviderFailure};
use oauth3_host::HostError;
use oauth3_policy::PolicyError;
use serde_json::json;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is well-formed JSON but its content is wrong.
    #[error("{message}")]
    BadRequest {
        /// Stable snake_case code.
        code: &'static str,
        /// What is wrong, safe to show the caller.
        message: String,
    },
    /// The body is not JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The body's Content-Type is not JSON.
    #[error("send the body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    /// The body is larger than the configured limit.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// No valid token.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but this role or tenant may not do that.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there, or nothing the caller may see.
    #[error("{0}")]
    NotFound(String),
    /// The method is not served on that path.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// The request conflicts with the current state.
    #[error("{message}")]
    Conflict {
        /// Stable snake_case code.
        code: &'static str,
        /// What conflicts.
        message: String,
    },
    /// Too many executions in flight for this agent.
    #[error("{0}")]
    TooManyRequests(String),
    /// Too many sign-in attempts from this address or for this account.
    #[error("too many sign-in attempts; try again in {retry_after} s")]
    TooManySignIns {
        /// Seconds until another attempt is accepted.
        retry_after: u64,
    },
    /// A browser form without a valid CSRF token, or from another site.
    #[error("{0}")]
    Csrf(String),
    /// A capability this deployment does not have.
    #[error("{message}")]
    NotImplemented {
        /// Stable snake_case code.
        code: &'static str,
        /// What is missing and what to do instead.
        message: String,
    },
    /// Drafting failed: a bad intent, a doc that could not be fetched or
    /// read, a draft that could not be made or was not grounded, or the
    /// drafter's LLM failed.
    #[error(transparent)]
    Draft(#[from] DraftError),
    /// A spec could not be read or compiled.
    #[error(transparent)]
    Spec(#[from] PolicyError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database failed, on a direct SQLite connection.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Applying migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The sandbox runtime failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// Sealing, key or token machinery failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// The TEE's guest agent failed or could not be reached.
    #[error("tee: {0}")]
    Tee(String),
    /// Reading or writing the data dir failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Invalid configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A bug: a panic or an impossible state.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// A 400 with a code and a message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Error {
        Error::BadRequest { code, message: message.into() }
    }

    /// A 409 with a code and a message.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict { code, message: message.into() }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    /// The message with every cause after it, `: `-joined (a cause its
    /// predecessor already quotes is skipped): what logs and the binary's
    /// exit message show.
    pub fn chain(&self) -> impl std::fmt::Display + '_ {
        Chain(self)
    }

    /// HTTP status, stable code, and whether the details stay in the log.
    fn parts(&self) -> (StatusCode, &'static str, bool) {
        match self {
            Error::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code, false),
            Error::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json", false),
            Error::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", false),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", false),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", false),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", false),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", false),
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", false),
            Error::Conflict { code, .. } => (StatusCode::CONFLICT, code, false),
            Error::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_executions", false),
            Error::TooManySignIns { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_sign_ins", false),
            Error::Csrf(_) => (StatusCode::FORBIDDEN, "csrf_failed", false),
            Error::NotImplemented { code, .. } => (StatusCode::NOT_IMPLEMENTED, code, false),
            Error::Draft(error) => match draft_status(error) {
                Some(status) => (status, error.code(), false),
                None => (StatusCode::INTERNAL_SERVER_ERROR, "internal", true),
            },
            Error::Spec(_) => (StatusCode::BAD_REQUEST, "invalid_spec", false),
            Error::Host(HostError::Syntax { .. }) => (StatusCode::BAD_REQUEST, "syntax_error", false),
            Error::Host(HostError::ScriptTooLarge { .. }) => (StatusCode::PAYLOAD_TOO_LARGE, "script_too_large", false),
            Error::Host(HostError::ComponentRejected(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "component_rejected", false)
            }
            Error::Database(_)
            | Error::Sqlite(_)
            | Error::Migrate(_)
            | Error::Host(_)
            | Error::Crypto(_)
            | Error::Tee(_)
            | Error::Io { .. }
            | Error::Config(_)
            | Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", true),
        }
    }
}

/// The status of a drafting failure: the caller's (400, 422), a service
/// the drafter relies on (502, 503, 504), or `None` for the gateway's own
/// (configuration, a bug), shown as internal.
fn draft_status(error: &DraftError) -> Option<StatusCode> {
    Some(match error {
        DraftError::InvalidIntent { .. } | DraftError::DocUrlNotAllowed(_) => StatusCode::BAD_REQUEST,
        DraftError::DocTooLarge(_)
        | DraftError::DocUnusable(_)
        | DraftError::Undraftable(_)
        | DraftError::UnknownOperation(_)
        | DraftError::DoesNotCompile { .. }
        | DraftError::NotGrounded { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        DraftError::DocFetchFailed(_) => StatusCode::BAD_GATEWAY,
        DraftError::DocFetchTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        DraftError::Provider { failure, .. } => match failure {
            ProviderFailure::RateLimited { .. } | ProviderFailure::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProviderFailure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProviderFailure::Unreachable | ProviderFailure::Failed | ProviderFailure::InvalidOutput => {
                StatusCode::BAD_GATEWAY
            }
        },
        _ => return None,
    })
}

impl Error {
    /// The status, code and message a client is shown; an internal failure
    /// is logged in full here and shown as a generic message. The JSON API
    /// and the web UI both answer with this.
    pub(crate) fn shown(&self) -> (StatusCode, &'static str, String) {
        let (status, code, internal) = self.parts();
        let message = if internal {
            tracing::error!(error = %self.chain(), "request failed");
            "internal error; the gateway's log has the details".to_owned()
        } else {
            self.to_string()
        };
        (status, code, message)
    }
}

/// The body of every error answer, from the HTTP API and MCP tools alike.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error's stable code and its message.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code: `invalid_request`, `not_found`, `permit_not_active`, …
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// For `component_rejected`: each offending import or export, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusals: Option<serde_json::Value>,
}

impl Error {
    /// The status and the body a client is shown.
    pub(crate) fn body(&self) -> (StatusCode, ErrorBody) {
        let (status, code, message) = self.shown();
        let refusals = match self {
            Error::Host(HostError::ComponentRejected(rejected)) => Some(json!(rejected.refusals)),
            _ => None,
        };
        (status, ErrorBody { error: ErrorDetail { code: code.to_owned(), message, refusals } })
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, body) = self.body();
        let retry_after = match &self {
            Error::Draft(error) => error.retry_after(),
            Error::TooManySignIns { retry_after } => Some(*retry_after),
            _ => None,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The gateway's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// See [`Error::chain`].
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut previous = self.0.to_string();
        f.write_str(&previous)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !previous.contains(&text) {
                write!(f, ": {text}")?;
            }
            previous = text;
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_code(error: DraftError) -> (u16, &'static str) {
        let (status, code, _) = Error::Draft(error).parts();
        (status.as_u16(), code)
    }

    #[test]
    fn drafting_failures_map_to_the_status_of_whoever_failed() {
        let text = || "x".to_owned();
        let provider = |failure| DraftError::Provider { failure, message: text() };
        let cases = [
            (DraftError::InvalidIntent { field: text(), problem: text() }, 400, "invalid_intent"),
            (DraftError::DocUrlNotAllowed(text()), 400, "doc_url_not_allowed"),
            (DraftError::DocTooLarge(text()), 422, "doc_too_large"),
            (DraftError::DocUnusable(text()), 422, "doc_unusable"),
            (DraftError::Undraftable(text()), 422, "draft_failed"),
            (DraftError::UnknownOperation(text()), 422, "unknown_operation"),
            (DraftError::NotGrounded { integration: text(), failures: vec![] }, 422, "draft_not_grounded"),
            (DraftError::DocFetchFailed(text()), 502, "doc_fetch_failed"),
            (DraftError::DocFetchTimeout(text()), 504, "doc_fetch_timeout"),
            (provider(ProviderFailure::RateLimited { retry_after: Some(3) }), 503, "drafter_rate_limited"),
            (provider(ProviderFailure::Overloaded { retry_after: None }), 503, "drafter_overloaded"),
            (provider(ProviderFailure::Timeout), 504, "drafter_timeout"),
            (provider(ProviderFailure::Unreachable), 502, "drafter_unreachable"),
            (provider(ProviderFailure::Failed), 502, "drafter_failed"),
            (provider(ProviderFailure::InvalidOutput), 502, "drafter_invalid_output"),
            (DraftError::Config(text()), 500, "internal"),
            (DraftError::Internal(text()), 500, "internal"),
        ];
        for (error, status, code) in cases {
            let shown = format!("{error:?}");
            assert_eq!(status_and_code(error), (status, code), "{shown}");
        }
    }

    #[test]
    fn a_rate_limited_drafter_answers_with_retry_after() {
        let error = DraftError::Provider {
            failure: ProviderFailure::RateLimited { retry_after: Some(17) },
            message: "slow down".into(),
        };
        let response = Error::Draft(error).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "17");
    }

    #[test]
    fn the_chain_names_each_cause_once() {
        let io = std::io::Error::other("disk full");
        let error = Error::Io { context: "writing jwt.key".into(), source: io };
        assert_eq!(error.to_string(), "writing jwt.key: disk full");
        assert_eq!(error.chain().to_string(), "writing jwt.key: disk full", "the cause is not repeated");
        let host = Error::Host(oauth3_host::HostError::Cache {
            path: "/cache".into(),
            source: std::io::Error::other("read-only file system"),
        });
        assert_eq!(host.chain().to_string(), "cache /cache: read-only file system");
    }
}
