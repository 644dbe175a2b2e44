//! Egress against real HTTP upstreams on 127.0.0.1. Each hole of the earlier
//! implementation is tried here and must fail.

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/stub.rs"]
mod stub;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fixtures::fake_secret;
use oauth3_host::{
    AuditSink, CallContext, CallError, CallRecord, Confirmation, ConfirmationRequest, Confirmations, Egress,
    EgressConfig, GuestCall, MemoryConfirmations, MemoryRateLimiter, NoAudit, StaticSecrets,
};
use oauth3_policy::{CompileOptions, CompiledPermit, DenyCode, PermitSpec};
use serde_json::{Value, json};
use stub::Stub;

/// Collects audit records.
#[derive(Default)]
struct Audit(Mutex<Vec<CallRecord>>);

#[async_trait::async_trait]
impl AuditSink for Audit {
    async fn record(&self, _: &str, _: &str, record: &CallRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

struct World {
    stub: Stub,
    egress: Arc<Egress>,
    permit: Arc<CompiledPermit>,
    token: String,
    audit: Arc<Audit>,
    rate: Arc<MemoryRateLimiter>,
    confirmations: Arc<MemoryConfirmations>,
}

async fn world(extra: Value) -> World {
    let stub = Stub::start().await;
    let permit = fixtures::permit(&stub, extra);
    let audit = Arc::new(Audit::default());
    let rate = Arc::new(MemoryRateLimiter::default());
    let config = EgressConfig { insecure_upstreams: fixtures::insecure(&stub), ..Default::default() };
    let confirmations = Arc::new(MemoryConfirmations::default());
    let egress = Arc::new(Egress::new(config, rate.clone(), audit.clone(), confirmations.clone()).unwrap());
    World { stub, egress, permit: Arc::new(permit), token: fake_secret("gh"), audit, rate, confirmations }
}

impl World {
    fn context(&self) -> CallContext {
        CallContext {
            permit_id: "permit-1".into(),
            execution_id: "exec-1".into(),
            permit: Arc::clone(&self.permit),
            secrets: Arc::new(StaticSecrets::default().with("GITHUB_TOKEN", &self.token)),
        }
    }

    async fn call(&self, call: GuestCall) -> Result<oauth3_host::GuestResponse, CallError> {
        self.egress.call(&self.context(), &call).await.0
    }

    fn audit_json(&self) -> String {
        serde_json::to_string(&*self.audit.0.lock().unwrap()).unwrap()
    }
}

fn get(path: &str) -> GuestCall {
    GuestCall { integration: "github".into(), method: "GET".into(), path: path.into(), ..Default::default() }
}

#[tokio::test]
async fn injects_the_secret_and_returns_the_upstream_json() {
    let w = world(json!({})).await;
    let response = w.call(get("/repos/o/r/issues")).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(serde_json::from_slice::<Value>(&response.body).unwrap()[0]["number"], 1);
    let seen = w.stub.last().unwrap();
    assert!(seen.headers.iter().any(|(n, v)| n == "authorization" && *v == format!("Bearer {}", w.token)));
}

#[tokio::test]
async fn a_reflecting_upstream_never_leaks_the_secret_in_any_encoding() {
    let w = world(json!({})).await;
    let response = w.call(get("/echo")).await.unwrap();
    let body = String::from_utf8(response.body.clone()).unwrap();
    assert!(!body.contains(&w.token), "raw secret in body: {body}");
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &w.token);
    assert!(!body.contains(&b64), "base64 secret in body: {body}");
    assert!(body.contains("[REDACTED]"), "{body}");
    assert!(response.headers.iter().all(|(_, v)| !v.contains(&w.token)), "secret in a header: {:?}", response.headers);
    assert!(!w.audit_json().contains(&w.token));
}

#[tokio::test]
async fn compressed_responses_are_decoded_before_scrubbing() {
    let w = world(json!({})).await;
    let response = w.call(get("/gzip")).await.unwrap();
    let body = String::from_utf8(response.body).unwrap();
    assert_eq!(body, "compressed echo: [REDACTED]", "the whole injected value is scrubbed");
}

#[tokio::test]
async fn agent_headers_never_override_the_injected_one_and_nothing_is_sent() {
    let w = world(json!({})).await;
    for name in ["authorization", "AUTHORIZATION", "Authorization"] {
        let call = GuestCall { headers: vec![(name.into(), "Bearer agent-token".into())], ..get("/repos/o/r/issues") };
        let err = w.call(call).await.unwrap_err();
        assert!(matches!(err, CallError::Denied { code: DenyCode::HeaderNotAllowed, .. }), "{err}");
    }
    assert_eq!(w.stub.hits(), 0);
}

async fn assert_denied_before_sending(path: &str, code: DenyCode) {
    let w = world(json!({"rules": [
        {"method": "GET", "path": "/repos/o/r/issues"},
        {"method": "GET", "path": "/repos/o/r/contents/**"}
    ]}))
    .await;
    let err = w.call(get(path)).await.unwrap_err();
    assert!(matches!(&err, CallError::Denied { code: c, .. } if *c == code), "{path}: {err}");
    assert_eq!(w.stub.hits(), 0, "{path} reached the upstream");
    let audit = w.audit.0.lock().unwrap();
    assert_eq!((audit.len(), audit[0].decision.as_str(), audit[0].reason), (1, "deny", Some(code.as_str())));
}

#[tokio::test]
async fn a_trailing_dot_dot_segment_is_denied_before_sending() {
    assert_denied_before_sending("/repos/o/r/issues/..", DenyCode::AmbiguousPath).await;
}

#[tokio::test]
async fn double_star_then_dot_dot_is_denied_before_sending() {
    assert_denied_before_sending("/repos/o/r/contents/../../../../user", DenyCode::AmbiguousPath).await;
}

#[tokio::test]
async fn an_encoded_slash_is_denied_before_sending() {
    assert_denied_before_sending("/repos/o/r%2Fissues", DenyCode::AmbiguousPath).await;
}

#[tokio::test]
async fn encoded_dot_dot_is_denied_before_sending() {
    assert_denied_before_sending("/repos/o/r/contents/%2E%2E/%2E%2E", DenyCode::AmbiguousPath).await;
}

#[tokio::test]
async fn a_path_outside_the_rules_is_denied_before_sending() {
    assert_denied_before_sending("/user", DenyCode::PathNotAllowed).await;
}

#[tokio::test]
async fn string_and_array_bodies_do_not_slip_past_the_schema() {
    let w = world(json!({})).await;
    for body in [r#""title""#, r#"["title"]"#, r#"{"title":"t","admin":true}"#] {
        let call = GuestCall { method: "POST".into(), body: Some(body.into()), ..get("/repos/o/r/issues") };
        assert!(matches!(w.call(call).await, Err(CallError::Denied { code: DenyCode::BodyInvalid, .. })), "{body}");
    }
    assert_eq!(w.stub.hits(), 0);
    let ok = GuestCall { method: "POST".into(), body: Some(br#"{"title":"t"}"#.to_vec()), ..get("/repos/o/r/issues") };
    assert_eq!(w.call(ok).await.unwrap().status, 201);
    let seen = w.stub.last().unwrap();
    assert_eq!(
        (seen.method.as_str(), seen.body.as_slice()),
        ("POST", &br#"{"title":"t"}"#[..]),
        "the validated bytes are sent"
    );
}

#[tokio::test]
async fn follows_a_same_origin_redirect_the_permit_allows() {
    let w = world(json!({})).await;
    let response = w.call(get("/redirect/same")).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(w.stub.hits(), 2);
    assert_eq!(w.stub.last().unwrap().uri, "/repos/o/r/issues");
}

#[tokio::test]
async fn never_follows_a_redirect_to_another_origin() {
    let w = world(json!({})).await;
    let elsewhere = Stub::start().await;
    let err = w.call(get(&format!("/redirect/to/{}", elsewhere.host_port()))).await.unwrap_err();
    assert!(matches!(err, CallError::Denied { code: DenyCode::RedirectNotAllowed, .. }), "{err}");
    assert_eq!(elsewhere.hits(), 0, "credentials never go to another origin");
}

#[tokio::test]
async fn stops_redirect_loops() {
    let w = world(json!({})).await;
    let err = w.call(get("/redirect/loop")).await.unwrap_err();
    assert!(matches!(err, CallError::Denied { code: DenyCode::RedirectNotAllowed, .. }), "{err}");
    assert_eq!(w.stub.hits(), 6);
}

#[tokio::test]
async fn refuses_loopback_addresses_the_egress_allow_list_does_not_name() {
    let w = world(json!({})).await;
    // The permit was compiled with the stub allow-listed; this egress was not told.
    let strict = Arc::new(
        Egress::new(
            EgressConfig::default(),
            w.rate.clone(),
            Arc::new(NoAudit),
            Arc::new(MemoryConfirmations::default()),
        )
        .unwrap(),
    );
    let err = strict.call(&w.context(), &get("/repos/o/r/issues")).await.0.unwrap_err();
    assert!(matches!(err, CallError::AddressNotAllowed(_)), "{err}");
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test]
async fn an_allow_listed_name_may_resolve_to_loopback() {
    // The refusal after DNS is unit-tested in egress::guard (it needs a name
    // that is not allow-listed yet reachable over http, which egress refuses earlier).
    let stub = Stub::start().await;
    let port = stub.addr.port();
    let spec = PermitSpec::from_value(json!({"name": "api", "base_url": format!("http://localhost:{port}"),
        "rules": [{"method": "GET", "path": "/repos/o/r/issues"}]}))
    .unwrap();
    let listed: std::collections::BTreeSet<_> = [format!("localhost:{port}").parse().unwrap()].into();
    let permit =
        Arc::new(spec.compile(&CompileOptions { insecure_upstreams: listed.clone(), ..Default::default() }).unwrap());
    let config = EgressConfig { insecure_upstreams: listed, ..Default::default() };
    let egress = Egress::new(
        config,
        Arc::new(MemoryRateLimiter::default()),
        Arc::new(NoAudit),
        Arc::new(MemoryConfirmations::default()),
    )
    .unwrap();
    let context = CallContext {
        permit_id: "p".into(),
        execution_id: "e".into(),
        permit,
        secrets: Arc::new(StaticSecrets::default()),
    };
    let call = GuestCall { integration: "api".into(), ..get("/repos/o/r/issues") };
    assert_eq!(egress.call(&context, &call).await.0.unwrap().status, 200);
}

#[tokio::test]
async fn a_missing_secret_matters_only_to_the_integration_that_uses_it() {
    let w = world(json!({})).await;
    // WEATHER_KEY is not set; github calls still work.
    assert_eq!(w.call(get("/repos/o/r/issues")).await.unwrap().status, 200);
    let weather = GuestCall { integration: "weather".into(), ..get("/forecast") };
    assert_eq!(w.call(weather).await.unwrap_err(), CallError::SecretMissing("WEATHER_KEY".into()));
}

#[tokio::test]
async fn injected_query_parameters_are_sent_but_never_recorded() {
    let w = world(json!({})).await;
    let key = fake_secret("wk");
    let context = CallContext { secrets: Arc::new(StaticSecrets::default().with("WEATHER_KEY", &key)), ..w.context() };
    let call =
        GuestCall { integration: "weather".into(), query: vec![("city".into(), "Paris".into())], ..get("/forecast") };
    let (result, record) = w.egress.call(&context, &call).await;
    let body = String::from_utf8(result.unwrap().body).unwrap();
    assert!(w.stub.last().unwrap().uri.contains(&format!("api_key={key}")), "the upstream gets the key");
    assert_eq!(body, "city=Paris&api_key=[REDACTED]", "the echo is scrubbed");
    assert!(record.url.ends_with("/forecast?city=Paris&api_key=[redacted]"), "{}", record.url);
    assert!(!w.audit_json().contains(&key));
}

#[tokio::test]
async fn upstream_errors_never_carry_injected_values() {
    let w = world(json!({})).await;
    let key = fake_secret("wk");
    // A closed port: the connection error must not echo the URL with the key.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let spec = PermitSpec::from_value(json!({"name": "weather", "base_url": format!("http://{closed}"),
        "rules": [{"method": "GET", "path": "/forecast"}], "inject": {"query": {"api_key": "{K}"}}, "secrets": ["K"]}))
    .unwrap();
    let insecure: std::collections::BTreeSet<_> = [closed.to_string().parse().unwrap()].into();
    let permit = spec.compile(&CompileOptions { insecure_upstreams: insecure.clone(), ..Default::default() }).unwrap();
    let egress = Egress::new(
        EgressConfig { insecure_upstreams: insecure, ..Default::default() },
        w.rate.clone(),
        w.audit.clone(),
        w.confirmations.clone(),
    )
    .unwrap();
    let context = CallContext {
        permit_id: "p".into(),
        execution_id: "e".into(),
        permit: Arc::new(permit),
        secrets: Arc::new(StaticSecrets::default().with("K", &key)),
    };
    let err =
        egress.call(&context, &GuestCall { integration: "weather".into(), ..get("/forecast") }).await.0.unwrap_err();
    assert!(matches!(err, CallError::Upstream(_)), "{err}");
    assert!(!err.to_string().contains(&key), "{err}");
}

#[tokio::test]
async fn the_rate_limit_is_shared_across_executions_of_a_permit() {
    let w = world(json!({"rate_limit": {"max_calls": 2, "window_seconds": 3600}})).await;
    let first = w.context();
    let second = CallContext { execution_id: "exec-2".into(), ..w.context() };
    assert!(w.egress.call(&first, &get("/repos/o/r/issues")).await.0.is_ok());
    assert!(w.egress.call(&second, &get("/repos/o/r/issues")).await.0.is_ok());
    let err = w.egress.call(&first, &get("/repos/o/r/issues")).await.0.unwrap_err();
    assert!(matches!(err, CallError::RateLimited { .. }), "{err}");
    assert_eq!(w.stub.hits(), 2);
    let other_permit = CallContext { permit_id: "permit-2".into(), ..w.context() };
    assert!(w.egress.call(&other_permit, &get("/repos/o/r/issues")).await.0.is_ok(), "keyed per permit");
}

#[tokio::test]
async fn responses_over_the_limit_are_refused() {
    let w = world(json!({"limits": {"max_response_bytes": 1000}})).await;
    assert_eq!(w.call(get("/big")).await.unwrap_err(), CallError::ResponseTooLarge { limit: 1000 });
}

#[tokio::test]
async fn slow_upstreams_time_out() {
    let w = world(json!({"limits": {"timeout_ms": 200}})).await;
    assert_eq!(w.call(get("/slow")).await.unwrap_err(), CallError::Timeout(Duration::from_millis(200)));
}

#[tokio::test]
async fn error_statuses_are_responses_not_failures() {
    let w = world(json!({})).await;
    let response = w.call(get("/missing")).await.unwrap();
    assert_eq!(response.status, 404);
    let audit = w.audit.0.lock().unwrap();
    assert_eq!((audit[0].status, audit[0].decision.as_str(), audit[0].reason), (Some(404), "allow", None));
}

/// The `github` integration taking a key and a secret as HTTP Basic
/// credentials instead of a bearer token, with fresh fake values for both.
async fn basic_world() -> (World, CallContext, String, String) {
    let w = world(json!({
        "inject": {"basic": {"username": "{PAY_KEY}", "password": "{PAY_SECRET}"}},
        "secrets": ["PAY_KEY", "PAY_SECRET"]
    }))
    .await;
    let (key, secret) = (fake_secret("key"), fake_secret("secret"));
    let secrets = StaticSecrets::default().with("PAY_KEY", &key).with("PAY_SECRET", &secret);
    let context = CallContext { secrets: Arc::new(secrets), ..w.context() };
    (w, context, key, secret)
}

fn base64_of(text: &str) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text)
}

