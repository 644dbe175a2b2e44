//! `decide` and `redirect`, one test per attack or allowed case, named as
//! sentences. Each hole of the earlier implementation is tried here and must fail.

use std::sync::LazyLock;

use oauth3_policy::{CompileOptions, CompiledPermit, Decision, DenyCode, OutboundRequest, PermitSpec, Redirect};

static PERMIT: LazyLock<CompiledPermit> = LazyLock::new(|| {
    PermitSpec::from_json(
        r#"{"version": 1, "integrations": [
        {
          "name": "github",
          "base_url": "https://api.github.com",
          "rules": [
            {"method": "GET", "path": "/repos/o/r/issues",
             "query": {"state": {"values": ["open", "closed"]}, "per_page": {}}},
            {"method": "GET", "path": "/repos/o/r/issues/*"},
            {"method": "POST", "path": "/repos/o/r/issues",
             "body": {"type": "object", "required": ["title"], "additionalProperties": false,
                      "properties": {"title": {"type": "string"}, "body": {"type": "string"}}}},
            {"method": "PATCH", "path": "/repos/o/r/issues/*", "body": true},
            {"method": "GET", "path": "/repos/o/r/contents/**"},
            {"method": "GET", "path": "/search/issues", "query": {}}
          ],
          "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
          "secrets": ["GITHUB_TOKEN"],
          "rate_limit": {"max_calls": 30, "window_seconds": 60},
          "limits": {"max_request_bytes": 1024}
        },
        {
          "name": "weather",
          "base_url": "https://api.weather.example/v1",
          "rules": [{"method": "GET", "path": "/forecast", "query": {"city": {}}}],
          "inject": {"query": {"api_key": "{WEATHER_KEY}"}},
          "secrets": ["WEATHER_KEY"]
        }
      ]}"#,
    )
    .unwrap()
    .compile(&CompileOptions::default())
    .unwrap()
});

/// A request under test, with owned parts.
#[derive(Clone)]
struct Req {
    integration: &'static str,
    method: &'static str,
    path: &'static str,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

fn github(method: &'static str, path: &'static str) -> Req {
    Req { integration: "github", method, path, query: vec![], headers: vec![], body: None }
}

impl Req {
    fn query(mut self, name: &str, value: &str) -> Req {
        self.query.push((name.into(), value.into()));
        self
    }
    fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn body(mut self, body: impl AsRef<[u8]>) -> Req {
        self.body = Some(body.as_ref().to_vec());
        self
    }
    fn on(mut self, integration: &'static str) -> Req {
        self.integration = integration;
        self
    }
    fn as_request(&self) -> OutboundRequest<'_> {
        OutboundRequest {
            integration: self.integration,
            method: self.method,
            path: self.path,
            query: &self.query,
            headers: &self.headers,
            body: self.body.as_deref(),
        }
    }
    fn decide(&self) -> Decision {
        PERMIT.decide(&self.as_request())
    }
}

fn assert_denied(req: Req, code: DenyCode) {
    match req.decide() {
        Decision::Deny(d) => {
            assert_eq!(d.code, code, "{} {}: {}", req.method, req.path, d.message);
            assert!(!d.message.is_empty());
        }
        Decision::Allow(a) => panic!("{} {} was allowed by rule {}; expected {code}", req.method, req.path, a.rule),
    }
}

fn assert_allowed(req: Req, rule: usize) {
    match req.decide() {
        Decision::Allow(a) => assert_eq!(a.rule, rule, "{} {}", req.method, req.path),
        Decision::Deny(d) => panic!("{} {} was denied: {d}", req.method, req.path),
    }
}

