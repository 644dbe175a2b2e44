//! Step-up confirmation of single calls against a real gateway, on SQLite
//! and on Postgres: a call a `confirm` rule allows is refused with a
//! confirmation id until its owner approves that exact call, which then
//! passes once.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use oauth3_e2e::on_both_databases;
use oauth3_gateway::config::ApiKey;
use oauth3_gateway::{Config, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Backend, TestGateway, assert_error, config_for, fake_secret, open_issue};

on_both_databases!(
    an_approved_call_passes_once_and_the_next_identical_one_is_refused_again,
    retrying_a_refused_call_does_not_ask_the_owner_again,
    a_denied_confirmation_stays_refused,
    a_call_with_another_body_or_query_is_refused_with_another_id,
    another_owner_cannot_see_or_decide_a_confirmation_and_an_agent_may_not_list_them,
    an_approval_under_one_permit_does_not_let_the_call_through_under_another,
    an_approval_unused_for_15_minutes_expires,
    pending_confirmations_survive_a_restart,
    an_owner_who_drops_confirm_at_approval_is_not_asked_for_each_call,
);

/// A permit for [`confirming_capability`] issued to `agent`, approved by `owner`.
async fn confirming_permit(gateway: &TestGateway, agent: &str, owner: &str) -> String {
    let body = json!({"description": "file bug reports", "capabilities": [gateway.confirming_capability()]});
    let (status, body) = gateway.post("/permit", agent, body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    gateway.approve(owner, body["request_id"].as_str().unwrap()).await;
    body["permit_id"].as_str().unwrap().to_owned()
}

/// An agent, an owner with GITHUB_TOKEN, and a confirming permit: (agent, owner, permit).
async fn setup(gateway: &TestGateway) -> (String, String, String) {
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let (status, body) =
        gateway.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": fake_secret()})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let permit = confirming_permit(gateway, &agent, &owner).await;
    (agent, owner, permit)
}

/// Runs `code`; `Ok(())` when the call was sent, else the confirmation id it waits for.
async fn run(gateway: &TestGateway, agent: &str, permit: &str, code: &str) -> Result<(), String> {
    let done = gateway.execute(agent, permit, code).await;
    assert_eq!(done["status"], "completed", "{done}");
    let stdout = done["result"]["stdout"].as_str().unwrap().trim();
    if stdout == "sent 3" {
        assert_eq!(done["result"]["calls"][0]["status"], 201, "{done}");
        return Ok(());
    }
    let id = stdout.strip_prefix("confirmation_required ").unwrap_or_else(|| panic!("{done}"));
    assert!(id.starts_with("cfm_"), "{done}");
    let call = &done["result"]["calls"][0];
    assert_eq!((&call["decision"], &call["reason"]), (&json!("deny"), &json!("confirmation_required")), "{done}");
    assert_eq!(call["confirmation_id"], id, "the result names it too: {done}");
    assert_eq!(call["status"], Value::Null, "nothing was sent: {done}");
    Err(id.to_owned())
}

async fn decide(gateway: &TestGateway, owner: &str, id: &str, action: &str) -> (StatusCode, Value) {
    gateway.post(&format!("/confirmations/{id}"), owner, json!({"action": action})).await
}

async fn an_approved_call_passes_once_and_the_next_identical_one_is_refused_again(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = setup(&gateway).await;
    let code = open_issue("crash on start", "{labels: 'bug'}");
    let id = run(&gateway, &agent, &permit, &code).await.unwrap_err();

    // The owner sees the exact call and the permit's goal.
    let (status, list) = gateway.get("/confirmations", &owner).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let shown = &list["confirmations"][0];
    assert_eq!((shown["id"].as_str(), shown["status"].as_str()), (Some(id.as_str()), Some("pending")), "{list}");
    assert_eq!(shown["permit_id"], permit.as_str());
    assert_eq!(shown["goal"], "file bug reports");
    let request = &shown["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["url"], format!("{}/repos/owner/repo/issues?labels=bug", gateway.stub.url()));
    assert_eq!(request["query"], json!([["labels", "bug"]]));
    assert_eq!(request["body"], "{\n  \"title\": \"crash on start\"\n}");
    assert!(!list.to_string().to_ascii_lowercase().contains("bearer"), "no injected header: {list}");

    let (status, approved) = decide(&gateway, &owner, &id, "approve").await;
    assert_eq!((status, &approved["status"]), (StatusCode::OK, &json!("approved")), "{approved}");
    assert!(approved["decided_by"].as_str().unwrap().starts_with("owner_"), "{approved}");
    run(&gateway, &agent, &permit, &code).await.expect("the identical call passes");
    let next = run(&gateway, &agent, &permit, &code).await.unwrap_err();
    assert_ne!(next, id, "used once: the owner is asked again");

    let (_, used) = gateway.get(&format!("/confirmations/{id}"), &owner).await;
    assert_eq!(used["status"], "used", "{used}");
    assert!(used["used_at"].is_string(), "{used}");
    let (status, again) = decide(&gateway, &owner, &id, "approve").await;
    assert_error(status, &again, StatusCode::CONFLICT, "already_decided");
    let (_, audit) = gateway.get(&format!("/audit?permit_id={permit}"), &owner).await;
    let reasons: Vec<&Value> = audit["entries"].as_array().unwrap().iter().map(|e| &e["reason"]).collect();
    assert_eq!(reasons, [&json!("confirmation_required"), &Value::Null, &json!("confirmation_required")], "{audit}");
}

async fn retrying_a_refused_call_does_not_ask_the_owner_again(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = setup(&gateway).await;
    let code = open_issue("retry", "{}");
    let first = run(&gateway, &agent, &permit, &code).await.unwrap_err();
    for _ in 0..3 {
        assert_eq!(run(&gateway, &agent, &permit, &code).await.unwrap_err(), first);
    }
    let (_, list) = gateway.get("/confirmations", &owner).await;
    assert_eq!(list["confirmations"].as_array().unwrap().len(), 1, "{list}");
}

async fn a_denied_confirmation_stays_refused(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = setup(&gateway).await;
    let code = open_issue("spam", "{}");
    let id = run(&gateway, &agent, &permit, &code).await.unwrap_err();
    let (status, denied) = decide(&gateway, &owner, &id, "deny").await;
    assert_eq!((status, &denied["status"]), (StatusCode::OK, &json!("denied")), "{denied}");
    let (status, late) = decide(&gateway, &owner, &id, "approve").await;
    assert_error(status, &late, StatusCode::CONFLICT, "already_decided");
    let next = run(&gateway, &agent, &permit, &code).await.unwrap_err();
    assert_ne!(next, id);
    let (_, denied) = gateway.get("/confirmations?status=denied", &owner).await;
    assert_eq!(denied["confirmations"][0]["id"], id.as_str(), "{denied}");
    let (status, bad) = decide(&gateway, &owner, &next, "maybe").await;
    assert_error(status, &bad, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, bad) = gateway.get("/confirmations?status=later", &owner).await;
    assert_error(status, &bad, StatusCode::BAD_REQUEST, "invalid_request");
}

async fn a_call_with_another_body_or_query_is_refused_with_another_id(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = setup(&gateway).await;
    let approved = open_issue("a", "{}");
    let id = run(&gateway, &agent, &permit, &approved).await.unwrap_err();
    decide(&gateway, &owner, &id, "approve").await;
    for other in [open_issue("b", "{}"), open_issue("a", "{labels: 'x'}")] {
        let other = run(&gateway, &agent, &permit, &other).await.unwrap_err();
        assert_ne!(other, id);
    }
    // The approval still holds for the call it was given for.
    run(&gateway, &agent, &permit, &approved).await.unwrap();
}

async fn another_owner_cannot_see_or_decide_a_confirmation_and_an_agent_may_not_list_them(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = setup(&gateway).await;
    let code = open_issue("mine", "{}");
    let id = run(&gateway, &agent, &permit, &code).await.unwrap_err();
    let (_, stranger) = gateway.signup("stranger", "owner").await;
    let (status, body) = gateway.get(&format!("/confirmations/{id}"), &stranger).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = decide(&gateway, &stranger, &id, "approve").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, list) = gateway.get("/confirmations?status=all", &stranger).await;
    assert_eq!(list["confirmations"], json!([]), "{list}");
    for (method, path) in [("GET", "/confirmations".to_owned()), ("GET", format!("/confirmations/{id}"))] {
        let (status, body) = gateway.call(method, &path, Some(&agent), None).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    }
    let (status, body) = decide(&gateway, &agent, &id, "approve").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = gateway.call("GET", "/confirmations", None, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    // Still pending, still refused.
    let (_, shown) = gateway.get(&format!("/confirmations/{id}"), &owner).await;
    assert_eq!(shown["status"], "pending");
    assert_eq!(run(&gateway, &agent, &permit, &code).await.unwrap_err(), id);
}

async fn an_approval_under_one_permit_does_not_let_the_call_through_under_another(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, first) = setup(&gateway).await;
    let second = confirming_permit(&gateway, &agent, &owner).await;
    let code = open_issue("same call", "{}");
    let under_first = run(&gateway, &agent, &first, &code).await.unwrap_err();
    let under_second = run(&gateway, &agent, &second, &code).await.unwrap_err();
    assert_ne!(under_first, under_second);
    decide(&gateway, &owner, &under_first, "approve").await;
    assert_eq!(run(&gateway, &agent, &second, &code).await.unwrap_err(), under_second);
    run(&gateway, &agent, &first, &code).await.unwrap();
}

async fn an_approval_unused_for_15_minutes_expires(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = setup(&gateway).await;
    let code = open_issue("later", "{}");
    let id = run(&gateway, &agent, &permit, &code).await.unwrap_err();
    let (_, approved) = decide(&gateway, &owner, &id, "approve").await;
    let at = |field: &str| humantime::parse_rfc3339(approved[field].as_str().unwrap()).unwrap();
    assert_eq!(at("expires_at").duration_since(at("decided_at")).unwrap(), Duration::from_secs(15 * 60));
    // Sixteen minutes on: the approval's expiry is in the past.
    let db = oauth3_gateway::db::Db::connect(&gateway.database_url()).await.unwrap();
    sqlx::query("UPDATE confirmations SET expires_at = $1 WHERE id = $2")
        .bind(oauth3_gateway::db::now_ms() - 60_000)
        .bind(&id)
        .execute(&db.writer)
        .await
        .unwrap();
    let (_, shown) = gateway.get(&format!("/confirmations/{id}"), &owner).await;
    assert_eq!(shown["status"], "expired", "{shown}");
    let next = run(&gateway, &agent, &permit, &code).await.unwrap_err();
    assert_ne!(next, id, "an expired approval lets nothing through");
    let (_, expired) = gateway.get("/confirmations?status=expired", &owner).await;
    assert_eq!(expired["confirmations"][0]["id"], id.as_str(), "{expired}");
    let (_, pending) = gateway.get("/confirmations", &owner).await;
    assert_eq!(pending["confirmations"][0]["id"], next.as_str(), "{pending}");
    assert_eq!(pending["confirmations"].as_array().unwrap().len(), 1, "{pending}");
}

async fn pending_confirmations_survive_a_restart(backend: Backend) {
    let mut gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = setup(&gateway).await;
    let code = open_issue("before the restart", "{}");
    let id = run(&gateway, &agent, &permit, &code).await.unwrap_err();
    gateway.server.take().unwrap().shutdown().await.unwrap();
    let config: Config = config_for(&gateway.backend, gateway.data_dir.path(), &gateway.stub);
    let server = Server::start(config).await.expect("the gateway starts again");
    gateway.url = format!("http://{}", server.addr());
    gateway.server = Some(server);

    let (_, list) = gateway.get("/confirmations", &owner).await;
    assert_eq!(list["confirmations"][0]["id"], id.as_str(), "{list}");
    decide(&gateway, &owner, &id, "approve").await;
    run(&gateway, &agent, &permit, &code).await.unwrap();
}

async fn an_owner_who_drops_confirm_at_approval_is_not_asked_for_each_call(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    gateway.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": fake_secret()})).await;
    let body = json!({"description": "file bug reports", "capabilities": [gateway.confirming_capability()]});
    let (_, requested) = gateway.post("/permit", &agent, body).await;
    let (request, permit) = (requested["request_id"].as_str().unwrap(), requested["permit_id"].as_str().unwrap());
    let narrow = json!({"no_confirm": [{"integration": "github", "rule": 0}]});
    let (status, refused) =
        gateway.post(&format!("/approve/{request}"), &owner, json!({"action": "approve", "narrow": narrow})).await;
    assert_error(status, &refused, StatusCode::BAD_REQUEST, "invalid_spec");
    let narrow = json!({"no_confirm": [{"integration": "github", "rule": 1}]});
    let (status, decided) =
        gateway.post(&format!("/approve/{request}"), &owner, json!({"action": "approve", "narrow": narrow})).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["narrowed"], true);
    assert_ne!(decided["spec_hash"], requested["spec_hash"], "a new spec, a new hash");
    let (_, shown) = gateway.get(&format!("/permits/{permit}"), &owner).await;
    assert_eq!(shown["spec"]["spec"]["integrations"][0]["rules"][1].get("confirm"), None, "{shown}");
    run(&gateway, &agent, permit, &open_issue("no questions", "{}")).await.unwrap();
}

