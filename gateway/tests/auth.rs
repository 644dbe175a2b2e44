//! Authentication and authorisation against a real gateway, on SQLite and on
//! Postgres: every rule is tried and refused, with the status and the JSON
//! error body checked.

mod support;

use oauth3_e2e::on_both_databases;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Backend, Reply, TestGateway, assert_error, fake_secret};

on_both_databases!(
    requests_without_a_token_are_refused_with_a_bearer_challenge,
    garbage_tokens_are_refused,
    tokens_signed_with_another_key_are_refused,
    tokens_with_alg_none_are_refused,
    tokens_signed_with_another_algorithm_are_refused,
    expired_tokens_are_refused,
    tokens_for_another_issuer_or_audience_are_refused,
    tokens_forged_with_the_gateway_key_are_accepted,
    agents_cannot_call_owner_endpoints,
    owners_cannot_call_agent_endpoints,
    agents_cannot_read_another_agents_permit_request,
    agents_cannot_read_another_agents_permit,
    agents_cannot_read_another_agents_execution,
    agents_cannot_execute_under_or_extend_another_agents_permit,
    owners_cannot_approve_a_request_for_another_owners_permit,
    owners_cannot_revoke_another_owners_permit,
    owners_cannot_read_another_owners_audit,
    owners_cannot_read_executions_under_another_owners_permit,
    owners_only_see_and_delete_their_own_secrets,
    permits_use_only_their_approving_owners_secrets,
    approval_accepts_an_owner_token_in_the_body,
    approval_refuses_an_agent_token_in_the_body,
    approval_without_any_token_is_unauthorized,
);

const ISSUER: &str = "oauth3-gateway";
const AUDIENCE: &str = "oauth3-api";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Claims as the gateway issues them, valid for an hour.
fn claims(sub: &str, role: &str) -> Value {
    let now = now();
    json!({"sub": sub, "role": role, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600})
}

/// A JWT over `claims` signed with `key` and `alg` (an HMAC algorithm).
fn forge(key: &[u8], alg: Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).unwrap()
}

/// A JWT over `claims` with `"alg": "none"` and the given signature part.
fn unsigned(claims: &Value, signature: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.{signature}")
}

/// 401, `WWW-Authenticate: Bearer` and the JSON error body.
#[track_caller]
fn assert_unauthorized(reply: &Reply) {
    assert_error(reply.status, &reply.body, StatusCode::UNAUTHORIZED, "unauthorized");
    let challenge = reply.headers.get(reqwest::header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap());
    assert_eq!(challenge, Some("Bearer"), "{}", reply.body);
}

/// `GET /permits` with `token`: an endpoint any tenant may call.
async fn list_permits_with(gateway: &TestGateway, token: &str) -> Reply {
    gateway.call_with_authorization("GET", "/permits", Some(&format!("Bearer {token}")), None).await
}

/// Every authenticated endpoint, with a body it would accept.
fn authenticated_endpoints() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("POST", "/invites", None),
        ("POST", "/secrets", Some(json!({"name": "GITHUB_TOKEN", "value": fake_secret()}))),
        ("GET", "/secrets", None),
        ("DELETE", "/secrets/GITHUB_TOKEN", None),
        ("POST", "/permit", Some(json!({"description": "x", "capabilities": [{"name": "x"}]}))),
        ("GET", "/permit/req_0", None),
        ("GET", "/permits", None),
        ("GET", "/permits/prm_0", None),
        ("POST", "/permits/prm_0/revoke", None),
        ("GET", "/approve/req_0", None),
        ("POST", "/approve/req_0", Some(json!({"action": "approve"}))),
        ("POST", "/execute", Some(json!({"permit_id": "prm_0", "action_id": "a", "code": "1"}))),
        ("GET", "/execute/exe_0/status", None),
        ("GET", "/execute/exe_0/status?wait=true&timeout=1", None),
        ("GET", "/audit", None),
    ]
}

async fn requests_without_a_token_are_refused_with_a_bearer_challenge(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    for (method, path, body) in authenticated_endpoints() {
        let reply = gateway.call_with_authorization(method, path, None, body).await;
        assert_unauthorized(&reply);
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("missing token"), "{method} {path}: {message}");
    }
}

