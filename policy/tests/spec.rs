//! Reading, validating, hashing and describing specs.

use std::sync::Arc;

use oauth3_policy::{
    Ceilings, CompileOptions, CompiledPermit, DenyCode, EffectiveLimits, OutboundRequest, PermitSpec, PolicyError,
    Risk, SCOPED_FETCH_WIT, permit_json_schema,
};
use serde_json::{Value, json};

fn permit(integration: Value) -> PermitSpec {
    PermitSpec::from_value(json!({"version": 1, "integrations": [integration]})).unwrap()
}

fn github() -> Value {
    json!({
        "name": "github",
        "base_url": "https://api.github.com",
        "doc_urls": ["https://docs.github.com/en/rest/issues"],
        "rules": [
            {"method": "GET", "path": "/repos/o/r/issues"},
            {"method": "POST", "path": "/repos/o/r/issues",
             "body": {"type": "object", "required": ["title"], "additionalProperties": false,
                      "properties": {"title": {"type": "string"}, "body": {"type": "string"}}}}
        ],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
        "secrets": ["GITHUB_TOKEN"],
        "rate_limit": {"max_calls": 30, "window_seconds": 60}
    })
}

fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    *base.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = value;
    base
}

fn issues(spec: &PermitSpec, options: &CompileOptions) -> Vec<String> {
    spec.validate(options).into_iter().map(|i| i.to_string()).collect()
}

fn assert_invalid(integration: Value, field: &str, needle: &str) {
    let found = issues(&permit(integration), &CompileOptions::default());
    assert!(
        found.iter().any(|i| i.starts_with(&format!("integrations[0].{field}: ")) && i.contains(needle)),
        "expected {field} ~ {needle:?}, got {found:?}"
    );
}

fn compile(spec: &PermitSpec) -> CompiledPermit {
    spec.compile(&CompileOptions::default()).unwrap()
}

