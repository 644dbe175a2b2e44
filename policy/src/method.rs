//! HTTP methods a rule may name, parsed once from text.

use std::fmt;
use std::str::FromStr;

/// An HTTP method a rule may name. Text is parsed case-sensitively (a spec
/// is upper-cased when it is normalised; a request's method must already be
/// upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
}

/// HTTP methods a rule may name, as written.
pub const METHODS: [&str; 7] = {
    let mut names = [""; 7];
    let mut i = 0;
    while i < Method::ALL.len() {
        names[i] = Method::ALL[i].as_str();
        i += 1;
    }
    names
};

impl Method {
    /// Every method, in the order they are listed to people.
    pub const ALL: [Method; 7] =
        [Method::Get, Method::Head, Method::Post, Method::Put, Method::Patch, Method::Delete, Method::Options];

    /// The method as written on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// Changes state upstream: flagged for the owner, and a draft may have
    /// it only when the goal asks for a change.
    pub fn is_write(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch | Method::Delete)
    }

    /// Requests carry a body in practice (DELETE included: some APIs take
    /// one). The legacy format's body constraints apply to these.
    pub fn may_carry_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch | Method::Delete)
    }
}

/// Text that is not one of [`METHODS`], exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not allowed; use one of {methods}", methods = METHODS.join(", "))]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(text: &str) -> Result<Method, UnknownMethod> {
        Method::ALL.into_iter().find(|m| m.as_str() == text).ok_or_else(|| UnknownMethod(text.to_owned()))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_the_upper_case_names() {
        for method in Method::ALL {
            assert_eq!(method.as_str().parse::<Method>(), Ok(method));
        }
        assert_eq!("get".parse::<Method>(), Err(UnknownMethod("get".into())));
        assert!("TRACE".parse::<Method>().is_err());
        assert_eq!(METHODS, ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
    }

    #[test]
    fn writes_are_the_methods_that_carry_bodies() {
        let writes: Vec<&str> = Method::ALL.into_iter().filter(|m| m.is_write()).map(Method::as_str).collect();
        assert_eq!(writes, ["POST", "PUT", "PATCH", "DELETE"]);
        assert!(Method::ALL.into_iter().all(|m| m.is_write() == m.may_carry_body()));
    }
}
