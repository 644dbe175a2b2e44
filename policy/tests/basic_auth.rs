//! `inject.basic`: HTTP Basic credentials built by egress from two
//! templates. Compile refuses what RFC 7617 or the policy cannot express, the
//! agent can never set `Authorization` beside it, the owner reads it in
//! plain language, and specs without it hash as before.

use oauth3_policy::{
    CompileOptions, CompiledPermit, Decision, DenyCode, OutboundRequest, PermitSpec, permit_json_schema,
};
use serde_json::{Value, json};

/// An API that takes a key as the Basic username and a secret as the password.
fn payments() -> Value {
    json!({
        "name": "payments",
        "base_url": "https://api.payments.example",
        "rules": [{"method": "GET", "path": "/v1/charges"}],
        "inject": {"basic": {"username": "{PAY_KEY}", "password": "{PAY_SECRET}"}},
        "secrets": ["PAY_KEY", "PAY_SECRET"]
    })
}

/// `base` with the field at `pointer` set (added if its parent lacks it).
fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or_else(|| panic!("{pointer}"));
    let parent = base.pointer_mut(parent).and_then(Value::as_object_mut).unwrap_or_else(|| panic!("{pointer}"));
    parent.insert(key.to_owned(), value);
    base
}

fn permit(integration: Value) -> PermitSpec {
    PermitSpec::from_value(json!({"version": 1, "integrations": [integration]})).unwrap()
}

fn compile(integration: Value) -> CompiledPermit {
    permit(integration).compile(&CompileOptions::default()).unwrap()
}

fn issues(integration: Value) -> Vec<String> {
    permit(integration).validate(&CompileOptions::default()).into_iter().map(|i| i.to_string()).collect()
}

#[track_caller]
fn assert_invalid(integration: Value, field: &str, needle: &str) {
    let found = issues(integration);
    assert!(
        found.iter().any(|i| i.starts_with(&format!("integrations[0].{field}: ")) && i.contains(needle)),
        "expected {field} ~ {needle:?}, got {found:?}"
    );
}

#[test]
fn a_key_and_secret_compile_and_both_secrets_are_needed_by_calls() {
    let permit = compile(payments());
    let integration = permit.integration("payments").unwrap();
    let (username, password) = integration.inject_basic().expect("basic is compiled");
    assert_eq!((username.to_string(), password.to_string()), ("{PAY_KEY}".into(), "{PAY_SECRET}".into()));
    assert_eq!(integration.secrets().into_iter().collect::<Vec<_>>(), ["PAY_KEY", "PAY_SECRET"]);
    assert!(integration.inject_headers().is_empty(), "egress builds the header itself");
}

#[test]
fn a_key_alone_compiles_with_an_empty_password() {
    let key_only = with(payments(), "/inject/basic", json!({"username": "{PAY_KEY}"}));
    let permit = compile(with(key_only, "/secrets", json!(["PAY_KEY"])));
    let (_, password) = permit.integration("payments").unwrap().inject_basic().unwrap();
    assert_eq!(password.to_string(), "");
}

#[test]
fn a_username_with_a_literal_colon_is_refused() {
    let colon = with(payments(), "/inject/basic/username", json!("{PAY_KEY}:x"));
    assert_invalid(colon, "inject.basic.username", "must not contain ':'");
}

#[test]
fn a_colon_in_the_password_is_allowed() {
    compile(with(payments(), "/inject/basic/password", json!("{PAY_SECRET}:with:colons")));
}

#[test]
fn an_empty_username_is_refused() {
    assert_invalid(with(payments(), "/inject/basic/username", json!("")), "inject.basic.username", "must not be empty");
}

#[test]
fn a_missing_username_is_a_parse_error() {
    let spec =
        json!({"version": 1, "integrations": [with(payments(), "/inject/basic", json!({"password": "{PAY_SECRET}"}))]});
    let err = PermitSpec::from_value(spec).unwrap_err().to_string();
    assert!(err.contains("username"), "{err}");
}

#[test]
fn a_secret_not_declared_in_secrets_is_refused_in_either_template() {
    let undeclared = with(payments(), "/secrets", json!(["PAY_KEY"]));
    assert_invalid(undeclared, "inject.basic.password", "PAY_SECRET, which is not declared");
    let undeclared = with(payments(), "/secrets", json!(["PAY_SECRET"]));
    assert_invalid(undeclared, "inject.basic.username", "PAY_KEY, which is not declared");
}

#[test]
fn malformed_templates_and_control_characters_are_refused() {
    assert_invalid(with(payments(), "/inject/basic/username", json!("{PAY_KEY")), "inject.basic.username", "unclosed");
    assert_invalid(
        with(payments(), "/inject/basic/password", json!("{PAY_SECRET}\r\n")),
        "inject.basic.password",
        "control character",
    );
}

#[test]
fn basic_together_with_an_injected_authorization_header_is_refused() {
    for spelling in ["Authorization", "authorization", "AUTHORIZATION"] {
        let both = with(payments(), "/inject/headers", json!({spelling: "Bearer {PAY_KEY}"}));
        assert_invalid(both, "inject.basic", &format!("inject.headers.{spelling}"));
    }
}

#[test]
fn basic_beside_other_injected_headers_compiles() {
    compile(with(payments(), "/inject/headers", json!({"X-Api-Version": "2024-01-01"})));
}