/// A webhook receiver on 127.0.0.1: what it was posted.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(body);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr.to_string(), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_hears_of_a_new_confirmation_with_the_exact_call_and_no_secret() {
    let (host_port, received) = receiver().await;
    let gateway = TestGateway::start_with(Backend::Sqlite, |config| {
        config.insecure_upstreams.push(host_port.clone());
        config.approval_webhook = Some(ApiKey(format!("http://{host_port}/hook")));
    })
    .await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let secret = fake_secret();
    gateway.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": secret})).await;
    let permit = confirming_permit(&gateway, &agent, &owner).await;
    let code = "try { await github('POST', '/repos/owner/repo/issues', {body: {title: 'x'}, headers: {'X-Trace': 't1'}}) } \
                catch (e) { console.log(e.confirmation_id) }";
    let done = gateway.execute(&agent, &permit, code).await;
    let id = done["result"]["stdout"].as_str().unwrap().trim().to_owned();
    let confirmation = |notices: &[Value]| notices.iter().find(|n| n["event"] == "confirmation.pending").cloned();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let notice = loop {
        if let Some(notice) = confirmation(&received.lock().unwrap()) {
            break notice;
        }
        assert!(std::time::Instant::now() < deadline, "no delivery within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(notice["confirmation_id"], id.as_str(), "{notice}");
    assert_eq!(notice["permit_id"], permit.as_str());
    assert_eq!(notice["execution_id"], done["request_id"]);
    assert_eq!(notice["goal"], "file bug reports");
    assert_eq!(notice["confirm_url"], format!("{}/confirmations/{id}", gateway.url));
    assert_eq!(notice["request"]["method"], "POST");
    assert_eq!(notice["request"]["body"], "{\n  \"title\": \"x\"\n}");
    assert!(notice["request"]["headers"].as_array().unwrap().contains(&json!(["X-Trace", "t1"])), "{notice}");
    assert!(!notice.to_string().contains(&secret), "{notice}");
    // A retry is not announced again.
    gateway.execute(&agent, &permit, code).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let count = received.lock().unwrap().iter().filter(|n| n["event"] == "confirmation.pending").count();
    assert_eq!(count, 1);
}
