//! The crate's one error type. Decisions are not errors: see [`crate::Decision`].

use std::fmt;

/// Why a spec could not be read or compiled. Messages name the field, what is
/// wrong and what is allowed; they are safe to show agents and owners.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON, or not shaped like a spec.
    #[error("{path}: {message}")]
    Parse {
        /// Where, e.g. `integrations[0].rules[1].method` (`.` for the root).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The spec is well formed but breaks one or more rules.
    #[error("invalid spec: {}", Issues(.0))]
    Invalid(Vec<Issue>),
}

/// One validation problem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issue {
    /// Field path, e.g. `integrations[0].base_url`.
    pub path: String,
    /// What is wrong and, where useful, what is allowed.
    pub message: String,
}

impl Issue {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Issue {
        Issue { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

struct Issues<'a>(&'a [Issue]);

impl fmt::Display for Issues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}
