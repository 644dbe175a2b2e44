//! One definition per rule: each list security depends on lives once in
//! `oauth3-policy`, and is pinned here, so widening or narrowing one is a
//! conscious change (update the list, this test and the README together).

use oauth3_policy::{
    CompileOptions, DenyCode, IntegrationName, METHOD_OVERRIDE_NAMES, OutboundRequest, PermitSpec,
    RESERVED_HEADER_PREFIXES, RESERVED_HEADERS, RESERVED_INTEGRATION_NAMES, ROUTING_QUERY_NAMES, is_invisible,
    is_json_media_type, is_method_override, is_reserved_header, is_routing_query_name, same_header,
};

#[test]
fn the_reserved_header_names_are_pinned() {
    assert_eq!(
        RESERVED_HEADERS,
        [
            "host",
            "connection",
            "keep-alive",
            "transfer-encoding",
            "te",
            "trailer",
            "upgrade",
            "content-length",
            "content-encoding",
            "accept-encoding",
            "expect",
            "via",
            "max-forwards",
            "forwarded",
            "forwarded-for",
            "x-forwarded",
            "x-method-override",
            "x-host",
            "x-http-host-override",
            "x-scheme",
            "x-url-scheme",
            "front-end-https",
            "x-proxied-https",
            "x-replaced-path",
            "x-script-name",
            "script-name",
            "path-info",
            "x-sendfile-type",
            "remote-user",
            "x-remote-user",
            "x-webauth-user",
            "x-middleware-subrequest",
            "x-matched-path",
            "x-real-ip",
            "client-ip",
            "x-client-ip",
            "true-client-ip",
            "x-cluster-client-ip",
            "cf-connecting-ip",
            "cf-pseudo-ipv4",
            "fastly-client-ip",
            "x-appengine-user-ip",
            "x-0-client-ip",
            "x-proxyuser-ip",
            "x-originating-ip",
            "x-remote-ip",
            "x-remote-addr",
            "cluster-client-ip",
            "fly-client-ip",
            "do-connecting-ip",
            "cf-visitor",
        ]
    );
    assert_eq!(
        RESERVED_HEADER_PREFIXES,
        [
            "proxy-",
            "x-forwarded-",
            "x-original-",
            "x-rewrite-",
            "x-http-method",
            "x-envoy-",
            "x-accel-",
            "x-arr-",
            "x-auth-request-",
            "x-ms-client-principal",
            "x-goog-authenticated-user-",
            "x-invoke-",
        ]
    );
}

#[test]
fn reserved_headers_match_in_any_letter_case_and_with_underscores_for_hyphens() {
    for name in [
        "X-Original-URL",
        "x_original_url",
        "X-REWRITE-URL",
        "X-Forwarded-Prefix",
        "x_forwarded_proto",
        "X-HTTP-Method-Override",
        "X_HTTP_METHOD",
        "Forwarded",
        "X-Envoy-Original-Path",
        "X-ARR-SSL",
        "Proxy-Connection",
        "proxy_authorization",
        "True-Client-IP",
        "HOST",
        "Transfer_Encoding",
    ] {
        assert!(is_reserved_header(name), "{name} must be reserved");
    }
    for name in
        ["Accept", "Content-Type", "Authorization", "X-Request-Id", "X-Forwardedness", "X-Originally", "If-Match"]
    {
        assert!(!is_reserved_header(name), "{name} is the agent's to set");
    }
    assert!(same_header("X-Api-Key", "x_api_key"));
    assert!(!same_header("X-Api-Key", "X-Api-Keys"));
}

#[test]
fn the_method_override_and_routing_names_are_pinned() {
    assert_eq!(
        METHOD_OVERRIDE_NAMES,
        ["_method", "_httpmethod", "x-http-method-override", "x-http-method", "x-method-override"]
    );
    assert_eq!(ROUTING_QUERY_NAMES, ["_url", "rest_route"]);
    for name in ["_method", "_METHOD", "_HttpMethod", "X-HTTP-Method-Override", "x_http_method", "X-Method-Override"] {
        assert!(is_method_override(name), "{name}");
        assert!(is_routing_query_name(name), "{name}");
    }
    for name in ["_url", "REST_ROUTE"] {
        assert!(is_routing_query_name(name) && !is_method_override(name), "{name}");
    }
    for name in ["method", "http_method", "url", "route"] {
        assert!(!is_routing_query_name(name), "{name} is an ordinary parameter");
    }
}