#[tokio::test]
async fn basic_credentials_reach_the_upstream_as_one_authorization_header() {
    let (w, context, key, secret) = basic_world().await;
    let response = w.egress.call(&context, &get("/repos/o/r/issues")).await.0.unwrap();
    assert_eq!(response.status, 200);
    let seen = w.stub.last().unwrap();
    let authorization: Vec<&String> =
        seen.headers.iter().filter(|(n, _)| n == "authorization").map(|(_, v)| v).collect();
    assert_eq!(authorization, [&format!("Basic {}", base64_of(&format!("{key}:{secret}")))]);
}

#[tokio::test]
async fn an_upstream_echoing_basic_credentials_shows_the_guest_neither_the_pair_nor_its_base64() {
    let (w, context, key, secret) = basic_world().await;
    let pair = format!("{key}:{secret}");
    let encoded = base64_of(&pair);

    let response = w.egress.call(&context, &get("/reflect/basic-decoded")).await.0.unwrap();
    let reported: Value = serde_json::from_slice(&response.body).expect("still JSON after scrubbing");
    assert_eq!(reported["decoded"], "[REDACTED]", "the pair goes as a whole, ':' included");
    let credentials = reported["credentials"].as_str().unwrap();
    assert_eq!(credentials.trim_end_matches('='), "[REDACTED]", "the base64 goes as a whole");

    let echoed = w.egress.call(&context, &get("/echo")).await.0.unwrap();
    let body = String::from_utf8(echoed.body.clone()).unwrap();
    assert_eq!(echoed.header("x-echo"), Some("[REDACTED]"), "the header value echoed back");
    for (what, value) in [("pair", &pair), ("base64", &encoded), ("key", &key), ("secret", &secret)] {
        assert!(!body.contains(value.as_str()), "{what} in the echoed body: {body}");
        assert!(echoed.headers.iter().all(|(_, v)| !v.contains(value.as_str())), "{what} in a response header");
        assert!(!w.audit_json().contains(value.as_str()), "{what} in the audit");
    }
}

