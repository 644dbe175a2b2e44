//! The crate's one error type. Each variant has a stable snake_case
//! [`code`](DraftError::code) the caller shows; how a code travels (an HTTP
//! status, an MCP error, a CLI exit) is the caller's business.

use std::fmt;

use oauth3_policy::PolicyError;

/// Why a draft could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DraftError {
    /// An intent is malformed (`invalid_intent`); names the field.
    #[error("{field}: {problem}")]
    InvalidIntent {
        /// Where: `intent[0].doc_urls[1]`.
        field: String,
        /// What is wrong and what to give instead.
        problem: String,
    },
    /// A doc URL that may not be fetched (`doc_url_not_allowed`): not https
    /// and not allow-listed, or it resolves to a non-public address.
    #[error("{0}")]
    DocUrlNotAllowed(String),
    /// The doc host failed or answered with an error (`doc_fetch_failed`).
    #[error("{0}")]
    DocFetchFailed(String),
    /// The doc host did not answer in time (`doc_fetch_timeout`).
    #[error("{0}")]
    DocFetchTimeout(String),
    /// A doc is larger than the limit (`doc_too_large`).
    #[error("{0}")]
    DocTooLarge(String),
    /// A doc is neither an API description nor text (`doc_unusable`).
    #[error("{0}")]
    DocUnusable(String),
    /// The drafter could not draft from the goal and docs (`draft_failed`).
    #[error("{0}")]
    Undraftable(String),
    /// An entry of the intent's `operations` is not documented
    /// (`unknown_operation`); the message names it and the closest
    /// documented operations.
    #[error("{0}")]
    UnknownOperation(String),
    /// The drafted spec does not compile (`draft_invalid`).
    #[error("the {drafter} drafter produced a spec that does not compile: {source}")]
    DoesNotCompile {
        /// The drafter's name.
        drafter: String,
        /// Why it does not compile.
        source: PolicyError,
    },
    /// The draft failed its grounding checks (`draft_not_grounded`).
    #[error("the draft for `{integration}` failed its grounding checks: {}", Numbered(failures))]
    NotGrounded {
        /// The integration drafted.
        integration: String,
        /// Every failed check, in the order they were made.
        failures: Vec<GroundingFailure>,
    },
    /// The LLM provider failed, or answered with an unusable draft twice.
    #[error("{message}")]
    Provider {
        /// What kind of failure.
        failure: ProviderFailure,
        /// What happened, with the API key redacted.
        message: String,
    },
    /// The drafter is configured wrongly.
    #[error("configuration: {0}")]
    Config(String),
    /// A bug: an impossible state.
    #[error("internal: {0}")]
    Internal(String),
}

/// How an LLM provider failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderFailure {
    /// It answered 429 (`drafter_rate_limited`).
    RateLimited {
        /// Seconds to wait, when it said.
        retry_after: Option<u64>,
    },
    /// It answered 529, 503 or `overloaded_error` (`drafter_overloaded`).
    Overloaded {
        /// Seconds to wait, when it said.
        retry_after: Option<u64>,
    },
    /// It did not answer in time (`drafter_timeout`).
    Timeout,
    /// It could not be reached (`drafter_unreachable`).
    Unreachable,
    /// It answered with an error or an unreadable reply (`drafter_failed`).
    Failed,
    /// Its draft was invalid twice, after a repair round (`drafter_invalid_output`).
    InvalidOutput,
}

impl DraftError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            DraftError::InvalidIntent { .. } => "invalid_intent",
            DraftError::DocUrlNotAllowed(_) => "doc_url_not_allowed",
            DraftError::DocFetchFailed(_) => "doc_fetch_failed",
            DraftError::DocFetchTimeout(_) => "doc_fetch_timeout",
            DraftError::DocTooLarge(_) => "doc_too_large",
            DraftError::DocUnusable(_) => "doc_unusable",
            DraftError::Undraftable(_) => "draft_failed",
            DraftError::UnknownOperation(_) => "unknown_operation",
            DraftError::DoesNotCompile { .. } => "draft_invalid",
            DraftError::NotGrounded { .. } => "draft_not_grounded",
            DraftError::Provider { failure, .. } => match failure {
                ProviderFailure::RateLimited { .. } => "drafter_rate_limited",
                ProviderFailure::Overloaded { .. } => "drafter_overloaded",
                ProviderFailure::Timeout => "drafter_timeout",
                ProviderFailure::Unreachable => "drafter_unreachable",
                ProviderFailure::Failed => "drafter_failed",
                ProviderFailure::InvalidOutput => "drafter_invalid_output",
            },
            DraftError::Config(_) => "configuration",
            DraftError::Internal(_) => "internal",
        }
    }

    /// Seconds the provider asked the caller to wait before retrying.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            DraftError::Provider {
                failure: ProviderFailure::RateLimited { retry_after } | ProviderFailure::Overloaded { retry_after },
                ..
            } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn provider(failure: ProviderFailure, message: impl Into<String>) -> DraftError {
        DraftError::Provider { failure, message: message.into() }
    }
}

