//! `GET /openapi.json` against the real binary: it documents every route
//! the gateway serves (each `.route(` in its source, each method a path
//! answers), its examples fit its own schemas, and every response of a run
//! through the quickstart (successes and errors) fits the schema documented
//! for its path, method and status.

use reqwest::header::{ACCEPT, HeaderName};
use serde_json::{Value, json};

use oauth3_e2e::{Binary, Body, Reply, Stub, bearer, fake_secret, http_client, send};

/// Routes for browsers only (pages, form posts, assets): not JSON API.
const BROWSER_ONLY: &[(&str, &str)] = &[
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/signup"),
    ("POST", "/secrets/{name}/delete"),
    ("GET", "/assets/app.css"),
    ("GET", "/assets/app.js"),
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The document and the gateway it came from.
struct Documented {
    url: String,
    doc: Value,
    http: reqwest::Client,
    checked: std::cell::RefCell<Vec<String>>,
}

impl Documented {
    /// The schema documented for `status` of `method path`, with the
    /// document's components beside it so its `$ref`s resolve.
    fn response_schema(&self, method: &str, path: &str, status: u16) -> Option<Value> {
        let operation = &self.doc["paths"][path][method.to_ascii_lowercase()];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let response = operation["responses"].get(status.to_string())?;
        let schema = response["content"]["application/json"]["schema"].clone();
        Some(self.resolvable(schema))
    }

    fn resolvable(&self, schema: Value) -> Value {
        let mut schema = match schema {
            Value::Object(map) => Value::Object(map),
            Value::Bool(true) | Value::Null => json!({}),
            other => panic!("not a schema: {other}"),
        };
        schema["components"] = self.doc["components"].clone();
        schema
    }

    /// Sends a request to the concrete `path` and checks the answer against
    /// what `template` documents for its status.
    async fn call(&self, method: &str, template: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut headers: Vec<(HeaderName, String)> = bearer(token);
        headers.push((ACCEPT, "application/json, text/event-stream".into()));
        let reply = send(&self.http, &self.url, method, path, headers, body.map(Body::Json)).await;
        let status = reply.status.as_u16();
        let schema = self.response_schema(method, template, status).unwrap_or_else(|| {
            panic!("{method} {template} answered {status}, which is not documented: {}", reply.body)
        });
        if reply.body != Value::Null || status != 204 {
            assert_fits(&schema, &reply.body, &format!("{method} {path} → {status}"));
        }
        self.checked.borrow_mut().push(format!("{method} {template} {status}"));
        reply
    }
}

#[track_caller]
fn assert_fits(schema: &Value, instance: &Value, what: &str) {
    let validator = jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("{what}: unusable schema: {e}"));
    let errors: Vec<String> = validator.iter_errors(instance).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not fit its documented schema:\n{}\n{instance}", errors.join("\n"));
}

async fn documented(url: &str) -> Documented {
    let http = http_client();
    let reply = send(&http, url, "GET", "/openapi.json", vec![], None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["openapi"], "3.1.0");
    assert_eq!(reply.body["servers"][0]["url"], url);
    Documented { url: url.to_owned(), doc: reply.body, http, checked: Default::default() }
}

