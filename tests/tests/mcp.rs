//! The MCP server against the real binary, with rmcp's own client: the
//! quickstart over Streamable HTTP at `/mcp` (request a permit, the owner
//! approves over HTTP, execute, status), the same over `oauth3 mcp --stdio`,
//! and what must be refused: no token, another agent's permit, an owner
//! asking for a permit, a call the permit does not allow.

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ServiceExt, model::JsonObject};
use serde_json::{Value, json};

use oauth3_e2e::{Binary, Stub, call, fake_secret, oauth3_binary};

type Client = RunningService<RoleClient, ()>;

async fn signup(url: &str, role: &str) -> String {
    let (_, body) = call(url, "POST", "/signup", None, Some(json!({"name": role, "role": role}))).await;
    body["token"].as_str().unwrap().to_owned()
}

/// An MCP session over Streamable HTTP with `token`.
async fn over_http(url: &str, token: &str) -> Client {
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{url}/mcp")).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(oauth3_e2e::http_client(), config);
    ().serve(transport).await.expect("an MCP session")
}

/// An MCP session over `oauth3 mcp --stdio`, the token in its environment.
async fn over_stdio(url: &str, token: &str) -> Client {
    let mut command = tokio::process::Command::new(oauth3_binary());
    command.args(["mcp", "--stdio", "--url", url]).env_clear().env("OAUTH3_TOKEN", token);
    ().serve(TokioChildProcess::new(command).unwrap()).await.expect("an MCP session over stdio")
}

/// Calls `tool`: (is_error, the structured answer).
async fn tool(client: &Client, tool: &'static str, arguments: Value) -> (bool, Value) {
    let Value::Object(arguments) = arguments else { panic!("arguments are an object") };
    let result: CallToolResult = client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(JsonObject::from_iter(arguments)))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let answer = result.structured_content.clone().unwrap_or_else(|| {
        let text = result.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.clone()).collect::<String>();
        Value::String(text)
    });
    (result.is_error.unwrap_or(false), answer)
}

/// The quickstart as an agent over MCP does it; the owner approves over HTTP.
async fn runs_the_quickstart(client: &Client, stub: &Stub, url: &str, owner: &str, secret: &str) {
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        ["execute", "execution_status", "get_permit_wit", "list_permits", "permit_status", "request_permit"]
    );
    // The JS API is in the description a model reads before writing code.
    let execute = tools.iter().find(|t| t.name == "execute").unwrap();
    let described = execute.description.as_deref().unwrap_or_default();
    for needle in ["name(method, path, options?)", "Promise.all", ".code", ".status", "console.log", "args"] {
        assert!(described.contains(needle), "execute's description lacks {needle}: {described}");
    }

    let intent = json!([{"name": "github", "goal": "list the issues in owner/repo",
        "doc_urls": [format!("{}/openapi.json", stub.url())], "secret_hints": ["GITHUB_TOKEN"]}]);
    let (failed, requested) =
        tool(client, "request_permit", json!({"description": "Triage issues", "intent": intent})).await;
    assert!(!failed, "{requested}");
    let request = requested["request_id"].as_str().unwrap().to_owned();
    let permit = requested["permit_id"].as_str().unwrap().to_owned();
    assert_eq!(requested["approval_url"], format!("{url}/approve/{request}"));
    let signature = requested["capabilities"][0]["signature"].as_str().unwrap();
    assert!(signature.starts_with("github(method, path"), "{signature}");

    let (_, status) = tool(client, "permit_status", json!({"request_id": request})).await;
    assert_eq!(status["status"], "pending", "{status}");
    let (failed, early) = tool(client, "execute", json!({"permit_id": permit, "code": "console.log(1)"})).await;
    assert!(failed && early["error"]["code"] == "permit_not_active", "{early}");

    let decide = format!("/approve/{request}");
    let approved = call(url, "POST", &decide, Some(owner), Some(json!({"action": "approve"}))).await;
    assert_eq!(approved.0, reqwest::StatusCode::OK, "{}", approved.1);
    let (_, status) = tool(client, "permit_status", json!({"request_id": request})).await;
    assert_eq!(status["status"], "approved", "{status}");
    assert!(status["summary"].as_str().unwrap().contains("GET"), "{status}");
    let (failed, wit) = tool(client, "get_permit_wit", json!({"permit_id": permit})).await;
    assert!(!failed && wit.as_str().unwrap().contains("world"), "{wit}");
    let (_, listed) = tool(client, "list_permits", json!({})).await;
    assert_eq!(listed["permits"][0]["permit_id"], permit.as_str());

    let code = "const [open, all] = await Promise.all([github('GET', '/repos/owner/repo/issues'), \
                github('GET', '/repos/owner/repo/issues')]);\n\
                try { await github('DELETE', '/repos/owner/repo/issues') } catch (e) { console.log(e.code) }\n\
                console.log(open[0].title, all.length, args.n);";
    let (failed, ran) = tool(client, "execute", json!({"permit_id": permit, "code": code, "args": {"n": 7}})).await;
    assert!(!failed, "{ran}");
    assert_eq!(ran["status"], "completed", "{ran}");
    assert_eq!(ran["result"]["stdout"], "method_not_allowed\nFlaky test on CI 2 7\n", "{ran}");
    let calls = ran["result"]["calls"].as_array().unwrap();
    assert_eq!(calls.iter().filter(|c| c["decision"] == "allow" && c["status"] == 200).count(), 2, "{ran}");
    assert!(calls.iter().any(|c| c["decision"] == "deny" && c["reason"] == "method_not_allowed"), "{ran}");
    // The owner's credential reached the stub, never the agent.
    assert!(!ran.to_string().contains(secret), "{ran}");

    let (_, status) = tool(client, "execution_status", json!({"request_id": ran["request_id"]})).await;
    assert_eq!(status["result"]["stdout"], ran["result"]["stdout"]);
    // The same action_id, code and args is the same execution: a retry is safe.
    let again = json!({"permit_id": permit, "code": "console.log(2)", "action_id": "once"});
    let (failed, first) = tool(client, "execute", again.clone()).await;
    assert!(!failed && first["request_id"].is_string(), "{first}");
    let (failed, second) = tool(client, "execute", again).await;
    assert!(!failed, "{second}");
    assert_eq!(first["request_id"], second["request_id"]);
    assert_eq!(second["result"]["stdout"], "2\n", "{second}");
    let (failed, syntax) = tool(client, "execute", json!({"permit_id": permit, "code": "await ("})).await;
    assert!(failed && syntax["error"]["code"] == "syntax_error", "{syntax}");
}