#[test]
fn compiles_a_valid_spec_and_shares_it_across_threads() {
    let permit = Arc::new(compile(&permit(github())));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let permit = Arc::clone(&permit);
            std::thread::spawn(move || {
                permit.decide(&OutboundRequest::new("github", "GET", "/repos/o/r/issues")).is_allow()
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}

#[test]
fn reads_the_legacy_format_into_rules() {
    let legacy = PermitSpec::from_json(
        r#"{"type": "scoped-fetch", "name": "github", "doc_url": "https://docs.github.com/en/rest",
            "base_url": "https://api.github.com",
            "auth": {"header": "Authorization", "value": "Bearer {GITHUB_TOKEN}"},
            "scope": ["repos/o/r/issues", "/repos/o/r/issues/*"],
            "methods": ["get", "POST"],
            "body_schema": {"allow_keys": ["title", "body"], "deny_keys": ["assignees"]},
            "rate_limit": {"max_calls": 10, "window_seconds": 60}}"#,
    )
    .unwrap();
    let spec = &legacy.integrations[0];
    let rules: Vec<(&str, &str, bool)> =
        spec.rules.iter().map(|r| (r.method.as_str(), r.path.as_str(), r.body.is_some())).collect();
    assert_eq!(
        rules,
        [
            ("GET", "/repos/o/r/issues", false),
            ("POST", "/repos/o/r/issues", true),
            ("GET", "/repos/o/r/issues/*", false),
            ("POST", "/repos/o/r/issues/*", true)
        ]
    );
    assert_eq!(spec.secrets, ["GITHUB_TOKEN"]);
    assert_eq!(spec.doc_urls, ["https://docs.github.com/en/rest"]);
    assert_eq!(spec.inject.headers["Authorization"], "Bearer {GITHUB_TOKEN}");

    let permit = compile(&legacy);
    let post = |body: &'static str| {
        permit.decide(&OutboundRequest::new("github", "POST", "/repos/o/r/issues").with_body(body.as_bytes()))
    };
    assert!(post(r#"{"title":"t","body":"b"}"#).is_allow());
    for (body, why) in [
        (r#"{"title":"t","assignees":["me"]}"#, "deny key"),
        (r#"{"title":"t","labels":["x"]}"#, "key outside allow_keys"),
        (r#""title""#, "string body"),
        (r#"["title","body"]"#, "array body"),
    ] {
        assert_eq!(post(body).deny_code(), Some(DenyCode::BodyInvalid), "{why}");
    }
}

#[test]
fn legacy_deny_keys_alone_forbid_only_those_keys() {
    let spec =
        PermitSpec::from_value(json!({"type": "scoped-fetch", "name": "api", "base_url": "https://api.example.com",
        "scope": ["/items"], "methods": ["POST"], "body_schema": {"deny_keys": ["admin"]}}))
        .unwrap();
    let permit = compile(&spec);
    let post =
        |body: &'static str| permit.decide(&OutboundRequest::new("api", "POST", "/items").with_body(body.as_bytes()));
    assert!(post(r#"{"name":"x"}"#).is_allow());
    assert_eq!(post(r#"{"name":"x","admin":true}"#).deny_code(), Some(DenyCode::BodyInvalid));
}

#[test]
fn legacy_body_constraints_hold_for_every_method_that_carries_a_body() {
    let spec = PermitSpec::from_value(json!({"type": "scoped-fetch", "name": "api",
        "base_url": "https://api.example.com", "scope": ["/items/*"], "methods": ["GET", "PUT", "DELETE"],
        "body_schema": {"allow_keys": ["name"]}}))
    .unwrap();
    let permit = compile(&spec);
    let call = |method: &'static str, body: Option<&'static str>| {
        let request = OutboundRequest::new("api", method, "/items/1");
        permit.decide(&body.map_or(request, |b| request.with_body(b.as_bytes())))
    };
    assert!(call("GET", None).is_allow());
    assert_eq!(call("GET", Some(r#"{"name":"x"}"#)).deny_code(), Some(DenyCode::BodyInvalid), "GET takes no body");
    assert!(call("PUT", Some(r#"{"name":"x"}"#)).is_allow());
    assert_eq!(call("PUT", Some(r#"{"admin":true}"#)).deny_code(), Some(DenyCode::BodyInvalid));
    assert!(call("DELETE", None).is_allow(), "a DELETE may still go without a body");
    assert!(call("DELETE", Some(r#"{"name":"x"}"#)).is_allow());
    assert_eq!(
        call("DELETE", Some(r#"{"admin":true}"#)).deny_code(),
        Some(DenyCode::BodyInvalid),
        "the key list holds for DELETE bodies too"
    );
}

#[test]
fn legacy_specs_without_a_body_schema_take_any_body_only_on_methods_that_carry_one() {
    let spec = PermitSpec::from_value(json!({"type": "scoped-fetch", "name": "api",
        "base_url": "https://api.example.com", "scope": ["/items"], "methods": ["GET", "POST"]}))
    .unwrap();
    let bodies: Vec<(&str, Option<&serde_json::Value>)> =
        spec.integrations[0].rules.iter().map(|r| (r.method.as_str(), r.body.as_ref())).collect();
    assert_eq!(bodies, [("GET", None), ("POST", Some(&json!(true)))]);
    let permit = compile(&spec);
    let with_body = |method| OutboundRequest::new("api", method, "/items").with_body(b"name=x");
    assert!(permit.decide(&with_body("POST")).is_allow());
    assert_eq!(permit.decide(&with_body("GET")).deny_code(), Some(DenyCode::BodyInvalid));
}

#[test]
fn a_false_body_means_none_and_hashes_like_no_body() {
    let with_false = permit(json!({"name": "api", "base_url": "https://api.example.com",
        "rules": [{"method": "POST", "path": "/ping", "body": false}]}));
    let without = permit(json!({"name": "api", "base_url": "https://api.example.com",
        "rules": [{"method": "POST", "path": "/ping"}]}));
    assert_eq!(with_false.spec_hash(), without.spec_hash());
    let compiled = compile(&with_false);
    assert!(compiled.decide(&OutboundRequest::new("api", "POST", "/ping")).is_allow());
    let with_body = OutboundRequest::new("api", "POST", "/ping").with_body(b"{}");
    assert_eq!(compiled.decide(&with_body).deny_code(), Some(DenyCode::BodyInvalid));
}

#[test]
fn describes_what_body_each_rule_takes() {
    let spec = permit(
        json!({"name": "api", "base_url": "https://api.example.com", "rate_limit": {"max_calls": 1, "window_seconds": 1},
        "rules": [{"method": "POST", "path": "/none"}, {"method": "POST", "path": "/any", "body": true},
                  {"method": "POST", "path": "/json", "body": {}}, {"method": "GET", "path": "/read"}]}),
    );
    let summary = compile(&spec).describe();
    let rules = &summary.integrations[0].rules;
    assert!(rules[0].text.contains("— no body;"), "{}", rules[0].text);
    assert!(!rules[0].risks.contains(&Risk::UncheckedBody));
    assert!(rules[1].text.contains("any body, not checked"), "{}", rules[1].text);
    assert!(rules[1].risks.contains(&Risk::UncheckedBody));
    assert!(rules[2].text.contains("body: any JSON"), "{}", rules[2].text);
    assert!(rules[2].risks.contains(&Risk::UncheckedBody));
    assert!(!rules[3].text.contains("body"), "a GET says nothing about bodies: {}", rules[3].text);
}

#[test]
fn a_base_url_with_more_than_one_trailing_slash_is_refused_and_its_hash_is_stable() {
    for base in [
        "https://api.github.com//",
        "https://api.github.com///",
        "https://api.github.com////",
        "https://x.example/v1//",
    ] {
        let spec = permit(json!({"name": "gh", "base_url": base, "rules": [{"method": "GET", "path": "/repos/*"}]}));
        let again = PermitSpec::from_json(&spec.canonical_json()).unwrap();
        assert_eq!(again.spec_hash(), spec.spec_hash(), "{base}: the canonical form hashes alike");
        assert_eq!(spec.normalized(), spec.normalized().normalized(), "{base}");
        let err = spec.compile(&CompileOptions::default()).unwrap_err();
        assert!(err.to_string().contains("empty segment"), "{base}: {err}");
    }
    let one = permit(
        json!({"name": "gh", "base_url": "https://api.github.com/v1/", "rules": [{"method": "GET", "path": "/x"}]}),
    );
    assert_eq!(compile(&one).integrations()[0].base_url(), "https://api.github.com/v1");
}

#[test]
fn legacy_and_current_forms_of_one_spec_hash_alike() {
    let legacy =
        PermitSpec::from_value(json!({"type": "scoped-fetch", "name": "github", "base_url": "https://api.github.com/",
        "auth": {"header": "Authorization", "value": "Bearer {GITHUB_TOKEN}"}, "scope": ["repos/o/r/issues"]}))
        .unwrap();
    let current = permit(json!({"name": "github", "base_url": "https://api.github.com",
        "rules": [{"method": "GET", "path": "/repos/o/r/issues"}],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}}, "secrets": ["GITHUB_TOKEN"]}));
    assert_eq!(legacy.spec_hash(), current.spec_hash());
}

#[test]
fn legacy_type_must_be_scoped_fetch() {
    let err =
        PermitSpec::from_value(json!({"type": "oauth", "name": "x", "base_url": "https://a.example", "scope": ["/"]}))
            .unwrap_err();
    assert!(matches!(&err, PolicyError::Parse { path, .. } if path == "type"), "{err}");
}

#[test]
fn spec_hash_ignores_key_order_whitespace_and_spelling_of_defaults() {
    let a = PermitSpec::from_json(&serde_json::to_string(&json!({"version": 1, "integrations": [github()]})).unwrap())
        .unwrap();
    let reordered = r#"{ "integrations": [ {
        "secrets": ["GITHUB_TOKEN"], "rate_limit": {"window_seconds": 60, "max_calls": 30},
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}, "query": {}},
        "rules": [ {"path": "repos/o/r/issues", "method": "get"},
                   {"body": {"additionalProperties": false, "required": ["title"], "type": "object",
                             "properties": {"body": {"type": "string"}, "title": {"type": "string"}}},
                    "path": "/repos/o/r/issues", "method": "POST"} ],
        "doc_urls": ["https://docs.github.com/en/rest/issues"], "limits": {},
        "base_url": "HTTPS://API.GitHub.com:443/", "name": "github" } ],
      "version": 1 }"#;
    let b = PermitSpec::from_json(reordered).unwrap();
    assert_eq!(a.spec_hash(), b.spec_hash());
    assert_eq!(a.canonical_json(), b.canonical_json());
    assert_eq!(compile(&a).spec_hash(), &a.spec_hash());
}

#[test]
fn spec_hash_changes_when_anything_enforced_changes() {
    let base = permit(github()).spec_hash();
    for (pointer, value) in [
        ("/rules/0/path", json!("/repos/o/r/issues/*")),
        ("/rules/0/method", json!("DELETE")),
        ("/rules/1/body/additionalProperties", json!(true)),
        ("/rate_limit/max_calls", json!(31)),
        ("/inject/headers/Authorization", json!("token {GITHUB_TOKEN}")),
        ("/base_url", json!("https://api.github.com/v3")),
    ] {
        assert_ne!(permit(with(github(), pointer, value)).spec_hash(), base, "{pointer}");
    }
}

#[test]
fn canonical_json_is_rfc8785_of_the_normalised_spec() {
    let spec = permit(
        json!({"name": "a", "base_url": "https://x.example", "rules": [{"method": "get", "path": "p", "body": {"maximum": 1.0}}]}),
    );
    assert_eq!(
        spec.canonical_json(),
        r#"{"integrations":[{"base_url":"https://x.example","name":"a","rules":[{"body":{"maximum":1},"method":"GET","path":"/p"}]}],"version":1}"#
    );
}

#[test]
fn refuses_unknown_fields_with_their_path() {
    let err = PermitSpec::from_value(json!({"version": 1, "integrations": [with(github(), "/rules/1", json!({"method": "POST", "path": "/x", "bodyy": {}}))]}))
        .unwrap_err();
    let PolicyError::Parse { path, message } = &err else { panic!("{err}") };
    assert_eq!(path, "integrations[0].rules[1].bodyy");
    assert!(message.contains("bodyy"), "{message}");
}

#[test]
fn refuses_other_versions() {
    let err = PermitSpec::from_value(json!({"version": 2, "integrations": [github()]})).unwrap_err();
    assert!(matches!(&err, PolicyError::Parse { path, .. } if path == "version"), "{err}");
}

#[test]
fn reports_malformed_json_clearly() {
    let err = PermitSpec::from_json("{\"version\": 1,").unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
}

#[test]
fn requires_https_unless_the_operator_allows_the_upstream() {
    let spec = permit(with(github(), "/base_url", json!("http://127.0.0.1:8080")));
    assert!(issues(&spec, &CompileOptions::default()).iter().any(|i| i.contains("must use https")));
    let options =
        CompileOptions { insecure_upstreams: ["127.0.0.1:8080".parse().unwrap()].into(), ..Default::default() };
    let compiled = spec.compile(&options).unwrap();
    assert!(compiled.integrations()[0].is_insecure_upstream());
    let other_port = permit(with(github(), "/base_url", json!("http://127.0.0.1:8081")));
    assert!(!issues(&other_port, &options).is_empty());
}

#[test]
fn refuses_non_public_hosts_over_https_too() {
    for host in [
        "https://127.0.0.1",
        "https://169.254.169.254",
        "https://[::1]",
        "https://localhost",
        "https://10.0.0.8:8443",
        "https://metadata.google.internal",
    ] {
        assert_invalid(with(github(), "/base_url", json!(host)), "base_url", "non-public");
    }
}

#[test]
fn base_url_has_no_user_info_query_fragment_or_dot_segments() {
    for (url, needle) in [
        ("https://user:pw@api.github.com", "user info"),
        ("https://api.github.com?x=1", "query"),
        ("https://api.github.com/#x", "fragment"),
        ("https://api.github.com/a/../b", "'..'"),
        ("ftp://api.github.com", "scheme"),
        ("api.github.com", "not a URL"),
        ("https://api.github.com/{GITHUB_TOKEN}", "templates"),
    ] {
        assert_invalid(with(github(), "/base_url", json!(url)), "base_url", needle);
    }
}

#[test]
fn names_are_lower_case_words_and_not_reserved() {
    for bad in ["GitHub", "my-api", "2fa", "a__b", "_x", "githubIssues", ""] {
        assert_invalid(with(github(), "/name", json!(bad)), "name", "lower-case words");
    }
    for reserved in ["delete", "console", "args", "fetch", "eval"] {
        assert_invalid(with(github(), "/name", json!(reserved)), "name", "reserved");
    }
    let ok = permit(with(github(), "/name", json!("slack_chat2")));
    assert!(issues(&ok, &CompileOptions::default()).is_empty());
}

#[test]
fn names_are_unique_within_a_permit() {
    let spec = PermitSpec::from_value(json!({"version": 1, "integrations": [github(), github()]})).unwrap();
    assert!(issues(&spec, &CompileOptions::default()).iter().any(|i| i.contains("used twice")));
}

#[test]
fn templates_only_name_declared_secrets() {
    assert_invalid(
        with(github(), "/secrets", json!([])),
        "inject.headers.Authorization",
        "GITHUB_TOKEN, which is not declared",
    );
    assert_invalid(
        with(github(), "/inject/headers/Authorization", json!("Bearer {GITHUB_TOKEN")),
        "inject.headers.Authorization",
        "unclosed",
    );
    assert_invalid(with(github(), "/secrets", json!(["1BAD"])), "secrets[0]", "not a secret name");
}

#[test]
fn templates_appear_only_in_inject_values() {
    let rule = json!({"method": "GET", "path": "/x", "query": {"token": {"values": ["{GITHUB_TOKEN}"]}}});
    assert_invalid(with(github(), "/rules/0", rule), "rules[0].query.token", "templates");
    assert_invalid(with(github(), "/rules/0/path", json!("/repos/{GITHUB_TOKEN}")), "rules[0].path", "path template");
}

#[test]
fn inject_headers_are_valid_and_not_gateway_owned() {
    let inject = |headers: Value| with(github(), "/inject", json!({"headers": headers}));
    assert_invalid(inject(json!({"Host": "x"})), "inject.headers.Host", "gateway");
    assert_invalid(inject(json!({"Bad Name": "x"})), "inject.headers.Bad Name", "not a valid header name");
    assert_invalid(inject(json!({"X-A": "a\r\nX-B: b"})), "inject.headers.X-A", "control character");
    assert_invalid(
        inject(json!({"Authorization": "Bearer {GITHUB_TOKEN}", "authorization": "x"})),
        "inject.headers.authorization",
        "twice",
    );
}

#[test]
fn rule_query_may_not_name_an_injected_parameter() {
    let integration = json!({"name": "w", "base_url": "https://api.weather.example",
        "rules": [{"method": "GET", "path": "/f", "query": {"API_KEY": {}}}],
        "inject": {"query": {"api_key": "{K}"}}, "secrets": ["K"]});
    assert_invalid(integration, "rules[0].query.API_KEY", "injected");
}

#[test]
fn globs_must_be_well_formed() {
    for (glob, needle) in [
        ("/repos/issue-*-x*", "more than one '*'"),
        ("/repos/a**", "more than one '*'"),
        ("/repos/{owner}", "path template"),
        ("/repos//x", "empty segment"),
        ("/a/**/**", "'**/**'"),
        ("/a/%2e%2e", "malformed"),
        ("/a/%2E%2E", "encoded '.'"),
    ] {
        assert_invalid(with(github(), "/rules/0/path", json!(glob)), "rules[0].path", needle);
    }
}

#[test]
fn methods_must_be_known() {
    assert_invalid(with(github(), "/rules/0/method", json!("FETCH")), "rules[0].method", "use one of");
}

#[test]
fn body_schemas_must_compile_without_fetching_anything() {
    assert_invalid(with(github(), "/rules/1/body", json!({"type": 12})), "rules[1].body", "JSON Schema");
    assert_invalid(
        with(github(), "/rules/1/body", json!({"$ref": "https://evil.example/s.json"})),
        "rules[1].body",
        "JSON Schema",
    );
    assert_invalid(with(github(), "/rules/1/body", json!("object")), "rules[1].body", "object or a boolean");
}

#[test]
fn limits_stay_within_operator_ceilings() {
    let limits = |l: Value| {
        with(github(), "/rate_limit", json!(null))
            .as_object()
            .cloned()
            .map(|mut o| {
                o.insert("limits".into(), l);
                Value::Object(o)
            })
            .unwrap()
    };
    assert_invalid(limits(json!({"max_request_bytes": 1u64 << 40})), "limits.max_request_bytes", "ceiling");
    assert_invalid(limits(json!({"timeout_ms": 0})), "limits.timeout_ms", "greater than 0");
    assert_invalid(with(github(), "/rate_limit/max_calls", json!(0)), "rate_limit.max_calls", "between");

    let tight = CompileOptions {
        ceilings: Ceilings {
            defaults: EffectiveLimits { max_request_bytes: 1 << 20, max_response_bytes: 1 << 20, timeout_ms: 30_000 },
            limits: EffectiveLimits { max_request_bytes: 100, max_response_bytes: 1000, timeout_ms: 500 },
            ..Ceilings::default()
        },
        ..Default::default()
    };
    let compiled = permit(github()).compile(&tight).unwrap();
    let limits = compiled.integrations()[0].limits();
    assert_eq!(
        (limits.max_request_bytes, limits.max_response_bytes, limits.timeout_ms),
        (100, 1000, 500),
        "defaults are capped by ceilings"
    );
}

#[test]
fn reports_every_problem_at_once() {
    let bad = with(
        with(with(github(), "/name", json!("Bad")), "/base_url", json!("http://x.example")),
        "/rules/0/method",
        json!("NOPE"),
    );
    let found = issues(&permit(bad), &CompileOptions::default());
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn describes_each_rule_in_plain_language() {
    let summary = compile(&permit(github())).describe();
    let lines: Vec<&str> = summary.integrations[0].rules.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(
        lines,
        [
            "GET https://api.github.com/repos/o/r/issues — at most 30 calls per minute (bursts of up to 30, then 1 every 2 s); sends GITHUB_TOKEN as the Authorization header",
            "POST https://api.github.com/repos/o/r/issues — body: title (string, required), body (string); at most 30 calls per minute (bursts of up to 30, then 1 every 2 s); sends GITHUB_TOKEN as the Authorization header",
        ]
    );
    assert_eq!(summary.integrations[0].rules[1].risks, [Risk::WriteMethod, Risk::AnyQuery]);
    assert!(summary.integrations[0].risks.is_empty());
}

#[test]
fn flags_rate_limits_above_one_call_a_second_or_bursts_above_a_hundred() {
    let risks = |max_calls: u32, window_seconds: u32| {
        let spec = with(github(), "/rate_limit", json!({"max_calls": max_calls, "window_seconds": window_seconds}));
        compile(&permit(spec)).describe().integrations[0].risks.clone()
    };
    assert_eq!(risks(30, 60), []);
    assert_eq!(risks(60, 60), []);
    assert_eq!(risks(61, 60), [Risk::HighRateLimit]);
    assert_eq!(risks(5000, 3600), [Risk::HighRateLimit], "bursts of 5000");
    assert_eq!(risks(100, 86_400), []);
}

#[test]
fn flags_risky_rules() {
    let risky = json!({"name": "api", "base_url": "https://api.example.com",
        "rules": [{"method": "PUT", "path": "/files/**", "query": {"mode": {"values": ["a", "b"]}}, "body": true},
                  {"method": "GET", "path": "/search", "query": {}}],
        "inject": {"query": {"key": "{K}"}, "headers": {"Accept": "application/json"}}, "secrets": ["K"]});
    let summary = compile(&permit(risky)).describe();
    let integration = &summary.integrations[0];
    assert_eq!(integration.rules[0].risks, [Risk::WriteMethod, Risk::DoubleStar, Risk::UncheckedBody]);
    assert_eq!(integration.risks, [Risk::NoRateLimit]);
    assert!(integration.rules[0].text.contains("query: mode (a or b)"), "{}", integration.rules[0].text);
    assert!(integration.rules[1].text.contains("no query parameters"));
    assert!(integration.rules[1].text.contains("sends K as the key query parameter"));
    assert!(integration.rules[1].text.contains("sets the Accept header to \"application/json\""));
    let text = summary.to_string();
    assert!(text.contains("[! no rate limit]") && text.contains("[! '**' matches any sub-path]"), "{text}");
}

#[test]
fn wit_world_resolves_with_the_shared_types() {
    let two = PermitSpec::from_value(json!({"version": 1, "integrations": [
        github(),
        {"name": "list", "base_url": "https://lists.example.com", "rules": [{"method": "GET", "path": "/l/*"}]}
    ]}))
    .unwrap();
    let compiled = compile(&two);
    let wit = compiled.wit();
    // One document, nothing else: the shared packages are nested in it.
    let mut resolve = wit_parser::Resolve::new();
    let package = resolve.push_str("permit.wit", &wit).unwrap_or_else(|e| panic!("{e:?}\n{wit}"));
    let world = resolve.select_world(&[package], Some("permit")).unwrap();
    let mut imports: Vec<String> = resolve.worlds[world].imports.keys().map(|k| resolve.name_world_key(k)).collect();
    imports.sort();
    assert_eq!(
        imports,
        ["oauth3:permit/github", "oauth3:permit/list", "oauth3:scoped-fetch/types@0.1.0", "wasi:io/poll@0.2.0"],
        "{wit}"
    );
    for interface in ["github", "list"] {
        let id = resolve.packages[package].interfaces[interface];
        let functions: Vec<&String> = resolve.interfaces[id].functions.keys().collect();
        assert_eq!(functions, ["call", "fetch"]);
    }
    let exports: Vec<String> = resolve.worlds[world].exports.keys().map(|k| resolve.name_world_key(k)).collect();
    assert_eq!(exports, ["run"]);
    assert!(SCOPED_FETCH_WIT.starts_with("package oauth3:scoped-fetch@0.1.0;"));
    assert!(
        wit.contains("/// - POST https://api.github.com/repos/o/r/issues — body: title (string, required)"),
        "{wit}"
    );
    assert!(wit.contains("interface %list"), "keywords are escaped: {wit}");
    assert!(wit.contains(&compiled.spec_hash().to_string()));
}

#[test]
fn committed_json_schema_matches_the_types() {
    let generated = serde_json::to_string_pretty(&permit_json_schema()).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/spec.schema.json");
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "policy/spec.schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p oauth3-policy --test spec"
    );
}

#[test]
fn json_schema_and_parser_agree_on_examples() {
    let validator = jsonschema::validator_for(&permit_json_schema()).unwrap();
    let good = json!({"version": 1, "integrations": [github()]});
    assert!(validator.is_valid(&good));
    assert!(PermitSpec::from_value(good).is_ok());
    for bad in [
        json!({"version": 1, "integrations": [with(github(), "/rules/0", json!({"method": "GET", "path": "/x", "bodyy": {}}))]}),
        json!({"version": 2, "integrations": [github()]}),
        json!({"version": 1, "integrations": [with(github(), "/rate_limit", json!({"max_calls": 1}))]}),
        json!({"version": 1}),
    ] {
        assert!(!validator.is_valid(&bad), "schema accepts {bad}");
        assert!(PermitSpec::from_value(bad.clone()).is_err(), "parser accepts {bad}");
    }
}

#[test]
fn upstream_paths_join_the_base_path() {
    let spec = permit(json!({"name": "w", "base_url": "https://api.weather.example/v1/",
        "rules": [{"method": "GET", "path": "/"}, {"method": "GET", "path": "/forecast"}]}));
    let compiled = compile(&spec);
    let integration = compiled.integration("w").unwrap();
    assert_eq!(integration.base_url(), "https://api.weather.example/v1");
    assert_eq!(integration.upstream_path("/forecast"), "/v1/forecast");
    assert_eq!(integration.upstream_path("/"), "/v1");
    let bare = compile(&permit(github()));
    assert_eq!(bare.integration("github").unwrap().upstream_path("/"), "/");
}
