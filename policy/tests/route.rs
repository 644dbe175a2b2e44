//! `CompiledPermit::route`: a whole URL to exactly one integration, or none.

use oauth3_policy::{CompileOptions, CompiledPermit, PermitSpec, Scheme};
use serde_json::json;

/// An integration allowing every GET under `base`.
fn integration(name: &str, base: &str) -> serde_json::Value {
    json!({"name": name, "base_url": base, "rules": [{"method": "GET", "path": "/**"}]})
}

fn permit() -> CompiledPermit {
    let spec = PermitSpec::from_value(json!({"version": 1, "integrations": [
        integration("github", "https://api.github.com"),
        integration("gitlab_v4", "https://gitlab.example.com/api/v4"),
        integration("gitlab_v4_admin", "https://gitlab.example.com/api/v4/admin"),
        integration("other_port", "https://api.github.com:8443/base"),
    ]}))
    .unwrap();
    spec.compile(&CompileOptions::default()).unwrap()
}

fn route<'p>(
    permit: &CompiledPermit,
    scheme: Scheme,
    host: &str,
    port: Option<u16>,
    path: &'p str,
) -> Option<(String, &'p str)> {
    permit.route(scheme, host, port, path).map(|(i, rest)| (i.name().to_owned(), rest))
}

#[test]
fn routes_by_exact_origin_and_returns_the_path_relative_to_the_base() {
    let p = permit();
    assert_eq!(route(&p, Scheme::Https, "api.github.com", None, "/repos/o/r"), Some(("github".into(), "/repos/o/r")));
    assert_eq!(route(&p, Scheme::Https, "API.GitHub.com", Some(443), "/"), Some(("github".into(), "/")));
    assert_eq!(route(&p, Scheme::Https, "api.github.com", Some(8443), "/base/x"), Some(("other_port".into(), "/x")));
    assert_eq!(route(&p, Scheme::Https, "api.github.com", Some(8443), "/base"), Some(("other_port".into(), "/")));
}

#[test]
fn the_longest_base_path_wins_at_segment_boundaries_only() {
    let p = permit();
    let host = "gitlab.example.com";
    assert_eq!(route(&p, Scheme::Https, host, None, "/api/v4/projects"), Some(("gitlab_v4".into(), "/projects")));
    assert_eq!(route(&p, Scheme::Https, host, None, "/api/v4/admin/users"), Some(("gitlab_v4_admin".into(), "/users")));
    assert_eq!(
        route(&p, Scheme::Https, host, None, "/api/v4/administrators"),
        Some(("gitlab_v4".into(), "/administrators"))
    );
    assert_eq!(route(&p, Scheme::Https, host, None, "/api/v40/x"), None);
    assert_eq!(route(&p, Scheme::Https, host, None, "/api"), None);
}

#[test]
fn another_scheme_port_or_host_matches_nothing() {
    let p = permit();
    assert_eq!(route(&p, Scheme::Http, "api.github.com", None, "/repos"), None);
    assert_eq!(route(&p, Scheme::Https, "api.github.com", Some(444), "/repos"), None);
    assert_eq!(route(&p, Scheme::Https, "api.github.com.evil.example", None, "/repos"), None);
    assert_eq!(route(&p, Scheme::Https, "github.com", None, "/repos"), None);
    assert_eq!(route(&p, Scheme::Https, "api.github.com", Some(8443), "/other"), None);
}

#[test]
fn integrations_sharing_the_longest_base_url_match_nothing() {
    let spec = PermitSpec::from_value(json!({"version": 1, "integrations": [
        integration("reader", "https://api.example.com/v1"),
        integration("writer", "https://api.example.com/v1/"),
        integration("admin", "https://api.example.com/v1/admin"),
        integration("root", "https://api.example.com"),
    ]}))
    .unwrap();
    let p = spec.compile(&CompileOptions::default()).unwrap();
    assert_eq!(route(&p, Scheme::Https, "api.example.com", None, "/v1/items"), None);
    assert_eq!(route(&p, Scheme::Https, "api.example.com", None, "/v1/admin/x"), Some(("admin".into(), "/x")));
    assert_eq!(route(&p, Scheme::Https, "api.example.com", None, "/v2"), Some(("root".into(), "/v2")));
}

#[test]
fn a_relative_path_with_dot_segments_is_still_refused_by_decide() {
    let p = permit();
    let (integration, rest) = p.route(Scheme::Https, "gitlab.example.com", None, "/api/v4/admin/../x").unwrap();
    let request = oauth3_policy::OutboundRequest::new(integration.name(), "GET", rest);
    assert!(!p.decide(&request).is_allow(), "{rest}");
}
