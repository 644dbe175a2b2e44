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