#[tokio::test]
async fn the_agent_cannot_set_authorization_beside_basic_credentials_and_nothing_is_sent() {
    let (w, context, ..) = basic_world().await;
    for name in ["Authorization", "authorization", "AUTHORIZATION"] {
        let call =
            GuestCall { headers: vec![(name.into(), "Basic YWdlbnQ6bWluZQ==".into())], ..get("/repos/o/r/issues") };
        let err = w.egress.call(&context, &call).await.0.unwrap_err();
        assert!(matches!(err, CallError::Denied { code: DenyCode::HeaderNotAllowed, .. }), "{err}");
    }
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test]
async fn a_basic_username_secret_holding_a_colon_is_refused_before_sending() {
    let (w, context, ..) = basic_world().await;
    let key = format!("{}:rest", fake_secret("key"));
    let secrets = StaticSecrets::default().with("PAY_KEY", &key).with("PAY_SECRET", &fake_secret("secret"));
    let context = CallContext { secrets: Arc::new(secrets), ..context };
    let err = w.egress.call(&context, &get("/repos/o/r/issues")).await.0.unwrap_err();
    assert!(matches!(&err, CallError::Upstream(m) if m.contains("RFC 7617")), "{err}");
    assert!(!err.to_string().contains(&key), "{err}");
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test]
async fn a_missing_basic_password_secret_sends_nothing() {
    let (w, context, key, _) = basic_world().await;
    let context = CallContext { secrets: Arc::new(StaticSecrets::default().with("PAY_KEY", &key)), ..context };
    let err = w.egress.call(&context, &get("/repos/o/r/issues")).await.0.unwrap_err();
    assert_eq!(err, CallError::SecretMissing("PAY_SECRET".into()));
    assert_eq!(w.stub.hits(), 0);
}

