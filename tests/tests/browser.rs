//! The owner web UI in real headless Chromium (Debian's `chromium`, driven
//! by `chromedriver`) against the real `oauth3` binary and the stub
//! upstream: sign in from an approval link, narrow and approve, deny,
//! revoke, add a missing secret inline, approve a call waiting for
//! confirmation, CSRF refusals, XSS probes, and a phone-width layout. With
//! `OAUTH3_SCREENSHOTS=<dir>` the approval page and the dashboard are saved
//! there (how `docs/*.png` are made).

use std::path::PathBuf;

use oauth3_e2e::browser::Browser;
use oauth3_e2e::{Binary, Stub, call, fake_secret, shared_cache_dir};
use reqwest::StatusCode;
use serde_json::{Value, json};

const DESKTOP: (u32, u32) = (1280, 1000);
const PHONE: (u32, u32) = (375, 812);

/// The gateway binary and its stub upstream.
struct Setup {
    gateway: Binary,
    stub: Stub,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("OAUTH3_INSECURE_UPSTREAMS", stub.host_port()),
        ("OAUTH3_CACHE_DIR", shared_cache_dir().display().to_string()),
    ];
    let gateway = Binary::start("gateway", &dir.path().join("data"), dir.path(), &env);
    Setup { gateway, stub, _dir: dir }
}

impl Setup {
    fn url(&self) -> &str {
        &self.gateway.url
    }

