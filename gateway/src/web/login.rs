//! Signing in with an owner token, signing out, and signing up in the
//! browser. The sign-in and sign-up forms are bound to a pre-session cookie
//! (login CSRF); failed sign-ins are throttled per address and per account.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::csrf::{Scope, check_origin};
use super::form::Form;
use super::pages::{BouncePage, Chrome, LoginPage, SignupPage};
use super::session::{self, PRE_SESSION, SIGNED_IN, Session, cookie};
use super::{WebError, local_path, redirect_with, render, urlencode, with_cookies};
use crate::api::Query;
use crate::auth::{self, Role};
use crate::config::SignupMode;
use crate::error::{Error, Result};
use crate::keys::random_bytes;
use crate::state::Gateway;

#[derive(Deserialize)]
pub struct Next {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    bounce: Option<String>,
}

/// The client's address, as the listener saw it (proxies are not trusted
/// to say otherwise), when known.
pub struct ClientAddress(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}

/// The pre-session cookie's value, and the `Set-Cookie` that creates it
/// when the browser has none yet.
fn pre_session(gateway: &Gateway, headers: &HeaderMap) -> Result<(String, Option<String>)> {
    if let Some(value) = cookie(headers, &gateway.web.cookie_name(PRE_SESSION)).filter(|v| !v.is_empty()) {
        return Ok((value.to_owned(), None));
    }
    let value = URL_SAFE_NO_PAD.encode(random_bytes::<24>()?);
    // Lax, not Strict: still never sent with another site's form post (so no
    // login CSRF), but kept when the visitor arrives by a link from elsewhere,
    // so a sign-in form open in another tab stays valid.
    let mut set = gateway.web.cookie(PRE_SESSION, value.clone(), cookie::time::Duration::hours(12));
    set.set_same_site(cookie::SameSite::Lax);
    let set = set.to_string();
    Ok((value, Some(set)))
}

/// Checks a sign-in or sign-up form against the browser's pre-session
/// cookie. The cookie is SameSite=Lax: a form another site posts comes
/// without it and is refused, whatever token it carries (login CSRF would
/// sign the victim into the attacker's account).
fn check_pre_session_form(gateway: &Gateway, headers: &HeaderMap, form: &Form) -> Result<()> {
    check_origin(headers, &gateway.public_url)?;
    let Some(value) = cookie(headers, &gateway.web.cookie_name(PRE_SESSION)).filter(|v| !v.is_empty()) else {
        return Err(Error::Csrf("this form came without its cookie; allow cookies for this site and reload".into()));
    };
    gateway.web.csrf.check(Scope::PreSession(value), form.csrf())
}

/// The sign-in form for the browser with `pre_session`, back to `next`.
fn login_page(gateway: &Gateway, pre_session: &str, next: String, error: Option<String>) -> LoginPage {
    LoginPage {
        chrome: anonymous("Sign in"),
        csrf: gateway.web.csrf.token(Scope::PreSession(pre_session)),
        next,
        error,
        signup_open: gateway.config.signup_mode() == SignupMode::Open,
    }
}

/// The throttle's key for a client: its address as the listener saw it. Behind
/// a reverse proxy every client shares the proxy's (see the README).
fn address_key(address: Option<SocketAddr>) -> String {
    format!("address:{}", address.map_or("unknown".into(), |a| a.ip().to_string()))
}

fn anonymous(title: &str) -> Chrome {
    Chrome { title: title.into(), owner: None }
}

/// `GET /login?next=`: the sign-in form, or straight on to `next` when
/// already signed in.
pub async fn page(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    session: Option<Session>,
    Query(query): Query<Next>,
) -> Result<Response, WebError> {
    let next = local_path(query.next.as_deref());
    if session.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let has_session_cookie = cookie(&headers, &gateway.web.cookie_name(session::SESSION)).is_some();
    if cookie(&headers, SIGNED_IN).is_some() && !has_session_cookie && query.bounce.is_none() {
        // A link from another site (a chat message) does not carry the
        // Strict session cookie; one same-site hop does.
        let to = format!("/login?next={}&bounce=1", urlencode(&next));
        return Ok(render(&BouncePage { to }));
    }
    let (value, set_cookie) = pre_session(&gateway, &headers)?;
    Ok(with_cookies(render(&login_page(&gateway, &value, next, None)), set_cookie))
}