/// One request egress asked the owner's confirmations about.
#[derive(Debug, Clone)]
struct Asked {
    method: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    url: String,
    hash: String,
}

/// Records what egress asks the owner's confirmations, answering as
/// [`MemoryConfirmations`] does.
#[derive(Default)]
struct AskedConfirmations {
    inner: MemoryConfirmations,
    asked: Mutex<Vec<Asked>>,
}

#[async_trait::async_trait]
impl Confirmations for AskedConfirmations {
    async fn check(&self, request: &ConfirmationRequest<'_>) -> Confirmation {
        self.asked.lock().unwrap().push(Asked {
            method: request.call.method.clone(),
            query: request.call.query.clone(),
            headers: request.call.headers.clone(),
            body: request.call.body.clone(),
            url: request.url.to_owned(),
            hash: request.hash.to_owned(),
        });
        self.inner.check(request).await
    }
}

/// `github` whose POST of an issue asks the owner to confirm each call, on
/// an egress asking `confirmations`.
async fn confirming_world() -> (World, Arc<AskedConfirmations>, Egress) {
    let rules = json!([
        {"method": "GET", "path": "/repos/o/r/issues"},
        {"method": "POST", "path": "/repos/o/r/issues", "confirm": true,
         "body": {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}}
    ]);
    let w = world(json!({"rules": rules})).await;
    let confirmations = Arc::new(AskedConfirmations::default());
    let config = EgressConfig { insecure_upstreams: fixtures::insecure(&w.stub), ..Default::default() };
    let egress = Egress::new(config, w.rate.clone(), w.audit.clone(), confirmations.clone()).unwrap();
    (w, confirmations, egress)
}

