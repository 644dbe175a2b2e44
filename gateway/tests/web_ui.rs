//! The owner web UI over real HTTP against a real gateway on SQLite and on
//! Postgres, as a browser without JavaScript drives it: sign-in and
//! sessions, the approval page and its form, narrowing, the dashboard, CSRF
//! and cross-site refusals, escaping of agent text, security headers,
//! sign-in throttling, and the approval webhook. (The same flows in real
//! Chromium are in the root `tests/` crate.)

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode as AxumStatus;
use oauth3_e2e::{WebClient, on_both_databases};
use oauth3_gateway::Server;
use oauth3_gateway::config::ApiKey;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Backend, TestGateway, assert_error, config_for, fake_secret, open_issue};

on_both_databases!(
    the_approval_link_is_a_page_for_browsers_and_json_for_api_clients,
    an_owner_signs_in_with_a_token_and_out_again,
    only_an_owners_valid_token_signs_in,
    forms_without_the_sessions_csrf_token_or_from_another_site_are_refused,
    a_session_cookie_never_authenticates_the_json_api,
    the_form_approves_a_narrower_spec_the_server_builds,
    the_json_api_narrows_too_and_never_widens,
    agent_text_is_escaped_and_its_hidden_characters_shown,
    revoking_tokens_ends_the_browser_sessions_signed_in_with_them,
    two_extensions_approved_at_once_never_lose_one,
    the_dashboard_pages_pending_requests_and_revokes,
    the_dashboard_shows_an_owner_only_requests_of_their_own_agents,
    secrets_are_added_replaced_and_deleted_but_never_shown,
    the_confirmations_page_shows_a_call_as_text_and_its_form_lets_it_through_once,
    another_owners_confirmation_is_neither_shown_nor_decided_in_the_web_ui,
    the_approval_page_marks_confirm_rules_and_may_stop_asking_for_each_call,
);

/// A capability with two rules and a rate limit, at the stub.
fn two_rules(gateway: &TestGateway) -> Value {
    json!({
        "name": "github",
        "base_url": gateway.stub.url(),
        "rules": [
            {"method": "GET", "path": "/repos/owner/repo/issues"},
            {"method": "GET", "path": "/echo"}
        ],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
        "secrets": ["GITHUB_TOKEN"],
        "rate_limit": {"max_calls": 30, "window_seconds": 60}
    })
}

/// An agent's pending request for `two_rules`: (agent token, owner token, request id, permit id).
async fn pending(gateway: &TestGateway) -> (String, String, String, String) {
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let body = json!({"description": "triage issues", "capabilities": [two_rules(gateway)]});
    let (status, body) = gateway.post("/permit", &agent, body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = |k: &str| body[k].as_str().unwrap().to_owned();
    (agent, owner, id("request_id"), id("permit_id"))
}

async fn signed_in(gateway: &TestGateway, owner: &str) -> WebClient {
    let browser = WebClient::new(&gateway.url);
    let page = browser.sign_in(owner).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    browser
}

async fn request_status(gateway: &TestGateway, agent: &str, request: &str) -> Value {
    let (status, body) = gateway.get(&format!("/permit/{request}"), agent).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn the_approval_link_is_a_page_for_browsers_and_json_for_api_clients(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, owner, request, _) = pending(&gateway).await;
    let path = format!("/approve/{request}");

    // A browser that is not signed in goes through /login and back.
    let browser = WebClient::new(&gateway.url);
    let page = browser.get(&path).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some(format!("/login?next=%2Fapprove%2F{request}").as_str()));
    let login = browser.get(page.location().unwrap()).await;
    let signed = browser.post("/login", &[("csrf", &login.csrf()), ("token", &owner), ("next", &path)]).await;
    assert_eq!(signed.location(), Some(path.as_str()), "back to the approval page");
    let page = browser.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.html.contains("GET ") && page.html.contains("/repos/owner/repo/issues"), "{}", page.html);

    // API clients get JSON, as before: no Accept, */*, or application/json.
    let (status, body) = gateway.get(&path, &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["request_id"], request.as_str());
    assert_eq!(body["agent_name"], "agent");
    let (status, body) = gateway.call("GET", &path, None, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
}

