//! What a burst, a stolen token or an old database must not break, against a
//! real gateway on SQLite and on Postgres: the per-agent in-flight cap under
//! a parallel burst, token revocation on every endpoint, and retention.

mod support;

use oauth3_e2e::on_both_databases;

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth3_gateway::Server;
use oauth3_gateway::db::{Db, now_ms};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Backend, TestGateway, assert_error, config_for, fake_secret};

on_both_databases!(
    a_parallel_burst_of_submissions_never_passes_the_in_flight_cap,
    a_revoked_token_is_refused_by_every_endpoint,
    revoking_all_tokens_refuses_every_older_one_and_returns_a_fresh_one,
    a_token_without_an_id_is_revoked_by_its_hash,
    retention_deletes_old_audit_records_and_finished_executions_only,
);

/// A script that runs until the execution's wall-clock limit.
const SPIN: &str = "for (;;) {}";

async fn a_parallel_burst_of_submissions_never_passes_the_in_flight_cap(backend: Backend) {
    const CAP: u64 = 12;
    const BURST: usize = 60;
    let gateway = TestGateway::start_with(backend, |config| {
        config.max_executions_per_agent = CAP;
        // One runs (and spins), the rest stay queued: nothing frees a slot.
        config.max_concurrent = 1;
        config.timeout_secs = 120;
    })
    .await;
    let (agent, _, permit) = gateway.approved_permit(&fake_secret()).await;
    let submissions = (0..BURST).map(|i| {
        let gateway = &gateway;
        let (agent, permit) = (&agent, &permit);
        async move { gateway.submit(agent, permit, &format!("burst-{i}"), SPIN).await }
    });
    let replies = futures_join_all(submissions).await;
    let accepted = replies.iter().filter(|(status, _)| *status == StatusCode::ACCEPTED).count();
    for (status, body) in &replies {
        if *status != StatusCode::ACCEPTED {
            assert_error(*status, body, StatusCode::TOO_MANY_REQUESTS, "too_many_executions");
        }
    }
    let db = Db::connect(&database_url(&gateway)).await.unwrap();
    let in_flight: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM executions WHERE status IN ('queued', 'running')")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(accepted as u64 <= CAP, "{accepted} accepted against a cap of {CAP}");
    assert_eq!(in_flight, accepted as i64, "every accepted submission is queued or running, and nothing else");
    assert!(accepted as u64 >= CAP / 2, "the burst filled most of the slots ({accepted})");
    // A retry of an accepted action still gets its execution at the cap.
    let first = replies.iter().position(|(status, _)| *status == StatusCode::ACCEPTED).unwrap();
    let (status, again) = gateway.submit(&agent, &permit, &format!("burst-{first}"), SPIN).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["request_id"], replies[first].1["request_id"]);
}

/// Runs the futures concurrently (on this task) and returns their outputs in order.
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

fn database_url(gateway: &TestGateway) -> String {
    gateway.database_url()
}