/// Every `.route("…"` and `path: "…"` in the gateway's source.
fn routes_in_source() -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../gateway/src"))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for marker in [".route(\"", "\n        path: \""] {
                for rest in text.split(marker).skip(1) {
                    found.push(rest.split('"').next().unwrap().to_owned());
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_method_is_served() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::for_stub(&stub, dir.path());
    let api = documented(&server.url).await;
    let paths = api.doc["paths"].as_object().unwrap();

    let source = routes_in_source();
    assert!(source.len() > 20, "the source scan found too little: {source:?}");
    for route in &source {
        let browser = BROWSER_ONLY.iter().any(|(_, path)| path == route);
        assert!(paths.contains_key(route) || browser, "{route} is routed but not in /openapi.json");
    }
    // GET / lists the same endpoints.
    let listed = send(&api.http, &server.url, "GET", "/", vec![(ACCEPT, "application/json".into())], None).await;
    for endpoint in listed.body["endpoints"].as_array().unwrap() {
        let (method, path) = (endpoint["method"].as_str().unwrap(), endpoint["path"].as_str().unwrap());
        assert!(api.doc["paths"][path][method.to_ascii_lowercase()].is_object(), "{method} {path} undocumented");
    }

    // Each path answers exactly its documented methods (and the browser
    // pages' methods); any other is 405, never the 404 of no route.
    for (path, operations) in paths {
        let concrete = path.replace('{', "x").replace('}', "");
        for method in METHODS {
            let browser = BROWSER_ONLY.iter().any(|(m, p)| m == method && p == path);
            let documented = operations.get(method.to_ascii_lowercase()).is_some() || browser;
            let accept = if browser { "text/html" } else { "application/json" };
            let reply = send(&api.http, &server.url, method, &concrete, vec![(ACCEPT, accept.into())], None).await;
            if documented {
                assert_ne!(reply.status, 405, "{method} {path} is documented but not served");
                assert_ne!(reply.body["error"]["message"], "no such endpoint; GET / lists them", "{method} {path}");
            } else {
                assert_eq!(reply.status, 405, "{method} {path} is served but not documented: {}", reply.body);
            }
        }
        for (method, operation) in operations.as_object().unwrap() {
            assert!(operation["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path}: no summary");
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("500"), "{method} {path}: the error shape is not documented");
            if operation.get("security").is_some() {
                assert!(responses.contains_key("401"), "{method} {path}: 401 is not documented");
            }
        }
    }
}

#[tokio::test]
async fn the_documents_examples_fit_its_schemas() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::for_stub(&stub, dir.path());
    let api = documented(&server.url).await;
    let mut examples = 0;
    for (path, operations) in api.doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let mut contents = vec![("request", &operation["requestBody"]["content"]["application/json"])];
            for (status, response) in operation["responses"].as_object().unwrap() {
                contents.push((status.as_str(), &response["content"]["application/json"]));
            }
            for (what, content) in contents {
                if let Some(example) = content.get("example") {
                    let schema = api.resolvable(content["schema"].clone());
                    assert_fits(&schema, example, &format!("{method} {path} {what} example"));
                    examples += 1;
                }
            }
            if operation.get("requestBody").is_some() {
                assert!(
                    operation["requestBody"]["content"]["application/json"].get("example").is_some(),
                    "{method} {path}: its body has no example"
                );
            }
        }
    }
    assert!(examples > 30, "only {examples} examples");
}

