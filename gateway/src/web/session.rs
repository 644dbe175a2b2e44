//! Owners' browser sessions: a random cookie (HttpOnly, SameSite=Strict,
//! Secure when the public URL is https) naming a row of `sessions` by its
//! SHA-256. The cookie only ever signs into the web UI: the JSON API reads
//! `Authorization: Bearer` and nothing else.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};

use super::WebError;
use super::csrf::Scope;
use crate::auth::Caller;
use crate::db::now_ms;
use crate::error::Result;
use crate::keys::{hex, random_bytes};
use crate::state::Gateway;
use crate::store::sessions::{self, NewSession};

/// A signed-in owner.
pub struct Session {
    /// The owner's tenant id.
    pub owner_id: String,
    /// The owner's name.
    pub owner_name: String,
    /// The stored hash of the cookie: what CSRF tokens are bound to.
    id_hash: String,
}

impl Session {
    /// The CSRF token for forms rendered in this session.
    pub fn csrf(&self, gateway: &Gateway) -> String {
        gateway.web.csrf.token(Scope::Session(&self.id_hash))
    }

    /// 403 unless `token` is this session's, and the form came from this site.
    pub fn check_form(&self, gateway: &Gateway, headers: &HeaderMap, token: Option<&str>) -> Result<()> {
        super::csrf::check_origin(headers, &gateway.public_url)?;
        gateway.web.csrf.check(Scope::Session(&self.id_hash), token)
    }

    /// Starts a session for the owner `caller` signed in as: the
    /// `Set-Cookie` values that sign the browser in. The session ends no
    /// later than the token it was started with, and with it when that token
    /// (or every token of the owner) is revoked.
    pub async fn start(gateway: &Gateway, caller: &Caller) -> Result<Vec<String>> {
        let value = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let now = now_ms();
        let expires_at = (now + gateway.web.session_ttl.as_millis() as i64).min(caller.token.expires_at_ms);
        let session = NewSession { id_hash: &hash(&value), caller, created_at: now, expires_at };
        sessions::insert(&gateway.db, &session).await?;
        let max_age = cookie::time::Duration::milliseconds((expires_at - now).max(0));
        Ok(vec![
            gateway.web.cookie(SESSION, value, max_age).to_string(),
            // Not a credential: tells /login that a Strict session cookie may
            // exist that a link from another site did not carry.
            Cookie::build((SIGNED_IN, "1"))
                .path("/")
                .http_only(true)
                .secure(gateway.web.secure_cookies)
                .same_site(SameSite::Lax)
                .max_age(max_age)
                .build()
                .to_string(),
        ])
    }

    /// Ends this session: the row is deleted and the cookies cleared.
    pub async fn end(self, gateway: &Gateway) -> Result<Vec<String>> {
        sessions::delete(&gateway.db, &self.id_hash).await?;
        Ok(vec![gateway.web.removal(SESSION), gateway.web.removal(SIGNED_IN)])
    }
}

/// The session cookie's name (with `__Host-` when secure).
pub const SESSION: &str = "oauth3_session";
/// The pre-session cookie that sign-in and sign-up forms are bound to.
pub const PRE_SESSION: &str = "oauth3_presession";
/// A hint that a session exists (see [`Session::start`]).
pub const SIGNED_IN: &str = "oauth3_signed_in";

/// The value of the cookie `name` in `headers`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// What the store keeps of a cookie value.
fn hash(value: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, value.as_bytes()).as_ref())
}

impl Session {
    /// The session the request's cookie names, if it is valid now.
    async fn of(parts: &Parts, gateway: &Gateway) -> Result<Option<Session>> {
        let Some(value) = cookie(&parts.headers, &gateway.web.cookie_name(SESSION)) else { return Ok(None) };
        let id_hash = hash(value);
        Ok(sessions::find(&gateway.db, &id_hash, now_ms())
            .await?
            .filter(|row| row.role == "owner")
            .map(|row| Session { owner_id: row.tenant_id, owner_name: row.name, id_hash }))
    }
}

/// A signed-in owner, or a redirect to sign in (back to this page after).
impl FromRequestParts<Arc<Gateway>> for Session {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, gateway: &Arc<Gateway>) -> Result<Session, WebError> {
        match Session::of(parts, gateway).await? {
            Some(session) => Ok(session),
            None => {
                // Back to the page after signing in; a form post goes back to the dashboard.
                let next = match parts.method {
                    Method::GET => parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
                    _ => "/".to_owned(),
                };
                Err(WebError::SignIn { next })
            }
        }
    }
}

impl OptionalFromRequestParts<Arc<Gateway>> for Session {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, gateway: &Arc<Gateway>) -> Result<Option<Session>, WebError> {
        Ok(Session::of(parts, gateway).await?)
    }
}