async fn garbage_tokens_are_refused(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, token) = gateway.signup("agent", "agent").await;
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for authorization in [
        "Bearer garbage".to_owned(),
        "Bearer a.b.c".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {tampered}"),
        format!("Basic {token}"),
        token.clone(),
    ] {
        let reply = gateway.call_with_authorization("GET", "/permits", Some(&authorization), None).await;
        assert_unauthorized(&reply);
    }
    // The untampered token works, so the refusals above are the token's fault.
    assert_eq!(list_permits_with(&gateway, &token).await.status, StatusCode::OK);
}

async fn tokens_signed_with_another_key_are_refused(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent_id, _) = gateway.signup("agent", "agent").await;
    let mut other_key = gateway.jwt_key();
    other_key[0] ^= 1;
    let token = forge(&other_key, Algorithm::HS256, &claims(&agent_id, "agent"));
    assert_unauthorized(&list_permits_with(&gateway, &token).await);
    let token = forge(b"secret", Algorithm::HS256, &claims(&agent_id, "owner"));
    assert_unauthorized(&list_permits_with(&gateway, &token).await);
}

async fn tokens_with_alg_none_are_refused(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (owner_id, owner) = gateway.signup("owner", "owner").await;
    let claims = claims(&owner_id, "owner");
    assert_unauthorized(&list_permits_with(&gateway, &unsigned(&claims, "")).await);
    // Nor with a real token's signature kept after the header is swapped.
    let signature = owner.rsplit('.').next().unwrap();
    assert_unauthorized(&list_permits_with(&gateway, &unsigned(&claims, signature)).await);
    let authorization = format!("Bearer {}", unsigned(&claims, ""));
    assert_unauthorized(&gateway.call_with_authorization("GET", "/secrets", Some(&authorization), None).await);
}

async fn tokens_signed_with_another_algorithm_are_refused(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent_id, _) = gateway.signup("agent", "agent").await;
    let key = gateway.jwt_key();
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let token = forge(&key, alg, &claims(&agent_id, "agent"));
        assert_unauthorized(&list_permits_with(&gateway, &token).await);
    }
}

async fn expired_tokens_are_refused(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent_id, _) = gateway.signup("agent", "agent").await;
    let key = gateway.jwt_key();
    let mut expired = claims(&agent_id, "agent");
    // Past the gateway's 30 s leeway.
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 120);
    let reply = list_permits_with(&gateway, &forge(&key, Algorithm::HS256, &expired)).await;
    assert_unauthorized(&reply);
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("expired"), "{}", reply.body);
    // Without `exp` at all.
    let mut endless = claims(&agent_id, "agent");
    endless.as_object_mut().unwrap().remove("exp");
    assert_unauthorized(&list_permits_with(&gateway, &forge(&key, Algorithm::HS256, &endless)).await);
}

async fn tokens_for_another_issuer_or_audience_are_refused(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent_id, _) = gateway.signup("agent", "agent").await;
    let key = gateway.jwt_key();
    for (field, value) in [
        ("iss", json!("someone-else")),
        ("aud", json!("another-api")),
        ("aud", json!(["another-api"])),
        ("iss", Value::Null),
        ("aud", Value::Null),
        ("sub", Value::Null),
    ] {
        let mut claims = claims(&agent_id, "agent");
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(field);
        } else {
            claims[field] = value;
        }
        let reply = list_permits_with(&gateway, &forge(&key, Algorithm::HS256, &claims)).await;
        assert_unauthorized(&reply);
    }
    let mut claims = claims(&agent_id, "agent");
    claims["role"] = json!("admin");
    assert_unauthorized(&list_permits_with(&gateway, &forge(&key, Algorithm::HS256, &claims)).await);
}

