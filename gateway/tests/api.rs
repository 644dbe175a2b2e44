//! The HTTP API against a real gateway, on SQLite and on Postgres.

mod support;

use oauth3_e2e::on_both_databases;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Backend, TestGateway, assert_error, fake_secret};

on_both_databases!(
    a_row_running_here_that_no_run_holds_is_marked_interrupted_and_a_running_one_is_not,
    quickstart_flow_lists_issues_with_the_owners_token,
    malformed_json_is_a_400_malformed_json,
    unknown_or_mistyped_fields_are_a_400_invalid_request,
    non_json_content_types_are_a_415,
    bodies_over_the_limit_are_a_413,
    unknown_paths_are_a_json_404,
    wrong_methods_are_a_json_405,
    discovery_lists_every_endpoint_and_each_is_routed,
    health_is_ok_with_a_request_id,
    secret_values_are_never_returned,
    secret_names_and_values_are_validated,
    permit_requests_with_an_invalid_spec_are_a_400_naming_the_field,
    permit_requests_need_exactly_one_of_capabilities_or_intent,
    approving_twice_is_idempotent,
    a_denied_request_cannot_be_approved,
    an_expired_request_cannot_be_approved,
    approval_expiry_must_be_positive_and_bounded,
    a_revoked_permit_cannot_execute,
    a_permit_cannot_execute_before_approval,
    an_expired_permit_cannot_execute,
    the_same_action_id_and_code_return_the_same_execution,
    reusing_an_action_id_with_other_code_is_a_conflict,
    syntax_errors_are_a_400_before_anything_runs,
    denied_calls_are_reported_to_the_script_and_audited,
    the_audit_log_lists_calls_with_status_and_duration_without_secrets,
    a_reflecting_upstream_does_not_leak_the_secret_to_the_agent,
    extending_a_permit_keeps_the_old_spec_until_the_owner_approves,
    a_stale_extension_request_cannot_be_approved,
    long_polls_return_as_soon_as_the_execution_ends,
    a_submission_with_wait_answers_with_the_finished_execution,
    a_submission_whose_run_outlasts_its_wait_is_a_202,
    long_polls_return_the_current_status_at_their_timeout,
    long_poll_timeouts_outside_0_to_60_seconds_are_refused,
    unknown_executions_are_a_404,
    an_extension_approved_without_expires_in_keeps_the_permits_expiry,
    a_retried_action_at_the_in_flight_limit_gets_its_execution,
    the_rate_limit_is_shared_by_concurrent_calls_and_executions,
);

async fn quickstart_flow_lists_issues_with_the_owners_token(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let secret = fake_secret();
    let (agent, _owner, permit) = gateway.approved_permit(&secret).await;
    let status = gateway
        .execute(
            &agent,
            &permit,
            "const r = await github('GET', '/repos/owner/repo/issues'); console.log(JSON.stringify(r));",
        )
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["result"]["success"], true);
    let issues: serde_json::Value = serde_json::from_str(status["result"]["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(issues[0]["title"], "Flaky test on CI");
    assert_eq!(status["result"]["calls"][0]["status"], 200);
    assert!(!status.to_string().contains(&secret));
    let (code, _) = gateway.call("GET", "/health", None, None).await;
    assert_eq!(code, StatusCode::OK);
    let _ = json!({});
}

async fn malformed_json_is_a_400_malformed_json(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    for body in [&b"{\"name\":"[..], b"{name: 'x'}", b"not json", b"{\"name\": \"x\"} trailing"] {
        let reply = gateway.send_raw("POST", "/signup", None, Some("application/json"), Some(body.to_vec())).await;
        assert_error(reply.status, &reply.body, StatusCode::BAD_REQUEST, "malformed_json");
    }
    // Also behind authentication.
    let (_, owner) = gateway.signup("owner", "owner").await;
    let reply = gateway.send_raw("POST", "/secrets", Some(&owner), Some("application/json"), Some(b"[".to_vec())).await;
    assert_error(reply.status, &reply.body, StatusCode::BAD_REQUEST, "malformed_json");
}

async fn unknown_or_mistyped_fields_are_a_400_invalid_request(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (status, body) = gateway.call("POST", "/signup", None, Some(json!({"name": "a", "rol": "owner"}))).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("rol"), "{body}");
    let (status, body) = gateway.call("POST", "/signup", None, Some(json!({"name": 5}))).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("name"), "{body}");
    let (status, body) = gateway.call("POST", "/signup", None, Some(json!({"role": "agent"}))).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, body) = gateway.call("POST", "/signup", None, Some(json!({"name": "a", "role": "admin"}))).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (_, agent) = gateway.signup("agent", "agent").await;
    let body = json!({"description": "x", "capabilities": [gateway.github_capability()], "scope": "all"});
    let (status, body) = gateway.post("/permit", &agent, body).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert!(body["error"]["message"].as_str().unwrap().contains("scope"), "{body}");
}

