//! Property tests for the decision engine: `decide` is total, what it allows
//! is in normal form (checked against an independent definition), globs keep
//! their shape, injected credentials cannot be overridden, and `spec_hash`
//! does not depend on how the JSON was written.
//!
//! Run: `cargo test -p oauth3-policy --test properties`. More cases:
//! `PROPTEST_CASES=100000 cargo test --release -p oauth3-policy --test properties`.

use std::fmt::Write as _;
use std::sync::LazyLock;

use oauth3_policy::{
    CompileOptions, CompiledPermit, Decision, DenyCode, METHODS, OutboundRequest, PathGlob, PermitSpec, Redirect, path,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use serde_json::{Value, json};

/// A permit with `*`, `**`, literal and root rules, a query allow-list, a
/// body schema, an empty query allow-list, an injected `Authorization` header
/// and `api_key` query parameter, a base path prefix and a size limit.
/// Shared with the fuzz target.
const SPEC: &str = include_str!("fixtures/two_integrations.json");

static PERMIT: LazyLock<CompiledPermit> = LazyLock::new(|| {
    PermitSpec::from_json(SPEC).expect("fixture parses").compile(&CompileOptions::default()).expect("fixture compiles")
});

/// Cheap properties: many cases, and no regression files written into the tree.
fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, ..Config::default() }
}

// ---------------------------------------------------------------------------
// An independent definition of the normal form (not `oauth3_policy::path`).

/// Bytes written as themselves: unreserved and sub-delimiters except `;`.
fn is_raw(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b)
}

/// Look-alikes of `/` `\` `.` `%` and invisible characters that the
/// generators below produce and the crate documents as refused.
#[rustfmt::skip]
const LOOKALIKES: &[char] =
    &['\u{ff0f}', '\u{2215}', '\u{ff3c}', '\u{ff0e}', '\u{2024}', '\u{ff05}', '\u{200b}', '\u{202e}', '\u{feff}'];

fn normal_form_violation(path: &str) -> Option<String> {
    if path == "/" {
        return None;
    }
    let Some(rest) = path.strip_prefix('/') else { return Some("does not start with '/'".into()) };
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Some("empty segment".into());
        }
        if segment == "." || segment == ".." {
            return Some(format!("dot segment {segment:?}"));
        }
        let bytes = segment.as_bytes();
        let (mut decoded, mut escaped) = (Vec::new(), Vec::new());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = |b: u8| matches!(b, b'0'..=b'9' | b'A'..=b'F');
                if i + 2 >= bytes.len() || !hex(bytes[i + 1]) || !hex(bytes[i + 2]) {
                    return Some(format!("bad escape in {segment:?}"));
                }
                let d = u8::from_str_radix(&segment[i + 1..i + 3], 16).unwrap();
                decoded.push(d);
                escaped.push(d);
                i += 3;
            } else if is_raw(bytes[i]) {
                decoded.push(bytes[i]);
                i += 1;
            } else {
                return Some(format!("byte {:#04x} in {segment:?}", bytes[i]));
            }
        }
        let mut reencoded = String::new();
        for &b in &decoded {
            if is_raw(b) {
                reencoded.push(b as char);
            } else {
                let _ = write!(reencoded, "%{b:02X}");
            }
        }
        if reencoded != segment {
            return Some(format!("{segment:?} re-encodes as {reencoded:?}"));
        }
        let Ok(text) = std::str::from_utf8(&decoded) else { return Some(format!("{segment:?} is not UTF-8")) };
        if let Some(b) = escaped.iter().find(|b| b"/\\.%".contains(b)) {
            return Some(format!("{segment:?} encodes {:?}", *b as char));
        }
        if let Some(c) = text.chars().find(|c| c.is_control() || LOOKALIKES.contains(c)) {
            return Some(format!("{segment:?} decodes to {c:?}"));
        }
    }
    None
}

