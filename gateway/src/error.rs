//! The gateway's one error type, and its mapping to HTTP: always
//! `{"error": {"code", "message"}}` with the matching status, never a stack
//! trace. Internal failures are logged in full and shown as a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
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
    /// A capability this deployment does not have.
    #[error("{message}")]
    NotImplemented {
        /// Stable snake_case code.
        code: &'static str,
        /// What is missing and what to do instead.
        message: String,
    },
    /// The request is understood but cannot be done as asked: a draft the
    /// drafter could not make, or one that failed its grounding checks.
    #[error("{message}")]
    Unprocessable {
        /// Stable snake_case code.
        code: &'static str,
        /// What went wrong and what to change.
        message: String,
    },
    /// A service the gateway relies on (a doc host, the drafter's LLM) failed.
    #[error("{message}")]
    BadGateway {
        /// Stable snake_case code.
        code: &'static str,
        /// What failed.
        message: String,
    },
    /// The drafter's LLM is overloaded or rate-limited; retry later.
    #[error("{message}")]
    Unavailable {
        /// Stable snake_case code.
        code: &'static str,
        /// What is unavailable.
        message: String,
        /// Seconds to wait, when the provider said.
        retry_after: Option<u64>,
    },
    /// A doc host or the drafter's LLM did not answer in time.
    #[error("{message}")]
    GatewayTimeout {
        /// Stable snake_case code.
        code: &'static str,
        /// What timed out.
        message: String,
    },
    /// A spec could not be read or compiled.
    #[error(transparent)]
    Spec(#[from] PolicyError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The sandbox runtime failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// Sealing, key or token machinery failed.
    #[error("crypto: {0}")]
    Crypto(String),
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

    /// A 422 with a code and a message.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Error {
        Error::Unprocessable { code, message: message.into() }
    }

    /// A 502 with a code and a message.
    pub fn bad_gateway(code: &'static str, message: impl Into<String>) -> Error {
        Error::BadGateway { code, message: message.into() }
    }

    /// A 504 with a code and a message.
    pub fn gateway_timeout(code: &'static str, message: impl Into<String>) -> Error {
        Error::GatewayTimeout { code, message: message.into() }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
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
            Error::NotImplemented { code, .. } => (StatusCode::NOT_IMPLEMENTED, code, false),
            Error::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code, false),
            Error::BadGateway { code, .. } => (StatusCode::BAD_GATEWAY, code, false),
            Error::Unavailable { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code, false),
            Error::GatewayTimeout { code, .. } => (StatusCode::GATEWAY_TIMEOUT, code, false),
            Error::Spec(_) => (StatusCode::BAD_REQUEST, "invalid_spec", false),
            Error::Host(HostError::Syntax { .. }) => (StatusCode::BAD_REQUEST, "syntax_error", false),
            Error::Host(HostError::ScriptTooLarge { .. }) => (StatusCode::PAYLOAD_TOO_LARGE, "script_too_large", false),
            Error::Database(_)
            | Error::Migrate(_)
            | Error::Host(_)
            | Error::Crypto(_)
            | Error::Io { .. }
            | Error::Config(_)
            | Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", true),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code, internal) = self.parts();
        let retry_after = match &self {
            Error::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        };
        let message = if internal {
            tracing::error!(error = %self, "request failed");
            "internal error; the gateway's log has the details".to_owned()
        } else {
            self.to_string()
        };
        let mut response = (status, axum::Json(json!({"error": {"code": code, "message": message}}))).into_response();
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