/// `POST /login`: an owner's token in, a session cookie out, then on to `next`.
pub async fn sign_in(
    State(gateway): State<Arc<Gateway>>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, WebError> {
    check_pre_session_form(&gateway, &headers, &form)?;
    let next = local_path(form.get("next"));
    let token = form.get("token").unwrap_or("").trim();
    let address_key = address_key(address);
    let web = &gateway.web;
    let limited = |retry_after| Error::TooManySignIns { retry_after };
    // A valid owner token always signs in: the limits apply to failures, so
    // nobody can lock owners out (behind a proxy, everyone shares one address).
    // Tokens are 256-bit MACs, so failures are not a way in; they are limited
    // to keep guessing and floods cheap.
    let refused = match auth::authenticate(&gateway, token).await {
        Ok(caller) if caller.role == Role::Owner => {
            let cookies = Session::start(&gateway, &caller).await?;
            tracing::info!(owner = %caller.id, "signed in to the web UI");
            return Ok(redirect_with(&next, cookies));
        }
        Ok(_) => "this is an agent's token; the web UI is for owners".to_owned(),
        Err(Error::Unauthorized(message)) => message,
        Err(error) => return Err(error.into()),
    };
    // Counted per client address and per the account the token names, both
    // before either is checked, so neither limit hides the other's count.
    let account_key = auth::claimed_subject(token).map(|sub| format!("account:{sub}"));
    let by_address = web.sign_ins_by_address.fail(&address_key);
    let by_account = account_key.as_ref().map_or(Ok(()), |key| web.sign_ins_by_account.fail(key));
    by_address.and(by_account).map_err(limited)?;
    let (value, set_cookie) = pre_session(&gateway, &headers)?;
    let page = login_page(&gateway, &value, next, Some(format!("Not signed in: {refused}.")));
    Ok(with_cookies((StatusCode::UNAUTHORIZED, render(&page)).into_response(), set_cookie))
}

/// `POST /logout`: ends the session.
pub async fn sign_out(
    State(gateway): State<Arc<Gateway>>,
    session: Session,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, WebError> {
    session.check_form(&gateway, &headers, form.csrf())?;
    let cookies = session.end(&gateway).await?;
    Ok(redirect_with("/login", cookies))
}

/// `GET /signup`: the owner sign-up form.
pub async fn signup_page(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(query): Query<Next>,
) -> Result<Response, WebError> {
    let (value, set_cookie) = pre_session(&gateway, &headers)?;
    let page = signup_form_page(&gateway, &value, local_path(query.next.as_deref()), None);
    Ok(with_cookies(render(&page), set_cookie))
}

fn signup_form_page(gateway: &Gateway, pre_session: &str, next: String, error: Option<String>) -> SignupPage {
    SignupPage {
        chrome: anonymous("Sign up"),
        csrf: gateway.web.csrf.token(Scope::PreSession(pre_session)),
        next,
        error,
        needs_invite: gateway.config.signup_mode() == SignupMode::Invite,
        name: String::new(),
        token: None,
    }
}

/// `POST /signup` with a form: creates an owner, signs them in, and shows
/// their token once.
pub async fn signup_form(
    State(gateway): State<Arc<Gateway>>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, WebError> {
    check_pre_session_form(&gateway, &headers, &form)?;
    let next = local_path(form.get("next"));
    // Invite codes are guessed here as tokens are at sign-in: same throttle.
    let address_key = address_key(address);
    let limited = |retry_after| Error::TooManySignIns { retry_after };
    let name = form.get("name").unwrap_or("");
    let signed_up = match crate::api::signup::create_tenant(&gateway, name, Role::Owner, form.get("invite")).await {
        Ok(signed_up) => signed_up,
        Err(error @ (Error::BadRequest { .. } | Error::Forbidden(_))) => {
            gateway.web.sign_ins_by_address.fail(&address_key).map_err(limited)?;
            let (value, set_cookie) = pre_session(&gateway, &headers)?;
            let (status, _, message) = error.shown();
            let page = signup_form_page(&gateway, &value, next, Some(message));
            return Ok(with_cookies((status, render(&page)).into_response(), set_cookie));
        }
        Err(error) => return Err(error.into()),
    };
    let caller = gateway.tokens.verify(&signed_up.token)?;
    let cookies = Session::start(&gateway, &caller).await?;
    let page = SignupPage {
        chrome: anonymous("Welcome"),
        csrf: String::new(),
        next,
        error: None,
        needs_invite: false,
        name: signed_up.name,
        token: Some(signed_up.token),
    };
    Ok(with_cookies((StatusCode::CREATED, render(&page)).into_response(), cookies))
}
