//! The deployment files say what the gateway does: the Dockerfile builds with
//! the scripts CI uses and runs `oauth3 serve` as a non-root user; the dstack
//! compose file pins its image by digest, mounts the guest agent, keys from
//! dstack only, names only real settings, and takes from env only what
//! `.env.example` and `allowed_envs` list. (No container engine runs here,
//! so the image itself is not built by the tests.)

use std::collections::BTreeSet;
use std::path::PathBuf;

use oauth3_e2e::oauth3_binary;
use serde_json::Value;

fn repository_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `cargo build …` command on a line of `text`, up to its line's end or
/// a `&&`.
fn cargo_build(text: &str) -> String {
    let line = text.lines().find(|l| l.contains("cargo build")).expect("a cargo build line");
    let command = &line[line.find("cargo build").unwrap()..];
    command.split("&&").next().unwrap().trim_end_matches('\\').trim().to_owned()
}

#[test]
fn the_image_is_built_by_the_ci_scripts_and_runs_serve_as_a_non_root_user() {
    let dockerfile = repository_file("Dockerfile");
    let instructions: Vec<&str> = dockerfile.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
    let text = instructions.join("\n");
    assert!(instructions.iter().filter(|l| l.starts_with("FROM ")).count() >= 2, "multi-stage");
    assert!(instructions.contains(&"RUN ./scripts/setup"), "the toolchain comes from scripts/setup");
    assert_eq!(cargo_build(&text), cargo_build(&repository_file("scripts/serve")), "the build is scripts/serve's");
    let user = instructions.iter().rev().find_map(|l| l.strip_prefix("USER ")).expect("a USER");
    assert!(!["0", "root"].contains(&user.trim()), "runs as {user}");
    assert_eq!(instructions.last().copied(), Some(r#"ENTRYPOINT ["oauth3", "serve"]"#));
    assert!(instructions.contains(&"VOLUME /data"));
}

#[test]
fn the_dstack_compose_pins_its_image_keys_from_dstack_and_takes_only_listed_env() {
    let compose: Value = serde_yaml_ng::from_str(&repository_file("dstack/docker-compose.yml")).unwrap();
    let service = &compose["services"]["oauth3"];
    let image = service["image"].as_str().unwrap();
    assert!(image.contains("@sha256:"), "pinned by digest: {image}");
    let volumes: Vec<&str> = service["volumes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(volumes.contains(&"/var/run/dstack.sock:/var/run/dstack.sock"), "{volumes:?}");
    assert!(volumes.iter().any(|v| v.ends_with(":/data")), "a data volume: {volumes:?}");
    assert_eq!(service["read_only"], Value::Bool(true));

    let environment = service["environment"].as_object().unwrap();
    let value = |name: &str| environment.get(name).and_then(Value::as_str).unwrap_or_default();
    assert_eq!(value("OAUTH3_KEYS"), "dstack", "never file keys in a CVM");
    assert_eq!(value("OAUTH3_INSECURE_UPSTREAMS"), "");
    assert_eq!(value("OAUTH3_SIGNUP"), "invite");

    // Every setting it names is one the binary reads.
    let help = std::process::Command::new(oauth3_binary()).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for name in environment.keys().filter(|n| *n != "RUST_LOG") {
        // `[env: NAME=…]`, or `[env: NAME]` for those whose values are hidden.
        let named = help.contains(&format!("[env: {name}=")) || help.contains(&format!("[env: {name}]"));
        assert!(named, "{name} is not a setting of oauth3 serve");
    }

    // ${VAR}s: exactly the names .env.example fills and allowed_envs lets in;
    // the API key only ever as one.
    let from_env: BTreeSet<String> = environment
        .values()
        .filter_map(Value::as_str)
        .filter_map(|v| v.strip_prefix("${").and_then(|v| v.strip_suffix('}')))
        .map(str::to_owned)
        .collect();
    assert!(from_env.contains("ANTHROPIC_API_KEY") && value("ANTHROPIC_API_KEY") == "${ANTHROPIC_API_KEY}");
    let example: BTreeSet<String> = repository_file("dstack/.env.example")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(name, _)| name.trim().to_owned()))
        .collect();
    assert_eq!(from_env, example, ".env.example fills exactly the compose file's ${{VAR}}s");
    let app_compose: Value = serde_json::from_str(&repository_file("dstack/app-compose.example.json")).unwrap();
    let allowed: BTreeSet<String> =
        app_compose["allowed_envs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(from_env, allowed, "allowed_envs lets in exactly those");
}