fn post_issue(title: &str) -> GuestCall {
    GuestCall {
        integration: "github".into(),
        method: "POST".into(),
        path: "/repos/o/r/issues".into(),
        query: vec![("draft".into(), "no".into())],
        headers: vec![("content-type".into(), "application/json".into())],
        body: Some(json!({"title": title}).to_string().into_bytes()),
    }
}

#[tokio::test]
async fn a_call_a_confirm_rule_allows_is_not_sent_and_names_its_pending_confirmation() {
    let (w, confirmations, egress) = confirming_world().await;
    let (result, record) = egress.call(&w.context(), &post_issue("ship it")).await;
    let id = match result.unwrap_err() {
        CallError::ConfirmationRequired { id } => id,
        other => panic!("{other}"),
    };
    assert_eq!(w.stub.hits(), 0, "nothing reaches the upstream");
    assert_eq!((record.decision.as_str(), record.reason), ("deny", Some("confirmation_required")));
    assert_eq!(record.confirmation_id.as_deref(), Some(id.as_str()));
    assert_eq!(w.audit.0.lock().unwrap().last().unwrap().reason, Some("confirmation_required"));
    // What the owner is shown: the agent's request, never the injected token.
    let asked = confirmations.asked.lock().unwrap().clone();
    assert_eq!(asked[0].method, "POST");
    assert_eq!(asked[0].query, [("draft".to_owned(), "no".to_owned())]);
    assert_eq!(asked[0].headers, [("content-type".to_owned(), "application/json".to_owned())]);
    assert_eq!(asked[0].body.as_deref(), Some(&br#"{"title":"ship it"}"#[..]));
    assert_eq!(asked[0].url, format!("{}/repos/o/r/issues?draft=no", w.stub.base_url()));
    assert!(!format!("{asked:?}").contains(&w.token));
    // A retry is answered with the same pending confirmation.
    let again = egress.call(&w.context(), &post_issue("ship it")).await.0.unwrap_err();
    assert_eq!(again, CallError::ConfirmationRequired { id: id.clone() });
    assert_eq!(confirmations.inner.pending(), [id]);
    // A call no confirm rule allows never asks.
    egress.call(&w.context(), &get("/repos/o/r/issues")).await.0.unwrap();
    assert_eq!(confirmations.asked.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_approved_call_is_sent_once_and_the_next_identical_one_asks_again() {
    let (w, confirmations, egress) = confirming_world().await;
    let CallError::ConfirmationRequired { id } = egress.call(&w.context(), &post_issue("a")).await.0.unwrap_err()
    else {
        panic!("not a confirmation")
    };
    assert!(confirmations.inner.approve(&id));
    let sent = egress.call(&w.context(), &post_issue("a")).await.0.unwrap();
    assert_eq!((sent.status, w.stub.hits()), (201, 1));
    let seen = w.stub.last().unwrap();
    assert!(seen.headers.iter().any(|(n, v)| n == "authorization" && *v == format!("Bearer {}", w.token)));

    let third = egress.call(&w.context(), &post_issue("a")).await.0.unwrap_err();
    assert!(matches!(&third, CallError::ConfirmationRequired { id: next } if *next != id), "{third}");
    assert_eq!(w.stub.hits(), 1, "the approval was used up");
}

#[tokio::test]
async fn an_approval_holds_for_that_exact_request_under_that_permit_only() {
    let (w, confirmations, egress) = confirming_world().await;
    let required = |result: Result<oauth3_host::GuestResponse, CallError>| match result {
        Err(CallError::ConfirmationRequired { id }) => id,
        other => panic!("{other:?}"),
    };
    let id = required(egress.call(&w.context(), &post_issue("a")).await.0);
    assert!(confirmations.inner.approve(&id));
    let hashes = |n: usize| confirmations.asked.lock().unwrap()[n].hash.clone();
    let variants = [
        post_issue("b"),
        GuestCall { query: vec![("draft".into(), "yes".into())], ..post_issue("a") },
        GuestCall { headers: vec![("content-type".into(), "application/vnd.x+json".into())], ..post_issue("a") },
    ];
    for (n, variant) in variants.into_iter().enumerate() {
        let other = required(egress.call(&w.context(), &variant).await.0);
        assert_ne!(other, id);
        assert_ne!(hashes(n + 1), hashes(0));
    }
    let elsewhere = CallContext { permit_id: "permit-2".into(), ..w.context() };
    let other = required(egress.call(&elsewhere, &post_issue("a")).await.0);
    assert_ne!(other, id, "another permit's approval does not count");
    assert_eq!(w.stub.hits(), 0);
    // The approval is still there for the request it was given for.
    assert_eq!(egress.call(&w.context(), &post_issue("a")).await.0.unwrap().status, 201);
}

/// Confirmations whose store is down.
struct Down;

#[async_trait::async_trait]
impl Confirmations for Down {
    async fn check(&self, _: &ConfirmationRequest<'_>) -> Confirmation {
        Confirmation::Unavailable
    }
}

#[tokio::test]
async fn when_confirmations_cannot_be_checked_the_call_is_refused() {
    let (w, _, _) = confirming_world().await;
    let config = EgressConfig { insecure_upstreams: fixtures::insecure(&w.stub), ..Default::default() };
    let egress = Egress::new(config, w.rate.clone(), w.audit.clone(), Arc::new(Down)).unwrap();
    let (result, record) = egress.call(&w.context(), &post_issue("a")).await;
    assert_eq!(result.unwrap_err(), CallError::ConfirmationUnavailable);
    assert_eq!((record.decision.as_str(), w.stub.hits()), ("deny", 0));
}
