//! One JSON request to the gateway; its error bodies become one line with
//! the gateway's code and message.

use std::time::Duration;

use serde_json::Value;

use crate::visible::shown as printable;

/// The HTTP client for the gateway at `url`: https, or plain http to a
/// loopback address only (a token must not cross a network in the clear).
/// No redirects are followed: a secret or a decision goes where it was sent.
pub(crate) fn http_client(url: &str) -> Result<reqwest::Client, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: not a URL ({e})"))?;
    if !parsed.username().is_empty() || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{url}: give the gateway's base URL alone"));
    }
    match parsed.scheme() {
        "https" => {}
        "http" if crate::config::names_this_machine(&parsed) => {}
        "http" => return Err(format!("{url}: plain http would carry your token in the clear; use https")),
        other => return Err(format!("{url}: {other} is not http(s)")),
    }
    let tls = oauth3_netguard::tls_config(&[]).map_err(|e| format!("TLS: {e}"))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(180))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// A gateway at `url`, with a token when signed in.
pub struct Api {
    url: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// A client of the gateway at `url` (see [`http_client`]).
    pub fn new(url: &str, token: Option<String>) -> Result<Api, String> {
        let http = http_client(url)?;
        Ok(Api { url: url.trim_end_matches('/').to_owned(), token, http })
    }

    /// Sends `body` (if any) to `path`: the answer's JSON, or the gateway's
    /// `code: message`.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.url)).header("accept", "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.map_err(|e| format!("{}: {}", self.url, crate::tee::verify::chain(&e)))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("{}: {e}", self.url))?;
        let value: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["error"];
        let hint = if status == reqwest::StatusCode::UNAUTHORIZED { " (`oauth3 login` again?)" } else { "" };
        match (error["code"].as_str(), error["message"].as_str()) {
            (Some(code), Some(message)) => Err(printable(&format!("{code}: {message}{hint}"))),
            _ => {
                let body = value.as_str().map(|b| b.chars().take(200).collect::<String>()).unwrap_or_default();
                Err(printable(format!("HTTP {status}{hint} {body}").trim_end()))
            }
        }
    }
}