/// The control for the forgeries above: the same construction with the
/// gateway's key and the right claims is accepted.
async fn tokens_forged_with_the_gateway_key_are_accepted(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent_id, _) = gateway.signup("agent", "agent").await;
    let token = forge(&gateway.jwt_key(), Algorithm::HS256, &claims(&agent_id, "agent"));
    let reply = list_permits_with(&gateway, &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, json!({"permits": []}));
    // A lower-case scheme is accepted too.
    let reply = gateway.call_with_authorization("GET", "/permits", Some(&format!("bearer {token}")), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

async fn agents_cannot_call_owner_endpoints(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (request, permit) = gateway.request_permit(&agent).await;
    let calls = [
        ("POST", "/secrets".to_owned(), Some(json!({"name": "GITHUB_TOKEN", "value": fake_secret()}))),
        ("GET", "/secrets".to_owned(), None),
        ("DELETE", "/secrets/GITHUB_TOKEN".to_owned(), None),
        ("POST", "/invites".to_owned(), None),
        ("GET", format!("/approve/{request}"), None),
        ("POST", format!("/approve/{request}"), Some(json!({"action": "approve"}))),
        ("POST", format!("/approve/{request}"), Some(json!({"action": "approve", "owner_token": agent}))),
        ("POST", format!("/permits/{permit}/revoke"), None),
        ("GET", "/audit".to_owned(), None),
        ("GET", format!("/audit?permit_id={permit}"), None),
    ];
    for (method, path, body) in calls {
        let (status, body) = gateway.call(method, &path, Some(&agent), body).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        assert!(body["error"]["message"].as_str().unwrap().contains("only owners"), "{method} {path}: {body}");
    }
    // The agent's own request is still pending: it did not approve itself.
    let (status, body) = gateway.get(&format!("/permit/{request}"), &agent).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "pending");
    let (_, body) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(body["status"], "pending");
}

async fn owners_cannot_call_agent_endpoints(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_agent, owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let calls = [
        json!({"description": "mine", "capabilities": [gateway.github_capability()]}),
        json!({"description": "extend", "capabilities": [gateway.github_capability()], "permit_id": permit}),
    ];
    for body in calls {
        let (status, body) = gateway.post("/permit", &owner, body).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        assert!(body["error"]["message"].as_str().unwrap().contains("only agents"), "{body}");
    }
    let (status, body) = gateway.submit(&owner, &permit, "act-1", "console.log(1)").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
}

async fn agents_cannot_read_another_agents_permit_request(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent_a) = gateway.signup("agent a", "agent").await;
    let (_, agent_b) = gateway.signup("agent b", "agent").await;
    let (request, _) = gateway.request_permit(&agent_a).await;
    let (status, body) = gateway.get(&format!("/permit/{request}"), &agent_b).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = gateway.get(&format!("/permit/{request}"), &agent_a).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["request_id"], request.as_str());
}

async fn agents_cannot_read_another_agents_permit(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent_a, _owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let (_, agent_b) = gateway.signup("agent b", "agent").await;
    let (status, body) = gateway.get(&format!("/permits/{permit}"), &agent_b).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = gateway.get("/permits", &agent_b).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"permits": []}));
    let (status, body) = gateway.get(&format!("/permits/{permit}"), &agent_a).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
}

async fn agents_cannot_read_another_agents_execution(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent_a, _owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let (_, agent_b) = gateway.signup("agent b", "agent").await;
    let (status, body) = gateway.submit(&agent_a, &permit, "act-1", "console.log('private output')").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["request_id"].as_str().unwrap();
    let done = gateway.wait_for(&agent_a, id).await;
    assert_eq!(done["status"], "completed", "{done}");
    for path in [format!("/execute/{id}/status"), format!("/execute/{id}/status?wait=true&timeout=1")] {
        let (status, body) = gateway.get(&path, &agent_b).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        assert!(!body.to_string().contains("private output"));
    }
}