fn percent_encode(text: &str, upper: bool) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if is_raw(b) {
            out.push(b as char);
        } else if upper {
            let _ = write!(out, "%{b:02X}");
        } else {
            let _ = write!(out, "%{b:02x}");
        }
    }
    out
}

#[test]
fn the_independent_normal_form_agrees_on_examples() {
    for good in ["/", "/repos/o/r", "/a%20b/%C3%A9", "/~u/a:b@c/x.y", "/%3B"] {
        assert_eq!(normal_form_violation(good), None, "{good}");
    }
    for bad in [
        "",
        "a",
        "//",
        "/a/",
        "/a/../b",
        "/.",
        "/%2e",
        "/%2E",
        "/%41",
        "/%c3%a9",
        "/%C3",
        "/%2F",
        "/%25",
        "/a;b",
        "/é",
        "/%EF%BC%8F",
        "/%0A",
        "/%",
        "/%4",
    ] {
        assert!(normal_form_violation(bad).is_some(), "{bad}");
    }
}

#[test]
fn the_fixed_permit_allows_its_examples() {
    let q = [("q".to_owned(), "is:open".to_owned()), ("sort".to_owned(), "created".to_owned())];
    let ct = [("Content-Type".to_owned(), "application/json".to_owned())];
    let allowed = [
        OutboundRequest::new("github", "GET", "/repos/a/b/issues"),
        OutboundRequest::new("github", "GET", "/repos/o/r/contents/%C3%A9/x"),
        OutboundRequest::new("github", "GET", "/search/issues").with_query(&q),
        OutboundRequest::new("github", "POST", "/repos/o/r/issues").with_headers(&ct).with_body(br#"{"title":"t"}"#),
        OutboundRequest::new("github", "DELETE", "/repos/o/r/issues/1/labels/bug"),
        OutboundRequest::new("github", "GET", "/"),
        OutboundRequest::new("weather", "GET", "/"),
        OutboundRequest::new("weather", "PUT", "/stations/x"),
    ];
    for request in allowed {
        assert!(PERMIT.decide(&request).is_allow(), "{request:?}");
    }
}

// ---------------------------------------------------------------------------
// Generators.

#[rustfmt::skip]
const TRICKY_SEGMENTS: &[&str] = &[
    "repos", "o", "r", "issues", "contents", "search", "labels", "stations", "1", "..", ".", "...", "%2e", "%2E",
    "%2E%2E", "%2e%2e", ".%2E", "%252e", "%252E", "%25", "%2F", "%2f", "%5C", "%5c", "\\", "..\\..", ";x", "a;b=c",
    "?a=b", "#f", "", "%C3%A9", "%c3%a9", "%C3", "%A9", "%FF", "%C0%AF", "%E0%80%AE", "%EF%BC%8F", "%EF%BC%8E",
    "%E2%80%8B", "%E2%80%AE", "%EF%BB%BF", "%00", "%0A", "%7F", "%C2%85", "%41", "%7E", "%20", "%3B", "%3F", "%23",
    "%", "%4", "%G0", "é", "／", "．", "＼", "％", "∕", "\u{200b}", "\u{202e}", "\u{feff}", "a\u{0}b", "\t", "\r\n", " ",
    "a b", "*", "**", "~user", "a:b@c", "!$&'()*+,=", "@", "%40", "ｒｅｐｏｓ", "REPOS",
];

fn encoded_char() -> impl Strategy<Value = String> {
    (any::<char>(), any::<bool>()).prop_map(|(c, upper)| percent_encode(&c.to_string(), upper))
}

fn tricky_segment() -> BoxedStrategy<String> {
    prop_oneof![
        5 => select(TRICKY_SEGMENTS).prop_map(str::to_owned),
        3 => "[A-Za-z0-9._~!$&'()*+,=:@-]{1,8}",
        2 => encoded_char(),
        1 => (encoded_char(), "[a-z]{0,3}", encoded_char()).prop_map(|(a, b, c)| format!("{a}{b}{c}")),
        1 => "\\PC{1,4}",
        1 => "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}]{1,2}",
    ]
    .boxed()
}

/// Paths built from tricky segments and separators, or arbitrary text.
fn tricky_path() -> BoxedStrategy<String> {
    let separator = prop_oneof![8 => Just("/"), 1 => Just("//"), 1 => Just("\\"), 1 => Just("/./"), 1 => Just("%2F")];
    let prefix = prop_oneof![8 => Just(""), 1 => Just("/"), 1 => Just("\\"), 1 => Just("//")];
    let built = (prefix, vec((separator, tricky_segment()), 0..8), prop_oneof![6 => Just(""), 1 => Just("/")])
        .prop_map(|(prefix, parts, trailing)| {
            let mut out = prefix.to_owned();
            for (sep, segment) in parts {
                out.push_str(sep);
                out.push_str(&segment);
            }
            out.push_str(trailing);
            out
        });
    prop_oneof![8 => built, 1 => any::<String>(), 1 => ".{0,40}", 1 => Just("/".repeat(5000))].boxed()
}

/// Paths that are often, but not always, in normal form and allowed.
fn plausible_path() -> BoxedStrategy<String> {
    let segment = prop_oneof![
        6 => select(&["repos", "o", "r", "a", "b", "issues", "contents", "labels", "1", "bug", "stations", "x"][..])
            .prop_map(str::to_owned),
        2 => "[A-Za-z0-9._~!$&'()*+,=:@-]{1,6}",
        2 => encoded_char(),
        1 => tricky_segment(),
    ];
    prop_oneof![
        3 => vec(segment.clone(), 0..7).prop_map(|s| format!("/{}", s.join("/"))),
        2 => vec(segment, 0..4).prop_map(|s| format!("/repos/o/r/contents/{}", s.join("/"))),
        1 => tricky_path(),
    ]
    .boxed()
}

fn method() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(&METHODS[..]).prop_map(str::to_owned),
        1 => select(&["get", "Get", "post", " GET", "GET ", "CONNECT", "TRACE", "", "G\u{0}ET"][..]).prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
    .boxed()
}