#[tokio::test]
async fn every_response_of_the_quickstart_fits_the_document() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::for_stub(&stub, dir.path());
    let api = documented(&server.url).await;
    let a = &api;

    a.call("GET", "/", "/", None, None).await;
    a.call("GET", "/health", "/health", None, None).await;
    assert_eq!(a.call("GET", "/ready", "/ready", None, None).await.body["status"], "ready");
    a.call("GET", "/openapi.json", "/openapi.json", None, None).await;
    let nonce = "00".repeat(32);
    assert_eq!(a.call("GET", "/attestation", &format!("/attestation?nonce={nonce}"), None, None).await.status, 200);
    assert_eq!(a.call("GET", "/attestation", "/attestation?nonce=zz", None, None).await.status, 400);

    let signup = |role: &str| json!({"name": format!("my-{role}"), "role": role});
    let agent = a.call("POST", "/signup", "/signup", None, Some(signup("agent"))).await.body["token"].clone();
    let owner = a.call("POST", "/signup", "/signup", None, Some(signup("owner"))).await.body["token"].clone();
    let (agent, owner) = (agent.as_str().unwrap(), owner.as_str().unwrap());
    assert_eq!(a.call("POST", "/signup", "/signup", None, Some(json!({"name": 1}))).await.status, 400);
    assert_eq!(a.call("POST", "/invites", "/invites", Some(owner), None).await.status, 201);
    assert_eq!(a.call("POST", "/invites", "/invites", Some(agent), None).await.status, 403);

    let secret = json!({"name": "GITHUB_TOKEN", "value": fake_secret()});
    assert_eq!(a.call("POST", "/secrets", "/secrets", Some(owner), Some(secret.clone())).await.status, 201);
    assert_eq!(a.call("POST", "/secrets", "/secrets", Some(owner), Some(secret)).await.status, 200);
    a.call("GET", "/secrets", "/secrets", Some(owner), None).await;
    assert_eq!(a.call("GET", "/secrets", "/secrets", None, None).await.status, 401);

    let intent = json!([{"name": "github", "goal": "list the issues in owner/repo",
        "doc_urls": [format!("{}/openapi.json", stub.url())], "secret_hints": ["GITHUB_TOKEN"]}]);
    assert_eq!(a.call("POST", "/draft", "/draft", Some(agent), Some(json!({"intent": intent}))).await.status, 200);
    let body = json!({"description": "Triage issues in owner/repo", "intent": intent});
    let requested = a.call("POST", "/permit", "/permit", Some(agent), Some(body.clone())).await;
    assert_eq!(requested.status, 201, "{}", requested.body);
    assert_eq!(a.call("POST", "/permit", "/permit", Some(owner), Some(body)).await.status, 403);
    let request = requested.body["request_id"].as_str().unwrap();
    let permit = requested.body["permit_id"].as_str().unwrap();
    a.call("GET", "/permit/{request_id}", &format!("/permit/{request}"), Some(agent), None).await;
    assert_eq!(a.call("GET", "/permit/{request_id}", "/permit/req_nope", Some(agent), None).await.status, 404);
    a.call("GET", "/approve/{request_id}", &format!("/approve/{request}"), Some(owner), None).await;
    let decide = format!("/approve/{request}");
    let approve = json!({"action": "approve", "expires_in": 86400});
    assert_eq!(a.call("POST", "/approve/{request_id}", &decide, Some(owner), Some(approve)).await.status, 200);
    let deny = json!({"action": "deny"});
    assert_eq!(a.call("POST", "/approve/{request_id}", &decide, Some(owner), Some(deny)).await.status, 409);

    a.call("GET", "/permits", "/permits", Some(agent), None).await;
    a.call("GET", "/permits/{permit_id}", &format!("/permits/{permit}"), Some(owner), None).await;
    let wit = send(&a.http, &a.url, "GET", &format!("/permits/{permit}/wit"), bearer(Some(agent)), None).await;
    assert_eq!(wit.headers["content-type"], "text/plain; charset=utf-8");
    let component =
        send(&a.http, &a.url, "GET", &format!("/permits/{permit}/component"), bearer(Some(agent)), None).await;
    assert_eq!(component.headers["content-type"], "application/wasm");

    let code = "const r = await github('GET', '/repos/owner/repo/issues'); console.log(r.length);";
    let run = json!({"permit_id": permit, "action_id": "list-1", "code": code, "args": {}});
    let accepted = a.call("POST", "/execute", "/execute", Some(agent), Some(run)).await;
    assert_eq!(accepted.status, 202);
    let status = format!("/execute/{}/status?wait=true", accepted.body["request_id"].as_str().unwrap());
    let ended = a.call("GET", "/execute/{request_id}/status", &status, Some(agent), None).await;
    assert_eq!(ended.body["status"], "completed", "{}", ended.body);
    let one_trip = json!({"permit_id": permit, "action_id": "list-wait", "code": code, "wait": true});
    let finished = a.call("POST", "/execute", "/execute", Some(agent), Some(one_trip)).await;
    assert_eq!((finished.status.as_u16(), &finished.body["status"]), (200, &json!("completed")), "{}", finished.body);
    let bad = json!({"permit_id": permit, "action_id": "bad", "code": "await ("});
    assert_eq!(a.call("POST", "/execute", "/execute", Some(agent), Some(bad)).await.status, 400);
    let audit = a.call("GET", "/audit", &format!("/audit?permit_id={permit}&limit=10"), Some(owner), None).await;
    assert_eq!(audit.body["entries"].as_array().unwrap().len(), 2);
    let first = audit.body["entries"][0]["id"].as_i64().unwrap();
    let since = |after: i64| format!("/audit?after={after}");
    let none = a.call("GET", "/audit", &since(first), Some(owner), None).await;
    assert_eq!(none.body["entries"], json!([]), "nothing after the newest");
    let one = a.call("GET", "/audit", &since(first - 1), Some(owner), None).await;
    assert_eq!(one.body["entries"][0]["id"], first);

    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_permits",
        "arguments": {}}});
    let mcp = a.call("POST", "/mcp", "/mcp", Some(agent), Some(list)).await;
    assert_eq!(mcp.body["result"]["structuredContent"]["permits"][0]["permit_id"], permit, "{}", mcp.body);
    assert_eq!(a.call("POST", "/mcp", "/mcp", None, Some(json!({}))).await.status, 401);
    // rmcp's own refusals answer in the API's error shape too.
    let json_only = [bearer(Some(agent)), vec![(ACCEPT, "application/json".into())]].concat();
    let refused = send(&a.http, &a.url, "POST", "/mcp", json_only, Some(Body::Json(json!({"jsonrpc": "2.0"})))).await;
    assert_eq!(refused.status, 406, "{}", refused.body);
    assert_fits(&a.response_schema("POST", "/mcp", 406).unwrap(), &refused.body, "POST /mcp → 406");
    let both = [bearer(Some(agent)), vec![(ACCEPT, "application/json, text/event-stream".into())]].concat();
    let garbled = send(&a.http, &a.url, "POST", "/mcp", both, Some(Body::Raw(b"{not json".to_vec()))).await;
    let status = garbled.status.as_u16();
    let schema = a.response_schema("POST", "/mcp", status).unwrap_or_else(|| panic!("{status} is not documented"));
    assert!(garbled.status.is_client_error(), "{}", garbled.body);
    assert_fits(&schema, &garbled.body, "POST /mcp with malformed JSON");

    // A call a `confirm` rule allows waits for the owner's confirmation.
    let confirming = json!({"name": "github", "base_url": stub.url(), "rules": [
        {"method": "POST", "path": "/repos/owner/repo/issues", "confirm": true, "body": {"type": "object"}}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]});
    let body = json!({"description": "file issues", "capabilities": [confirming]});
    let asked = a.call("POST", "/permit", "/permit", Some(agent), Some(body)).await;
    let approve_it = format!("/approve/{}", asked.body["request_id"].as_str().unwrap());
    let approve = json!({"action": "approve"});
    assert_eq!(a.call("POST", "/approve/{request_id}", &approve_it, Some(owner), Some(approve)).await.status, 200);
    let code = "await github('POST', '/repos/owner/repo/issues', {body: {title: 't'}})";
    let run = json!({"permit_id": asked.body["permit_id"], "action_id": "file-1", "code": code, "wait": true});
    let refused = a.call("POST", "/execute", "/execute", Some(agent), Some(run)).await;
    let id = refused.body["result"]["calls"][0]["confirmation_id"].as_str().unwrap().to_owned();
    let listed = a.call("GET", "/confirmations", "/confirmations", Some(owner), None).await;
    assert_eq!(listed.body["confirmations"][0]["id"], id.as_str(), "{}", listed.body);
    let one = format!("/confirmations/{id}");
    a.call("GET", "/confirmations/{confirmation_id}", &one, Some(owner), None).await;
    assert_eq!(a.call("GET", "/confirmations/{confirmation_id}", &one, Some(agent), None).await.status, 403);
    let approve = json!({"action": "approve"});
    let decided = a.call("POST", "/confirmations/{confirmation_id}", &one, Some(owner), Some(approve.clone())).await;
    assert_eq!(decided.body["status"], "approved", "{}", decided.body);
    assert_eq!(a.call("POST", "/confirmations/{confirmation_id}", &one, Some(owner), Some(approve)).await.status, 409);

    // A media type the endpoint does not take.
    let plain = vec![(reqwest::header::CONTENT_TYPE, "text/plain".into())];
    let text = send(&a.http, &a.url, "POST", "/secrets", [bearer(Some(owner)), plain].concat(), None).await;
    assert_eq!(text.status, 415);
    let schema = a.response_schema("POST", "/secrets", 415).unwrap();
    assert_fits(&schema, &text.body, "POST /secrets → 415");
    let revoke = format!("/permits/{permit}/revoke");
    assert_eq!(a.call("POST", "/permits/{permit_id}/revoke", &revoke, Some(owner), None).await.status, 200);
    let late = json!({"permit_id": permit, "action_id": "list-2", "code": code});
    assert_eq!(a.call("POST", "/execute", "/execute", Some(agent), Some(late)).await.status, 409);
    assert_eq!(a.call("DELETE", "/secrets/{name}", "/secrets/GITHUB_TOKEN", Some(owner), None).await.status, 204);
    assert_eq!(a.call("DELETE", "/secrets/{name}", "/secrets/GITHUB_TOKEN", Some(owner), None).await.status, 404);
    let all = a.call("POST", "/tokens/revoke", "/tokens/revoke", Some(owner), Some(json!({"all": true}))).await;
    assert_eq!(all.body["revoked"], "all");
    assert_eq!(a.call("GET", "/permits", "/permits", Some(owner), None).await.status, 401);

    // Every operation's success was checked (the two byte answers above by their type).
    let checked = a.checked.borrow();
    for (path, operations) in a.doc["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            let bytes = path.ends_with("/wit") || path.ends_with("/component");
            let ran = checked.iter().any(|c| c.starts_with(&format!("{method} {path} 2")));
            assert!(ran || bytes, "{method} {path} was not exercised");
        }
    }
    // The schemas check something: a wrong shape does not fit.
    let permits = a.response_schema("GET", "/permits", 200).unwrap();
    let wrong = jsonschema::validator_for(&permits).unwrap();
    assert!(!wrong.is_valid(&json!({"permits": "none"})) && !wrong.is_valid(&json!({"permits": [{"permit_id": 1}]})));
}
