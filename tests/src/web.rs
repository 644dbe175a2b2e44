//! A browser without JavaScript, for testing the web UI over HTTP: it keeps
//! cookies, follows no redirects (tests look at them), sends `Accept:
//! text/html` and an `Origin`, and reads hidden form fields from pages.

use std::collections::BTreeMap;
use std::sync::Mutex;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// A page or a redirect.
pub struct Page {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub html: String,
}

impl Page {
    /// The `Location` of a redirect.
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// The value of the first `<input … name="{name}" value="…">`.
    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.html.find(&marker)? + marker.len();
        let end = self.html[start..].find('"')?;
        Some(self.html[start..start + end].to_owned())
    }

    /// The page's CSRF token.
    pub fn csrf(&self) -> String {
        self.field("csrf").unwrap_or_else(|| panic!("no csrf field in:\n{}", self.html))
    }
}

/// A cookie-keeping client of one gateway.
pub struct WebClient {
    url: String,
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
    /// The `Origin` sent with form posts (the gateway's own by default).
    pub origin: Option<String>,
}

impl WebClient {
    /// A client of the gateway at `url` (`http://127.0.0.1:port`).
    pub fn new(url: &str) -> WebClient {
        WebClient::from_address(url, None)
    }

    /// A client connecting from `local` (another loopback address, as
    /// another machine would).
    pub fn from_address(url: &str, local: Option<std::net::IpAddr>) -> WebClient {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(local)
            .build()
            .unwrap();
        WebClient { url: url.to_owned(), http, cookies: Mutex::default(), origin: Some(url.to_owned()) }
    }

    /// The cookie `name`, if held.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    /// Forgets every cookie but `keep`.
    pub fn keep_only(&self, keep: &[&str]) {
        self.cookies.lock().unwrap().retain(|name, _| keep.contains(&name.as_str()));
    }

    /// Sets a cookie as a browser would have it.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies.lock().unwrap().insert(name.to_owned(), value.to_owned());
    }

    /// `GET path` as a browser.
    pub async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.url)), &[]).await
    }

    /// `POST path` with a form of `fields`.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let mut extra = vec![("content-type", "application/x-www-form-urlencoded".to_owned())];
        if let Some(origin) = &self.origin {
            extra.push(("origin", origin.clone()));
        }
        self.send(self.http.post(format!("{}{path}", self.url)).body(body), &extra).await
    }

    /// Signs in with an owner `token`; the page the sign-in answered with.
    pub async fn sign_in(&self, token: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.html);
        self.post("/login", &[("csrf", &form.csrf()), ("token", token), ("next", "/")]).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, extra: &[(&str, String)]) -> Page {
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"));
        for (name, value) in extra {
            headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        let cookies: Vec<String> = self.cookies.lock().unwrap().iter().map(|(n, v)| format!("{n}={v}")).collect();
        if !cookies.is_empty() {
            headers.insert("cookie", cookies.join("; ").parse().unwrap());
        }
        let response = request.headers(headers).send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                let expired = set.to_ascii_lowercase().contains("max-age=0");
                let mut cookies = self.cookies.lock().unwrap();
                if expired || value.is_empty() {
                    cookies.remove(name.trim());
                } else {
                    cookies.insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        Page { status, headers, html: response.text().await.unwrap() }
    }
}