async fn an_owner_signs_in_with_a_token_and_out_again(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let browser = WebClient::new(&gateway.url);
    assert_eq!(browser.get("/").await.location(), Some("/login?next=%2F"));

    let signed = browser.sign_in(&owner).await;
    assert_eq!(signed.location(), Some("/"));
    let set: Vec<&str> = signed.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let session = set.iter().find(|c| c.starts_with("oauth3_session=")).expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Secure"), "the public URL is http: {session}");
    let value = session.trim_start_matches("oauth3_session=").split(';').next().unwrap();
    assert!(value.len() >= 43, "32 random bytes: {value}");

    let dashboard = browser.get("/").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.html.contains("Dashboard") && dashboard.html.contains("Sign out"));

    // Signing out ends the session on the server: the old cookie no longer works.
    let out = browser.post("/logout", &[("csrf", &dashboard.csrf())]).await;
    assert_eq!(out.location(), Some("/login"));
    assert!(browser.cookie("oauth3_session").is_none(), "the cookie is cleared");
    browser.set_cookie("oauth3_session", value);
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER, "a logged-out session is gone");
}

async fn only_an_owners_valid_token_signs_in(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, agent) = gateway.signup("agent", "agent").await;
    let browser = WebClient::new(&gateway.url);
    for (token, says) in
        [(agent.as_str(), "the web UI is for owners"), ("not-a-token", "invalid token"), ("", "missing")]
    {
        let page = browser.sign_in(token).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
        assert!(page.html.contains("Not signed in"), "{}", page.html);
        assert!(page.html.contains(says) || says == "missing", "{says}: {}", page.html);
        assert!(browser.cookie("oauth3_session").is_none());
    }
}

