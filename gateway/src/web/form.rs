//! HTML form bodies (`application/x-www-form-urlencoded`), read once into
//! name–value pairs: a checkbox list repeats its name.

use std::sync::Arc;

use axum::extract::{FromRequest, Request};

use crate::error::{Error, Result};
use crate::state::Gateway;

/// The largest form accepted: a secret's value (64 KiB) percent-encoded.
const MAX_FORM_BYTES: usize = 256 << 10;

/// A form's fields, in order.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every field whose name starts with `prefix`, the prefix removed.
    pub fn prefixed<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0.iter().filter_map(move |(n, v)| Some((n.strip_prefix(prefix)?, v.as_str())))
    }

    /// The `action` an Approve / Deny form was sent with: true to approve.
    pub fn approves(&self) -> Result<bool> {
        match self.get("action") {
            Some("approve") => Ok(true),
            Some("deny") => Ok(false),
            _ => Err(Error::bad_request("invalid_request", "choose Approve or Deny")),
        }
    }

    /// The CSRF token field.
    pub fn csrf(&self) -> Option<&str> {
        self.get("csrf")
    }

    /// Parses a form body.
    pub fn parse(body: &[u8]) -> Form {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }
}

impl FromRequest<Arc<Gateway>> for Form {
    type Rejection = Error;

    async fn from_request(request: Request, _: &Arc<Gateway>) -> Result<Form> {
        if !super::negotiate::is_form(request.headers()) {
            return Err(Error::bad_request("invalid_request", "send the form as application/x-www-form-urlencoded"));
        }
        let body = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| Error::TooLarge(MAX_FORM_BYTES))?;
        Ok(Form::parse(&body))
    }
}
