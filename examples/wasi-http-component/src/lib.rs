//! An agent's orchestration as a WebAssembly component that uses an
//! ordinary HTTP client: `wstd`'s, over wasi:http. It lists a repository's
//! open issues and files a new one, the two requests at once. It names URLs,
//! not integrations: the gateway sends each request to the permit's
//! integration with that base URL (refusing any other with an HTTP 403 it
//! can read), checks it against the approved rules and adds the owner's
//! token. This code never sees the token.
//!
//! `args`: `{"repo": "owner/name", "title": "...", "api": "https://api.github.com"}`
//! (`api` optional). Output: `{"open_issues": [titles...], "created": number}`.

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "agent" });

    use super::Component;
    export!(Component);
}

use serde_json::{Value, json};
use wstd::http::{Body, Client, Method, Request, Response};

struct Component;

impl bindings::Guest for Component {
    fn run(args: String) -> Result<String, String> {
        wstd::runtime::block_on(run(args))
    }
}

async fn run(args: String) -> Result<String, String> {
    let args: Value = serde_json::from_str(&args).map_err(|e| format!("args: {e}"))?;
    let field = |name: &str| args[name].as_str().map(str::to_owned).ok_or(format!("args.{name}: a string"));
    let (repo, title) = (field("repo")?, field("title")?);
    let api = args["api"].as_str().unwrap_or("https://api.github.com").trim_end_matches('/');
    let issues = format!("{api}/repos/{repo}/issues");

    let client = Client::new();
    let list = Request::get(format!("{issues}?state=open")).body(Body::empty()).map_err(|e| e.to_string())?;
    let create = Request::builder()
        .method(Method::POST)
        .uri(&issues)
        .header("content-type", "application/json")
        .body(Body::from_json(&json!({ "title": title })).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let (open, created) =
        futures_lite::future::try_zip(json_of(client.send(list)), json_of(client.send(create))).await?;

    let titles: Vec<&Value> = open.as_array().map(|a| a.iter().map(|i| &i["title"]).collect()).unwrap_or_default();
    Ok(json!({ "open_issues": titles, "created": created["number"] }).to_string())
}

/// A response's JSON body, or why there is none. A request the gateway
/// refused comes back as an HTTP error whose body says why:
/// `{"error": {"code": "path_not_allowed", "message": "..."}}`.
async fn json_of(sent: impl Future<Output = wstd::http::Result<Response<Body>>>) -> Result<Value, String> {
    let mut response = sent.await.map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let body: Value = response.body_mut().json().await.map_err(|e| format!("HTTP {status}, not JSON: {e}"))?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", body["error"]["message"].as_str().unwrap_or(&body.to_string())));
    }
    Ok(body)
}
