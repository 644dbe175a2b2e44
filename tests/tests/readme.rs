//! The README's ways in besides curl (which `process.rs` runs), verbatim
//! against the real binary: the CLI block in bash, and both MCP client
//! configurations as an MCP client would read them.

use std::collections::HashMap;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Value, json};

use oauth3_e2e::{Binary, Stub, call, oauth3_binary, readme_block};

/// The README's address of a local gateway, which the tests' gateway replaces.
const README_URL: &str = "http://127.0.0.1:3737";

#[tokio::test]
async fn the_readme_cli_walkthrough_runs_verbatim() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::for_stub(&stub, dir.path());
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let bin_dir = oauth3_binary().parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let script = readme_block("cli");
    let output = tokio::task::spawn_blocking({
        let (url, stub, work, home) = (server.url.clone(), stub.url(), work.clone(), dir.path().join("home"));
        move || {
            std::process::Command::new("bash")
                .args(["-euo", "pipefail", "-c", &script])
                .current_dir(work)
                .env_clear()
                .env("PATH", path)
                .env("HOME", home)
                .env("OAUTH3_URL", url)
                .env("STUB", stub)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the CLI block failed:\n{stdout}\n{stderr}\nserver:\n{}", server.output());

    assert!(stdout.contains("signed up: owner owner_") && stdout.contains("signed up: agent agent_"), "{stdout}");
    assert!(stdout.contains("stored GITHUB_TOKEN\n"), "{stdout}");
    assert!(stdout.contains(" approved (permit prm_"), "{stdout}");
    assert!(stdout.contains("Flaky test on CI\n"), "the issues are printed: {stdout}");
    assert!(stdout.contains("refused (exit 1)\n"), "{stdout}");
    assert!(stderr.contains("denied: DELETE /repos/owner/repo/issues: method_not_allowed"), "{stderr}");
    let audit: Vec<&str> = stdout.lines().filter(|l| l.contains(" GET ") || l.contains(" DELETE ")).collect();
    assert!(audit.iter().any(|l| l.contains(" allow GET ") && l.ends_with(" 200")), "{stdout}");
    assert!(audit.iter().any(|l| l.contains(" deny DELETE ") && l.ends_with("(method_not_allowed)")), "{stdout}");
    // Each party's token went to its own 0600 profile.
    for who in ["owner", "agent"] {
        let profile = std::fs::metadata(work.join(format!("{who}.json"))).unwrap();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&profile.permissions()) & 0o777, 0o600);
    }
}

/// The README's `mcpServers.oauth3` entry of the block `name`, with its
/// gateway and token replaced.
fn mcp_config(name: &str, url: &str, token: &str) -> Value {
    let text = readme_block(name).replace(README_URL, url).replace("<agent token>", token);
    let config: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("the {name} block: {e}\n{text}"));
    config["mcpServers"]["oauth3"].clone()
}

/// An agent lists the tools and asks for a permit through `client`.
async fn asks_for_a_permit(client: &rmcp::service::RunningService<rmcp::RoleClient, ()>, stub: &Stub) -> Value {
    assert_eq!(client.list_all_tools().await.unwrap().len(), 6);
    let spec =
        json!({"name": "github", "base_url": stub.url(), "rules": [{"method": "GET", "path": "/repos/*/*/issues"}]});
    let arguments = json!({"description": "from the README", "capabilities": [spec]});
    let Value::Object(arguments) = arguments else { unreachable!() };
    let request = CallToolRequestParams::new("request_permit").with_arguments(JsonObject::from_iter(arguments));
    let answer = client.call_tool(request).await.unwrap();
    assert_eq!(answer.is_error, Some(false), "{answer:?}");
    answer.structured_content.unwrap()
}

#[tokio::test]
async fn the_readme_mcp_configurations_connect_as_written() {
    let stub = Stub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::for_stub(&stub, dir.path());
    let url = server.url.as_str();
    let (_, agent) = call(url, "POST", "/signup", None, Some(json!({"name": "a", "role": "agent"}))).await;
    let token = agent["token"].as_str().unwrap();

    let http = mcp_config("mcp-http", url, token);
    assert_eq!(http["type"], "http");
    let headers: HashMap<http::HeaderName, http::HeaderValue> = http["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.parse().unwrap(), value.as_str().unwrap().parse().unwrap()))
        .collect();
    let config =
        StreamableHttpClientTransportConfig::with_uri(http["url"].as_str().unwrap().to_owned()).custom_headers(headers);
    let transport = StreamableHttpClientTransport::with_client(oauth3_e2e::http_client(), config);
    let client = ().serve(transport).await.expect("the README's http configuration connects");
    let requested = asks_for_a_permit(&client, &stub).await;
    assert_eq!(requested["approval_url"], format!("{url}/approve/{}", requested["request_id"].as_str().unwrap()));
    client.cancel().await.unwrap();

    let stdio = mcp_config("mcp-stdio", url, token);
    assert_eq!(stdio["command"], "oauth3");
    let mut command = tokio::process::Command::new(oauth3_binary());
    command.args(stdio["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap())).env_clear();
    for (name, value) in stdio["env"].as_object().unwrap() {
        command.env(name, value.as_str().unwrap());
    }
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.expect("the README's stdio configuration");
    let requested = asks_for_a_permit(&client, &stub).await;
    assert_eq!(requested["status"], "pending");
    client.cancel().await.unwrap();
}
