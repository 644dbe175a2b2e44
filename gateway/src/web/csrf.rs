//! Cross-site request forgery: every form carries a token bound to the
//! session it was rendered for (or, before sign-in, to a random cookie of
//! its own), and a form another site posts is refused by its `Origin`.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use crate::error::{Error, Result};

/// What a token is bound to.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// A signed-in session, by its stored hash.
    Session(&'a str),
    /// A browser before sign-in, by its pre-session cookie.
    PreSession(&'a str),
}

/// Issues and checks CSRF tokens with a key derived from the gateway's
/// token key, so every replica agrees and a restart keeps open forms valid.
pub struct Csrf {
    key: hmac::Key,
}

impl Csrf {
    /// Tokens keyed from `root` (the token-signing key, never used as is).
    pub fn new(root: &[u8; 32]) -> Csrf {
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, root), b"oauth3 web csrf v1");
        Csrf { key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()) }
    }

    /// The token for forms rendered under `scope`.
    pub fn token(&self, scope: Scope<'_>) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, &message(scope)).as_ref())
    }

    /// 403 unless `token` is the one for `scope` (compared in constant time).
    pub fn check(&self, scope: Scope<'_>, token: Option<&str>) -> Result<()> {
        let refused = || Error::Csrf("this form has expired or did not come from this gateway; reload the page".into());
        let token = URL_SAFE_NO_PAD.decode(token.ok_or_else(refused)?).map_err(|_| refused())?;
        hmac::verify(&self.key, &message(scope), &token).map_err(|_| refused())
    }
}

fn message(scope: Scope<'_>) -> Vec<u8> {
    let (kind, value) = match scope {
        Scope::Session(id) => ("session", id),
        Scope::PreSession(id) => ("pre-session", id),
    };
    [kind.as_bytes(), b"\0", value.as_bytes()].concat()
}

/// 403 for a form another site posted: `Sec-Fetch-Site` other than
/// `same-origin`, or an `Origin` other than the gateway's public one.
/// Browsers send `Sec-Fetch-Site` with every request; under this UI's
/// `Referrer-Policy: no-referrer` they send `Origin: null` with forms, which
/// says nothing, so the token decides then (as for clients that send
/// neither header).
pub fn check_origin(headers: &HeaderMap, public_url: &str) -> Result<()> {
    let refused = || Error::Csrf("this form was posted from another site".into());
    if headers.get("sec-fetch-site").is_some_and(|site| site.as_bytes() != b"same-origin") {
        return Err(refused());
    }
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        None | Some("null") => Ok(()),
        Some(origin) => {
            let ours = url::Url::parse(public_url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
            if origin.eq_ignore_ascii_case(&ours) { Ok(()) } else { Err(refused()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_valid_only_for_its_own_session() {
        let csrf = Csrf::new(&[7; 32]);
        let token = csrf.token(Scope::Session("a"));
        assert!(csrf.check(Scope::Session("a"), Some(&token)).is_ok());
        assert!(csrf.check(Scope::Session("b"), Some(&token)).is_err());
        assert!(csrf.check(Scope::PreSession("a"), Some(&token)).is_err(), "scopes do not mix");
        assert!(csrf.check(Scope::Session("a"), None).is_err());
        assert!(csrf.check(Scope::Session("a"), Some("not base64!")).is_err());
        assert!(Csrf::new(&[8; 32]).check(Scope::Session("a"), Some(&token)).is_err(), "another key");
    }

    #[test]
    fn forms_from_other_sites_are_refused() {
        let with = |name: &str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
            headers
        };
        let ours = "http://127.0.0.1:3737";
        assert!(check_origin(&with("origin", "http://127.0.0.1:3737"), ours).is_ok());
        assert!(check_origin(&with("origin", "http://evil.example"), ours).is_err());
        assert!(check_origin(&with("origin", "null"), ours).is_ok(), "no-referrer forms say null: the token decides");
        assert!(check_origin(&with("sec-fetch-site", "cross-site"), ours).is_err());
        assert!(check_origin(&with("sec-fetch-site", "same-site"), ours).is_err(), "a sibling subdomain");
        assert!(check_origin(&with("sec-fetch-site", "same-origin"), ours).is_ok());
        assert!(check_origin(&HeaderMap::new(), ours).is_ok(), "then the token decides");
    }
}
