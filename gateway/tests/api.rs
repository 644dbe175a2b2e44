//! The HTTP API against a real gateway, on SQLite and on Postgres.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::{Backend, TestGateway, fake_secret};

on_both_databases!(quickstart_flow_lists_issues_with_the_owners_token,);

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
