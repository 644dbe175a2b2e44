//! The `oauth3` binary's offline commands, run as a user would.

use std::io::Write;
use std::process::{Command, Stdio};

use oauth3_e2e::oauth3_binary;
use serde_json::json;

fn spec() -> String {
    json!({"version": 1, "integrations": [{
        "name": "github",
        "base_url": "https://api.github.com",
        "rules": [{"method": "GET", "path": "/repos/o/r/issues"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
        "secrets": ["GITHUB_TOKEN"]
    }, {
        "name": "local_api",
        "base_url": "http://127.0.0.1:9",
        "rules": [{"method": "POST", "path": "/things"}]
    }]})
    .to_string()
}

#[test]
fn spec_wit_prints_a_world_wit_tooling_resolves_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.json");
    std::fs::write(&path, spec()).unwrap();
    let output = Command::new(oauth3_binary())
        .args(["spec", "wit"])
        .arg(&path)
        .args(["--insecure-upstream", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let wit = String::from_utf8(output.stdout).unwrap();
    let mut resolve = wit_parser::Resolve::new();
    let package = resolve.push_str("permit.wit", &wit).unwrap_or_else(|e| panic!("{e:?}\n{wit}"));
    let world = resolve.select_world(&[package], Some("permit")).unwrap();
    let imports: Vec<String> = resolve.worlds[world].imports.keys().map(|k| resolve.name_world_key(k)).collect();
    assert!(imports.contains(&"oauth3:permit/github".to_owned()), "{imports:?}");
    assert!(imports.contains(&"oauth3:permit/local-api".to_owned()), "{imports:?}");
    assert!(wit.contains("/// - GET https://api.github.com/repos/o/r/issues"), "{wit}");
}

#[test]
fn spec_wit_reads_standard_input_and_reports_a_bad_spec_on_stderr() {
    let mut child = Command::new(oauth3_binary())
        .args(["spec", "wit", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(spec().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    // Plain http is refused unless the upstream is named, as on the gateway.
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("oauth3 spec wit: ") && stderr.contains("127.0.0.1:9"), "{stderr}");

    let output = Command::new(oauth3_binary()).args(["spec", "wit", "/nonexistent/spec.json"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/spec.json"));
}

/// `oauth3 <args>` with `stdin` written.
fn oauth3_with_input(args: &[&str], stdin: &str) -> (bool, String, String) {
    oauth3_e2e::run_oauth3(args, &[], stdin)
}

#[test]
fn spec_lint_gives_the_hash_an_approval_binds_and_flags_what_the_owner_will_see() {
    let risky = json!({"version": 1, "integrations": [{
        "name": "github", "base_url": "https://api.github.com",
        "rules": [{"method": "GET", "path": "/repos/o/r/issues", "query": {"state": {"values": ["open", "closed"]}}},
                  {"method": "POST", "path": "/repos/o/r/**"}],
        "rate_limit": {"max_calls": 10, "window_seconds": 60}
    }]})
    .to_string();
    let (ok, stdout, stderr) = oauth3_with_input(&["spec", "lint", "-"], &risky);
    assert!(ok, "{stderr}");
    let hash = stdout.lines().next().unwrap().strip_prefix("valid: spec_hash ").unwrap().to_owned();
    let warnings: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(warnings.len(), 1, "only the POST rule is flagged: {stdout}");
    assert!(warnings[0].starts_with("warning: github: POST https://api.github.com/repos/o/r/**"), "{stdout}");
    assert!(warnings[0].contains("changes data") && warnings[0].contains("'**' matches any sub-path"), "{stdout}");

    // describe shows the same spec as the owner's page does, with the same hash.
    let (ok, described, _) = oauth3_with_input(&["spec", "describe", "-", "--json"], &risky);
    assert!(ok);
    let view: serde_json::Value = serde_json::from_str(&described).unwrap();
    assert_eq!(view["spec_hash"], hash.as_str());
    assert_eq!(view["capabilities"][0]["signature"], "github(method, path, { body, query, headers })");
    assert!(view["wit"].as_str().unwrap().contains("world permit"));
    let (ok, text, _) = oauth3_with_input(&["spec", "describe", "-"], &risky);
    assert!(ok && text.contains("[! changes data]") && text.ends_with(&format!("spec_hash {hash}\n")), "{text}");

    // Plain http only for an allowed upstream, as on the gateway.
    let (ok, stdout, _) = oauth3_with_input(&["spec", "lint", "-", "--insecure-upstream", "127.0.0.1:9"], &spec());
    assert!(ok && stdout.contains("plain http, not https"), "{stdout}");
}

#[test]
fn spec_lint_says_what_is_wrong_and_exits_1() {
    let bad = json!({"version": 1, "integrations": [{"name": "x", "base_url": "http://evil.example", "rules": []}]});
    let (ok, stdout, stderr) = oauth3_with_input(&["spec", "lint", "-"], &bad.to_string());
    assert!(!ok && stdout.is_empty());
    assert!(stderr.starts_with("invalid: "), "{stderr}");
    assert!(
        stderr.contains("integrations[0].base_url: must use https") && stderr.contains("integrations[0].rules"),
        "{stderr}"
    );
    let (ok, stdout, _) = oauth3_with_input(&["spec", "lint", "-", "--json"], "{not json");
    let verdict: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        !ok && verdict["valid"] == false && verdict["spec_hash"].is_null() && verdict["error"].is_string(),
        "{stdout}"
    );
    let (ok, _, stderr) = oauth3_with_input(&["spec", "describe", "-"], &bad.to_string());
    assert!(!ok && stderr.starts_with("oauth3 spec describe: "), "{stderr}");
}
