//! Test harness: a real gateway (in process, on 127.0.0.1:0) over a real
//! SQLite file or a fresh Postgres database, a real stub upstream, and a
//! small JSON client (the shared parts come from `oauth3-e2e`).

#![allow(dead_code)]

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use oauth3_e2e::{
    Backend, Body, Reply, Stub, assert_error, bearer, fake_secret, http_client, send, shared_cache_dir,
};
use oauth3_gateway::{Config, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A gateway in this process with its stub upstream and a client.
pub struct TestGateway {
    pub server: Option<Server>,
    pub stub: Stub,
    pub url: String,
    pub data_dir: tempfile::TempDir,
    pub backend: Backend,
    pub http: reqwest::Client,
}

impl TestGateway {
    pub async fn start(backend: Backend) -> TestGateway {
        TestGateway::start_with(backend, |_| {}).await
    }

    /// Starts with the config adjusted by `tweak`.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestGateway {
        let stub = Stub::start().await;
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = config_for(&backend, data_dir.path(), &stub);
        tweak(&mut config);
        let server = Server::start(config).await.expect("gateway starts");
        let url = format!("http://{}", server.addr());
        TestGateway { server: Some(server), stub, url, data_dir, backend, http: http_client() }
    }

    /// Sends a request; returns status and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let reply = send(&self.http, &self.url, method, path, bearer(token), body.map(Body::Json)).await;
        (reply.status, reply.body)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(token), Some(body)).await
    }

    /// Signs up and returns (tenant_id, token).
    pub async fn signup(&self, name: &str, role: &str) -> (String, String) {
        let (status, body) = self.call("POST", "/signup", None, Some(json!({"name": name, "role": role}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (body["tenant_id"].as_str().unwrap().to_owned(), body["token"].as_str().unwrap().to_owned())
    }

    /// The quickstart spec, pointed at the stub.
    /// [`Self::github_capability`] for filing issues only with the owner's
    /// confirmation of each call: listing as usual, opening one `confirm`.
    #[allow(dead_code)]
    pub fn confirming_capability(&self) -> Value {
        let mut capability = self.github_capability();
        capability["rules"] = json!([
            {"method": "GET", "path": "/repos/owner/repo/issues"},
            {"method": "POST", "path": "/repos/owner/repo/issues", "confirm": true,
             "body": {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}}
        ]);
        capability
    }

    pub fn github_capability(&self) -> Value {
        json!({
            "name": "github",
            "base_url": self.stub.url(),
            "rules": [
                {"method": "GET", "path": "/repos/owner/repo/issues"},
                {"method": "GET", "path": "/echo"}
            ],
            "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
            "secrets": ["GITHUB_TOKEN"],
            "rate_limit": {"max_calls": 1000, "window_seconds": 60}
        })
    }

    /// Requests a permit for the quickstart spec; returns (request_id, permit_id).
    pub async fn request_permit(&self, agent: &str) -> (String, String) {
        let body = json!({"description": "triage issues", "capabilities": [self.github_capability()]});
        let (status, body) = self.post("/permit", agent, body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (body["request_id"].as_str().unwrap().to_owned(), body["permit_id"].as_str().unwrap().to_owned())
    }

    /// An agent, an owner with GITHUB_TOKEN = `secret`, and an approved permit:
    /// (agent token, owner token, permit_id).
    pub async fn approved_permit(&self, secret: &str) -> (String, String, String) {
        let (_, agent) = self.signup("agent", "agent").await;
        let (_, owner) = self.signup("owner", "owner").await;
        let (status, body) = self.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": secret})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (request, permit) = self.request_permit(&agent).await;
        let (status, body) = self.post(&format!("/approve/{request}"), &owner, json!({"action": "approve"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (agent, owner, permit)
    }

    /// Submits `code` and waits for it to end; returns the status body.
    pub async fn execute(&self, agent: &str, permit: &str, code: &str) -> Value {
        let action = oauth3_gateway::keys::new_id("act").unwrap();
        let (status, body) =
            self.post("/execute", agent, json!({"permit_id": permit, "action_id": action, "code": code})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let id = body["request_id"].as_str().unwrap();
        let (status, body) = self.get(&format!("/execute/{id}/status?wait=true&timeout=60"), agent).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

impl TestGateway {
    /// Sends `body` as raw bytes with `content_type` (none when `None`) and
    /// returns the whole reply, headers included.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut headers = bearer(token);
        headers.extend(content_type.map(|value| (reqwest::header::CONTENT_TYPE, value.to_owned())));
        send(&self.http, &self.url, method, path, headers, body.map(Body::Raw)).await
    }

    /// Sends a request with a raw `Authorization` header value (or none).
    pub async fn call_with_authorization(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let headers =
            authorization.map(|value| (reqwest::header::AUTHORIZATION, value.to_owned())).into_iter().collect();
        send(&self.http, &self.url, method, path, headers, body.map(Body::Json)).await
    }

    /// Submits `code` under `permit` with `action_id`; returns the raw answer.
    pub async fn submit(&self, agent: &str, permit: &str, action_id: &str, code: &str) -> (StatusCode, Value) {
        self.post("/execute", agent, json!({"permit_id": permit, "action_id": action_id, "code": code})).await
    }

    /// Long-polls an execution until it ends; returns the status body.
    pub async fn wait_for(&self, token: &str, request_id: &str) -> Value {
        let (status, body) = self.get(&format!("/execute/{request_id}/status?wait=true&timeout=60"), token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(matches!(body["status"].as_str(), Some("completed" | "failed")), "still running: {body}");
        body
    }

    /// Approves `request` as `owner`; returns the decision body.
    pub async fn approve(&self, owner: &str, request: &str) -> Value {
        let (status, body) = self.post(&format!("/approve/{request}"), owner, json!({"action": "approve"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The URL of the gateway's database.
    pub fn database_url(&self) -> String {
        match &self.backend {
            Backend::Sqlite => format!("sqlite://{}", self.data_dir.path().join("oauth3.db").display()),
            Backend::Postgres(url) => url.clone(),
        }
    }

    /// The gateway's JWT signing key (`<data dir>/jwt.key`), for forging tokens.
    pub fn jwt_key(&self) -> [u8; 32] {
        std::fs::read(self.data_dir.path().join("jwt.key")).unwrap().try_into().expect("a 32-byte key")
    }
}

/// The config a test gateway runs with.
pub fn config_for(backend: &Backend, data_dir: &std::path::Path, stub: &Stub) -> Config {
    let mut config = Config::for_data_dir(data_dir);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.insecure_upstreams = vec![stub.host_port()];
    config.cache_dir = Some(shared_cache_dir());
    config.database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres(url) => Some(url.clone()),
    };
    config
}

/// Agent code opening an issue titled `title` with the query object `query`
/// (JS, e.g. `{labels: 'bug'}`); prints `sent N`, or the error's code and
/// confirmation id.
#[allow(dead_code)]
pub fn open_issue(title: &str, query: &str) -> String {
    format!(
        "try {{ const r = await github('POST', '/repos/owner/repo/issues', {{body: {{title: {title:?}}}, query: {query}}});\n\
           console.log('sent', r.number) }}\n\
         catch (e) {{ console.log(e.code, e.confirmation_id) }}"
    )
}