#[tokio::test]
async fn an_agent_runs_the_quickstart_over_mcp_and_over_the_stdio_proxy() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::for_stub(&stub, dir.path());
    let url = server.url.as_str();
    let owner = signup(url, "owner").await;
    let secret = fake_secret();
    let stored = call(url, "POST", "/secrets", Some(&owner), Some(json!({"name": "GITHUB_TOKEN", "value": secret})));
    assert_eq!(stored.await.0, reqwest::StatusCode::CREATED);

    let agent = signup(url, "agent").await;
    let client = over_http(url, &agent).await;
    runs_the_quickstart(&client, &stub, url, &owner, &secret).await;
    client.cancel().await.unwrap();

    let other = signup(url, "agent").await;
    let client = over_stdio(url, &other).await;
    runs_the_quickstart(&client, &stub, url, &owner, &secret).await;
    client.cancel().await.unwrap();
    assert!(!server.output().contains(&secret), "the secret was logged");
}

#[tokio::test]
async fn mcp_refuses_a_missing_token_another_agents_permit_and_an_owner_requesting() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::for_stub(&stub, dir.path());
    let url = server.url.as_str();

    // No token, or a forged one: 401 before any message is read.
    let http = oauth3_e2e::http_client();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
        "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    for token in [None, Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")] {
        let mut request = http.post(format!("{url}/mcp")).header("accept", "application/json, text/event-stream");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.json(&init).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    let mut stdio = tokio::process::Command::new(oauth3_binary());
    let refused = stdio.args(["mcp", "--stdio", "--url", url]).env_clear().env("OAUTH3_TOKEN", "not-a-token");
    let output = refused.stdin(std::process::Stdio::null()).output().await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("oauth3 mcp: "), "{output:?}");

    let spec = json!({"name": "github", "base_url": stub.url(), "rules": [{"method": "GET", "path": "/repos/*/*/issues"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]});
    let (_, owner, permit) = oauth3_e2e::approved_permit(url, spec.clone(), &fake_secret()).await;
    let intruder = over_http(url, &signup(url, "agent").await).await;
    let run = json!({"permit_id": permit, "code": "console.log(await github('GET', '/repos/o/r/issues'))"});
    let (failed, refused) = tool(&intruder, "execute", run).await;
    assert!(failed && refused["error"]["code"] == "not_found", "{refused}");
    let (failed, refused) = tool(&intruder, "permit_status", json!({"permit_id": permit})).await;
    assert!(failed && refused["error"]["code"] == "not_found", "{refused}");
    let (failed, refused) = tool(&intruder, "get_permit_wit", json!({"permit_id": permit})).await;
    assert!(failed && refused["error"]["code"] == "not_found", "{refused}");
    let (failed, refused) = tool(&intruder, "permit_status", json!({})).await;
    assert!(failed && refused["error"]["code"] == "invalid_request", "{refused}");
    let (failed, refused) =
        tool(&intruder, "execute", json!({"permit_id": permit, "code": "1", "timeout_secs": 61})).await;
    assert!(failed && refused["error"]["code"] == "invalid_request", "{refused}");
    intruder.cancel().await.unwrap();

    let as_owner = over_http(url, &owner).await;
    let asked = json!({"description": "mine", "capabilities": [spec]});
    let (failed, refused) = tool(&as_owner, "request_permit", asked).await;
    assert!(failed && refused["error"]["code"] == "forbidden", "{refused}");
    let (failed, refused) = tool(&as_owner, "execute", json!({"permit_id": permit, "code": "1"})).await;
    assert!(failed && refused["error"]["code"] == "forbidden", "{refused}");
    as_owner.cancel().await.unwrap();
}
