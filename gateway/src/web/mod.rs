//! The owner web UI: server-rendered pages (askama) on the same paths as
//! the JSON API, chosen by `Accept` for pages and by `Content-Type` for
//! forms ([`negotiate`]). Owners sign in with their token into a server-side
//! session ([`session`]); every form carries a CSRF token bound to it
//! ([`csrf`]); sign-in is throttled ([`throttle`]). Pages work without
//! JavaScript; the one script only adds copy buttons and confirmations.
//! Nothing is loaded from elsewhere, and the CSP says so.

mod approve;
mod assets;
mod confirmations;
pub mod csrf;
mod dashboard;
mod form;
mod login;
pub mod negotiate;
mod pages;
pub mod session;
pub mod throttle;

pub use approve::{decide as approve_form, page as approve_page};
pub use confirmations::{decide as confirmation_form, page as confirmations_page};
pub use dashboard::{home, revoke_form, secret_form};
pub use login::signup_form;

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cookie::{Cookie, SameSite};

use self::csrf::Csrf;
use self::pages::{Chrome, ErrorPage};
use self::throttle::Throttle;
use crate::error::Error;
use crate::state::Gateway;

/// Failed sign-ins allowed per client address, and per account, in each window.
const SIGN_IN_FAILURES: u32 = 10;
const SIGN_IN_WINDOW: Duration = Duration::from_secs(600);

/// The web UI's keys, limits and cookie settings.
pub struct Web {
    /// Issues and checks form tokens.
    pub csrf: Csrf,
    /// Failed sign-ins by client address.
    pub sign_ins_by_address: Throttle,
    /// Failed sign-ins by account.
    pub sign_ins_by_account: Throttle,
    /// `Secure` cookies (and `__Host-` names): the public URL is https.
    pub secure_cookies: bool,
    /// How long a session lasts.
    pub session_ttl: Duration,
}

impl Web {
    /// The web UI of a gateway whose token key is `root` and whose public URL
    /// is `public_url`.
    pub fn new(root: &[u8; 32], public_url: &str, session_ttl: Duration) -> Web {
        Web {
            csrf: Csrf::new(root),
            sign_ins_by_address: Throttle::new(SIGN_IN_FAILURES, SIGN_IN_WINDOW),
            sign_ins_by_account: Throttle::new(SIGN_IN_FAILURES, SIGN_IN_WINDOW),
            secure_cookies: public_url.starts_with("https://"),
            session_ttl,
        }
    }

    /// A cookie's name: with the `__Host-` prefix when secure, so that no
    /// subdomain or plain-http page can set it.
    pub fn cookie_name(&self, name: &str) -> String {
        if self.secure_cookies { format!("__Host-{name}") } else { name.to_owned() }
    }

    /// A credential cookie: HttpOnly, SameSite=Strict, path `/`, Secure
    /// when the public URL is https.
    pub fn cookie(&self, name: &str, value: String, max_age: cookie::time::Duration) -> Cookie<'static> {
        Cookie::build((self.cookie_name(name), value))
            .path("/")
            .http_only(true)
            .secure(self.secure_cookies)
            .same_site(SameSite::Strict)
            .max_age(max_age)
            .build()
    }

    /// A `Set-Cookie` value that deletes the cookie `name`.
    pub fn removal(&self, name: &str) -> String {
        let name = if name == session::SIGNED_IN { name.to_owned() } else { self.cookie_name(name) };
        Cookie::build((name, ""))
            .path("/")
            .secure(self.secure_cookies)
            .max_age(cookie::time::Duration::ZERO)
            .to_string()
    }
}

/// The web-only routes; pages and forms that share a path with the JSON API
/// are routed from its endpoint table through [`negotiate`].
pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/login", get(login::page).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        // API clients keep the 405 a GET of the JSON endpoint always was.
        .route(
            "/signup",
            negotiate::by_accept(axum::routing::MethodFilter::GET, method_not_allowed, login::signup_page),
        )
        .route("/secrets/{name}/delete", post(dashboard::delete_secret))
        .route("/assets/app.css", get(assets::css))
        .route("/assets/app.js", get(assets::js))
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}

/// Why a page could not be shown: the visitor must sign in first, or an
/// [`Error`], shown as a page with its status.
pub enum WebError {
    /// Not signed in: to `/login`, then back to `next`.
    SignIn {
        /// Where to return.
        next: String,
    },
    /// Anything else.
    Failed(Error),
}

impl From<Error> for WebError {
    fn from(error: Error) -> WebError {
        WebError::Failed(error)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn { next } => Redirect::to(&format!("/login?next={}", urlencode(&next))).into_response(),
            WebError::Failed(error) => {
                let retry_after = match &error {
                    Error::TooManySignIns { retry_after } => Some(*retry_after),
                    _ => None,
                };
                let (status, _, message) = error.shown();
                let heading = match status {
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::CONFLICT => "Already changed",
                    StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
                    s if s.is_client_error() => "That did not work",
                    _ => "Something went wrong",
                };
                let page = ErrorPage {
                    chrome: Chrome { title: heading.into(), owner: None },
                    heading: heading.into(),
                    message,
                    back: "/".into(),
                };
                let mut response = (status, render(&page)).into_response();
                if let Some(seconds) = retry_after {
                    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
        }
    }
}

/// A page's HTML, or an error page when the template fails (it cannot with
/// checked templates, short of a formatting error).
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "rendering a page");
            (StatusCode::INTERNAL_SERVER_ERROR, Html("<!doctype html><title>oauth3</title><p>internal error</p>"))
                .into_response()
        }
    }
}

/// A 303 to `to` that also sets `cookies`.
pub fn redirect_with(to: &str, cookies: Vec<String>) -> Response {
    with_cookies(Redirect::to(to).into_response(), cookies)
}

/// `response`, also setting `cookies` (`Set-Cookie` values).
pub fn with_cookies(mut response: Response, cookies: impl IntoIterator<Item = String>) -> Response {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `value` percent-encoded for a query string.
pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `next` if it is a path on this gateway (`/…`, not `//…` or `/\…`, which
/// browsers read as another host), else `/`: sign-in never redirects away.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(|c| c.is_control()) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The content security policy of every response: scripts and styles from
/// this gateway only (no inline script), no framing, forms posted here only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every response, JSON and HTML alike.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    if response.headers().get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"text/html")) {
        // Pages show what an owner is deciding on: never from a shared cache.
        response.headers_mut().entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_returns_to_paths_on_this_gateway() {
        assert_eq!(local_path(Some("/approve/req_1?x=1")), "/approve/req_1?x=1");
        for away in ["//evil.example/", "/\\evil.example", "https://evil.example/", "javascript:alert(1)", "/\nx"] {
            assert_eq!(local_path(Some(away)), "/", "{away:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}