async fn agents_cannot_execute_under_or_extend_another_agents_permit(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_agent_a, _owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let (_, agent_b) = gateway.signup("agent b", "agent").await;
    let (status, body) = gateway.submit(&agent_b, &permit, "act-1", "console.log(1)").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let extension = json!({"description": "more", "capabilities": [gateway.github_capability()], "permit_id": permit});
    let (status, body) = gateway.post("/permit", &agent_b, extension).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

/// Owner A approved the permit; owner B may neither see nor decide its
/// extension request, nor the request A already approved.
async fn owners_cannot_approve_a_request_for_another_owners_permit(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (owner_a_id, owner_a) = gateway.signup("owner a", "owner").await;
    let (_, owner_b) = gateway.signup("owner b", "owner").await;
    let (first, permit) = gateway.request_permit(&agent).await;
    let approved = gateway.approve(&owner_a, &first).await;
    let extension = json!({"description": "more", "capabilities": [docs_capability(&gateway)], "permit_id": permit});
    let (status, body) = gateway.post("/permit", &agent, extension).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second = body["request_id"].as_str().unwrap().to_owned();

    for request in [&first, &second] {
        for action in ["approve", "deny"] {
            let (status, body) =
                gateway.post(&format!("/approve/{request}"), &owner_b, json!({"action": action})).await;
            // The request is not visible to owner B at all: 404, like any
            // other tenant's resource (the handler's 403 for "another owner's
            // permit" is only reached in a race).
            assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        }
        let (status, body) = gateway.get(&format!("/approve/{request}"), &owner_b).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        let (status, body) = gateway.get(&format!("/permit/{request}"), &owner_b).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    // Nothing changed: A still owns the permit with the first spec, and the
    // extension still waits for A.
    let (_, view) = gateway.get(&format!("/permits/{permit}"), &owner_a).await;
    assert_eq!(view["owner_id"], owner_a_id.as_str());
    assert_eq!(view["spec_hash"], approved["spec_hash"]);
    assert_eq!(view["pending_request_id"], second.as_str());
    let decided = gateway.approve(&owner_a, &second).await;
    assert_eq!(decided["status"], "approved");
}

async fn owners_cannot_revoke_another_owners_permit(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner_a, permit) = gateway.approved_permit(&fake_secret()).await;
    let (_, owner_b) = gateway.signup("owner b", "owner").await;
    let (status, body) = gateway.post(&format!("/permits/{permit}/revoke"), &owner_b, json!({})).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = gateway.get(&format!("/permits/{permit}"), &owner_b).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, view) = gateway.get(&format!("/permits/{permit}"), &owner_a).await;
    assert_eq!(view["status"], "active");
    let done = gateway.execute(&agent, &permit, "await github('GET', '/repos/owner/repo/issues')").await;
    assert_eq!(done["status"], "completed", "{done}");
}

async fn owners_cannot_read_another_owners_audit(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner_a, permit) = gateway.approved_permit(&fake_secret()).await;
    let (_, owner_b) = gateway.signup("owner b", "owner").await;
    let done = gateway.execute(&agent, &permit, "await github('GET', '/repos/owner/repo/issues')").await;
    assert_eq!(done["status"], "completed", "{done}");
    let (status, body) = gateway.get(&format!("/audit?permit_id={permit}"), &owner_b).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = gateway.get("/audit", &owner_b).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"entries": []}));
    let (status, body) = gateway.get(&format!("/audit?permit_id={permit}"), &owner_a).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["entries"].as_array().unwrap().len(), 1, "{body}");
}

async fn owners_cannot_read_executions_under_another_owners_permit(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner_a, permit) = gateway.approved_permit(&fake_secret()).await;
    let (_, owner_b) = gateway.signup("owner b", "owner").await;
    let (status, body) = gateway.submit(&agent, &permit, "act-1", "console.log('private output')").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["request_id"].as_str().unwrap();
    gateway.wait_for(&agent, id).await;
    let (status, body) = gateway.get(&format!("/execute/{id}/status"), &owner_b).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = gateway.get(&format!("/execute/{id}/status"), &owner_a).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["stdout"], "private output\n");
}