fn integration() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(&["github", "weather"][..]).prop_map(str::to_owned),
        1 => select(&["GitHub", "github ", "", "git\u{0}hub", "ｇｉｔｈｕｂ"][..]).prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
    .boxed()
}

fn query() -> BoxedStrategy<Vec<(String, String)>> {
    let name = prop_oneof![
        4 => select(&["q", "sort", "page", "api_key", "API_KEY", "Api_Key", "", "q\u{0}"][..]).prop_map(str::to_owned),
        1 => ".{0,8}",
    ];
    let value = prop_oneof![
        4 => select(&["created", "updated", "Created", "is:open", "", "x&api_key=1"][..]).prop_map(str::to_owned),
        1 => ".{0,12}",
    ];
    vec((name, value), 0..4).boxed()
}

fn headers() -> BoxedStrategy<Vec<(String, String)>> {
    let name = prop_oneof![
        6 => select(&[
            "Accept", "Content-Type", "content-type", "User-Agent", "X-Custom", "Authorization", "AUTHORIZATION",
            "x-api-key", "Host", "Content-Length", "Transfer-Encoding", "Proxy-Authorization", "X-Forwarded-For",
            "X-HTTP-Method-Override", "Bad Name", "Bad:Name", "", "Authorization\u{0}", "Ａuthorization",
        ][..])
        .prop_map(str::to_owned),
        1 => "[!-~]{0,12}",
        1 => ".{0,8}",
    ];
    let value = prop_oneof![
        6 => select(&[
            "application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.github+json",
            "text/plain", "", "a\r\nX-Injected: 1", "\0", "\t ok", "Bearer x",
        ][..])
        .prop_map(str::to_owned),
        2 => ".{0,16}",
    ];
    vec((name, value), 0..4).boxed()
}