async fn forms_without_the_sessions_csrf_token_or_from_another_site_are_refused(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, request, _) = pending(&gateway).await;
    let browser = signed_in(&gateway, &owner).await;
    let path = format!("/approve/{request}");
    let page = browser.get(&path).await;
    let (csrf, hash) = (page.csrf(), page.field("spec_hash").unwrap());
    // Another owner's session has a token of its own.
    let (_, other_owner) = gateway.signup("other", "owner").await;
    let other = signed_in(&gateway, &other_owner).await;
    let others_csrf = other.get("/").await.csrf();

    let approve = |token: &'static str| vec![("action", "approve"), ("csrf", token)];
    for fields in [approve(""), approve("AAAA"), vec![("action", "approve")]] {
        let mut fields = fields;
        fields.push(("spec_hash", &hash));
        let refused = browser.post(&path, &fields).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
        assert!(refused.html.contains("reload the page"), "{}", refused.html);
    }
    let refused = browser.post(&path, &[("action", "approve"), ("csrf", &others_csrf), ("spec_hash", &hash)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "a token bound to another session");

    // The right token from another site: refused by its Origin.
    let mut evil = signed_in(&gateway, &owner).await;
    evil.origin = Some("http://evil.example".into());
    let token = evil.get(&path).await.csrf();
    let refused = evil.post(&path, &[("action", "approve"), ("csrf", &token), ("spec_hash", &hash)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.html.contains("another site"), "{}", refused.html);

    // Sign-in is bound too: a login form post without the pre-session token fails.
    let fresh = WebClient::new(&gateway.url);
    let refused = fresh.post("/login", &[("token", &owner), ("csrf", "x")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(fresh.cookie("oauth3_session").is_none());
    // Login CSRF: another site's form comes without the Strict pre-session
    // cookie. A token made for an empty cookie must not stand in for it.
    let attacker = WebClient::new(&gateway.url);
    attacker.set_cookie("oauth3_presession", "");
    let empty = attacker.get("/login").await.csrf();
    let mut victim = WebClient::new(&gateway.url);
    victim.origin = Some("null".into());
    let refused = victim.post("/login", &[("csrf", &empty), ("token", &other_owner), ("next", "/")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
    assert!(victim.cookie("oauth3_session").is_none(), "the victim was not signed into another account");

    assert_eq!(request_status(&gateway, &agent, &request).await["status"], "pending", "nothing was decided");
    let keep_all = [("keep", "github/0"), ("keep", "github/1")];
    let fields =
        [&[("action", "approve"), ("csrf", csrf.as_str()), ("spec_hash", hash.as_str())][..], &keep_all].concat();
    let decided = browser.post(&path, &fields).await;
    assert_eq!(decided.status, StatusCode::SEE_OTHER, "{}", decided.html);
}

async fn a_session_cookie_never_authenticates_the_json_api(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, request, permit) = pending(&gateway).await;
    let browser = signed_in(&gateway, &owner).await;
    let cookie = format!("oauth3_session={}", browser.cookie("oauth3_session").unwrap());
    let http = reqwest::Client::new();
    let approve = json!({"action": "approve"});
    let execute = json!({"permit_id": permit, "action_id": "a1", "code": "console.log(1)"});
    let cases: [(&str, String, Option<&Value>); 5] = [
        ("POST", format!("/approve/{request}"), Some(&approve)),
        ("GET", "/permits".into(), None),
        ("GET", "/audit".into(), None),
        ("POST", "/execute".into(), Some(&execute)),
        ("GET", format!("/permit/{request}"), None),
    ];
    for (method, path, body) in cases {
        let mut call =
            http.request(method.parse().unwrap(), format!("{}{path}", gateway.url)).header("cookie", &cookie);
        if let Some(body) = body {
            call = call.json(body);
        }
        let response = call.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {path} with only a session cookie");
    }
    assert_eq!(request_status(&gateway, &agent, &request).await["status"], "pending");
}

async fn the_form_approves_a_narrower_spec_the_server_builds(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, request, permit) = pending(&gateway).await;
    let secret = fake_secret();
    let (status, _) = gateway.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": secret})).await;
    assert_eq!(status, StatusCode::CREATED);
    let browser = signed_in(&gateway, &owner).await;
    let path = format!("/approve/{request}");
    let page = browser.get(&path).await;
    let requested = page.field("spec_hash").unwrap();
    assert!(page.html.contains(r#"value="github/0" checked"#) && page.html.contains(r#"value="github/1" checked"#));

    // A stale form naming a rule the spec lacks, and a higher rate limit, are refused.
    let csrf = page.csrf();
    let base = [("csrf", csrf.as_str()), ("action", "approve"), ("spec_hash", requested.as_str())];
    let with = |extra: &[(&'static str, &'static str)]| [&base[..], extra].concat();
    let stale = browser.post(&path, &with(&[("keep", "github/0"), ("keep", "github/9")])).await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST, "{}", stale.html);
    let wider = browser.post(&path, &with(&[("keep", "github/0"), ("rate.github", "31")])).await;
    assert_eq!(wider.status, StatusCode::BAD_REQUEST, "{}", wider.html);
    assert!(wider.html.contains("not stricter"), "{}", wider.html);
    let wrong_hash = [("csrf", csrf.as_str()), ("action", "approve"), ("spec_hash", "0000"), ("keep", "github/0")];
    assert_eq!(browser.post(&path, &wrong_hash).await.status, StatusCode::CONFLICT);
    assert_eq!(request_status(&gateway, &agent, &request).await["status"], "pending");

    // Untick /echo, lower the rate limit to 5 a minute, approve for 24 hours.
    let approved =
        browser.post(&path, &with(&[("keep", "github/0"), ("rate.github", "5"), ("expires", "86400")])).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.html);
    assert_eq!(approved.location(), Some(path.as_str()));
    let decided = browser.get(&path).await;
    assert!(decided.html.contains("Approved by you") && decided.html.contains("narrowed"), "{}", decided.html);

    let status = request_status(&gateway, &agent, &request).await;
    assert_eq!(status["status"], "approved");
    assert_eq!(status["narrowed"], true);
    assert_eq!(status["spec_hash"], requested.as_str(), "what was asked for");
    let bound = status["approved_spec_hash"].as_str().unwrap().to_owned();
    assert_ne!(bound, requested);
    let (_, shown) = gateway.get(&format!("/permits/{permit}"), &agent).await;
    assert_eq!(shown["spec_hash"], bound.as_str());
    assert_eq!(shown["narrowed_from"], requested.as_str());
    assert_eq!(shown["spec"]["integrations"][0]["rules"].as_array().unwrap().len(), 1);
    assert_eq!(shown["spec"]["integrations"][0]["rate_limit"], json!({"max_calls": 5, "window_seconds": 60}));
    let expires = humantime::parse_rfc3339(shown["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(23 * 3600) && left <= Duration::from_secs(24 * 3600), "{left:?}");

    // The agent runs under the narrowed spec: the kept rule works, the unticked one is denied.
    let code = "const a = await github('GET', '/repos/owner/repo/issues'); console.log(Array.isArray(a)); \
                try { await github('GET', '/echo'); console.log('echo allowed'); } \
                catch (e) { console.log('denied: ' + e.code); }";
    let outcome = gateway.execute(&agent, &permit, code).await;
    assert_eq!(outcome["result"]["stdout"], "true\ndenied: path_not_allowed\n", "{outcome}");
}

async fn the_json_api_narrows_too_and_never_widens(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, request, permit) = pending(&gateway).await;
    let path = format!("/approve/{request}");
    let widen =
        json!({"action": "approve", "narrow": {"rate_limits": {"github": {"max_calls": 1000, "window_seconds": 60}}}});
    let (status, body) = gateway.post(&path, &owner, widen).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_spec");
    let everything = json!({"action": "approve", "narrow": {"drop_rules": [
        {"integration": "github", "rule": 0}, {"integration": "github", "rule": 1}]}});
    let (status, body) = gateway.post(&path, &owner, everything).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_spec");
    assert_eq!(request_status(&gateway, &agent, &request).await["status"], "pending");

    let narrow = json!({"action": "approve", "narrow": {"drop_rules": [{"integration": "github", "rule": 0}]}});
    let (status, decision) = gateway.post(&path, &owner, narrow).await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert_eq!(decision["narrowed"], true);
    assert_ne!(decision["spec_hash"], decision["requested_spec_hash"]);
    let (_, shown) = gateway.get(&format!("/permits/{permit}"), &owner).await;
    assert_eq!(shown["spec_hash"], decision["spec_hash"]);
    assert_eq!(shown["spec"]["integrations"][0]["rules"][0]["path"], "/echo");
    // Approving again answers with the same decision.
    let (status, again) = gateway.post(&path, &owner, json!({"action": "approve"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["spec_hash"], decision["spec_hash"]);
}

async fn agent_text_is_escaped_and_its_hidden_characters_shown(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let name = "<script>window.__pwned=1</script> раураl";
    let (status, agent) = gateway.call("POST", "/signup", None, Some(json!({"name": name, "role": "agent"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let agent = agent["token"].as_str().unwrap().to_owned();
    let (_, owner) = gateway.signup("owner", "owner").await;
    let description = "<img src=x onerror=alert(1)> <a href=\"javascript:alert(1)\">docs</a> pay\u{202E}lapyap";
    let mut capability = two_rules(&gateway);
    capability["rules"][0]["description"] = json!("harmless \u{202E}<b>x</b> gіthub");
    capability["doc_urls"] = json!(["https://docs.gіthub.com/\u{202E}abc"]);
    let body = json!({"description": description, "capabilities": [capability]});
    let (status, created) = gateway.post("/permit", &agent, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let browser = signed_in(&gateway, &owner).await;
    for path in [format!("/approve/{}", created["request_id"].as_str().unwrap()), "/".to_owned()] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        for raw in ["<script>window", "<img", "<a href=\"javascript", "\u{202E}", "<b>x", "href=\"javascript"] {
            assert!(!page.html.contains(raw), "{raw:?} reached {path} unescaped:\n{}", page.html);
        }
        assert!(page.html.contains("&#60;script&#62;window.__pwned=1&#60;/script&#62;"), "{}", page.html);
        assert!(page.html.contains("⟨U+202E⟩"), "the override is shown, not applied");
        assert!(page.html.contains("non-ASCII characters"), "look-alike letters are flagged");
    }
}

async fn revoking_tokens_ends_the_browser_sessions_signed_in_with_them(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let browser = signed_in(&gateway, &owner).await;
    assert_eq!(browser.get("/").await.status, StatusCode::OK);
    let (status, body) = gateway.post("/tokens/revoke", &owner, json!({"all": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER, "the session died with the tokens");

    // Revoking the one token a session was signed in with ends it too; a
    // session signed in with another token lives on.
    let fresh = body["token"].as_str().unwrap().to_owned();
    let (status, other) = gateway.post("/tokens/revoke", &fresh, json!({"all": true})).await;
    assert_eq!(status, StatusCode::OK);
    let other = other["token"].as_str().unwrap().to_owned();
    let with_fresh = signed_in(&gateway, &other).await;
    let (status, _) = gateway.call("POST", "/tokens/revoke", Some(&other), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(with_fresh.get("/").await.status, StatusCode::SEE_OTHER, "its token was revoked");
}

async fn two_extensions_approved_at_once_never_lose_one(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let extension = |name: &str| {
        let mut capability = two_rules(&gateway);
        capability["name"] = json!(name);
        json!({"description": "more", "permit_id": permit, "capabilities": [capability]})
    };
    let (_, first) = gateway.post("/permit", &agent, extension("weather")).await;
    let (_, second) = gateway.post("/permit", &agent, extension("news")).await;
    let approve = |request: &Value| {
        let path = format!("/approve/{}", request["request_id"].as_str().unwrap());
        let owner = owner.clone();
        let gateway = &gateway;
        async move { gateway.post(&path, &owner, json!({"action": "approve"})).await }
    };
    let ((a, a_body), (b, b_body)) = tokio::join!(approve(&first), approve(&second));
    let approved: Vec<&Value> =
        [(a, &a_body), (b, &b_body)].iter().filter(|(s, _)| *s == StatusCode::OK).map(|(_, b)| *b).collect();
    assert_eq!(approved.len(), 1, "exactly one lands: {a} {a_body} / {b} {b_body}");
    let refused = if a == StatusCode::OK { &b_body } else { &a_body };
    assert_eq!(refused["error"]["code"], "permit_changed", "{refused}");
    let (_, shown) = gateway.get(&format!("/permits/{permit}"), &owner).await;
    assert_eq!(shown["spec_hash"], approved[0]["spec_hash"], "the permit runs what its owner was told was approved");
}

async fn the_dashboard_pages_pending_requests_and_revokes(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, _, _) = pending(&gateway).await;
    for _ in 0..24 {
        let body = json!({"description": "more", "capabilities": [two_rules(&gateway)]});
        assert_eq!(gateway.post("/permit", &agent, body).await.0, StatusCode::CREATED);
    }
    let browser = signed_in(&gateway, &owner).await;
    let first = browser.get("/").await;
    assert!(first.html.contains("1–20 of 25"), "{}", first.html);
    assert_eq!(first.html.matches("class=\"button primary\" href=\"/approve/").count(), 20);
    let second = browser.get("/?pending=1&permits=0").await;
    assert!(second.html.contains("21–25 of 25"), "{}", second.html);
    assert_eq!(second.html.matches("class=\"button primary\" href=\"/approve/").count(), 5);

    // Revoke from the dashboard: the agent's next execution is refused.
    let (agent, owner, permit) = gateway.approved_permit(&fake_secret()).await;
    let browser = signed_in(&gateway, &owner).await;
    let dashboard = browser.get("/").await;
    assert!(dashboard.html.contains(&format!("/permits/{permit}/revoke")));
    let revoked = browser.post(&format!("/permits/{permit}/revoke"), &[("csrf", &dashboard.csrf())]).await;
    assert_eq!(revoked.location(), Some("/?done=revoked#permits"));
    let (status, body) = gateway.submit(&agent, &permit, "revoked-1", "console.log(1)").await;
    assert_error(status, &body, StatusCode::CONFLICT, "permit_not_active");
}

async fn the_dashboard_shows_an_owner_only_requests_of_their_own_agents(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owen, first, _) = pending(&gateway).await;
    let alone = signed_in(&gateway, &owen).await;
    assert!(alone.get("/").await.html.contains(&first), "the only owner sees every new request");

    let (_, mallory) = gateway.signup("mallory", "owner").await;
    let mallory = signed_in(&gateway, &mallory).await;
    assert!(!mallory.get("/").await.html.contains(&first), "another owner's dashboard does not list it");
    assert!(!alone.get("/").await.html.contains(&first), "with two owners, a new agent's request travels by link");

    // Once Owen has approved one of the agent's permits, its new requests are listed to him alone.
    gateway.approve(&owen, &first).await;
    let body = json!({"description": "another", "capabilities": [two_rules(&gateway)]});
    let (_, second) = gateway.post("/permit", &agent, body).await;
    let second = second["request_id"].as_str().unwrap();
    assert!(alone.get("/").await.html.contains(second));
    assert!(!mallory.get("/").await.html.contains(second));
}

async fn secrets_are_added_replaced_and_deleted_but_never_shown(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let browser = signed_in(&gateway, &owner).await;
    let csrf = browser.get("/").await.csrf();
    let value = fake_secret();
    let added = browser.post("/secrets", &[("csrf", &csrf), ("name", "API_KEY"), ("value", &value)]).await;
    assert_eq!(added.location(), Some("/?done=secret_stored#secrets"));
    let page = browser.get("/?done=secret_stored").await;
    assert!(page.html.contains("API_KEY") && !page.html.contains(&value), "listed by name only");
    let replaced = browser.post("/secrets", &[("csrf", &csrf), ("name", "API_KEY"), ("value", &fake_secret())]).await;
    assert_eq!(replaced.status, StatusCode::SEE_OTHER);
    let bad = browser.post("/secrets", &[("csrf", &csrf), ("name", "bad name"), ("value", "x")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let deleted = browser.post("/secrets/API_KEY/delete", &[("csrf", &csrf)]).await;
    assert_eq!(deleted.location(), Some("/?done=secret_deleted#secrets"));
    let (_, listed) = gateway.get("/secrets", &owner).await;
    assert_eq!(listed["secrets"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let gateway = TestGateway::start(Backend::Sqlite).await;
    let browser = WebClient::new(&gateway.url);
    for path in ["/login", "/health", "/assets/app.js", "/no-such-page"] {
        let page = browser.get(path).await;
        let header = |name: &str| page.headers.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let csp = header("content-security-policy");
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
    let login = browser.get("/login").await;
    assert!(!login.html.contains("<script>"), "no inline script");
    assert!(!login.html.contains("http://") && !login.html.contains("https://"), "nothing loaded from elsewhere");
    assert_eq!(login.headers["cache-control"], "no-store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_page_numbers_past_any_list_are_clamped() {
    let gateway = TestGateway::start(Backend::Sqlite).await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let browser = signed_in(&gateway, &owner).await;
    for path in ["/?pending=922337203685477580", "/?permits=461168601842738790&pending=-5"] {
        assert_eq!(browser.get(path).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_claiming_an_owners_account_never_lock_out_their_token() {
    let gateway = TestGateway::start(Backend::Sqlite).await;
    let (owner_id, owner) = gateway.signup("owner", "owner").await;
    // Forged tokens naming the owner, from another address.
    use base64::Engine as _;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!({"sub": owner_id}).to_string());
    let forged = format!("x.{claims}.y");
    let attacker = WebClient::from_address(&gateway.url, Some("127.0.0.2".parse().unwrap()));
    let mut limited = false;
    for _ in 0..12 {
        limited |= attacker.sign_in(&forged).await.status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "the failures were limited");
    let owner_browser = WebClient::new(&gateway.url);
    assert_eq!(owner_browser.sign_in(&owner).await.status, StatusCode::SEE_OTHER, "the owner still signs in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_throttled_per_address() {
    let gateway = TestGateway::start(Backend::Sqlite).await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let browser = WebClient::new(&gateway.url);
    for _ in 0..10 {
        assert_eq!(browser.sign_in("wrong").await.status, StatusCode::UNAUTHORIZED);
    }
    let limited = browser.sign_in("still wrong").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "failures past ten are refused unanswered");
    assert!(limited.headers.contains_key("retry-after"));
    assert!(browser.cookie("oauth3_session").is_none());
    // A valid token is never refused: nobody can lock owners out by failing.
    assert_eq!(browser.sign_in(&owner).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_sign_up_in_the_browser_and_see_their_token_once() {
    let gateway = TestGateway::start(Backend::Sqlite).await;
    let browser = WebClient::new(&gateway.url);
    let form = browser.get("/signup").await;
    assert!(!form.html.contains("name=\"invite\""), "signup is open on a local gateway");
    let page = browser.post("/signup", &[("csrf", &form.csrf()), ("name", "Dana"), ("next", "/")]).await;
    assert_eq!(page.status, StatusCode::CREATED, "{}", page.html);
    let start = page.html.find("id=\"new-token\">").unwrap() + "id=\"new-token\">".len();
    let token = &page.html[start..start + page.html[start..].find('<').unwrap()];
    assert!(page.html.contains("data-copy=\"new-token\""), "a copy button");
    let (status, _) = gateway.get("/secrets", token).await;
    assert_eq!(status, StatusCode::OK, "the token shown is a working owner token");
    assert_eq!(browser.get("/").await.status, StatusCode::OK, "and the browser is signed in");
}

/// A webhook receiver on 127.0.0.1 that fails its first `failures` posts.
async fn receiver(failures: usize) -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&received);
    let attempts = Arc::new(Mutex::new(0usize));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let (seen, attempts) = (Arc::clone(&seen), Arc::clone(&attempts));
            async move {
                let mut attempts = attempts.lock().unwrap();
                *attempts += 1;
                if *attempts <= failures {
                    return AxumStatus::SERVICE_UNAVAILABLE;
                }
                seen.lock().unwrap().push(body);
                AxumStatus::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("{addr}"), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approval_webhook_hears_of_waiting_requests_and_retries_failures() {
    let (host_port, received) = receiver(1).await;
    let gateway = TestGateway::start_with(Backend::Sqlite, |config| {
        config.insecure_upstreams.push(host_port.clone());
        config.approval_webhook = Some(ApiKey(format!("http://{host_port}/hook")));
    })
    .await;
    let (_, _, request, permit) = pending(&gateway).await;
    // The first post fails (503); the retry after a second delivers.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while received.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no delivery within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notice = received.lock().unwrap()[0].clone();
    assert_eq!(notice["event"], "permit_request.pending");
    assert_eq!(notice["request_id"], request.as_str());
    assert_eq!(notice["permit_id"], permit.as_str());
    assert_eq!(notice["agent"]["name"], "agent");
    assert_eq!(notice["description"], "triage issues");
    assert_eq!(notice["approval_url"], format!("{}/approve/{request}", gateway.url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_is_down_never_holds_up_a_request() {
    // A port nothing listens on, allow-listed so only the connection fails.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gateway = TestGateway::start_with(Backend::Sqlite, |config| {
        config.insecure_upstreams.push(unused.to_string());
        config.approval_webhook = Some(ApiKey(format!("http://{unused}/hook")));
    })
    .await;
    let started = std::time::Instant::now();
    let (_, _, request, _) = pending(&gateway).await;
    assert!(request.starts_with("req_"));
    assert!(started.elapsed() < Duration::from_secs(5), "the request did not wait for the webhook's retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_outside_the_outbound_guard_stops_the_gateway_from_starting() {
    let stub = oauth3_e2e::Stub::start().await;
    for url in ["http://hooks.example.com/x", "https://127.0.0.1:9/x", "https://user:pw@hooks.example.com/", "ftp://x"]
    {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_for(&Backend::Sqlite, dir.path(), &stub);
        config.approval_webhook = Some(ApiKey(url.into()));
        let error = Server::start(config).await.err().unwrap_or_else(|| panic!("{url} was accepted"));
        assert!(error.to_string().contains("OAUTH3_APPROVAL_WEBHOOK"), "{url}: {error}");
    }
}

/// An agent, an owner with GITHUB_TOKEN, and the agent's pending request for
/// [`confirming_capability`]: (agent, owner, request id, permit id).
async fn confirming_request(gateway: &TestGateway) -> (String, String, String, String) {
    let (_, agent) = gateway.signup("agent", "agent").await;
    let (_, owner) = gateway.signup("owner", "owner").await;
    let (status, body) =
        gateway.post("/secrets", &owner, json!({"name": "GITHUB_TOKEN", "value": fake_secret()})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let body = json!({"description": "file bug reports", "capabilities": [gateway.confirming_capability()]});
    let (status, body) = gateway.post("/permit", &agent, body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = |k: &str| body[k].as_str().unwrap().to_owned();
    (agent, owner, id("request_id"), id("permit_id"))
}

/// Runs `code`; `Ok(())` when the call was sent, else the confirmation id it waits for.
async fn run_call(gateway: &TestGateway, agent: &str, permit: &str, code: &str) -> Result<(), String> {
    let done = gateway.execute(agent, permit, code).await;
    assert_eq!(done["status"], "completed", "{done}");
    let stdout = done["result"]["stdout"].as_str().unwrap().trim();
    if stdout == "sent 3" {
        return Ok(());
    }
    let id = stdout.strip_prefix("confirmation_required ").unwrap_or_else(|| panic!("{done}"));
    Err(id.to_owned())
}

async fn the_confirmations_page_shows_a_call_as_text_and_its_form_lets_it_through_once(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, request, permit) = confirming_request(&gateway).await;
    gateway.approve(&owner, &request).await;
    let code = open_issue("<script>alert('xss')</script> & crash", "{labels: 'bug'}");
    let id = run_call(&gateway, &agent, &permit, &code).await.unwrap_err();

    let browser = signed_in(&gateway, &owner).await;
    let dashboard = browser.get("/").await;
    assert!(dashboard.html.contains(r#"href="/confirmations""#), "linked from the owner's navigation");
    let page = browser.get("/confirmations").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = &page.html;
    assert!(html.contains(&id) && html.contains(&format!(r#"action="/confirmations/{id}""#)), "{html}");
    assert!(html.contains("file bug reports"), "the permit's goal: {html}");
    assert!(html.contains("<code>github</code>") && html.contains("<strong>POST</strong>"), "{html}");
    assert!(html.contains("/repos/owner/repo/issues?labels=bug"), "the URL: {html}");
    assert!(html.contains("<code>labels</code>"), "the query: {html}");
    // The body, pretty-printed in a <pre>, as text.
    assert!(html.contains("<pre class=\"body\">{\n  &#"), "{html}");
    assert!(html.contains("&#60;script&#62;alert(&#39;xss&#39;)&#60;/script&#62; &#38; crash"), "escaped: {html}");
    assert!(!html.contains("<script>alert"), "never as HTML: {html}");

    // Without the session's token, or with a wrong one: refused, still pending.
    for fields in [vec![("action", "approve")], vec![("action", "approve"), ("csrf", "AAAA")]] {
        let refused = browser.post(&format!("/confirmations/{id}"), &fields).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
        assert!(refused.html.contains("reload the page"), "{}", refused.html);
    }
    let (_, shown) = gateway.get(&format!("/confirmations/{id}"), &owner).await;
    assert_eq!(shown["status"], "pending", "{shown}");

    // Approve with the page's form: back to the list with a notice.
    let approved =
        browser.post(&format!("/confirmations/{id}"), &[("csrf", &page.csrf()), ("action", "approve")]).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.html);
    assert_eq!(approved.location(), Some("/confirmations?done=approved"));
    let after = browser.get(approved.location().unwrap()).await;
    assert!(after.html.contains("Approved: the agent"), "{}", after.html);
    assert!(!after.html.contains(&format!("/confirmations/{id}")), "no longer pending: {}", after.html);
    let (_, shown) = gateway.get(&format!("/confirmations/{id}"), &owner).await;
    assert_eq!(shown["status"], "approved", "{shown}");

    // The identical call passes, once.
    run_call(&gateway, &agent, &permit, &code).await.expect("the approved call passes");
    let next = run_call(&gateway, &agent, &permit, &code).await.unwrap_err();
    assert_ne!(next, id, "the approval was used up");

    // Deciding one no longer pending: a notice, not an error page.
    let late = browser.post(&format!("/confirmations/{id}"), &[("csrf", &page.csrf()), ("action", "deny")]).await;
    assert_eq!(late.location(), Some("/confirmations?done=not_pending"), "{}", late.html);
    let shown = browser.get(late.location().unwrap()).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.html.contains("no longer pending"), "{}", shown.html);
    // Deny the next one.
    let denied = browser.post(&format!("/confirmations/{next}"), &[("csrf", &page.csrf()), ("action", "deny")]).await;
    assert_eq!(denied.location(), Some("/confirmations?done=denied"), "{}", denied.html);
    let (_, shown) = gateway.get(&format!("/confirmations/{next}"), &owner).await;
    assert_eq!(shown["status"], "denied", "{shown}");

    // API clients still get JSON from the same paths.
    let (status, list) = gateway.get("/confirmations?status=all", &owner).await;
    assert_eq!((status, list["confirmations"].as_array().map(Vec::len)), (StatusCode::OK, Some(2)), "{list}");
}

async fn another_owners_confirmation_is_neither_shown_nor_decided_in_the_web_ui(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, request, permit) = confirming_request(&gateway).await;
    gateway.approve(&owner, &request).await;
    let id = run_call(&gateway, &agent, &permit, &open_issue("mine", "{labels: 'bug'}")).await.unwrap_err();

    let (_, stranger) = gateway.signup("stranger", "owner").await;
    let browser = signed_in(&gateway, &stranger).await;
    let page = browser.get("/confirmations").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.html.contains(&id) && page.html.contains("Nothing to confirm"), "{}", page.html);
    let refused = browser.post(&format!("/confirmations/{id}"), &[("csrf", &page.csrf()), ("action", "approve")]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.html);
    let (_, shown) = gateway.get(&format!("/confirmations/{id}"), &owner).await;
    assert_eq!(shown["status"], "pending", "{shown}");
    assert_eq!(
        run_call(&gateway, &agent, &permit, &open_issue("mine", "{labels: 'bug'}")).await.unwrap_err(),
        id,
        "still refused"
    );

    // Not signed in: to the sign-in page, for the list and the form alike.
    let anonymous = WebClient::new(&gateway.url);
    assert_eq!(anonymous.get("/confirmations").await.location(), Some("/login?next=%2Fconfirmations"));
}

async fn the_approval_page_marks_confirm_rules_and_may_stop_asking_for_each_call(backend: Backend) {
    let gateway = TestGateway::start(backend).await;
    let (agent, owner, request, permit) = confirming_request(&gateway).await;
    let browser = signed_in(&gateway, &owner).await;
    let path = format!("/approve/{request}");
    let page = browser.get(&path).await;
    assert_eq!(page.html.matches("asks you to confirm each call").count(), 1, "{}", page.html);
    assert!(page.html.contains(r#"name="no_confirm" value="github/1""#), "{}", page.html);
    assert!(!page.html.contains(r#"name="no_confirm" value="github/0""#), "only confirm rules: {}", page.html);

    // A stale form naming a rule the spec lacks, or one without confirm, is refused.
    let csrf = page.csrf();
    let hash = page.field("spec_hash").unwrap();
    let base = [("csrf", csrf.as_str()), ("action", "approve"), ("spec_hash", hash.as_str())];
    let keep = [("keep", "github/0"), ("keep", "github/1")];
    for wrong in ["github/9", "github/0"] {
        let refused = browser.post(&path, &[&base[..], &keep, &[("no_confirm", wrong)]].concat()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{wrong}: {}", refused.html);
    }
    assert_eq!(request_status(&gateway, &agent, &request).await["status"], "pending");

    // Ticked: the approved spec no longer asks for each call.
    let approved = browser.post(&path, &[&base[..], &keep, &[("no_confirm", "github/1")]].concat()).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.html);
    let (_, shown) = gateway.get(&format!("/permits/{permit}"), &owner).await;
    assert_eq!(shown["narrowed_from"], hash.as_str(), "{shown}");
    assert_eq!(shown["spec"]["spec"]["integrations"][0]["rules"][1].get("confirm"), None, "{shown}");
    run_call(&gateway, &agent, &permit, &open_issue("no questions", "{labels: 'bug'}"))
        .await
        .expect("sent without asking");
    let decided = browser.get(&path).await;
    assert!(!decided.html.contains(r#"name="no_confirm""#), "no checkbox once decided");
}