async fn owners_only_see_and_delete_their_own_secrets(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, owner_a) = gateway.signup("owner a", "owner").await;
    let (_, owner_b) = gateway.signup("owner b", "owner").await;
    let (secret_a, secret_b) = (fake_secret(), fake_secret());
    let (status, _) = gateway.post("/secrets", &owner_a, json!({"name": "GITHUB_TOKEN", "value": secret_a})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = gateway.post("/secrets", &owner_b, json!({"name": "SLACK_TOKEN", "value": secret_b})).await;
    assert_eq!(status, StatusCode::CREATED);
    let names = |body: &Value| -> Vec<String> {
        body["secrets"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect()
    };
    let (_, list_b) = gateway.get("/secrets", &owner_b).await;
    assert_eq!(names(&list_b), ["SLACK_TOKEN"]);
    let (_, list_a) = gateway.get("/secrets", &owner_a).await;
    assert_eq!(names(&list_a), ["GITHUB_TOKEN"]);
    // B deleting a name only A holds touches nothing of A's.
    let (status, body) = gateway.call("DELETE", "/secrets/GITHUB_TOKEN", Some(&owner_b), None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, list_a) = gateway.get("/secrets", &owner_a).await;
    assert_eq!(names(&list_a), ["GITHUB_TOKEN"]);
    // B storing the same name creates B's own secret rather than replacing A's.
    let (status, _) = gateway.post("/secrets", &owner_b, json!({"name": "GITHUB_TOKEN", "value": fake_secret()})).await;
    assert_eq!(status, StatusCode::CREATED);
    for listing in [&list_a, &list_b] {
        let text = listing.to_string();
        assert!(!text.contains(&secret_a) && !text.contains(&secret_b));
    }
}

/// Owner B approves; owner A holds the secret. The execution must not get A's.
async fn permits_use_only_their_approving_owners_secrets(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner_a) = gateway.signup("owner a", "owner").await;
    let (_, owner_b) = gateway.signup("owner b", "owner").await;
    let secret = fake_secret();
    let (status, _) = gateway.post("/secrets", &owner_a, json!({"name": "GITHUB_TOKEN", "value": secret})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (request, permit) = gateway.request_permit(&agent).await;
    let decided = gateway.approve(&owner_b, &request).await;
    assert_eq!(decided["missing_secrets"], json!(["GITHUB_TOKEN"]));
    let code = "try { await github('GET', '/echo'); console.log('sent'); } catch (e) { console.log(e.code); }";
    let done = gateway.execute(&agent, &permit, code).await;
    assert!(!done.to_string().contains(&secret));
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["stdout"], "secret_missing\n", "{done}");
}

async fn approval_accepts_an_owner_token_in_the_body(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (owner_id, owner) = gateway.signup("owner", "owner").await;
    let (request, permit) = gateway.request_permit(&agent).await;
    let body = json!({"action": "approve", "owner_token": owner});
    let reply = gateway.call_with_authorization("POST", &format!("/approve/{request}"), None, Some(body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "approved");
    let (_, view) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(view["status"], "active");
    assert_eq!(view["owner_id"], owner_id.as_str());
}

async fn approval_refuses_an_agent_token_in_the_body(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let (request, permit) = gateway.request_permit(&agent).await;
    let path = format!("/approve/{request}");
    let body = json!({"action": "approve", "owner_token": agent});
    let reply = gateway.call_with_authorization("POST", &path, None, Some(body)).await;
    assert_error(reply.status, &reply.body, StatusCode::FORBIDDEN, "forbidden");
    // A garbage owner_token is a 401.
    let body = json!({"action": "approve", "owner_token": "garbage"});
    assert_unauthorized(&gateway.call_with_authorization("POST", &path, None, Some(body)).await);
    // The Authorization header wins over the body: an agent's header with an
    // owner's token in the body is still the agent.
    let body = json!({"action": "approve", "owner_token": owner});
    let reply = gateway.call_with_authorization("POST", &path, Some(&format!("Bearer {agent}")), Some(body)).await;
    assert_error(reply.status, &reply.body, StatusCode::FORBIDDEN, "forbidden");
    let (_, view) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(view["status"], "pending");
}

async fn approval_without_any_token_is_unauthorized(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (request, permit) = gateway.request_permit(&agent).await;
    for action in ["approve", "deny"] {
        let body = json!({"action": action});
        let reply = gateway.call_with_authorization("POST", &format!("/approve/{request}"), None, Some(body)).await;
        assert_unauthorized(&reply);
    }
    let (_, view) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(view["status"], "pending");
}

/// A second integration on the stub, needing no secret.
fn docs_capability(gateway: &TestGateway) -> Value {
    json!({
        "name": "docs",
        "base_url": gateway.stub.url(),
        "rules": [{"method": "GET", "path": "/openapi.json"}],
    })
}