fn body() -> BoxedStrategy<Option<Vec<u8>>> {
    let bytes = prop_oneof![
        6 => select(&[
            r#"{"title":"t"}"#, r#"{"title":"t","labels":["a"]}"#, r#"{"title":1}"#, r#"{"title":"t","x":1}"#,
            r#"{"title":"a","title":"b"}"#, r#"{"title":"t"} trailing"#, r#"["title"]"#, "", "null", "{", "\u{feff}{}",
            r#"{"title":"\ud800"}"#, r#"{"title":"t","labels":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}"#,
        ][..])
        .prop_map(|s| s.as_bytes().to_vec()),
        2 => vec(any::<u8>(), 0..64),
        2 => ".{0,30}".prop_map(|t| format!(r#"{{"title":{}}}"#, serde_json::to_string(&t).unwrap()).into_bytes()),
        1 => (4090usize..4100).prop_map(|n| vec![b' '; n]),
    ];
    option::of(bytes).boxed()
}

fn location() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(&[
            "/repos/a/b/issues", "issues", "../issues", "../../../../etc/passwd", "/v2/stations/x", "/v2/",
            "/v2", "/v20/x", "https://api.github.com/repos/a/b/issues", "//api.github.com/repos/a/b/issues",
            "HTTPS://API.GITHUB.COM/repos/a/b/issues", "https://api.github.com:443/repos/o/r/contents/x",
            "https://api.github.com:8443/", "http://api.github.com/", "https://evil.example/",
            "//evil.example/repos/a/b/issues", "https://user:pw@api.github.com/", "https://api.github.com@evil.example/",
            "/repos/o/r/contents/%2e%2e/%2E%2E/x", "/repos/o/r/contents/a%2fb", "/repos/o/r/contents/é",
            "/repos/o/r/contents/%C3%A9?x=1#f", "/repos/o/r/contents/a/./b", "/search/issues?q=1&sort=created",
            "/search/issues?api_key=stolen", "/repos/o/r/contents/a\\b", "\\\\evil.example\\x", "/\t/x",
            "https://api.weather.example/v2/stations/x", "javascript:alert(1)", "", "?q=2", "#x",
        ][..])
        .prop_map(str::to_owned),
        2 => tricky_path(),
        1 => ".{0,30}",
    ]
    .boxed()
}

fn status() -> BoxedStrategy<u16> {
    prop_oneof![4 => select(&[301u16, 302, 303, 307, 308][..]), 1 => select(&[200u16, 300, 304, 305, 306, 309, 0][..]), 1 => any::<u16>()]
        .boxed()
}

/// Random letter case of an ASCII name.
fn any_case(name: &'static str) -> impl Strategy<Value = String> {
    vec(any::<bool>(), name.len()).prop_map(move |upper| {
        name.chars().zip(upper).map(|(c, u)| if u { c.to_ascii_uppercase() } else { c }).collect()
    })
}