async fn non_json_content_types_are_a_415(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let body = br#"{"name": "agent"}"#.to_vec();
    // A form body is the web UI's only from a browser (Accept: text/html).
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"] {
        let reply = gateway.send_raw("POST", "/signup", None, Some(content_type), Some(body.clone())).await;
        assert_error(reply.status, &reply.body, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    // JSON with parameters, a +json type, or no Content-Type at all are read.
    for content_type in [Some("application/json; charset=utf-8"), Some("application/vnd.api+json"), None] {
        let reply = gateway.send_raw("POST", "/signup", None, content_type, Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{content_type:?}: {}", reply.body);
    }
}

async fn bodies_over_the_limit_are_a_413(backend: Backend) {
    let gateway = TestGateway::start_with(backend, |c| c.max_body_bytes = 1024).await;
    let (status, body) = gateway.call("POST", "/signup", None, Some(json!({"name": "x".repeat(2000)}))).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(body["error"]["message"].as_str().unwrap().contains("1024"), "{body}");
    let (_, agent) = gateway.signup("agent", "agent").await;
    let code = format!("console.log('{}')", "y".repeat(2000));
    let (status, body) = gateway.submit(&agent, "prm_0", "act-1", &code).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // Just under the limit is read (and refused for what it says).
    let (status, body) = gateway.call("POST", "/signup", None, Some(json!({"name": "x".repeat(900)}))).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
}

async fn unknown_paths_are_a_json_404(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    for (method, path, token) in [
        ("GET", "/nope", None),
        ("POST", "/nope", None),
        ("GET", "/permits/prm_0/nope", Some(agent.as_str())),
        ("GET", "/execute/exe_0", Some(agent.as_str())),
    ] {
        let (status, body) = gateway.call(method, path, token, None).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
}

async fn wrong_methods_are_a_json_405(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    for (method, path) in [
        ("DELETE", "/signup"),
        ("GET", "/signup"),
        ("GET", "/execute"),
        ("PUT", "/secrets"),
        ("POST", "/health"),
        ("DELETE", "/permits/prm_0"),
    ] {
        let (status, body) = gateway.call(method, path, None, None).await;
        assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
}

/// Every route the gateway serves, as `GET /` must list it.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/attestation"),
    ("POST", "/signup"),
    ("POST", "/invites"),
    ("POST", "/tokens/revoke"),
    ("POST", "/secrets"),
    ("GET", "/secrets"),
    ("DELETE", "/secrets/{name}"),
    ("POST", "/draft"),
    ("POST", "/permit"),
    ("GET", "/permit/{request_id}"),
    ("GET", "/approve/{request_id}"),
    ("POST", "/approve/{request_id}"),
    ("GET", "/permits"),
    ("GET", "/permits/{permit_id}"),
    ("GET", "/permits/{permit_id}/wit"),
    ("GET", "/permits/{permit_id}/component"),
    ("POST", "/permits/{permit_id}/revoke"),
    ("POST", "/execute"),
    ("GET", "/execute/{request_id}/status"),
    ("GET", "/audit"),
    ("GET", "/confirmations"),
    ("GET", "/confirmations/{confirmation_id}"),
    ("POST", "/confirmations/{confirmation_id}"),
    ("POST", "/mcp"),
    ("GET", "/openapi.json"),
    ("GET", "/ready"),
];

async fn discovery_lists_every_endpoint_and_each_is_routed(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (status, body) = gateway.call("GET", "/", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "oauth3");
    assert_eq!(body["public_url"], gateway.url.as_str());
    let listed: Vec<(String, String)> = body["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["auth"].is_string() && e["description"].is_string(), "{e}");
            (e["method"].as_str().unwrap().to_owned(), e["path"].as_str().unwrap().to_owned())
        })
        .collect();
    let expected: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let mut sorted_listed = listed.clone();
    sorted_listed.sort();
    let mut sorted_expected = expected;
    sorted_expected.sort();
    assert_eq!(sorted_listed, sorted_expected);
    // Each listed endpoint is served (never the 404/405 fallbacks).
    for (method, path) in &listed {
        let path = path
            .replace("{name}", "X")
            .replace("{request_id}", "req_0")
            .replace("{permit_id}", "prm_0")
            .replace("{confirmation_id}", "cfm_0");
        let (status, body) = gateway.call(method, &path, None, None).await;
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {status} {body}"
        );
    }
}

async fn health_is_ok_with_a_request_id(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let reply = gateway.send_raw("GET", "/health", None, None, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, json!({"status": "ok", "database": "ok"}));
    assert!(reply.headers.contains_key("x-request-id"));
    // Errors carry one too.
    let reply = gateway.send_raw("GET", "/nope", None, None, None).await;
    assert!(reply.headers.contains_key("x-request-id"));
}

async fn secret_values_are_never_returned(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let (first, second) = (fake_secret(), fake_secret());
    let (status, created) = gateway.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": first})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(keys(&created), ["created_at", "name", "updated_at"]);
    assert_eq!(created["name"], "GITHUB_TOKEN");
    // Replacing answers 200 and keeps the creation time.
    let (status, replaced) = gateway.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": second})).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(keys(&replaced), ["created_at", "name", "updated_at"]);
    assert_eq!(replaced["created_at"], created["created_at"]);
    let (status, listed) = gateway.get("/secrets", &owner).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let entries = listed["secrets"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(keys(&entries[0]), ["created_at", "name", "updated_at"]);
    assert_eq!(entries[0]["name"], "GITHUB_TOKEN");
    for body in [&created, &replaced, &listed] {
        let text = body.to_string();
        assert!(!text.contains(&first) && !text.contains(&second));
    }
    let (status, body) = gateway.call("DELETE", "/secrets/GITHUB_TOKEN", Some(&owner), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, Value::Null);
    let (status, body) = gateway.call("DELETE", "/secrets/GITHUB_TOKEN", Some(&owner), None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, listed) = gateway.get("/secrets", &owner).await;
    assert_eq!(listed, json!({"secrets": []}));
}

async fn secret_names_and_values_are_validated(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    for name in ["", "1TOKEN", "GITHUB-TOKEN", "TOKEN NAME", &"A".repeat(129)] {
        let (status, body) = gateway.post("/secrets", &owner, json!({"name": name, "value": fake_secret()})).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
    for value in ["".to_owned(), format!("{}\nX-Injected: 1", fake_secret()), format!("{}\r", fake_secret())] {
        let (status, body) = gateway.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": value})).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(!body.to_string().contains("fake-secret"), "the value is not echoed: {body}");
    }
    let (_, listed) = gateway.get("/secrets", &owner).await;
    assert_eq!(listed, json!({"secrets": []}));
}

async fn permit_requests_with_an_invalid_spec_are_a_400_naming_the_field(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let mut unknown_method = gateway.github_capability();
    unknown_method["rules"][1]["method"] = json!("CONNECT");
    let mut plain_http = gateway.github_capability();
    plain_http["base_url"] = json!("http://api.github.com");
    let mut unknown_field = gateway.github_capability();
    unknown_field["rulez"] = json!([]);
    let mut undeclared_secret = gateway.github_capability();
    undeclared_secret["secrets"] = json!([]);
    let cases = [
        // Compile-time checks name the field within the combined spec
        // (`integrations[0]...`); parse errors say `capabilities[0]...`.
        (vec![unknown_method], "[0].rules[1].method"),
        (vec![gateway.github_capability(), plain_http], "base_url"),
        (vec![unknown_field], "capabilities[0].rulez"),
        (vec![undeclared_secret], "GITHUB_TOKEN"),
    ];
    for (capabilities, field) in cases {
        let body = json!({"description": "bad", "capabilities": capabilities});
        let (status, body) = gateway.post("/permit", &agent, body).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_spec");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "expected {field} in: {message}");
    }
    let (_, listed) = gateway.get("/permits", &agent).await;
    assert_eq!(listed, json!({"permits": []}), "no permit is created for a refused spec");
}

async fn permit_requests_need_exactly_one_of_capabilities_or_intent(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let intent = json!([{"name": "github", "goal": "list issues"}]);
    for body in [
        json!({"description": "nothing"}),
        json!({"description": "nothing", "capabilities": [], "intent": []}),
        json!({"description": "both", "capabilities": [gateway.github_capability()], "intent": intent}),
        json!({"description": " ", "capabilities": [gateway.github_capability()]}),
    ] {
        let (status, body) = gateway.post("/permit", &agent, body).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

async fn approving_twice_is_idempotent(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let (request, permit) = gateway.request_permit(&agent).await;
    let first = gateway.approve(&owner, &request).await;
    let second = gateway.approve(&owner, &request).await;
    for decision in [&first, &second] {
        assert_eq!(decision["status"], "approved", "{decision}");
        assert_eq!(decision["request_id"], request.as_str());
        assert_eq!(decision["permit_id"], permit.as_str());
    }
    assert_eq!(first["spec_hash"], second["spec_hash"]);
    let (_, view) = gateway.get(&format!("/permits/{permit}"), &owner).await;
    assert_eq!(view["status"], "active");
    assert_eq!(view["spec_hash"], first["spec_hash"]);
    // The other decision is a conflict now.
    let (status, body) = gateway.post(&format!("/approve/{request}"), &owner, json!({"action": "deny"})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "already_decided");
}

async fn a_denied_request_cannot_be_approved(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let (request, permit) = gateway.request_permit(&agent).await;
    let path = format!("/approve/{request}");
    let (status, body) = gateway.post(&path, &owner, json!({"action": "deny"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "denied");
    // Denying again is idempotent; approving is a conflict.
    let (status, body) = gateway.post(&path, &owner, json!({"action": "deny"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = gateway.post(&path, &owner, json!({"action": "approve"})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "already_decided");
    let (status, body) = gateway.post(&path, &owner, json!({"action": "maybe"})).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    let (_, view) = gateway.get(&format!("/permit/{request}"), &agent).await;
    assert_eq!(view["status"], "denied");
    let (_, view) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(view["status"], "denied");
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "console.log(1)").await;
    assert_error(status, &body, StatusCode::CONFLICT, "permit_not_active");
}

async fn an_expired_request_cannot_be_approved(backend: Backend) {
    let gateway = TestGateway::start_with(backend, |c| c.request_ttl_secs = 0).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let (request, permit) = gateway.request_permit(&agent).await;
    let (_, view) = gateway.get(&format!("/permit/{request}"), &agent).await;
    assert_eq!(view["status"], "expired", "{view}");
    for _ in 0..2 {
        let (status, view) = gateway.get(&format!("/approve/{request}"), &owner).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["status"], "expired", "{view}");
        let (status, body) = gateway.post(&format!("/approve/{request}"), &owner, json!({"action": "approve"})).await;
        assert_error(status, &body, StatusCode::CONFLICT, "request_expired");
    }
    let (_, view) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(view["status"], "pending");
    assert_eq!(view["spec_hash"], Value::Null);
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "console.log(1)").await;
    assert_error(status, &body, StatusCode::CONFLICT, "permit_not_active");
}

async fn approval_expiry_must_be_positive_and_bounded(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let (request, _) = gateway.request_permit(&agent).await;
    for expires_in in [json!(0), json!(11 * 365 * 24 * 3600), json!(-1), json!("1h")] {
        let body = json!({"action": "approve", "expires_in": expires_in});
        let (status, body) = gateway.post(&format!("/approve/{request}"), &owner, body).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let body = json!({"action": "approve", "expires_in": 3600});
    let (status, body) = gateway.post(&format!("/approve/{request}"), &owner, body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["expires_at"].is_string(), "{body}");
}

async fn a_revoked_permit_cannot_execute(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let path = format!("/permits/{permit}/revoke");
    let (status, first) = gateway.post(&path, &owner, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "revoked");
    // Revoking is idempotent.
    let (status, second) = gateway.post(&path, &owner, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["status"], "revoked");
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "console.log(1)").await;
    assert_error(status, &body, StatusCode::CONFLICT, "permit_not_active");
    let (_, view) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(view["status"], "revoked");
    assert!(view["revoked_at"].is_string(), "{view}");
    // Nor can it be extended.
    let body = json!({"description": "more", "capabilities": [gateway.github_capability()], "permit_id": permit});
    let (status, body) = gateway.post("/permit", &agent, body).await;
    assert_error(status, &body, StatusCode::CONFLICT, "permit_not_active");
}

async fn a_permit_cannot_execute_before_approval(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, permit) = gateway.request_permit(&agent).await;
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "console.log(1)").await;
    assert_error(status, &body, StatusCode::CONFLICT, "permit_not_active");
    let (status, body) = gateway.submit(&agent, "prm_0", "act-1", "console.log(1)").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

async fn an_expired_permit_cannot_execute(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let (request, permit) = gateway.request_permit(&agent).await;
    let body = json!({"action": "approve", "expires_in": 1});
    let (status, body) = gateway.post(&format!("/approve/{request}"), &owner, body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "console.log(1)").await;
    assert_error(status, &body, StatusCode::CONFLICT, "permit_expired");
    let (_, view) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(view["status"], "expired");
    let (_, listed) = gateway.get("/permits", &agent).await;
    assert_eq!(listed["permits"][0]["status"], "expired");
}

async fn the_same_action_id_and_code_return_the_same_execution(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, _owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let code = "console.log('once')";
    let (status, first) = gateway.submit(&agent, &permit, "act-1", code).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, second) = gateway.submit(&agent, &permit, "act-1", code).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    assert_eq!(first["request_id"], second["request_id"]);
    let id = first["request_id"].as_str().unwrap();
    let done = gateway.wait_for(&agent, id).await;
    assert_eq!(done["result"]["stdout"], "once\n", "{done}");
    // After it ended, the same submission reports the ended execution.
    let (status, third) = gateway.submit(&agent, &permit, "act-1", code).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{third}");
    assert_eq!(third["request_id"], first["request_id"]);
    assert_eq!(third["status"], "completed", "{third}");
    // Another action id is another execution.
    let (status, other) = gateway.submit(&agent, &permit, "act-2", code).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{other}");
    assert_ne!(other["request_id"], first["request_id"]);
}

async fn reusing_an_action_id_with_other_code_is_a_conflict(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, _owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "console.log(1)").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "console.log(2)").await;
    assert_error(status, &body, StatusCode::CONFLICT, "action_id_reused");
    let other_args = json!({"permit_id": permit, "action_id": "act-1", "code": "console.log(1)", "args": {"n": 1}});
    let (status, body) = gateway.post("/execute", &agent, other_args).await;
    assert_error(status, &body, StatusCode::CONFLICT, "action_id_reused");
    for action_id in ["", &"a".repeat(201)] {
        let (status, body) = gateway.submit(&agent, &permit, action_id, "console.log(1)").await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

async fn syntax_errors_are_a_400_before_anything_runs(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, _owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "const x = ;").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "syntax_error");
    // The action id was not used up.
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "console.log(1)").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

async fn denied_calls_are_reported_to_the_script_and_audited(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let code = "
        for (const [method, path] of [['GET', '/repos/other/repo/issues'], ['POST', '/repos/owner/repo/issues']]) {
            try { await github(method, path); console.log('allowed'); }
            catch (e) { console.log(e.code); }
        }";
    let done = gateway.execute(&agent, &permit, code).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["stdout"], "path_not_allowed\nmethod_not_allowed\n", "{done}");
    let calls = done["result"]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{done}");
    assert!(calls.iter().all(|c| c["decision"] == "deny" && c["status"].is_null()), "{done}");
    let (status, audit) = gateway.get(&format!("/audit?permit_id={permit}"), &owner).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    // Newest first.
    assert_eq!(entries[0]["reason"], "method_not_allowed", "{audit}");
    assert_eq!(entries[0]["method"], "POST");
    assert_eq!(entries[1]["reason"], "path_not_allowed", "{audit}");
    for entry in entries {
        assert_eq!(entry["decision"], "deny", "{entry}");
        assert_eq!(entry["status"], Value::Null, "nothing was sent: {entry}");
        assert_eq!(entry["execution_id"], done["request_id"]);
        assert_eq!(entry["integration"], "github");
    }
}

async fn the_audit_log_lists_calls_with_status_and_duration_without_secrets(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let secret = fake_secret();
    let (agent, owner, permit) = gateway.approved_permit(&secret).await;
    let code = "await github('GET', '/repos/owner/repo/issues'); await github('GET', '/echo');";
    let done = gateway.execute(&agent, &permit, code).await;
    assert_eq!(done["status"], "completed", "{}", shown(&done, &secret));
    let (status, audit) = gateway.get("/audit", &owner).await;
    assert_eq!(status, StatusCode::OK, "{}", shown(&audit, &secret));
    assert!(!audit.to_string().contains(&secret));
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{}", shown(&audit, &secret));
    let paths: Vec<&str> = entries.iter().map(|e| e["url"].as_str().unwrap()).collect();
    assert!(paths[0].ends_with("/echo") && paths[1].ends_with("/repos/owner/repo/issues"), "{paths:?}");
    for entry in entries {
        assert_eq!(entry["decision"], "allow", "{entry}");
        assert_eq!(entry["reason"], Value::Null, "{entry}");
        assert_eq!(entry["status"], 200, "{entry}");
        assert_eq!(entry["method"], "GET");
        assert_eq!(entry["permit_id"], permit.as_str());
        assert!(entry["duration_ms"].as_i64().is_some_and(|d| d >= 0), "{entry}");
        assert!(entry["response_bytes"].as_i64().is_some_and(|b| b > 0), "{entry}");
        assert!(entry["started_at"].is_string(), "{entry}");
    }
    let (status, one) = gateway.get("/audit?limit=1", &owner).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["entries"].as_array().unwrap().len(), 1);
    assert_eq!(one["entries"][0], entries[0]);
    for query in ["limit=0", "limit=1001", "limit=x"] {
        let (status, body) = gateway.get(&format!("/audit?{query}"), &owner).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

async fn a_reflecting_upstream_does_not_leak_the_secret_to_the_agent(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let secret = fake_secret();
    let (agent, _owner, permit) = gateway.approved_permit(&secret).await;
    let code = "const r = await github('GET', '/echo'); console.log(r.headers.authorization);";
    let done = gateway.execute(&agent, &permit, code).await;
    assert_eq!(done["status"], "completed", "{}", shown(&done, &secret));
    assert_eq!(done["result"]["calls"][0]["status"], 200, "{}", shown(&done, &secret));
    // The stub reflected the injected header; the agent sees it redacted.
    assert_eq!(done["result"]["stdout"], "[REDACTED]\n", "{}", shown(&done, &secret));
    assert!(!done.to_string().contains(&secret));
}

async fn extending_a_permit_keeps_the_old_spec_until_the_owner_approves(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let (_, before) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    let old_hash = before["spec_hash"].as_str().unwrap().to_owned();
    let extension = json!({"description": "read the docs too", "capabilities": [docs_capability(&gateway)],
                           "permit_id": permit});
    let (status, requested) = gateway.post("/permit", &agent, extension).await;
    assert_eq!(status, StatusCode::CREATED, "{requested}");
    assert_eq!(requested["permit_id"], permit.as_str());
    let request = requested["request_id"].as_str().unwrap().to_owned();
    let new_hash = requested["spec_hash"].as_str().unwrap().to_owned();
    assert_ne!(new_hash, old_hash);
    // The request shows the combined spec and what it extends.
    let (_, asked) = gateway.get(&format!("/approve/{request}"), &owner).await;
    assert_eq!(asked["extends"], old_hash.as_str());
    let names: Vec<&str> =
        asked["spec"]["integrations"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["github", "docs"]);

    // Until approved, the permit keeps its old spec.
    let (_, pending) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(pending["status"], "active");
    assert_eq!(pending["spec_hash"], old_hash.as_str());
    assert_eq!(pending["pending_request_id"], request.as_str());
    let issues = "await github('GET', '/repos/owner/repo/issues'); console.log('ok');";
    let docs = "const d = await docs('GET', '/openapi.json'); console.log(d.info.title);";
    let done = gateway.execute(&agent, &permit, issues).await;
    assert_eq!(done["status"], "completed", "{done}");
    let done = gateway.execute(&agent, &permit, docs).await;
    assert_eq!(done["status"], "failed", "docs is not granted yet: {done}");
    assert!(done["result"]["calls"].as_array().unwrap().is_empty(), "{done}");

    let decided = gateway.approve(&owner, &request).await;
    assert_eq!(decided["spec_hash"], new_hash.as_str());
    let (_, after) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(after["status"], "active");
    assert_eq!(after["spec_hash"], new_hash.as_str());
    assert_eq!(after["pending_request_id"], Value::Null);
    let done = gateway.execute(&agent, &permit, docs).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["stdout"], "stub-github\n");
    let done = gateway.execute(&agent, &permit, issues).await;
    assert_eq!(done["status"], "completed", "{done}");
}

async fn a_stale_extension_request_cannot_be_approved(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let extension = json!({"description": "docs", "capabilities": [docs_capability(&gateway)], "permit_id": permit});
    let (status, first) = gateway.post("/permit", &agent, extension.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = gateway.post("/permit", &agent, extension).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    gateway.approve(&owner, first["request_id"].as_str().unwrap()).await;
    // The second was made against the spec the first replaced.
    let path = format!("/approve/{}", second["request_id"].as_str().unwrap());
    let (status, body) = gateway.post(&path, &owner, json!({"action": "approve"})).await;
    assert_error(status, &body, StatusCode::CONFLICT, "permit_changed");
    let (_, view) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(view["spec_hash"], first["spec_hash"]);
}

async fn long_polls_return_as_soon_as_the_execution_ends(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "console.log('quick')").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["request_id"].as_str().unwrap();
    assert!(body["status_url"].as_str().unwrap().ends_with(&format!("/execute/{id}/status")), "{body}");
    let started = Instant::now();
    let (status, done) = gateway.get(&format!("/execute/{id}/status?wait=true&timeout=30"), &agent).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "completed", "{done}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(done["result"]["stdout"], "quick\n");
    assert!(done["finished_at"].is_string(), "{done}");
    // An ended execution answers at once, with a short timeout too, and to its owner.
    for token in [&agent, &owner] {
        let (status, again) = gateway.get(&format!("/execute/{id}/status?wait=true&timeout=0.2"), token).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["status"], "completed", "{again}");
    }
}

async fn a_submission_with_wait_answers_with_the_finished_execution(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let body = json!({"permit_id": permit, "action_id": "one-trip", "code": "console.log('at once')", "wait": true});
    let (status, done) = gateway.post("/execute", &agent, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["stdout"], "at once\n", "{done}");
    assert!(done["receipt"]["signature"].is_string(), "{done}");
    // Exactly what its status says (the worker handed the row it stored to
    // the waiting request), and a retry is the same execution.
    let id = done["request_id"].as_str().unwrap();
    let (_, status_view) = gateway.get(&format!("/execute/{id}/status"), &owner).await;
    assert_eq!(status_view, done);
    let (status, again) = gateway.post("/execute", &agent, body).await;
    assert_eq!((status, &again["request_id"]), (StatusCode::OK, &done["request_id"]), "{again}");
    // Seconds work too; `false` and 0 answer at once.
    let seconds = json!({"permit_id": permit, "action_id": "secs", "code": "console.log(2)", "wait": 10});
    assert_eq!(gateway.post("/execute", &agent, seconds).await.0, StatusCode::OK);
    for (action, wait) in [("no", json!(false)), ("zero", json!(0))] {
        let body = json!({"permit_id": permit, "action_id": action, "code": "console.log(3)", "wait": wait});
        let (status, accepted) = gateway.post("/execute", &agent, body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    }
    // A bad wait is refused before anything is stored: the action id is still free.
    for wait in [json!(61), json!(-1), json!("soon")] {
        let body = json!({"permit_id": permit, "action_id": "bad", "code": "console.log(4)", "wait": wait});
        let (status, refused) = gateway.post("/execute", &agent, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    }
    let (status, body) = gateway.submit(&agent, &permit, "bad", "console.log('other code')").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

async fn a_submission_whose_run_outlasts_its_wait_is_a_202(backend: Backend) {
    let gateway = TestGateway::start_with(backend, |c| {
        c.timeout_secs = 3;
        c.fuel = u64::MAX;
    })
    .await;
    let (agent, _owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let body = json!({"permit_id": permit, "action_id": "spin", "code": "while (true) {}", "wait": 0.3});
    let (status, accepted) = gateway.post("/execute", &agent, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert!(matches!(accepted["status"].as_str(), Some("queued" | "running")), "{accepted}");
    let done = gateway.wait_for(&agent, accepted["request_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}");
}

async fn long_polls_return_the_current_status_at_their_timeout(backend: Backend) {
    // Unlimited fuel: the spin must outlast the 0.3 s poll (5e9 units can
    // run out in under 0.3 s on a fast machine), ended by the 3 s limit.
    let gateway = TestGateway::start_with(backend, |c| {
        c.timeout_secs = 3;
        c.fuel = u64::MAX;
    })
    .await;
    let (agent, _owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "while (true) {}").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["request_id"].as_str().unwrap();
    let started = Instant::now();
    let (status, current) = gateway.get(&format!("/execute/{id}/status?wait=true&timeout=0.3"), &agent).await;
    assert_eq!(status, StatusCode::OK, "{current}");
    // It came back before the execution ended (that takes the 3 s wall-clock limit).
    assert!(matches!(current["status"].as_str(), Some("queued" | "running")), "{current}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    let done = gateway.wait_for(&agent, id).await;
    assert_eq!(done["status"], "failed", "{done}");
    let code = done["result"]["error"]["code"].as_str().unwrap();
    assert!(code == "timeout" || code == "out_of_fuel", "{done}");
}

async fn a_row_running_here_that_no_run_holds_is_marked_interrupted_and_a_running_one_is_not(backend: Backend) {
    // Heartbeats every second.
    let gateway = TestGateway::start_with(backend, |c| {
        c.replica_timeout_ms = 4000;
        c.timeout_secs = 4;
        c.fuel = u64::MAX;
    })
    .await;
    let (agent, _owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let db = oauth3_gateway::db::Db::connect(&gateway.database_url()).await.unwrap();
    let backdate = |id: String| {
        let db = db.clone();
        async move {
            sqlx::query(
                "UPDATE executions SET status = 'running', finished_at = NULL, result = NULL, receipt = NULL, \
                 receipt_id = NULL, started_at = $1 WHERE id = $2",
            )
            .bind(oauth3_gateway::db::now_ms() - 60_000)
            .bind(id)
            .execute(&db.writer)
            .await
            .unwrap();
        }
    };
    // Left as a claim whose commit went unanswered leaves it: running on
    // this replica for a minute, and no run here.
    let done = gateway.execute(&agent, &permit, "console.log(1)").await;
    assert_eq!(done["status"], "completed", "{done}");
    let orphan = done["request_id"].as_str().unwrap().to_owned();
    backdate(orphan.clone()).await;
    // Really running here, and as old in the database.
    let (status, spinning) = gateway.submit(&agent, &permit, "spin", "while (true) {}").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{spinning}");
    let spinning = spinning["request_id"].as_str().unwrap().to_owned();
    let (_, current) = gateway.get(&format!("/execute/{spinning}/status?wait=true&timeout=0.5"), &agent).await;
    assert_eq!(current["status"], "running", "{current}");
    backdate(spinning.clone()).await;

    let interrupted = gateway.wait_for(&agent, &orphan).await;
    assert_eq!(interrupted["status"], "failed", "{interrupted}");
    assert_eq!(interrupted["result"]["error"]["code"], "interrupted", "{interrupted}");
    let ended = gateway.wait_for(&agent, &spinning).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    let code = ended["result"]["error"]["code"].as_str().unwrap();
    assert!(code == "timeout" || code == "out_of_fuel", "{ended}");
}

async fn long_poll_timeouts_outside_0_to_60_seconds_are_refused(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, _owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let (_, body) = gateway.submit(&agent, &permit, "act-1", "console.log(1)").await;
    let id = body["request_id"].as_str().unwrap();
    for query in ["wait=true&timeout=61", "wait=true&timeout=-1", "wait=true&timeout=soon", "wait=maybe"] {
        let (status, body) = gateway.get(&format!("/execute/{id}/status?{query}"), &agent).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let (status, body) = gateway.get(&format!("/execute/{id}/status?wait=true&timeout=60"), &agent).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn unknown_executions_are_a_404(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    for query in ["", "?wait=true&timeout=0.2"] {
        let (status, body) = gateway.get(&format!("/execute/exe_0/status{query}"), &agent).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
}

/// The object's keys, sorted.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// A second integration on the stub, needing no secret.
fn docs_capability(gateway: &TestGateway) -> Value {
    json!({
        "name": "docs",
        "base_url": gateway.stub.url(),
        "rules": [{"method": "GET", "path": "/openapi.json"}],
    })
}

/// `value` as text with `secret` masked, for assertion messages.
fn shown(value: &Value, secret: &str) -> String {
    value.to_string().replace(secret, "[secret]")
}

async fn an_extension_approved_without_expires_in_keeps_the_permits_expiry(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let (request, permit) = gateway.request_permit(&agent).await;
    let body = json!({"action": "approve", "expires_in": 3600});
    let (status, approved) = gateway.post(&format!("/approve/{request}"), &owner, body).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    let expires_at = approved["expires_at"].as_str().unwrap().to_owned();

    let extension = json!({"description": "docs", "capabilities": [docs_capability(&gateway)], "permit_id": permit});
    let (_, requested) = gateway.post("/permit", &agent, extension).await;
    let decided = gateway.approve(&owner, requested["request_id"].as_str().unwrap()).await;
    assert_eq!(decided["expires_at"], expires_at.as_str());
    let (_, shown) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(shown["expires_at"], expires_at.as_str());
}

async fn a_retried_action_at_the_in_flight_limit_gets_its_execution(backend: Backend) {
    let gateway = TestGateway::start_with(backend, |c| {
        c.max_executions_per_agent = 1;
        c.timeout_secs = 2;
    })
    .await;
    let (agent, _, permit) = gateway.approved_permit(&fake_secret()).await;
    let spin = "for (;;) {}";
    let (status, first) = gateway.submit(&agent, &permit, "spin", spin).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, retried) = gateway.submit(&agent, &permit, "spin", spin).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(retried["request_id"], first["request_id"]);
    let (status, refused) = gateway.submit(&agent, &permit, "another", "console.log(1)").await;
    assert_error(status, &refused, StatusCode::TOO_MANY_REQUESTS, "too_many_executions");
}

async fn the_rate_limit_is_shared_by_concurrent_calls_and_executions(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    gateway.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": fake_secret()})).await;
    let mut capability = gateway.github_capability();
    capability["rate_limit"] = json!({"max_calls": 3, "window_seconds": 3600});
    let (_, requested) =
        gateway.post("/permit", &agent, json!({"description": "limited", "capabilities": [capability]})).await;
    gateway.approve(&owner, requested["request_id"].as_str().unwrap()).await;
    let permit = requested["permit_id"].as_str().unwrap();

    let burst = "const results = await Promise.allSettled([1, 2, 3, 4, 5].map(() => \
                 github('GET', '/repos/owner/repo/issues')));\n\
                 console.log(results.map(r => r.status === 'fulfilled' ? 'ok' : r.reason.code).sort().join(','));";
    let first = gateway.execute(&agent, permit, burst).await;
    assert_eq!(first["result"]["stdout"], "ok,ok,ok,rate_limited,rate_limited\n", "{first}");
    let second = gateway.execute(&agent, permit, burst).await;
    assert_eq!(second["result"]["stdout"], "rate_limited,rate_limited,rate_limited,rate_limited,rate_limited\n");
}