#[test]
fn the_agent_may_not_set_authorization_in_any_spelling_when_basic_is_injected() {
    let permit = compile(payments());
    for name in ["Authorization", "authorization", "AUTHORIZATION", "aUtHoRiZaTiOn"] {
        let headers = [(name.to_owned(), "Basic YWdlbnQ6bWluZQ==".to_owned())];
        let request = OutboundRequest::new("payments", "GET", "/v1/charges").with_headers(&headers);
        let Decision::Deny(deny) = permit.decide(&request) else { panic!("{name:?} was allowed") };
        assert_eq!(deny.code, DenyCode::HeaderNotAllowed, "{name:?}: {}", deny.message);
    }
    let other = [("Accept".to_owned(), "application/json".to_owned())];
    assert!(permit.decide(&OutboundRequest::new("payments", "GET", "/v1/charges").with_headers(&other)).is_allow());
}

#[test]
fn without_basic_the_agent_may_still_set_authorization() {
    let open =
        json!({"name": "open", "base_url": "https://api.open.example", "rules": [{"method": "GET", "path": "/x"}]});
    let headers = [("Authorization".to_owned(), "Bearer agent-own".to_owned())];
    assert!(compile(open).decide(&OutboundRequest::new("open", "GET", "/x").with_headers(&headers)).is_allow());
}

#[test]
fn the_owner_reads_which_secrets_go_as_username_and_password() {
    let text = compile(payments()).describe().integrations[0].rules[0].text.clone();
    assert!(text.ends_with("sends PAY_KEY as the HTTP Basic username and PAY_SECRET as the password"), "{text}");

    let key_only =
        with(with(payments(), "/inject/basic", json!({"username": "{PAY_KEY}"})), "/secrets", json!(["PAY_KEY"]));
    let text = compile(key_only).describe().integrations[0].rules[0].text.clone();
    assert!(text.ends_with("sends PAY_KEY as the HTTP Basic username"), "{text}");

    let fixed_user = with(payments(), "/inject/basic", json!({"username": "api", "password": "{PAY_SECRET}"}));
    let fixed_user = with(fixed_user, "/secrets", json!(["PAY_SECRET"]));
    let text = compile(fixed_user).describe().integrations[0].rules[0].text.clone();
    assert!(text.ends_with("sends \"api\" as the HTTP Basic username and PAY_SECRET as the password"), "{text}");
}

#[test]
fn a_spec_without_basic_keeps_its_canonical_form_and_hash() {
    let spec = permit(json!({"name": "api", "base_url": "https://api.example.com",
        "rules": [{"method": "GET", "path": "/items"}],
        "inject": {"headers": {"X-Api-Key": "{API_KEY}"}}, "secrets": ["API_KEY"]}));
    // Pinned before `basic` existed: SHA-256 of exactly this canonical JSON.
    assert_eq!(
        spec.canonical_json(),
        r#"{"integrations":[{"base_url":"https://api.example.com","inject":{"headers":{"X-Api-Key":"{API_KEY}"}},"name":"api","rules":[{"method":"GET","path":"/items"}],"secrets":["API_KEY"]}],"version":1}"#
    );
    assert_eq!(spec.spec_hash().to_string(), "4f1db6982a83bf30f0fc227f0859ccad693f5e2e09f0dfb10e18299215d73956");
}

#[test]
fn an_empty_password_hashes_like_none_and_basic_changes_the_hash() {
    let absent =
        with(with(payments(), "/inject/basic", json!({"username": "{PAY_KEY}"})), "/secrets", json!(["PAY_KEY"]));
    let empty = with(absent.clone(), "/inject/basic/password", json!(""));
    assert_eq!(permit(absent.clone()).spec_hash(), permit(empty).spec_hash());
    let other_user = with(absent.clone(), "/inject/basic/username", json!("{PAY_KEY}x"));
    assert_ne!(permit(absent.clone()).spec_hash(), permit(other_user).spec_hash());
    let with_password = with(payments(), "/secrets", json!(["PAY_KEY", "PAY_SECRET"]));
    assert_ne!(permit(absent).spec_hash(), permit(with_password).spec_hash());
}

#[test]
fn the_json_schema_describes_basic_and_agrees_with_the_parser() {
    let schema = permit_json_schema();
    let inject = &schema["$defs"]["Inject"]["properties"];
    assert!(inject["basic"].is_object(), "{inject}");
    let basic = &schema["$defs"]["BasicAuth"];
    assert_eq!(basic["required"], json!(["username"]), "{basic}");
    assert_eq!(basic["additionalProperties"], json!(false), "{basic}");

    let validator = jsonschema::validator_for(&schema).unwrap();
    let good = json!({"version": 1, "integrations": [payments()]});
    assert!(validator.is_valid(&good));
    for bad in [
        with(payments(), "/inject/basic", json!({"password": "{PAY_SECRET}"})),
        with(payments(), "/inject/basic", json!({"username": "{PAY_KEY}", "passwd": "{PAY_SECRET}"})),
        with(payments(), "/inject/basic", json!("{PAY_KEY}:{PAY_SECRET}")),
    ] {
        let bad = json!({"version": 1, "integrations": [bad]});
        assert!(!validator.is_valid(&bad), "schema accepts {bad}");
        assert!(PermitSpec::from_value(bad.clone()).is_err(), "parser accepts {bad}");
    }
}