// ---------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn decide_never_panics_on_arbitrary_input(
        integration in integration(),
        method in method(),
        path in prop_oneof![tricky_path(), plausible_path()],
        query in query(),
        headers in headers(),
        body in body(),
        status in status(),
        location in location(),
    ) {
        let request = OutboundRequest {
            integration: &integration, method: &method, path: &path, query: &query, headers: &headers, body: body.as_deref(),
        };
        let decision = PERMIT.decide(&request);
        prop_assert_eq!(&decision, &PERMIT.decide(&request), "decide is deterministic");
        if let Decision::Deny(deny) = &decision {
            prop_assert!(!deny.message.is_empty());
        }
        let _ = PERMIT.redirect(&request, status, &location);
    }

    #[test]
    fn any_path_decide_allows_is_already_in_normal_form(
        integration in prop_oneof![4 => Just("github".to_owned()), 4 => Just("weather".to_owned()), 1 => integration()],
        path in prop_oneof![3 => plausible_path(), 1 => tricky_path()],
    ) {
        let decision = PERMIT.decide(&OutboundRequest::new(&integration, "GET", &path));
        if decision.is_allow() {
            prop_assert_eq!(normal_form_violation(&path), None, "allowed {:?}", path);
        }
    }

    #[test]
    fn a_glob_without_double_star_never_matches_a_path_of_a_different_segment_count(
        glob in prop_oneof![
            4 => vec(select(&["*", "repos", "o", "r", "issues", "%C3%A9", "a:b"][..]), 0..6)
                .prop_map(|s| format!("/{}", s.join("/"))),
            1 => "/[a-z*/]{0,16}",
        ],
        path in prop_oneof![
            4 => vec(select(&["repos", "o", "r", "issues", "%C3%A9", "a:b", "*"][..]).prop_map(str::to_owned), 0..8),
            1 => vec("[A-Za-z0-9~-]{1,4}", 0..8),
        ].prop_map(|s| format!("/{}", s.join("/"))),
    ) {
        let segments = path::segments(&path).expect("generated paths are in normal form");
        if let Ok(glob) = PathGlob::parse(&glob) {
            let glob_len = if glob.to_string() == "/" { 0 } else { glob.to_string().matches('/').count() };
            if !glob.has_double_star() {
                if glob.matches(&segments) {
                    prop_assert_eq!(glob_len, segments.len(), "{} matched {:?}", glob, path);
                }
                // And the shape alone decides for all-`*` globs, so the property is not vacuous.
                if glob.to_string().split('/').skip(1).all(|s| s == "*") && glob_len == segments.len() {
                    prop_assert!(glob.matches(&segments), "{} should match {:?}", glob, path);
                }
            }
        }
    }

    #[test]
    fn allowed_requests_stay_allowed_when_agent_headers_are_removed(
        (integration, method, path, body) in prop_oneof![
            3 => select(&[
                ("github", "GET", "/repos/a/b/issues", None),
                ("github", "GET", "/search/issues", None),
                ("github", "POST", "/repos/o/r/issues", Some(r#"{"title":"t"}"#)),
                ("github", "DELETE", "/repos/o/r/issues/1/labels/bug", None),
                ("weather", "GET", "/forecast/today", None),
                ("weather", "PUT", "/stations/x", Some("any bytes")),
            ][..])
            .prop_map(|(i, m, p, b)| (i, m, p.to_owned(), b.map(|b| b.as_bytes().to_vec()))),
            1 => (select(&["github", "weather"][..]), select(&["GET", "POST", "PUT", "DELETE"][..]), plausible_path(), body()),
        ],
        query in prop_oneof![2 => Just(Vec::new()), 1 => query()],
        headers in prop_oneof![
            3 => vec(
                (
                    select(&["Accept", "Content-Type", "content-type", "User-Agent", "X-Custom", "If-None-Match"][..]),
                    select(&["application/json", "application/merge-patch+json", "text/plain", "*/*", "W/\"x\""][..]),
                ),
                0..4,
            )
            .prop_map(|h| h.into_iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect()),
            1 => headers(),
        ],
        keep in vec(any::<bool>(), 4),
    ) {
        let request = OutboundRequest {
            integration, method, path: &path, query: &query, headers: &headers, body: body.as_deref(),
        };
        if PERMIT.decide(&request).is_allow() {
            let fewer: Vec<(String, String)> =
                headers.iter().zip(&keep).filter(|(_, k)| **k).map(|(h, _)| h.clone()).collect();
            for headers in [&fewer[..], &[]] {
                let decision = PERMIT.decide(&OutboundRequest { headers, ..request });
                prop_assert!(decision.is_allow(), "{:?} with headers {:?}: {:?}", request, headers, decision);
            }
        }
    }

    #[test]
    fn a_followed_redirect_is_allowed_by_the_rules_and_in_normal_form(
        integration in select(&["github", "weather"][..]),
        method in select(&["GET", "HEAD", "POST", "PUT", "DELETE"][..]),
        path in plausible_path(),
        body in body(),
        status in status(),
        location in location(),
    ) {
        let from = OutboundRequest { integration, method, path: &path, query: &[], headers: &[], body: body.as_deref() };
        if let Redirect::Follow { allow, method, path, query, keep_body } = PERMIT.redirect(&from, status, &location) {
            prop_assert_eq!(normal_form_violation(&path), None, "followed {:?} to {:?}", location, path);
            prop_assert!(!query.iter().any(|(k, _)| k.eq_ignore_ascii_case("api_key")));
            let body = if keep_body { from.body } else { None };
            let next = OutboundRequest { method: &method, path: &path, query: &query, body, ..from };
            prop_assert_eq!(PERMIT.decide(&next), Decision::Allow(allow));
        }
    }

    #[test]
    fn no_injected_header_can_be_set_in_any_letter_case(
        (integration, name, path) in prop_oneof![
            any_case("authorization").prop_map(|n| ("github", n, "/repos/a/b/issues")),
            any_case("x-api-key").prop_map(|n| ("weather", n, "/stations/x")),
        ],
        value in ".{0,20}",
        others in vec((select(&["Accept", "User-Agent", "X-Custom"][..]), "[a-z/]{0,8}"), 0..3),
        position in any::<prop::sample::Index>(),
    ) {
        let mut headers: Vec<(String, String)> = others.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
        headers.insert(position.index(headers.len() + 1), (name, value));
        let request = OutboundRequest::new(integration, "GET", path).with_headers(&headers);
        prop_assert_eq!(PERMIT.decide(&request).deny_code(), Some(DenyCode::HeaderNotAllowed), "{:?}", headers);
    }

    #[test]
    fn no_injected_query_parameter_can_be_set_in_any_letter_case(
        name in any_case("api_key"),
        value in ".{0,20}",
        path in select(&["/repos/a/b/issues", "/search/issues", "/repos/o/r/contents/x", "/"][..]),
    ) {
        let query = [(name, value)];
        let request = OutboundRequest::new("github", "GET", path).with_query(&query);
        prop_assert_eq!(PERMIT.decide(&request).deny_code(), Some(DenyCode::QueryNotAllowed));
    }
}

// ---------------------------------------------------------------------------
// spec_hash does not depend on key order, whitespace or string escapes.

fn rule_value() -> impl Strategy<Value = Value> {
    let query_param = option::of(vec(select(&["a", "b", "é", "\"q\"", "1"][..]), 0..3));
    (
        select(&["GET", "get", " POST ", "DELETE", "PATCH"][..]),
        select(&["/repos/*/*/issues", "repos/o", "/**", "/", "/a%20b/%C3%A9", "/x/**/y"][..]),
        option::of(vec((select(&["q", "sort", "page", "ä"][..]), query_param), 0..3)),
        option::of(select(&[0usize, 1, 2][..])),
        option::of(".{0,20}"),
    )
        .prop_map(|(method, path, query, body, description)| {
            let mut rule = json!({"method": method, "path": path});
            if let Some(query) = query {
                let query: serde_json::Map<String, Value> = query
                    .into_iter()
                    .map(|(name, values)| (name.to_owned(), values.map_or(json!({}), |v| json!({"values": v}))))
                    .collect();
                rule["query"] = Value::Object(query);
            }
            if let Some(body) = body {
                rule["body"] = [
                    json!({"type": "object", "required": ["title"], "properties": {"title": {"type": "string", "minLength": 1}}}),
                    json!(true),
                    json!({"type": "array", "items": {"enum": [1, 2.5, -3, 1e3, null, "x"]}, "maxItems": 10}),
                ][body]
                    .clone();
            }
            if let Some(description) = description {
                rule["description"] = json!(description);
            }
            rule
        })
}

fn spec_value() -> impl Strategy<Value = Value> {
    let integration = (
        select(&["github", "weather", "slack_chat", " github "][..]),
        select(
            &[
                "https://api.github.com",
                "HTTPS://API.GitHub.com:443/",
                "https://example.com/v2/",
                "https://example.com:8443",
            ][..],
        ),
        vec(rule_value(), 1..4),
        option::of(vec(
            (select(&["Authorization", "X-Key", "accept"][..]), select(&["Bearer {T}", "{T}", "v {{x}}"][..])),
            1..3,
        )),
        option::of(vec((select(&["api_key", "k"][..]), select(&["{K}", "fixed"][..])), 1..3)),
        vec(select(&["T", "K", "A_B"][..]), 0..4),
        option::of((1u32..100, 1u32..4000)),
        option::of((option::of(1u64..1 << 40), option::of(1u64..1000))),
        vec(select(&["https://docs.github.com/rest", "https://example.com/a?b=c"][..]), 0..2),
    )
        .prop_map(|(name, base_url, rules, headers, query, secrets, rate, limits, docs)| {
            let mut i = json!({"name": name, "base_url": base_url, "rules": rules});
            let mut inject = serde_json::Map::new();
            if let Some(h) = headers {
                inject.insert(
                    "headers".into(),
                    Value::Object(h.into_iter().map(|(k, v)| (k.into(), json!(v))).collect()),
                );
            }
            if let Some(q) = query {
                inject
                    .insert("query".into(), Value::Object(q.into_iter().map(|(k, v)| (k.into(), json!(v))).collect()));
            }
            if !inject.is_empty() {
                i["inject"] = Value::Object(inject);
            }
            if !secrets.is_empty() {
                i["secrets"] = json!(secrets);
            }
            if let Some((max_calls, window_seconds)) = rate {
                i["rate_limit"] = json!({"max_calls": max_calls, "window_seconds": window_seconds});
            }
            if let Some((request, timeout)) = limits {
                let mut l = serde_json::Map::new();
                if let Some(r) = request {
                    l.insert("max_request_bytes".into(), json!(r));
                }
                if let Some(t) = timeout {
                    l.insert("timeout_ms".into(), json!(t));
                }
                i["limits"] = Value::Object(l);
            }
            if !docs.is_empty() {
                i["doc_urls"] = json!(docs);
            }
            i
        });
    vec(integration, 1..3).prop_map(|integrations| json!({"version": 1, "integrations": integrations}))
}

/// Serialises JSON with shuffled object keys, random whitespace between
/// tokens, and random (valid) string escapes.
struct Writer {
    state: u64,
    out: String,
}

impl Writer {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn space(&mut self) {
        let options = ["", "", " ", "\n", "\t", "\r\n  ", "    "];
        let pick = options[(self.next() % options.len() as u64) as usize];
        self.out.push_str(pick);
    }

    fn string(&mut self, text: &str) {
        self.out.push('"');
        for c in text.chars() {
            let escape = self.next().is_multiple_of(4);
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '/' if escape => self.out.push_str("\\/"),
                '\n' if escape => self.out.push_str("\\n"),
                c if (c as u32) < 0x20 || escape => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        if self.next().is_multiple_of(2) {
                            let _ = write!(self.out, "\\u{unit:04x}");
                        } else {
                            let _ = write!(self.out, "\\u{unit:04X}");
                        }
                    }
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    fn value(&mut self, value: &Value) {
        self.space();
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                for i in (1..entries.len()).rev() {
                    let j = (self.next() % (i as u64 + 1)) as usize;
                    entries.swap(i, j);
                }
                self.out.push('{');
                for (n, (key, item)) in entries.into_iter().enumerate() {
                    if n > 0 {
                        self.out.push(',');
                    }
                    self.space();
                    self.string(key);
                    self.space();
                    self.out.push(':');
                    self.value(item);
                }
                self.space();
                self.out.push('}');
            }
            Value::Array(items) => {
                self.out.push('[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        self.out.push(',');
                    }
                    self.value(item);
                }
                self.space();
                self.out.push(']');
            }
            Value::String(text) => self.string(text),
            other => self.out.push_str(&other.to_string()),
        }
        self.space();
    }
}

