//! Components submitted through the HTTP API, on SQLite and on Postgres:
//! built against the world `GET /permits/{id}/wit` serves, run with the
//! owner's credential, refused by name when they import more.

mod support;

#[path = "../../host/tests/support/components.rs"]
mod components;

use base64::Engine;
use components::{calls_once, component, core_module, returns, run_returning};
use oauth3_e2e::on_both_databases;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Backend, TestGateway, assert_error, fake_secret};

on_both_databases!(
    the_wit_endpoint_serves_the_approved_world_as_text,
    the_component_endpoint_serves_the_javascript_component_with_only_the_permits_imports,
    a_base64_component_built_from_that_world_runs_with_the_owners_token,
    a_raw_wasm_body_runs_with_args_from_the_query,
    a_component_importing_sockets_or_another_integration_is_a_422_naming_each,
    the_same_action_id_and_component_return_the_same_execution,
    components_over_the_limit_are_a_413,
    a_submission_gives_exactly_one_of_code_or_component,
    retention_deletes_stored_components_no_execution_names_after_an_hour,
    at_the_in_flight_cap_a_component_is_refused_before_it_is_stored,
);

/// The permit's WIT document, as served.
async fn wit(g: &TestGateway, token: &str, permit: &str) -> (StatusCode, String, String) {
    let response = g.http.get(format!("{}/permits/{permit}/wit", g.url)).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Submits `component` (base64) and waits for it; returns the status body.
async fn run(g: &TestGateway, agent: &str, permit: &str, component: &[u8]) -> Value {
    let action = oauth3_gateway::keys::new_id("act").unwrap();
    let body = json!({"permit_id": permit, "action_id": action, "component": base64(component)});
    let (status, body) = g.post("/execute", agent, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    g.wait_for(agent, body["request_id"].as_str().unwrap()).await
}

async fn the_wit_endpoint_serves_the_approved_world_as_text(backend: Backend) {
    let g = TestGateway::start(backend).await;
    let (_, agent) = g.signup("agent", "agent").await;
    let (request, permit) = g.request_permit(&agent).await;
    let (status, _, body) = wit(&g, &agent, &permit).await;
    assert_eq!(status, StatusCode::CONFLICT, "not approved yet: {body}");

    let (_, owner) = g.signup("owner", "owner").await;
    g.approve(&owner, &request).await;
    for token in [&agent, &owner] {
        let (status, content_type, text) = wit(&g, token, &permit).await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        // One document that WIT tooling resolves as is.
        let mut resolve = wit_parser::Resolve::new();
        let package = resolve.push_str("permit.wit", &text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        resolve.select_world(&[package], Some("permit")).unwrap();
        assert!(text.contains("interface github"), "{text}");
    }
    let (_, stranger) = g.signup("stranger", "agent").await;
    let (status, _, _) = wit(&g, &stranger, &permit).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn the_component_endpoint_serves_the_javascript_component_with_only_the_permits_imports(backend: Backend) {
    let g = TestGateway::start(backend).await;
    let (agent, owner, permit) = g.approved_permit(&fake_secret()).await;
    for token in [&agent, &owner] {
        let response =
            g.http.get(format!("{}/permits/{permit}/component", g.url)).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/wasm");
        let bytes = response.bytes().await.unwrap();
        let wit_component::DecodedWasm::Component(resolve, world) = wit_component::decode(&bytes).unwrap() else {
            panic!("not a component")
        };
        let oauth3: Vec<String> = resolve.worlds[world]
            .imports
            .keys()
            .map(|k| resolve.name_world_key(k))
            .filter(|n| n.starts_with("oauth3:"))
            .collect();
        assert_eq!(oauth3, ["oauth3:scoped-fetch/types@0.1.0", "oauth3:permit/github"]);
    }
    // What the host runs for the permit's scripts is that component.
    let done = g.execute(&agent, &permit, "console.log(typeof github)").await;
    assert_eq!(done["result"]["stdout"], "function\n", "{done}");
}

async fn a_base64_component_built_from_that_world_runs_with_the_owners_token(backend: Backend) {
    let g = TestGateway::start(backend).await;
    let secret = fake_secret();
    let (agent, _, permit) = g.approved_permit(&secret).await;
    let (_, _, world) = wit(&g, &agent, &permit).await;

    let list = component(&world, "permit", &calls_once("github", "GET", "/repos/owner/repo/issues"));
    let done = run(&g, &agent, &permit, &list).await;
    assert_eq!(done["status"], "completed", "{done}");
    let issues: Value = serde_json::from_str(done["result"]["output"].as_str().unwrap()).unwrap();
    assert!(issues.as_array().is_some_and(|a| !a.is_empty()), "{done}");
    assert_eq!(done["result"]["calls"][0]["status"], 200);

    // The upstream reflects the credential; the component gets it scrubbed.
    let echo = component(&world, "permit", &calls_once("github", "GET", "/echo"));
    let done = run(&g, &agent, &permit, &echo).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(!done.to_string().contains(&secret));
    assert!(done["result"]["output"].as_str().unwrap().contains("[REDACTED]"), "{done}");

    // A call the permit does not allow: the deny code, and nothing sent.
    let delete = component(&world, "permit", &calls_once("github", "DELETE", "/repos/owner/repo/issues"));
    let done = run(&g, &agent, &permit, &delete).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["result"]["error"]["code"], "failed");
    assert_eq!(done["result"]["calls"][0]["decision"], "deny");
    let code = done["result"]["calls"][0]["reason"].as_str().unwrap();
    assert!(done["result"]["error"]["message"].as_str().unwrap().contains(code), "{done}");
}

async fn a_raw_wasm_body_runs_with_args_from_the_query(backend: Backend) {
    let g = TestGateway::start(backend).await;
    let (agent, _, permit) = g.approved_permit(&fake_secret()).await;
    let (_, _, world) = wit(&g, &agent, &permit).await;
    // `run` returns its `args` as they came.
    let echo_args = core_module(
        "",
        r#"(func (export "run") (param i32 i32) (result i32)
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (local.get 0))
    (i32.store (i32.const 1032) (local.get 1))
    (i32.const 1024))"#,
    );
    let bytes = component(&world, "permit", &echo_args);
    let args = url_encode(r#"{"repo":"o/r","n":2}"#);
    let path = format!("/execute?permit_id={permit}&action_id=raw-1&args={args}");
    let reply = g.send_raw("POST", &path, Some(&agent), Some("application/wasm"), Some(bytes)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let done = g.wait_for(&agent, reply.body["request_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["output"], r#"{"repo":"o/r","n":2}"#);

    let path = format!("/execute?permit_id={permit}&action_id=raw-2&args=%7Bnot-json");
    let bytes = component(&world, "permit", &returns("x"));
    let reply = g.send_raw("POST", &path, Some(&agent), Some("application/wasm"), Some(bytes)).await;
    assert_error(reply.status, &reply.body, StatusCode::BAD_REQUEST, "invalid_request");
}

async fn a_component_importing_sockets_or_another_integration_is_a_422_naming_each(backend: Backend) {
    let g = TestGateway::start(backend).await;
    let (agent, owner, permit) = g.approved_permit(&fake_secret()).await;
    let wit = r#"package test:outside;
world outside {
    import wasi:sockets/tcp@0.2.0;
    import oauth3:permit/slack;
    export run: func(args: string) -> result<string, string>;
}
package wasi:sockets@0.2.0 { interface tcp { connect: func(); } }
package oauth3:permit { interface slack { call: func(); } }
"#;
    let imports = r#"(import "wasi:sockets/tcp@0.2.0" "connect" (func))
  (import "oauth3:permit/slack" "call" (func))"#;
    let bytes = component(wit, "outside", &core_module(imports, &run_returning("x")));
    let body = json!({"permit_id": permit, "action_id": "a-1", "component": base64(&bytes)});
    let (status, body) = g.post("/execute", &agent, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "component_rejected");
    let items: Vec<&str> =
        body["error"]["refusals"].as_array().unwrap().iter().map(|r| r["item"].as_str().unwrap()).collect();
    assert_eq!(items, ["wasi:sockets/tcp@0.2.0", "oauth3:permit/slack"]);
    let (_, audit) = g.get("/audit", &owner).await;
    assert_eq!(audit["entries"], json!([]), "{audit}");

    // Nothing was queued: the action id is still free.
    let (status, body) = g.submit(&agent, &permit, "a-1", "console.log('fine')").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

async fn the_same_action_id_and_component_return_the_same_execution(backend: Backend) {
    let g = TestGateway::start(backend).await;
    let (agent, _, permit) = g.approved_permit(&fake_secret()).await;
    let (_, _, world) = wit(&g, &agent, &permit).await;
    let first = base64(&component(&world, "permit", &returns("one")));
    let submit = |component: String| json!({"permit_id": permit, "action_id": "same", "component": component});
    let (status, a) = g.post("/execute", &agent, submit(first.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{a}");
    let (status, b) = g.post("/execute", &agent, submit(first)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    assert_eq!(a["request_id"], b["request_id"]);

    let other = base64(&component(&world, "permit", &returns("two")));
    let (status, body) = g.post("/execute", &agent, submit(other)).await;
    assert_error(status, &body, StatusCode::CONFLICT, "action_id_reused");
    let (status, body) = g.submit(&agent, &permit, "same", "console.log('one')").await;
    assert_error(status, &body, StatusCode::CONFLICT, "action_id_reused");
}

async fn components_over_the_limit_are_a_413(backend: Backend) {
    let g = TestGateway::start_with(backend, |config| config.max_component_bytes = 300).await;
    let (agent, _, permit) = g.approved_permit(&fake_secret()).await;
    let (_, _, world) = wit(&g, &agent, &permit).await;
    let bytes = component(&world, "permit", &returns(&"x".repeat(400)));
    assert!(bytes.len() > 300);
    let body = json!({"permit_id": permit, "action_id": "big", "component": base64(&bytes)});
    let (status, body) = g.post("/execute", &agent, body).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let path = format!("/execute?permit_id={permit}&action_id=big");
    let reply = g.send_raw("POST", &path, Some(&agent), Some("application/wasm"), Some(bytes)).await;
    assert_error(reply.status, &reply.body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

async fn a_submission_gives_exactly_one_of_code_or_component(backend: Backend) {
    let g = TestGateway::start(backend).await;
    let (agent, _, permit) = g.approved_permit(&fake_secret()).await;
    for body in [
        json!({"permit_id": permit, "action_id": "x"}),
        json!({"permit_id": permit, "action_id": "x", "code": "1", "component": base64(b"\0asm")}),
        json!({"permit_id": permit, "action_id": "x", "component": "not base64!"}),
    ] {
        let (status, reply) = g.post("/execute", &agent, body).await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Bytes that are not a component are refused, by the component check.
    let body = json!({"permit_id": permit, "action_id": "x", "component": base64(b"\0asm\x01\0\0\0")});
    let (status, reply) = g.post("/execute", &agent, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["error"]["refusals"][0]["item"], "component");
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn retention_deletes_stored_components_no_execution_names_after_an_hour(backend: Backend) {
    let g = TestGateway::start(backend).await;
    let (agent, _, permit) = g.approved_permit(&fake_secret()).await;
    let (_, _, world) = wit(&g, &agent, &permit).await;
    let done = run(&g, &agent, &permit, &component(&world, "permit", &returns("kept"))).await;
    assert_eq!(done["status"], "completed", "{done}");

    let db = oauth3_gateway::db::Db::connect(&g.database_url()).await.unwrap();
    let now = oauth3_gateway::db::now_ms();
    let hour_ago = now - 3_600_001;
    for (hash, at) in [("orphan-old", hour_ago), ("orphan-new", now)] {
        sqlx::query("INSERT INTO components (hash, bytes, created_at) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(b"\0asm".to_vec())
            .bind(at)
            .execute(&db.pool)
            .await
            .unwrap();
    }
    // The one an execution names is old too, and stays.
    sqlx::query("UPDATE components SET created_at = $1 WHERE hash NOT LIKE 'orphan-%'")
        .bind(hour_ago)
        .execute(&db.pool)
        .await
        .unwrap();
    let deleted = oauth3_gateway::retention::sweep(&db, None, None).await.unwrap();
    assert_eq!(deleted.components, 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT hash FROM components").fetch_all(&db.pool).await.unwrap();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"orphan-new".to_owned()), "{left:?}");
    assert!(left.iter().any(|h| h.len() == 64), "the executed component stays: {left:?}");
}

async fn at_the_in_flight_cap_a_component_is_refused_before_it_is_stored(backend: Backend) {
    let g = TestGateway::start_with(backend, |c| {
        c.max_executions_per_agent = 1;
        c.timeout_secs = 2;
    })
    .await;
    let (agent, _, permit) = g.approved_permit(&fake_secret()).await;
    let (_, _, world) = wit(&g, &agent, &permit).await;
    let (status, body) = g.submit(&agent, &permit, "spin", "for (;;) {}").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let bytes = component(&world, "permit", &returns("late"));
    let body = json!({"permit_id": permit, "action_id": "later", "component": base64(&bytes)});
    let (status, body) = g.post("/execute", &agent, body).await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "too_many_executions");
    let db = oauth3_gateway::db::Db::connect(&g.database_url()).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM components").fetch_one(&db.pool).await.unwrap();
    assert_eq!(stored, 0, "nothing was stored for a refused submission");
}
