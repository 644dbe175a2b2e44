//! An agent's orchestration as a WebAssembly component, written in Rust
//! against its permit's world (`wit/permit.wit`, printed by
//! `oauth3 spec wit spec.json`). It lists a repository's open issues and
//! files a new one, the two calls at once: `fetch` starts each and returns a
//! `future-response`; their `subscribe()` pollables are waited on together
//! with wasi:io's `poll`. The gateway adds the credential; this code never
//! sees it.
//!
//! `args`: `{"repo": "owner/name", "title": "..."}`. Output:
//! `{"open_issues": [titles...], "created": number}`.

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "wit/permit.wit", world: "permit", generate_all });

    use super::Component;
    export!(Component);
}

use bindings::oauth3::permit::github;
use bindings::oauth3::scoped_fetch::types::{CallError, FutureResponse, RequestOptions};
use bindings::wasi::io::poll::{Pollable, poll};
use serde_json::{Value, json};

struct Component;

impl bindings::Guest for Component {
    fn run(args: String) -> Result<String, String> {
        let args: Value = serde_json::from_str(&args).map_err(|e| format!("args: {e}"))?;
        let field = |name: &str| args[name].as_str().map(str::to_owned).ok_or(format!("args.{name}: a string"));
        let (repo, title) = (field("repo")?, field("title")?);
        let issues = format!("/repos/{repo}/issues");

        let list = github::fetch(
            "GET",
            &issues,
            &RequestOptions { query: vec![("state".into(), "open".into())], headers: Vec::new(), body: None },
        );
        let create = github::fetch(
            "POST",
            &issues,
            &RequestOptions {
                query: Vec::new(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: Some(json!({ "title": title }).to_string().into_bytes()),
            },
        );
        wait_all(vec![list.subscribe(), create.subscribe()]);

        let open = json_of(&list)?;
        let created = json_of(&create)?;
        let titles: Vec<&Value> = open.as_array().map(|a| a.iter().map(|i| &i["title"]).collect()).unwrap_or_default();
        Ok(json!({ "open_issues": titles, "created": created["number"] }).to_string())
    }
}

/// Waits until every pollable is ready.
fn wait_all(mut waiting: Vec<Pollable>) {
    while !waiting.is_empty() {
        let mut ready = poll(&waiting.iter().collect::<Vec<_>>());
        ready.sort_unstable();
        for index in ready.into_iter().rev() {
            waiting.remove(index as usize);
        }
    }
}

/// A finished call's JSON body, or why there is none.
fn json_of(call: &FutureResponse) -> Result<Value, String> {
    match call.get() {
        None => Err("the call is not finished".into()),
        Some(Err(CallError::Denied(p))) => Err(format!("denied by the permit: {}: {}", p.code, p.message)),
        Some(Err(CallError::Failed(p))) => Err(format!("failed: {}: {}", p.code, p.message)),
        Some(Ok(response)) if !(200..300).contains(&response.status) => Err(format!("HTTP {}", response.status)),
        Some(Ok(response)) => serde_json::from_slice(&response.body).map_err(|e| format!("not JSON: {e}")),
    }
}