macro_rules! cases {
    ($check:ident: $($name:ident: $req:expr => $expect:expr;)*) => {
        $( #[test] fn $name() { $check($req, $expect) } )*
    };
}

cases! { assert_allowed:
    allows_listing_issues: github("GET", "/repos/o/r/issues") => 0;
    allows_listed_query_values: github("GET", "/repos/o/r/issues").query("state", "open").query("per_page", "5") => 0;
    allows_reading_one_issue: github("GET", "/repos/o/r/issues/42") => 1;
    allows_percent_encoded_utf8_in_a_star_segment: github("GET", "/repos/o/r/issues/%C3%A9t%C3%A9") => 1;
    allows_any_depth_under_double_star: github("GET", "/repos/o/r/contents/docs/a/b.md") => 4;
    allows_double_star_to_match_zero_segments: github("GET", "/repos/o/r/contents") => 4;
    allows_creating_an_issue_with_a_valid_body: github("POST", "/repos/o/r/issues").body(r#"{"title":"t","body":"b"}"#) => 2;
    allows_a_json_content_type_with_parameters:
        github("POST", "/repos/o/r/issues").header("content-type", "application/json; charset=utf-8").body(r#"{"title":"t"}"#) => 2;
    allows_agent_headers_that_are_not_injected: github("GET", "/repos/o/r/issues").header("Accept", "application/vnd.github+json") => 0;
    allows_any_body_where_the_rule_says_true: github("PATCH", "/repos/o/r/issues/1").body("anything") => 3;
    allows_no_body_where_the_rule_says_true: github("PATCH", "/repos/o/r/issues/1") => 3;
    allows_an_empty_body_where_the_rule_names_none: github("GET", "/repos/o/r/issues/1").body("") => 1;
    allows_query_parameters_the_weather_rule_lists: github("GET", "/forecast").on("weather").query("city", "Paris") => 0;
}

cases! { assert_denied:
    // unknown_integration
    denies_an_integration_not_in_the_permit: github("GET", "/x").on("gitlab") => DenyCode::UnknownIntegration;
    denies_an_integration_name_in_another_case: github("GET", "/repos/o/r/issues").on("GitHub") => DenyCode::UnknownIntegration;

    // method_not_allowed
    denies_lower_case_methods: github("get", "/repos/o/r/issues") => DenyCode::MethodNotAllowed;
    denies_mixed_case_methods: github("Post", "/repos/o/r/issues").body(r#"{"title":"t"}"#) => DenyCode::MethodNotAllowed;
    denies_a_method_no_rule_names_for_the_path: github("DELETE", "/repos/o/r/issues/1") => DenyCode::MethodNotAllowed;
    denies_methods_outside_the_known_set: github("TRACE", "/repos/o/r/issues") => DenyCode::MethodNotAllowed;
    denies_head_where_only_get_is_allowed: github("HEAD", "/repos/o/r/issues") => DenyCode::MethodNotAllowed;

    // path_not_allowed
    denies_paths_outside_every_rule: github("GET", "/user") => DenyCode::PathNotAllowed;
    denies_a_star_spanning_two_segments: github("GET", "/repos/o/r/issues/1/comments") => DenyCode::PathNotAllowed;
    denies_a_prefix_of_an_allowed_path: github("GET", "/repos/o/r") => DenyCode::PathNotAllowed;
    denies_literal_segments_in_another_case: github("GET", "/repos/o/r/Issues") => DenyCode::PathNotAllowed;
    denies_encoded_full_width_letters_that_normalise_to_a_literal:
        github("GET", "/repos/o/r/%EF%BD%89%EF%BD%93%EF%BD%93%EF%BD%95%EF%BD%85%EF%BD%93") => DenyCode::AmbiguousPath;
    denies_another_owner_behind_a_literal: github("GET", "/repos/x/r/issues") => DenyCode::PathNotAllowed;

    // ambiguous_path
    denies_a_trailing_dot_dot_segment: github("GET", "/repos/o/r/issues/..") => DenyCode::AmbiguousPath;
    denies_dot_dot_under_double_star: github("GET", "/repos/o/r/contents/../../../../user") => DenyCode::AmbiguousPath;
    denies_a_single_dot_segment: github("GET", "/repos/o/./r/issues") => DenyCode::AmbiguousPath;
    denies_lower_case_encoded_dot_dot: github("GET", "/repos/o/r/issues/%2e%2e") => DenyCode::AmbiguousPath;
    denies_upper_case_encoded_dot_dot: github("GET", "/repos/o/r/issues/%2E%2E") => DenyCode::AmbiguousPath;
    denies_an_encoded_dot_inside_a_segment: github("GET", "/repos/o/r/issues/1%2Ejson") => DenyCode::AmbiguousPath;
    denies_double_encoded_dot_dot: github("GET", "/repos/o/r/issues/%252e%252e") => DenyCode::AmbiguousPath;
    denies_double_encoding_of_anything: github("GET", "/repos/o/r/issues/%2541") => DenyCode::AmbiguousPath;
    denies_an_encoded_slash: github("GET", "/repos/o/r%2Fissues") => DenyCode::AmbiguousPath;
    denies_an_encoded_slash_in_a_star_segment: github("GET", "/repos/o/r/issues/1%2F..%2F..%2Fuser") => DenyCode::AmbiguousPath;
    denies_an_encoded_backslash: github("GET", "/repos/o/r/issues/%5C..") => DenyCode::AmbiguousPath;
    denies_a_raw_backslash: github("GET", "/repos/o/r/issues\\..\\..\\user") => DenyCode::AmbiguousPath;
    denies_empty_segments: github("GET", "/repos//o/r/issues") => DenyCode::AmbiguousPath;
    denies_a_trailing_slash: github("GET", "/repos/o/r/issues/") => DenyCode::AmbiguousPath;
    denies_a_protocol_relative_path: github("GET", "//evil.example/repos/o/r/issues") => DenyCode::AmbiguousPath;
    denies_an_absolute_url_as_path: github("GET", "https://evil.example/repos/o/r/issues") => DenyCode::AmbiguousPath;
    denies_a_path_without_a_leading_slash: github("GET", "repos/o/r/issues") => DenyCode::AmbiguousPath;
    denies_semicolon_path_parameters: github("GET", "/repos/o/r/issues;x=1") => DenyCode::AmbiguousPath;
    denies_dot_dot_semicolon_segments: github("GET", "/repos/o/r/issues/..;/..;/user") => DenyCode::AmbiguousPath;
    denies_a_query_smuggled_inside_the_path: github("GET", "/repos/o/r/issues?state=all") => DenyCode::AmbiguousPath;
    denies_a_fragment_inside_the_path: github("GET", "/repos/o/r/issues#x") => DenyCode::AmbiguousPath;
    denies_raw_control_characters: github("GET", "/repos/o/r/issues/1\r\nHost: evil") => DenyCode::AmbiguousPath;
    denies_encoded_control_characters: github("GET", "/repos/o/r/issues/1%0D%0AHost:evil") => DenyCode::AmbiguousPath;
    denies_an_encoded_nul: github("GET", "/repos/o/r/issues/1%00") => DenyCode::AmbiguousPath;
    denies_raw_full_width_letters: github("GET", "/repos/o/r/ｉｓｓｕｅｓ") => DenyCode::AmbiguousPath;
    denies_encoded_full_width_dots: github("GET", "/repos/o/r/issues/%EF%BC%8E%EF%BC%8E") => DenyCode::AmbiguousPath;
    denies_an_encoded_full_width_solidus: github("GET", "/repos/o/r/issues/..%EF%BC%8Fuser") => DenyCode::AmbiguousPath;
    denies_encoded_division_slash: github("GET", "/repos/o/r/issues/..%E2%88%95user") => DenyCode::AmbiguousPath;
    denies_characters_that_normalise_to_dot_dot: github("GET", "/repos/o/r/contents/%E2%80%A5") => DenyCode::AmbiguousPath;
    denies_characters_that_normalise_to_a_slash: github("GET", "/repos/o/r/contents/%E2%84%85") => DenyCode::AmbiguousPath;
    denies_bidi_isolates: github("GET", "/repos/o/r/contents/%E2%81%A6x") => DenyCode::AmbiguousPath;
    denies_encoded_invisible_characters: github("GET", "/repos/o/r/issues/%E2%80%8B1") => DenyCode::AmbiguousPath;
    denies_needlessly_encoded_letters: github("GET", "/repos/o/r/%69ssues") => DenyCode::AmbiguousPath;
    denies_lower_case_hex_escapes: github("GET", "/repos/o/r/issues/%c3%a9") => DenyCode::AmbiguousPath;
    denies_malformed_escapes: github("GET", "/repos/o/r/issues/%G1") => DenyCode::AmbiguousPath;
    denies_escapes_that_are_not_utf8: github("GET", "/repos/o/r/issues/%FF") => DenyCode::AmbiguousPath;
    denies_the_empty_path: github("GET", "") => DenyCode::AmbiguousPath;

    // query_not_allowed
    denies_a_query_parameter_outside_the_allow_list: github("GET", "/repos/o/r/issues").query("filter", "all") => DenyCode::QueryNotAllowed;
    denies_a_value_outside_the_allowed_values: github("GET", "/repos/o/r/issues").query("state", "all") => DenyCode::QueryNotAllowed;
    denies_a_query_name_in_another_case: github("GET", "/repos/o/r/issues").query("State", "open") => DenyCode::QueryNotAllowed;
    denies_a_second_value_outside_the_allowed_values:
        github("GET", "/repos/o/r/issues").query("state", "open").query("state", "all") => DenyCode::QueryNotAllowed;
    denies_any_query_where_the_rule_allows_none: github("GET", "/search/issues").query("q", "x") => DenyCode::QueryNotAllowed;
    denies_setting_an_injected_query_parameter: github("GET", "/forecast").on("weather").query("api_key", "mine") => DenyCode::QueryNotAllowed;
    denies_an_injected_query_parameter_in_another_case:
        github("GET", "/forecast").on("weather").query("API_KEY", "mine") => DenyCode::QueryNotAllowed;

    // body_invalid
    denies_a_string_body_against_an_object_schema: github("POST", "/repos/o/r/issues").body(r#""title""#) => DenyCode::BodyInvalid;
    denies_an_array_body_against_an_object_schema: github("POST", "/repos/o/r/issues").body(r#"["title"]"#) => DenyCode::BodyInvalid;
    denies_a_body_missing_a_required_key: github("POST", "/repos/o/r/issues").body(r#"{"body":"b"}"#) => DenyCode::BodyInvalid;
    denies_a_body_with_an_extra_key: github("POST", "/repos/o/r/issues").body(r#"{"title":"t","assignees":["x"]}"#) => DenyCode::BodyInvalid;
    denies_a_body_with_a_wrongly_typed_value: github("POST", "/repos/o/r/issues").body(r#"{"title":5}"#) => DenyCode::BodyInvalid;
    denies_duplicate_keys_that_could_smuggle_a_second_value:
        github("POST", "/repos/o/r/issues").body(r#"{"title":"t","title":{"x":1}}"#) => DenyCode::BodyInvalid;
    denies_a_json_body_on_a_get_whose_rule_names_no_body:
        github("GET", "/repos/o/r/issues").body(r#"{"assignees":["mallory"]}"#) => DenyCode::BodyInvalid;
    denies_any_body_on_a_rule_that_names_none: github("GET", "/repos/o/r/issues/1").body("x") => DenyCode::BodyInvalid;
    denies_a_body_on_a_json_content_type_where_the_rule_names_none:
        github("GET", "/repos/o/r/issues/1").header("Content-Type", "application/json").body("{}") => DenyCode::BodyInvalid;
    denies_a_missing_body_where_the_rule_has_a_schema: github("POST", "/repos/o/r/issues") => DenyCode::BodyInvalid;
    denies_a_form_encoded_body_where_the_rule_has_a_schema: github("POST", "/repos/o/r/issues").body("title=t") => DenyCode::BodyInvalid;
    denies_json_sent_as_another_content_type:
        github("POST", "/repos/o/r/issues").header("Content-Type", "text/plain").body(r#"{"title":"t"}"#) => DenyCode::BodyInvalid;
    denies_a_second_content_type_header:
        github("POST", "/repos/o/r/issues").header("Content-Type", "application/json").header("content-type", "application/x-www-form-urlencoded").body(r#"{"title":"t"}"#) => DenyCode::BodyInvalid;
    denies_trailing_data_after_the_json_body: github("POST", "/repos/o/r/issues").body(r#"{"title":"t"} {"title":"u"}"#) => DenyCode::BodyInvalid;

    // body_too_large
    denies_a_body_over_the_request_limit: github("POST", "/repos/o/r/issues").body(format!(r#"{{"title":"{}"}}"#, "x".repeat(2000))) => DenyCode::BodyTooLarge;
    denies_a_large_body_even_where_no_schema_applies: github("PATCH", "/repos/o/r/issues/1").body(vec![b'a'; 1025]) => DenyCode::BodyTooLarge;

    // header_not_allowed
    denies_overriding_the_injected_header: github("GET", "/repos/o/r/issues").header("Authorization", "Bearer mine") => DenyCode::HeaderNotAllowed;
    denies_a_lower_case_injected_header: github("GET", "/repos/o/r/issues").header("authorization", "Bearer mine") => DenyCode::HeaderNotAllowed;
    denies_an_upper_case_injected_header: github("GET", "/repos/o/r/issues").header("AUTHORIZATION", "Bearer mine") => DenyCode::HeaderNotAllowed;
    denies_a_host_header: github("GET", "/repos/o/r/issues").header("Host", "evil.example") => DenyCode::HeaderNotAllowed;
    denies_a_connection_header: github("GET", "/repos/o/r/issues").header("Connection", "close") => DenyCode::HeaderNotAllowed;
    denies_a_transfer_encoding_header: github("GET", "/repos/o/r/issues").header("transfer-encoding", "chunked") => DenyCode::HeaderNotAllowed;
    denies_a_content_length_header: github("GET", "/repos/o/r/issues").header("Content-Length", "0") => DenyCode::HeaderNotAllowed;
    denies_proxy_headers: github("GET", "/repos/o/r/issues").header("Proxy-Authorization", "Basic x") => DenyCode::HeaderNotAllowed;
    denies_a_method_override_header: github("GET", "/repos/o/r/issues").header("X-HTTP-Method-Override", "DELETE") => DenyCode::HeaderNotAllowed;
    denies_a_method_override_query_parameter_where_any_query_is_allowed:
        github("GET", "/repos/o/r/contents").query("_METHOD", "DELETE") => DenyCode::QueryNotAllowed;
    denies_forwarding_headers: github("GET", "/repos/o/r/issues").header("X-Forwarded-Host", "evil.example") => DenyCode::HeaderNotAllowed;
    denies_header_values_with_line_breaks: github("GET", "/repos/o/r/issues").header("Accept", "x\r\nAuthorization: Bearer mine") => DenyCode::HeaderNotAllowed;
    denies_header_names_that_are_not_tokens: github("GET", "/repos/o/r/issues").header("Authorization ", "x") => DenyCode::HeaderNotAllowed;
    denies_an_x_original_url_header: github("GET", "/repos/o/r/issues").header("X-Original-URL", "/user/emails") => DenyCode::HeaderNotAllowed;
    denies_an_x_rewrite_url_header: github("GET", "/repos/o/r/issues").header("X-Rewrite-URL", "/user/emails") => DenyCode::HeaderNotAllowed;
    denies_an_underscored_spelling_of_a_path_override: github("GET", "/repos/o/r/issues").header("X_Original_URL", "/user/emails") => DenyCode::HeaderNotAllowed;
    denies_an_underscored_forwarding_header: github("GET", "/repos/o/r/issues").header("X_Forwarded_Host", "evil.example") => DenyCode::HeaderNotAllowed;
    denies_a_forwarded_prefix_header: github("GET", "/repos/o/r/issues").header("X-Forwarded-Prefix", "/admin") => DenyCode::HeaderNotAllowed;
    denies_an_rfc_7239_forwarded_header: github("GET", "/repos/o/r/issues").header("Forwarded", "host=evil.example;proto=http") => DenyCode::HeaderNotAllowed;
    denies_an_x_http_method_header: github("GET", "/repos/o/r/issues").header("X-HTTP-Method", "DELETE") => DenyCode::HeaderNotAllowed;
    denies_an_envoy_original_path_header: github("GET", "/repos/o/r/issues").header("x-envoy-original-path", "/admin") => DenyCode::HeaderNotAllowed;
    denies_a_client_ip_override: github("GET", "/repos/o/r/issues").header("True-Client-IP", "10.0.0.1") => DenyCode::HeaderNotAllowed;
    denies_a_scheme_override: github("GET", "/repos/o/r/issues").header("X-Url-Scheme", "http") => DenyCode::HeaderNotAllowed;
    denies_a_routing_query_parameter_where_any_query_is_allowed:
        github("GET", "/repos/o/r/contents").query("rest_route", "/wp/v2/users") => DenyCode::QueryNotAllowed;
    denies_a_phalcon_url_query_parameter: github("GET", "/repos/o/r/contents").query("_url", "/admin") => DenyCode::QueryNotAllowed;
    denies_a_method_override_header_spelled_as_a_query_parameter:
        github("GET", "/repos/o/r/contents").query("X-HTTP-Method-Override", "DELETE") => DenyCode::QueryNotAllowed;
    denies_a_method_override_in_a_json_body: github("PATCH", "/repos/o/r/issues/1").body(r#"{"_method":"DELETE"}"#) => DenyCode::BodyInvalid;
    denies_a_method_override_in_a_form_body:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "application/x-www-form-urlencoded").body("a=1&_method=DELETE") => DenyCode::BodyInvalid;
    denies_a_method_override_in_a_multipart_body:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "multipart/form-data; boundary=b").body("--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--") => DenyCode::BodyInvalid;
}

cases! { assert_denied:
    denies_a_php_spelling_of_method_with_a_dot: github("GET", "/repos/o/r/contents").query(".method", "DELETE") => DenyCode::QueryNotAllowed;
    denies_a_php_spelling_of_method_with_a_leading_space: github("GET", "/repos/o/r/contents").query(" _method", "DELETE") => DenyCode::QueryNotAllowed;
    denies_a_php_spelling_of_method_with_a_bracket: github("GET", "/repos/o/r/contents").query("[method", "DELETE") => DenyCode::QueryNotAllowed;
    denies_a_php_spelling_of_rest_route: github("GET", "/repos/o/r/contents").query("rest.route", "/wp/v2/users") => DenyCode::QueryNotAllowed;
    denies_a_percent_encoded_dot_method_in_a_form_body:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "application/x-www-form-urlencoded").body("%2Emethod=DELETE") => DenyCode::BodyInvalid;
    denies_a_plus_space_method_in_a_form_body:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "application/x-www-form-urlencoded").body("+_method=DELETE") => DenyCode::BodyInvalid;
    denies_an_unquoted_dotted_multipart_part:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "multipart/form-data; boundary=b").body("--b\r\nContent-Disposition: form-data; name=.method\r\n\r\nDELETE\r\n--b--") => DenyCode::BodyInvalid;
    denies_a_method_override_cut_at_a_nul: github("GET", "/repos/o/r/contents").query("_method\0", "DELETE") => DenyCode::QueryNotAllowed;
    denies_a_method_override_as_a_php_array: github("GET", "/repos/o/r/contents").query("_method[]", "DELETE") => DenyCode::QueryNotAllowed;
    denies_a_nul_cut_method_in_a_form_body:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "application/x-www-form-urlencoded").body("_method%00=DELETE") => DenyCode::BodyInvalid;
    denies_a_duplicated_method_override_key_in_json:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "application/json").body(r#"{"_method":"DELETE","_method":"DELETE"}"#) => DenyCode::BodyInvalid;
    denies_a_method_override_beside_an_out_of_range_number:
        github("PATCH", "/repos/o/r/issues/1").body(r#"{"_method":"DELETE","x":1e400}"#) => DenyCode::BodyInvalid;
    denies_an_rfc_2231_multipart_name:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "multipart/form-data; boundary=b").body("--b\r\nContent-Disposition: form-data; name*=UTF-8''_method\r\n\r\nDELETE\r\n--b--") => DenyCode::BodyInvalid;
    denies_a_multipart_name_split_over_continuations:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "multipart/form-data; boundary=b").body("--b\r\nContent-Disposition: form-data; name*0=_met; name*1=hod\r\n\r\nDELETE\r\n--b--") => DenyCode::BodyInvalid;
    denies_a_multipart_name_with_spaces_around_the_equals_sign:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "multipart/form-data; boundary=b").body("--b\r\nContent-Disposition: form-data; name = \"_\\method\"\r\n\r\nDELETE\r\n--b--") => DenyCode::BodyInvalid;
    denies_a_lighttpd_spelling_of_a_forwarding_header: github("GET", "/repos/o/r/issues").header("X.Forwarded.For", "127.0.0.1") => DenyCode::HeaderNotAllowed;
    denies_the_nextjs_middleware_bypass_header: github("GET", "/repos/o/r/issues").header("x-middleware-subrequest", "middleware") => DenyCode::HeaderNotAllowed;
    denies_a_body_sent_with_two_content_types:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "application/json").header("content_type", "application/x-www-form-urlencoded").body("_method=DELETE") => DenyCode::BodyInvalid;
}

cases! { assert_allowed:
    allows_a_form_body_without_an_override_where_any_body_is_allowed:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "application/x-www-form-urlencoded").body("state=closed&method=x") => 3;
    allows_headers_that_merely_resemble_reserved_ones: github("GET", "/repos/o/r/issues").header("X-Forwardedness", "x").header("X-Originally", "y") => 0;
    allows_a_multipart_file_whose_filename_mentions_method:
        github("PATCH", "/repos/o/r/issues/1").header("Content-Type", "multipart/form-data; boundary=b").body("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"_method\"\r\n\r\nx\r\n--b--") => 3;
}

#[test]
fn denials_in_every_letter_case_of_the_injected_header_name() {
    for name in ["authorization", "AUTHORIZATION", "Authorization", "aUtHoRiZaTiOn", "AuThOrIzAtIoN"] {
        assert_denied(github("GET", "/repos/o/r/issues").header(name, "x"), DenyCode::HeaderNotAllowed);
    }
}

#[test]
fn body_errors_name_the_schema_location() {
    let Decision::Deny(d) = github("POST", "/repos/o/r/issues").body(r#"{"title":5}"#).decide() else { panic!() };
    assert!(d.message.starts_with("body/title:"), "{}", d.message);
}

#[test]
fn deny_messages_quote_agent_text_escaped_and_clipped() {
    let long = Box::leak(format!("/{}\n", "a".repeat(500)).into_boxed_str());
    let Decision::Deny(d) = github("GET", long).decide() else { panic!() };
    assert!(!d.message.contains('\n') && d.message.len() < 300, "{}", d.message);
}

fn redirect(req: Req, status: u16, location: &str) -> Redirect {
    PERMIT.redirect(&req.as_request(), status, location)
}

fn assert_redirect_denied(req: Req, status: u16, location: &str) {
    match redirect(req, status, location) {
        Redirect::Deny(d) => {
            assert_eq!(d.code, DenyCode::RedirectNotAllowed);
            assert!(!d.message.contains("evil"), "messages do not echo the location: {}", d.message);
        }
        follow => panic!("{location} was followed: {follow:?}"),
    }
}

#[test]
fn follows_a_same_origin_redirect_the_rules_allow() {
    let Redirect::Follow { method, path, keep_body, .. } =
        redirect(github("GET", "/repos/o/r/issues/1"), 301, "/repos/o/r/issues/2")
    else {
        panic!()
    };
    assert_eq!((method.as_str(), path.as_str(), keep_body), ("GET", "/repos/o/r/issues/2", false));
}

#[test]
fn a_307_keeps_method_and_body_and_checks_the_body_again() {
    let post = github("POST", "/repos/o/r/issues").body(r#"{"title":"t"}"#);
    let Redirect::Follow { method, keep_body, .. } =
        redirect(post.clone(), 307, "https://api.github.com/repos/o/r/issues")
    else {
        panic!()
    };
    assert_eq!((method.as_str(), keep_body), ("POST", true));
    assert_redirect_denied(post, 307, "/repos/o/r/issues/1");
}

#[test]
fn a_303_after_post_becomes_a_get_without_body() {
    let post = github("POST", "/repos/o/r/issues").body(r#"{"title":"t"}"#);
    let Redirect::Follow { method, keep_body, .. } = redirect(post, 303, "/repos/o/r/issues/7") else { panic!() };
    assert_eq!((method.as_str(), keep_body), ("GET", false));
}

#[test]
fn denies_redirects_to_another_host() {
    assert_redirect_denied(github("GET", "/repos/o/r/issues"), 302, "https://evil.example/repos/o/r/issues");
}

#[test]
fn denies_protocol_relative_redirects_to_another_host() {
    assert_redirect_denied(github("GET", "/repos/o/r/issues"), 302, "//evil.example/repos/o/r/issues");
}

#[test]
fn denies_redirects_that_downgrade_to_http() {
    assert_redirect_denied(github("GET", "/repos/o/r/issues"), 301, "http://api.github.com/repos/o/r/issues");
}

#[test]
fn denies_redirects_to_another_port() {
    assert_redirect_denied(github("GET", "/repos/o/r/issues"), 301, "https://api.github.com:8443/repos/o/r/issues");
}

#[test]
fn denies_redirects_with_user_info() {
    assert_redirect_denied(github("GET", "/repos/o/r/issues"), 301, "https://evil@api.github.com/repos/o/r/issues");
}

#[test]
fn denies_redirects_to_paths_no_rule_allows() {
    assert_redirect_denied(github("GET", "/repos/o/r/issues"), 302, "/user");
    assert_redirect_denied(github("GET", "/repos/o/r/contents/a"), 302, "../../../../user");
}

#[test]
fn denies_redirects_outside_the_base_path() {
    let weather = github("GET", "/forecast").on("weather").query("city", "x");
    assert_redirect_denied(weather.clone(), 302, "/v2/forecast?city=x");
    assert_redirect_denied(weather.clone(), 302, "/v1x/forecast");
    let Redirect::Follow { path, query, .. } = redirect(weather, 302, "/v1/forecast?city=y") else { panic!() };
    assert_eq!((path.as_str(), query), ("/forecast", vec![("city".to_owned(), "y".to_owned())]));
}

#[test]
fn denies_redirects_that_carry_an_injected_query_parameter() {
    assert_redirect_denied(github("GET", "/forecast").on("weather"), 302, "/v1/forecast?api_key=echoed");
}

#[test]
fn denies_redirects_with_query_values_the_rule_does_not_allow() {
    assert_redirect_denied(github("GET", "/repos/o/r/issues"), 302, "/repos/o/r/issues?state=all");
}

#[test]
fn denies_following_a_status_that_is_not_a_redirect() {
    assert_redirect_denied(github("GET", "/repos/o/r/issues"), 200, "/repos/o/r/issues");
    assert_redirect_denied(github("GET", "/repos/o/r/issues"), 304, "/repos/o/r/issues");
}

#[test]
fn a_star_inside_a_segment_allows_only_that_shape_of_one_segment() {
    let permit = PermitSpec::from_json(
        r#"{"version": 1, "integrations": [{"name": "twilio", "base_url": "https://api.twilio.com/2010-04-01",
            "rules": [{"method": "GET", "path": "/Accounts/*/Calls/*.json"}]}]}"#,
    )
    .unwrap()
    .compile(&CompileOptions::default())
    .unwrap();
    let decide = |path: &str| permit.decide(&OutboundRequest::new("twilio", "GET", path));
    assert!(matches!(decide("/Accounts/AC1/Calls/CA1.json"), Decision::Allow(_)));
    // Paths in normal form that the glob itself refuses.
    for path in [
        "/Accounts/AC1/Calls/.json",
        "/Accounts/AC1/Calls/CA1.json/Recordings.json",
        "/Accounts/AC1/Calls/CA1.xml",
        "/Accounts/AC1/Calls/CA1.JSON",
        "/Accounts/AC1/Calls.json",
    ] {
        assert_eq!(decide(path).deny_code(), Some(DenyCode::PathNotAllowed), "{path}");
    }
    // Spellings that would put a `/` or `..` inside the star never reach it.
    for path in ["/Accounts/AC1/Calls/CA1%2Fx.json", "/Accounts/AC1/Calls/..%2F.json"] {
        assert!(!matches!(decide(path), Decision::Allow(_)), "{path}");
    }
}
