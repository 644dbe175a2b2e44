//! Step-up confirmation against the real `oauth3` binary and the stub
//! upstream: agent JavaScript calls a rule marked `confirm`; the call is
//! refused with a confirmation id (in the result, and in the error the
//! script catches); the owner approves it; the identical run then sends it,
//! once; a third run, and a call with another body, are refused again.

use oauth3_e2e::{Binary, Stub, approved_permit, call, fake_secret};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Opens an issue titled `title`, printing `sent N`, or the caught error's
/// code and confirmation id.
fn open_issue(title: &str) -> String {
    format!(
        "try {{ const r = await github('POST', '/repos/owner/repo/issues', {{body: {{title: {title:?}}}}});\n\
           console.log('sent', r.number) }}\n\
         catch (e) {{ console.log(e.code, e.confirmation_id) }}"
    )
}

/// Runs `code` under `permit` and waits for it: (stdout, the first call).
async fn run(url: &str, agent: &str, permit: &str, code: &str) -> (String, Value) {
    let body = json!({"permit_id": permit, "action_id": fake_secret(), "code": code, "wait": 60});
    let (status, done) = call(url, "POST", "/execute", Some(agent), Some(body)).await;
    assert_eq!((status, &done["status"]), (StatusCode::OK, &json!("completed")), "{done}");
    (done["result"]["stdout"].as_str().unwrap().trim().to_owned(), done["result"]["calls"][0].clone())
}

#[tokio::test]
async fn an_owner_confirms_one_exact_call_which_then_passes_once() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::for_stub(&stub, dir.path());
    let url = server.url.as_str();
    let spec = json!({"name": "github", "base_url": stub.url(),
        "rules": [{"method": "POST", "path": "/repos/owner/repo/issues", "confirm": true,
                   "body": {"type": "object", "required": ["title"]}}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]});
    let secret = fake_secret();
    let (agent, owner, permit) = approved_permit(url, spec, &secret).await;
    let code = open_issue("crash on start");

    // Refused at once, with an id the script catches and the result shows.
    let (stdout, first) = run(url, &agent, &permit, &code).await;
    let id = stdout.strip_prefix("confirmation_required ").unwrap_or_else(|| panic!("{stdout}")).to_owned();
    assert!(id.starts_with("cfm_"), "{stdout}");
    assert_eq!(first["reason"], "confirmation_required");
    assert_eq!(first["confirmation_id"], id.as_str());
    assert_eq!((&first["decision"], &first["status"]), (&json!("deny"), &Value::Null), "nothing sent: {first}");

    // The owner sees the exact call, never the credential, and approves it.
    let (status, pending) = call(url, "GET", "/confirmations", Some(&owner), None).await;
    assert_eq!(status, StatusCode::OK, "{pending}");
    assert_eq!(pending["confirmations"][0]["id"], id.as_str(), "{pending}");
    assert_eq!(pending["confirmations"][0]["request"]["body"], "{\n  \"title\": \"crash on start\"\n}");
    assert!(!pending.to_string().contains(&secret));
    // An agent can neither list nor decide.
    let (status, _) = call(url, "GET", "/confirmations", Some(&agent), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let decide = format!("/confirmations/{id}");
    let (status, _) = call(url, "POST", &decide, Some(&agent), Some(json!({"action": "approve"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, approved) = call(url, "POST", &decide, Some(&owner), Some(json!({"action": "approve"}))).await;
    assert_eq!((status, &approved["status"]), (StatusCode::OK, &json!("approved")), "{approved}");

    // The identical run passes, once.
    let (stdout, sent) = run(url, &agent, &permit, &code).await;
    assert_eq!((stdout.as_str(), &sent["status"]), ("sent 3", &json!(201)), "{sent}");
    let (stdout, _) = run(url, &agent, &permit, &code).await;
    let third = stdout.strip_prefix("confirmation_required ").unwrap_or_else(|| panic!("{stdout}"));
    assert_ne!(third, id, "the approval was used up");
    // Another body is another call.
    let (stdout, _) = run(url, &agent, &permit, &open_issue("something else")).await;
    let other = stdout.strip_prefix("confirmation_required ").unwrap_or_else(|| panic!("{stdout}"));
    assert!(other != id && other != third, "{stdout}");

    let (_, used) = call(url, "GET", &decide, Some(&owner), None).await;
    assert_eq!(used["status"], "used", "{used}");
    let (_, audit) = call(url, "GET", &format!("/audit?permit_id={permit}"), Some(&owner), None).await;
    let reasons: Vec<&Value> = audit["entries"].as_array().unwrap().iter().map(|e| &e["reason"]).collect();
    let refused = json!("confirmation_required");
    assert_eq!(reasons, [&refused, &refused, &Value::Null, &refused], "{audit}");
}
