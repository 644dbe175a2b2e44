//! Test harness: a real gateway (in process, on 127.0.0.1:0) over a real
//! SQLite file or a fresh Postgres database, a real stub upstream, and a
//! small JSON client.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use oauth3_gateway::{Config, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

/// Which database a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A fresh SQLite file in the test's data dir.
    Sqlite,
    /// A fresh database on the Postgres server at this URL (created per test).
    Postgres(String),
}

/// Runs each named `async fn name(backend: Backend)` once on SQLite and once
/// on Postgres, as `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = super::support::postgres(stringify!($name)).await {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}

/// The Postgres server for tests (`TEST_DATABASE_URL`, default the local
/// one), with a fresh database for `test`. When the server is unreachable
/// this prints a loud SKIPPED line, or fails when `OAUTH3_REQUIRE_POSTGRES=1`
/// (CI sets it).
pub async fn postgres(test: &str) -> Option<Backend> {
    let server =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = match sqlx::PgConnection::connect(&server).await {
        Ok(conn) => conn,
        Err(error) => {
            if std::env::var("OAUTH3_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("Postgres at {server} is required (OAUTH3_REQUIRE_POSTGRES=1) but unreachable: {error}");
            }
            eprintln!("\n*** SKIPPED postgres::{test}: no Postgres at {server} ({error}); set TEST_DATABASE_URL ***\n");
            return None;
        }
    };
    // Databases left by test processes more than an hour ago are dropped
    // (names carry their creation time; other processes may be running now).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CLEANED
        .get_or_init(|| async {
            let old: Vec<String> =
                sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE 'oauth3\\_test\\_%'")
                    .fetch_all(&mut admin)
                    .await
                    .unwrap_or_default();
            let stale = |name: &String| {
                name.split('_').nth(2).and_then(|t| t.parse::<u64>().ok()).is_some_and(|t| t + 3600 < now)
            };
            for name in old.iter().filter(|n| stale(n)) {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
            }
        })
        .await;
    let name = format!("oauth3_test_{now}_{}", &oauth3_gateway::keys::new_id("db").unwrap()[3..19]);
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create a test database");
    let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
    Some(Backend::Postgres(format!("{base}/{name}")))
}

/// The stub upstream (`examples/stub-github`) on 127.0.0.1:0.
pub struct Stub {
    pub addr: std::net::SocketAddr,
}

impl Stub {
    pub async fn start() -> Stub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(stub_github::serve(listener));
        Stub { addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
}

/// Compiled sandbox code shared by every test gateway, so only the first
/// start on a machine pays for compiling the guest runtime.
pub fn shared_cache_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        let dir = std::env::temp_dir().join(format!("oauth3-test-cache-{uid}"));
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    })
    .clone()
}

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

/// A response with its headers: status, headers, JSON body (Null when empty,
/// a JSON string when the body is not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
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

    /// The gateway's JWT signing key (`<data dir>/jwt.key`), for forging tokens.
    pub fn jwt_key(&self) -> [u8; 32] {
        std::fs::read(self.data_dir.path().join("jwt.key")).unwrap().try_into().expect("a 32-byte key")
    }
}

/// Asserts `status` and the error body `{"error": {"code", "message"}}`,
/// with nothing else in it and a non-empty message.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    let object = body.as_object().unwrap_or_else(|| panic!("not a JSON object: {body}"));
    assert_eq!(object.len(), 1, "only `error` expected: {body}");
    let error = body["error"].as_object().unwrap_or_else(|| panic!("no `error` object: {body}"));
    assert_eq!(error.len(), 2, "only `code` and `message` expected: {body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("no message: {body}"));
    assert!(!message.is_empty(), "{body}");
}

/// A request body.
pub enum Body {
    /// Serialised as JSON (with a JSON Content-Type).
    Json(Value),
    /// Sent as is.
    Raw(Vec<u8>),
}

/// `Authorization: Bearer <token>`, when there is a token.
pub fn bearer(token: Option<&str>) -> Vec<(reqwest::header::HeaderName, String)> {
    token.map(|t| (reqwest::header::AUTHORIZATION, format!("Bearer {t}"))).into_iter().collect()
}

/// The one way tests talk HTTP to a gateway: sends a request to `url` +
/// `path` and reads the reply (JSON body; Null when empty, a JSON string
/// when not JSON).
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    method: &str,
    path: &str,
    headers: Vec<(reqwest::header::HeaderName, String)>,
    body: Option<Body>,
) -> Reply {
    let mut request = http.request(method.parse().unwrap(), format!("{url}{path}"));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request = match body {
        Some(Body::Json(value)) => request.json(&value),
        Some(Body::Raw(bytes)) => request.body(bytes),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Reply { status, headers, body }
}

/// A plain-http client (reqwest is built without a default TLS provider).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
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

/// An obviously fake secret, different every time.
pub fn fake_secret() -> String {
    format!("fake-secret-{}", &oauth3_gateway::keys::new_id("s").unwrap()[2..])
}