    async fn signup(&self, name: &str, role: &str) -> String {
        let (status, body) = call(self.url(), "POST", "/signup", None, Some(json!({"name": name, "role": role}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    async fn store_secret(&self, owner: &str, value: &str) {
        let body = json!({"name": "GITHUB_TOKEN", "value": value});
        assert_eq!(call(self.url(), "POST", "/secrets", Some(owner), Some(body)).await.0, StatusCode::CREATED);
    }

    /// Two rules on the stub (issues and /echo), 30 calls a minute.
    fn capability(&self) -> Value {
        json!({
            "name": "github",
            "base_url": self.stub.url(),
            "rules": [
                {"method": "GET", "path": "/repos/owner/repo/issues", "description": "read the issues"},
                {"method": "GET", "path": "/echo"}
            ],
            "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
            "secrets": ["GITHUB_TOKEN"],
            "rate_limit": {"max_calls": 30, "window_seconds": 60}
        })
    }

    /// A real `POST /permit`: (approval_url, request id, permit id).
    async fn request(&self, agent: &str, body: Value) -> (String, String, String) {
        let (status, created) = call(self.url(), "POST", "/permit", Some(agent), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let field = |k: &str| created[k].as_str().unwrap().to_owned();
        (field("approval_url"), field("request_id"), field("permit_id"))
    }

    /// Submits `code`; the submission's status and body.
    async fn submit(&self, agent: &str, permit: &str, code: &str) -> (StatusCode, Value) {
        let action = oauth3_e2e::random_hex(8);
        let body = json!({"permit_id": permit, "action_id": action, "code": code});
        call(self.url(), "POST", "/execute", Some(agent), Some(body)).await
    }

    /// Runs `code` to its end; the execution's result.
    async fn run(&self, agent: &str, permit: &str, code: &str) -> Value {
        let (status, accepted) = self.submit(agent, permit, code).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        let path = format!("/execute/{}/status?wait=true&timeout=60", accepted["request_id"].as_str().unwrap());
        let (status, done) = call(self.url(), "GET", &path, Some(agent), None).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        done["result"].clone()
    }
}

/// Where screenshots go, when asked for.
fn screenshots() -> Option<PathBuf> {
    std::env::var_os("OAUTH3_SCREENSHOTS").map(PathBuf::from)
}

/// Lists the issues, then tries /echo; prints what happened to each.
const BOTH_RULES: &str = "const issues = await github('GET', '/repos/owner/repo/issues'); \
    console.log(issues.length + ' issues'); \
    try { await github('GET', '/echo'); console.log('echo allowed'); } \
    catch (e) { console.log('echo ' + e.code); }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_opens_the_link_narrows_the_spec_and_the_agent_runs_under_it() {
    let setup = setup().await;
    let agent = setup.signup("triage-bot", "agent").await;
    let owner = setup.signup("Dana", "owner").await;
    setup.store_secret(&owner, &fake_secret()).await;
    let body = json!({"description": "Triage issues in owner/repo", "capabilities": [setup.capability()]});
    let (approval_url, _, permit) = setup.request(&agent, body).await;

    // Screenshots show the whole page: a tall window.
    let (width, height) = if screenshots().is_some() { (1100, 1650) } else { DESKTOP };
    let browser = Browser::start(width, height).await;
    browser.open(&approval_url).await;
    assert!(browser.path().await.starts_with("/login?next=%2Fapprove%2F"), "{}", browser.path().await);
    browser.sign_in(&owner).await;
    assert_eq!(browser.path().await, url::Url::parse(&approval_url).unwrap().path(), "back to the link");

    let text = browser.text().await;
    for shown in ["triage-bot", "Triage issues in owner/repo", "the agent wrote this spec itself", "GITHUB_TOKEN"] {
        assert!(text.contains(shown), "{shown:?} not on the page:\n{text}");
    }
    assert!(text.contains("/repos/owner/repo/issues") && text.contains("(why: read the issues)"), "{text}");
    assert!(text.contains("any query parameters"), "risks are flagged:\n{text}");
    if let Some(dir) = screenshots() {
        browser.screenshot(&dir.join("approval.png")).await;
    }

    // Untick /echo, lower the rate limit to 5 a minute, approve for 24 hours.
    browser.click("input[name=keep][value='github/1']").await;
    browser.fill("#rate-github", "5").await;
    browser.element("#expires").await.select_by_value("86400").await.unwrap();
    browser.submit("button[name=action][value=approve]").await;
    let text = browser.text().await;
    assert!(text.contains("Approved by you") && text.contains("narrowed"), "{text}");

    let (_, shown) = call(setup.url(), "GET", &format!("/permits/{permit}"), Some(&agent), None).await;
    assert_eq!(shown["status"], "active");
    assert!(shown["narrowed_from"].is_string(), "{shown}");
    assert_eq!(shown["spec"]["integrations"][0]["rate_limit"]["max_calls"], 5);
    let result = setup.run(&agent, &permit, BOTH_RULES).await;
    assert_eq!(result["stdout"], "2 issues\necho path_not_allowed\n", "{result}");

    if let Some(dir) = screenshots() {
        browser.open(&format!("{}/", setup.url())).await;
        browser.screenshot(&dir.join("dashboard.png")).await;
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_request_cannot_be_executed() {
    let setup = setup().await;
    let agent = setup.signup("agent", "agent").await;
    let owner = setup.signup("owner", "owner").await;
    let body = json!({"description": "please", "capabilities": [setup.capability()]});
    let (approval_url, request, permit) = setup.request(&agent, body).await;

    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await;
    browser.open(&approval_url).await;
    browser.sign_in(&owner).await;
    browser.submit("button[name=action][value=deny]").await;
    assert!(browser.text().await.contains("Denied by you"));
    browser.close().await;

    let (_, status) = call(setup.url(), "GET", &format!("/permit/{request}"), Some(&agent), None).await;
    assert_eq!(status["status"], "denied");
    let (status, body) = setup.submit(&agent, &permit, "console.log(1)").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "permit_not_active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_in_the_dashboard_stops_the_next_execution() {
    let setup = setup().await;
    let (agent, owner, permit) = oauth3_e2e::approved_permit(setup.url(), setup.capability(), &fake_secret()).await;
    assert_eq!(setup.run(&agent, &permit, BOTH_RULES).await["stdout"], "2 issues\necho allowed\n");

    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await;
    browser.open(&format!("{}/login", setup.url())).await;
    browser.sign_in(&owner).await;
    assert!(browser.text().await.contains(&permit), "the dashboard lists the permit");
    assert!(browser.text().await.contains("2 calls"), "{}", browser.text().await);
    browser.eval("window.__oauth3_left = false; return true").await;
    browser.click(&format!("form[action='/permits/{permit}/revoke'] button")).await;
    // The script asks first.
    browser.client.accept_alert().await.unwrap();
    browser.wait_for_new_page().await;
    assert!(browser.text().await.contains("The permit is revoked"));
    browser.close().await;

    let (status, body) = setup.submit(&agent, &permit, "console.log(1)").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_added_inline_and_the_permit_then_works() {
    let setup = setup().await;
    let agent = setup.signup("agent", "agent").await;
    let owner = setup.signup("owner", "owner").await;
    let body = json!({"description": "needs a token", "capabilities": [setup.capability()]});
    let (approval_url, _, permit) = setup.request(&agent, body).await;

    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await;
    browser.open(&approval_url).await;
    browser.sign_in(&owner).await;
    assert!(browser.text().await.contains("missing"));
    browser.fill("#secret-GITHUB_TOKEN", &fake_secret()).await;
    browser.submit("form[action='/secrets'] button").await;
    let text = browser.text().await;
    assert!(text.contains("stored") && !text.contains("missing"), "{text}");
    browser.submit("button[name=action][value=approve]").await;
    assert!(browser.text().await.contains("Approved by you"));
    browser.close().await;

    // The stub answers 401 without the token: the call succeeding shows it was injected.
    assert_eq!(setup.run(&agent, &permit, BOTH_RULES).await["stdout"], "2 issues\necho allowed\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_approves_a_waiting_call_on_the_confirmations_page() {
    let setup = setup().await;
    let mut capability = setup.capability();
    capability["rules"] = json!([{"method": "POST", "path": "/repos/owner/repo/issues", "confirm": true,
                                  "body": {"type": "object", "required": ["title"]}}]);
    let (agent, owner, permit) = oauth3_e2e::approved_permit(setup.url(), capability, &fake_secret()).await;
    let code = "try { const r = await github('POST', '/repos/owner/repo/issues', \
                {body: {title: '<img src=x onerror=\"window.__xss = 1\">'}}); console.log('sent', r.number) } \
                catch (e) { console.log(e.code, e.confirmation_id) }";
    let stdout = setup.run(&agent, &permit, code).await["stdout"].as_str().unwrap().trim().to_owned();
    let id = stdout.strip_prefix("confirmation_required ").unwrap_or_else(|| panic!("{stdout}")).to_owned();

    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await;
    browser.open(&format!("{}/login", setup.url())).await;
    browser.sign_in(&owner).await;
    browser.submit("a[href='/confirmations']").await;
    let text = browser.text().await;
    assert!(text.contains(&id) && text.contains("/repos/owner/repo/issues"), "{text}");
    assert!(text.contains("<img src=x onerror="), "the body shows as text:\n{text}");
    assert_eq!(browser.eval("return document.querySelectorAll('main img').length").await, 0);
    assert_eq!(browser.eval("return window.__xss === undefined").await, true, "no probe ran");
    browser.submit(&format!("form[action='/confirmations/{id}'] button[value=approve]")).await;
    let text = browser.text().await;
    assert!(text.contains("Approved: the agent's identical call goes through once"), "{text}");
    assert!(text.contains("Nothing to confirm"), "{text}");
    browser.close().await;

    let stdout = setup.run(&agent, &permit, code).await["stdout"].as_str().unwrap().trim().to_owned();
    assert_eq!(stdout, "sent 3", "the approved call passes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_post_without_or_with_a_wrong_csrf_token_fails() {
    let setup = setup().await;
    let agent = setup.signup("agent", "agent").await;
    let owner = setup.signup("owner", "owner").await;
    let body = json!({"description": "x", "capabilities": [setup.capability()]});
    let (approval_url, request, _) = setup.request(&agent, body).await;

    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await;
    browser.open(&approval_url).await;
    browser.sign_in(&owner).await;
    for tamper in ["f.csrf.value = 'wrong'", "f.csrf.remove()"] {
        browser.open(&approval_url).await;
        browser.eval(&format!("const f = document.getElementById('decide'); {tamper};")).await;
        browser.submit("button[name=action][value=approve]").await;
        let text = browser.text().await;
        assert!(text.contains("Not allowed") && text.contains("reload the page"), "{tamper}: {text}");
    }
    browser.close().await;
    let (_, status) = call(setup.url(), "GET", &format!("/permit/{request}"), Some(&agent), None).await;
    assert_eq!(status["status"], "pending", "nothing was approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_written_xss_probes_render_as_text_and_run_nothing() {
    let setup = setup().await;
    let name = "<script>window.__xss = 'name'</script>раураl";
    let (_, agent) = call(setup.url(), "POST", "/signup", None, Some(json!({"name": name, "role": "agent"}))).await;
    let agent = agent["token"].as_str().unwrap().to_owned();
    let owner = setup.signup("owner", "owner").await;
    let description =
        "<img src=x onerror=\"window.__xss = 'img'\"> <a id=probe href=\"javascript:window.__xss='link'\">docs</a>";
    // Drafted from the stub's OpenAPI document, with a goal carrying a probe too.
    let body = json!({
        "description": description,
        "intent": [{
            "name": "github",
            "goal": "list the issues in owner/repo <script>window.__xss = 'goal'</script>",
            "doc_urls": [format!("{}/openapi.json", setup.stub.url())],
            "secret_hints": ["GITHUB_TOKEN"]
        }]
    });
    let (approval_url, _, _) = setup.request(&agent, body).await;

    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await;
    browser.open(&approval_url).await;
    browser.sign_in(&owner).await;
    let text = browser.text().await;
    assert!(text.contains("<script>window.__xss = 'name'</script>"), "the name shows as text:\n{text}");
    assert!(text.contains("<img src=x onerror="), "the description shows as text:\n{text}");
    assert!(text.contains("window.__xss = 'goal'"), "the goal shows as text:\n{text}");
    assert!(text.contains("non-ASCII characters"), "look-alike letters are flagged");
    assert!(text.contains("sha256"), "the doc's hash is shown:\n{text}");
    assert_eq!(browser.eval("return document.querySelectorAll('img, #probe, main script').length").await, 0);
    assert_eq!(browser.eval("return window.__xss === undefined").await, true, "no probe ran");
    browser.open(&format!("{}/", setup.url())).await;
    assert!(browser.text().await.contains("<script>window.__xss = 'name'</script>"));
    assert_eq!(browser.eval("return window.__xss === undefined").await, true, "nor on the dashboard");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_fit_a_phone_screen_without_horizontal_scrolling() {
    let setup = setup().await;
    let agent = setup.signup("an-agent-with-a-rather-long-name-that-could-overflow", "agent").await;
    let owner = setup.signup("owner", "owner").await;
    setup.store_secret(&owner, &fake_secret()).await;
    let body = json!({"description": "x".repeat(300), "capabilities": [setup.capability()]});
    let (approval_url, _, _) = setup.request(&agent, body).await;

    let browser = Browser::start(PHONE.0, PHONE.1).await;
    browser.open(&approval_url).await;
    let fits = "return [window.innerWidth, document.documentElement.scrollWidth]";
    let check = |page: &'static str, sizes: Value| {
        let (inner, scroll) = (sizes[0].as_u64().unwrap(), sizes[1].as_u64().unwrap());
        assert_eq!(inner, u64::from(PHONE.0), "the viewport is a phone's");
        assert!(scroll <= inner, "{page} scrolls sideways: {scroll} px wide in {inner}");
    };
    check("the sign-in page", browser.eval(fits).await);
    browser.sign_in(&owner).await;
    check("the approval page", browser.eval(fits).await);
    // The approve button is on screen width-wise and usable.
    let right =
        browser.eval("return document.querySelector('button[value=approve]').getBoundingClientRect().right").await;
    assert!(right.as_f64().unwrap() <= f64::from(PHONE.0), "{right}");
    browser.submit("button[name=action][value=approve]").await;
    assert!(browser.text().await.contains("Approved by you"));
    browser.open(&format!("{}/", setup.url())).await;
    check("the dashboard", browser.eval(fits).await);
    browser.close().await;
}