/// Every endpoint a token of `role` may call, with a body where one is
/// needed: each must answer 401 once the token is revoked.
async fn assert_refused_everywhere(gateway: &TestGateway, token: &str, role: &str) {
    let mut calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/permits".into(), None),
        ("GET", "/permits/prm_0".into(), None),
        ("GET", "/permits/prm_0/wit".into(), None),
        ("GET", "/permits/prm_0/component".into(), None),
        ("GET", "/permit/req_0".into(), None),
        ("GET", "/execute/exe_0/status".into(), None),
        ("POST", "/tokens/revoke".into(), Some(json!({}))),
        (
            "POST",
            "/draft".into(),
            Some(json!({"intent": {"name": "x", "goal": "list", "doc_urls": ["https://example.com"]}})),
        ),
    ];
    if role == "owner" {
        calls.extend([
            ("GET", "/secrets".into(), None),
            ("POST", "/secrets".into(), Some(json!({"name": "X", "value": "y"}))),
            ("DELETE", "/secrets/X".into(), None),
            ("GET", "/audit".into(), None),
            ("POST", "/invites".into(), None),
            ("GET", "/approve/req_0".into(), None),
            ("POST", "/approve/req_0".into(), Some(json!({"action": "approve"}))),
            ("POST", "/permits/prm_0/revoke".into(), None),
        ]);
    } else {
        calls.extend([
            ("POST", "/permit".into(), Some(json!({"description": "d", "capabilities": []}))),
            ("POST", "/execute".into(), Some(json!({"permit_id": "prm_0", "action_id": "a", "code": "1"}))),
        ]);
    }
    for (method, path, body) in calls {
        let (status, reply) = gateway.call(method, &path, Some(token), body).await;
        assert_error(status, &reply, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(reply["error"]["message"].as_str().unwrap().contains("revoked"), "{method} {path}: {reply}");
    }
    if role == "owner" {
        // The quickstart's form: the owner token in the approval body.
        let (status, reply) = gateway
            .call("POST", "/approve/req_0", None, Some(json!({"action": "approve", "owner_token": token})))
            .await;
        assert_error(status, &reply, StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

async fn a_revoked_token_is_refused_by_every_endpoint(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let done = gateway.execute(&agent, &permit, "console.log(1)").await;
    let execution = done["request_id"].as_str().unwrap().to_owned();
    for (token, role) in [(&owner, "owner"), (&agent, "agent")] {
        // Works before; `{}` and no body at all both mean "this token".
        assert_eq!(gateway.get("/permits", token).await.0, StatusCode::OK);
        let (status, reply) = gateway.call("POST", "/tokens/revoke", Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["revoked"], "token");
        assert_refused_everywhere(&gateway, token, role).await;
    }
    // What the revoked tokens made is untouched.
    let db = Db::connect(&database_url(&gateway)).await.unwrap();
    let status: String = sqlx::query_scalar("SELECT status FROM executions WHERE id = $1")
        .bind(&execution)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(status, "completed");
}

async fn revoking_all_tokens_refuses_every_older_one_and_returns_a_fresh_one(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (owner_id, first) = gateway.signup("o", "owner").await;
    let (status, reply) = gateway.post("/tokens/revoke", &first, json!({"all": true})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!((reply["revoked"].as_str(), reply["tenant_id"].as_str()), (Some("all"), Some(owner_id.as_str())));
    let second = reply["token"].as_str().unwrap().to_owned();
    assert_refused_everywhere(&gateway, &first, "owner").await;
    assert_eq!(gateway.get("/secrets", &second).await.0, StatusCode::OK, "the fresh token works");
    // Again: the second goes too, a third works; revoking the third alone
    // leaves nothing usable.
    let (_, reply) = gateway.post("/tokens/revoke", &second, json!({"all": true})).await;
    let third = reply["token"].as_str().unwrap().to_owned();
    assert_refused_everywhere(&gateway, &second, "owner").await;
    assert_eq!(gateway.get("/secrets", &third).await.0, StatusCode::OK);
    let (status, _) = gateway.post("/tokens/revoke", &third, json!({"all": false})).await;
    assert_eq!(status, StatusCode::OK);
    assert_refused_everywhere(&gateway, &third, "owner").await;
    // Another tenant is not affected.
    let (_, other) = gateway.signup("o2", "owner").await;
    assert_eq!(gateway.get("/secrets", &other).await.0, StatusCode::OK);
    // Unknown fields are refused, as everywhere.
    let (status, reply) = gateway.post("/tokens/revoke", &other, json!({"everything": true})).await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, "invalid_request");
}

async fn a_token_without_an_id_is_revoked_by_its_hash(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent_id, _) = gateway.signup("a", "agent").await;
    // As tokens were issued before revocation existed: no `jti`, no `gen`.
    let now = now_ms() as u64 / 1000;
    let claims = json!({"sub": agent_id, "role": "agent", "iss": "oauth3-gateway", "aud": "oauth3-api",
                        "iat": now, "exp": now + 600});
    let key = EncodingKey::from_secret(&gateway.jwt_key());
    let old = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    let claims = json!({"sub": agent_id, "role": "agent", "iss": "oauth3-gateway", "aud": "oauth3-api",
                        "iat": now, "exp": now + 601});
    let other = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    assert_eq!(gateway.get("/permits", &old).await.0, StatusCode::OK);
    let (status, reply) = gateway.call("POST", "/tokens/revoke", Some(&old), None).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_refused_everywhere(&gateway, &old, "agent").await;
    assert_eq!(gateway.get("/permits", &other).await.0, StatusCode::OK, "only that token is revoked");
}

async fn retention_deletes_old_audit_records_and_finished_executions_only(backend: Backend) {
    // First without retention: make records, then age some of them.
    let mut gateway = TestGateway::start(backend.clone()).await;
    let (agent, _, permit) = gateway.approved_permit(&fake_secret()).await;
    let code = "await github('GET', '/repos/owner/repo/issues')";
    let old = gateway.execute(&agent, &permit, code).await["request_id"].as_str().unwrap().to_owned();
    let recent = gateway.execute(&agent, &permit, code).await["request_id"].as_str().unwrap().to_owned();
    gateway.server.take().unwrap().shutdown().await.unwrap();
    let url = database_url(&gateway);
    let db = Db::connect(&url).await.unwrap();
    let long_ago = now_ms() - 40 * 86_400_000;
    for statement in [
        "UPDATE executions SET finished_at = $1 WHERE id = $2",
        "UPDATE audit SET started_at = $1 WHERE execution_id = $2",
    ] {
        sqlx::query(statement).bind(long_ago).bind(&old).execute(&db.pool).await.unwrap();
    }
    // An unfinished execution is never deleted, however old.
    sqlx::query(
        "INSERT INTO executions (id, permit_id, agent_id, action_id, code, args, status, created_at) \
         SELECT 'exe_unfinished', id, agent_id, 'spin', $1, 'null', 'queued', $2 FROM permits WHERE id = $3",
    )
    .bind(SPIN)
    .bind(long_ago)
    .bind(&permit)
    .execute(&db.pool)
    .await
    .unwrap();

    // Restarted with retention: the sweep at start deletes what is too old.
    let second = tempfile::tempdir().unwrap();
    let mut config = config_for(&backend, second.path(), &gateway.stub);
    config.database_url = Some(url);
    // The same keys as the first process: the database refuses others.
    config.key_dir = Some(gateway.data_dir.path().to_owned());
    config.audit_retention_days = Some(30);
    config.execution_retention_days = Some(30);
    let _restarted = Server::start(config).await.unwrap();
    let count = |statement: &'static str, id: String| {
        let db = db.clone();
        async move { sqlx::query_scalar::<_, i64>(statement).bind(id).fetch_one(&db.pool).await.unwrap() }
    };
    let audited = |id: &str| count("SELECT COUNT(*) FROM audit WHERE execution_id = $1", id.to_owned());
    let exists = |id: &str| count("SELECT COUNT(*) FROM executions WHERE id = $1", id.to_owned());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while audited(&old).await + exists(&old).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the retention sweep did not run at start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(exists(&recent).await, 1, "a recent one stays");
    assert_eq!(audited(&recent).await, 1, "recent audit records stay");
    assert_eq!(exists("exe_unfinished").await, 1, "an unfinished one stays");
    let _ = agent;
}