#[test]
fn the_invisible_characters_are_pinned() {
    let invisible = [
        '\u{ad}',
        '\u{34f}',
        '\u{61c}',
        '\u{115f}',
        '\u{1160}',
        '\u{17b4}',
        '\u{17b5}',
        '\u{180b}',
        '\u{180e}',
        '\u{180f}',
        '\u{200b}',
        '\u{200c}',
        '\u{200d}',
        '\u{200e}',
        '\u{200f}',
        '\u{202a}',
        '\u{202e}',
        '\u{2060}',
        '\u{2064}',
        '\u{2066}',
        '\u{2069}',
        '\u{3164}',
        '\u{fe00}',
        '\u{fe0f}',
        '\u{feff}',
        '\u{ffa0}',
        '\u{fff9}',
        '\u{110bd}',
        '\u{1d173}',
        '\u{e0001}',
        '\u{e0020}',
        '\u{e0041}',
        '\u{e007f}',
        '\u{e0100}',
        '\u{e01ef}',
    ];
    for c in invisible {
        assert!(is_invisible(c), "U+{:04X} is invisible", c as u32);
    }
    for c in ['a', ' ', '\u{a0}', '/', '\u{301}', '\u{2028}', '\u{ff0f}', '\u{1f600}', '\u{e0080}'] {
        assert!(!is_invisible(c), "U+{:04X} is visible (or refused for another reason)", c as u32);
    }
}

#[test]
fn the_json_media_types_are_pinned() {
    for yes in [
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/vnd.github+json",
        " application/problem+json ",
    ] {
        assert!(is_json_media_type(yes), "{yes}");
    }
    for no in ["text/json+x", "text/plain", "application/jsonp", "application/json-patch", "json", "", "text/x+json"] {
        assert!(!is_json_media_type(no), "{no}");
    }
}

#[test]
fn the_integration_name_grammar_is_pinned() {
    for ok in ["github", "slack_chat", "a1", "x_y2", &"a".repeat(64)] {
        assert!(IntegrationName::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["", "x_2y", "GitHub", "git-hub", "_github", "github_", "a__b", "1github", "gh$", "ghé", &"a".repeat(65)]
    {
        assert!(IntegrationName::parse(bad).is_err(), "{bad:?} must be refused");
    }
    assert_eq!(RESERVED_INTEGRATION_NAMES.len(), 64);
    for reserved in ["console", "args", "fetch", "delete", "eval", "oauth3", "undefined"] {
        assert!(RESERVED_INTEGRATION_NAMES.contains(&reserved));
        assert!(IntegrationName::parse(reserved).unwrap_err().contains("reserved"), "{reserved}");
    }
}

#[test]
fn an_injected_header_cannot_be_set_under_an_underscored_spelling() {
    let permit = PermitSpec::from_json(
        r#"{"name": "api", "base_url": "https://api.example.com", "rules": [{"method": "GET", "path": "/x"}],
            "inject": {"headers": {"X-Api-Key": "{KEY}"}, "query": {"api_key": "{KEY}"}}, "secrets": ["KEY"]}"#,
    )
    .unwrap()
    .compile(&CompileOptions::default())
    .unwrap();
    let headers = [("X_API_KEY".to_owned(), "mine".to_owned())];
    let request = OutboundRequest::new("api", "GET", "/x").with_headers(&headers);
    assert_eq!(permit.decide(&request).deny_code(), Some(DenyCode::HeaderNotAllowed));
    for name in ["API_KEY", "api.key", "api key", "api[key", "api-key"] {
        let query = [(name.to_owned(), "mine".to_owned())];
        let request = OutboundRequest::new("api", "GET", "/x").with_query(&query);
        assert_eq!(permit.decide(&request).deny_code(), Some(DenyCode::QueryNotAllowed), "{name}");
    }
}