/// The crate's result type.
pub type Result<T, E = DraftError> = std::result::Result<T, E>;

/// A rule as the owner reads it: `` `GET /repos/*/issues` ``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// Its method, as drafted (grounding runs before the spec is compiled,
    /// so it may not be one the policy allows).
    pub method: String,
    /// Its path glob.
    pub path: String,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{} {}`", self.method, self.path)
    }
}

/// One failed grounding check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroundingFailure {
    /// The base URL does not parse as an absolute URL with a host.
    #[error("base_url `{0}` is not an absolute URL with a host")]
    BaseUrlNotAbsolute(String),
    /// The base URL's host is neither declared nor mentioned by the docs.
    #[error(
        "base_url host `{host}` {}; a host named only in the goal does not count",
        if *has_api { "is neither declared by the API description's servers nor mentioned in the docs" }
        else { "is not mentioned in the docs" }
    )]
    HostNotInDocs {
        /// The host, lower case.
        host: String,
        /// Whether an API description was read.
        has_api: bool,
    },
    /// The docs mention the host, but never with this port.
    #[error("base_url port {port} is not given by the docs for `{host}`")]
    PortNotInDocs {
        /// The host, lower case.
        host: String,
        /// The port.
        port: u16,
    },
    /// A rule no documented operation covers.
    #[error("{0} is not a documented operation of the API description")]
    Undocumented(RuleRef),
    /// A rule whose `*` stands over a literal segment of an operation.
    #[error(
        "{rule} is not a documented operation: its `*` stands where `{operation}` has a literal segment, so it \
         would also allow undocumented paths"
    )]
    StarOverLiteral {
        /// The rule.
        rule: RuleRef,
        /// The documented operation's path.
        operation: String,
    },
    /// A `DELETE` rule for a goal that does not ask to delete.
    #[error("{0} deletes data upstream, but the goal does not ask to delete anything")]
    DeleteNotAsked(RuleRef),
    /// A write rule for a goal that does not ask for a change.
    #[error("{0} changes data upstream, but the goal does not ask for a change")]
    ChangeNotAsked(RuleRef),
    /// A rule for none of the operations the intent names in `operations`.
    #[error("{0} is none of the operations the intent names in `operations`")]
    NotAmongOperations(RuleRef),
    /// A write that leaves a recipient, destination, account, URL, email,
    /// amount or file open without `confirm`.
    #[error(
        "{rule} leaves {} open, which the goal does not fix: pin {} or mark the rule `\"confirm\": true`",
        open.join(", "),
        if open.len() == 1 { "it" } else { "them" }
    )]
    ConfirmMissing {
        /// The rule.
        rule: RuleRef,
        /// The parameters left open.
        open: Vec<String>,
    },
    /// A `**` rule without a description.
    #[error("{0} uses `**` without a stated reason (give the rule a description)")]
    DoubleStarWithoutReason(RuleRef),
    /// A secret that is not among the intent's hints.
    #[error(
        "secret `{secret}` is not among the intent's secret_hints ({})",
        if hints.is_empty() { "none were given".to_owned() } else { hints.join(", ") }
    )]
    SecretNotHinted {
        /// The secret named.
        secret: String,
        /// The hints given.
        hints: Vec<String>,
    },
    /// An injected query parameter that overrides the method upstream.
    #[error(
        "the injected query parameter `{0}` overrides the HTTP method upstream; the rules' methods are what the \
         owner approves"
    )]
    InjectedMethodOverride(String),
    /// An injected query parameter that chooses the route upstream.
    #[error(
        "the injected query parameter `{0}` chooses the route upstream; the rules' paths are what the owner approves"
    )]
    InjectedRoute(String),
}

/// `1) a; 2) b`.
struct Numbered<'a>(&'a [GroundingFailure]);

impl fmt::Display for Numbered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}) {failure}", i + 1)?;
        }
        Ok(())
    }
}