fn rewrite(value: &Value, seed: u64) -> String {
    let mut writer = Writer { state: seed | 1, out: String::new() };
    writer.value(value);
    writer.out
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn spec_hash_is_stable_across_key_order_whitespace_and_string_escapes(
        spec in spec_value(),
        seed_a in any::<u64>(),
        seed_b in any::<u64>(),
    ) {
        let compact = serde_json::to_string(&spec).unwrap();
        let pretty = serde_json::to_string_pretty(&spec).unwrap();
        let reference = PermitSpec::from_json(&compact).map_err(|e| TestCaseError::fail(format!("{e}: {compact}")))?;
        for text in [pretty, rewrite(&spec, seed_a), rewrite(&spec, seed_b)] {
            let other = PermitSpec::from_json(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
            prop_assert_eq!(other.canonical_json(), reference.canonical_json(), "{}", text);
            prop_assert_eq!(other.spec_hash(), reference.spec_hash());
        }
        // The canonical form is a fixed point.
        let again = PermitSpec::from_json(&reference.canonical_json()).unwrap();
        prop_assert_eq!(again.spec_hash(), reference.spec_hash());
    }
}

// ---------------------------------------------------------------------------
// Exhaustive: characters that look like, or normalise (NFKC) to, `/` `\` `.`
// `%`, and invisible format characters (Unicode category Cf), each percent-
// encoded as a whole segment. Lists computed with Python's `unicodedata`
// (Unicode 14): NFKC images containing `/`, `\` or `%`, or made only of dots.

#[rustfmt::skip]
const NFKC_LOOKALIKES: &[char] = &[
    '\u{2024}', '\u{2025}', '\u{2026}', '\u{2100}', '\u{2101}', '\u{2105}', '\u{2106}', '\u{fe19}', '\u{fe30}',
    '\u{fe52}', '\u{fe68}', '\u{fe6a}', '\u{ff05}', '\u{ff0e}', '\u{ff0f}', '\u{ff3c}',
];

#[rustfmt::skip]
const FORMAT_CHARACTERS: &[(u32, u32)] = &[
    (0xad, 0xad), (0x600, 0x605), (0x61c, 0x61c), (0x6dd, 0x6dd), (0x70f, 0x70f), (0x890, 0x891), (0x8e2, 0x8e2),
    (0x180e, 0x180e), (0x200b, 0x200f), (0x202a, 0x202e), (0x2060, 0x2064), (0x2066, 0x206f), (0xfeff, 0xfeff),
    (0xfff9, 0xfffb), (0x110bd, 0x110bd), (0x110cd, 0x110cd), (0x13430, 0x13438), (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a), (0xe0001, 0xe0001), (0xe0020, 0xe007f),
];

#[test]
fn no_lookalike_or_invisible_character_is_allowed_in_a_path() {
    let formats = FORMAT_CHARACTERS.iter().flat_map(|&(a, b)| (a..=b).filter_map(char::from_u32));
    let allowed: Vec<String> = NFKC_LOOKALIKES
        .iter()
        .copied()
        .chain(formats)
        .filter(|c| {
            let path = format!("/repos/o/r/contents/{}", percent_encode(&c.to_string(), true));
            PERMIT.decide(&OutboundRequest::new("github", "GET", &path)).is_allow()
        })
        .map(|c| format!("U+{:04X}", c as u32))
        .collect();
    assert!(allowed.is_empty(), "{} allowed as /repos/o/r/contents/<char>: {}", allowed.len(), allowed.join(" "));
}
