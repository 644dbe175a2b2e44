//! The `parse_and_decide` fuzz target: its input generators and invariants,
//! shared by the libFuzzer target (`fuzz/fuzz_targets/parse_and_decide.rs`,
//! nightly or `cargo fuzz run -s none` on stable) and the bounded harness CI
//! runs on stable (`tests/fuzz_replay.rs`), so both check the same things.
//!
//! Input: spec JSON text, a NUL byte, then bytes that `arbitrary` turns into
//! one request and one redirect hop. A spec that does not parse or compile
//! falls back to a fixed permit, so every input reaches `decide`.
//!
//! Checked on every input (a violation panics, which is what both harnesses
//! report):
//! - nothing panics, and errors, descriptions, WIT and hashes render;
//! - normalisation is idempotent and canonical JSON reads back to the same hash;
//! - `decide` is deterministic and every deny carries a message;
//! - an allowed request, and the request a followed redirect makes, is in
//!   the allowed rule's integration, method and glob, with its path in
//!   normal form (also once under the base path); sets no reserved header,
//!   none an upstream reads as an injected one, no routing query name and
//!   none an upstream reads as an injected one; carries no non-empty body
//!   when the rule names none, only strict JSON (sent as JSON, if labelled
//!   at all) when the rule has a schema, never a method override in the
//!   body, and nothing over `max_request_bytes`;
//! - a followed redirect has a redirect status and a path in normal form, and
//!   what it leads to is allowed.

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use oauth3_policy::{
    CompileOptions, CompiledIntegration, CompiledPermit, Decision, METHOD_OVERRIDE_NAMES, METHODS, OutboundRequest,
    PathGlob, PermitSpec, RESERVED_HEADER_PREFIXES, RESERVED_HEADERS, ROUTING_QUERY_NAMES, Redirect, Rule,
    is_json_media_type, is_method_override, is_reserved_header, is_routing_query_name, parse_strict_json, path,
    same_header,
};
use serde_json::Value;

/// The permit the property tests use; also what an unusable spec falls back to.
const FALLBACK: &str = include_str!("../fixtures/two_integrations.json");

static FALLBACK_PERMIT: LazyLock<CompiledPermit> =
    LazyLock::new(|| PermitSpec::from_json(FALLBACK).unwrap().compile(&CompileOptions::default()).unwrap());

/// Content types `decide` treats differently (JSON, form, multipart), and others.
const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/vnd.github+json",
    "APPLICATION/JSON",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b",
    "text/plain",
    "",
];

/// Text chosen from a list (so requests often reach the rules) or free.
#[derive(Debug, Arbitrary)]
enum Pick {
    Known(u8),
    Free(String),
}

/// A path: a rule's glob with `*`/`**` filled in by the given segments, or free text.
#[derive(Debug, Arbitrary)]
enum PathPick {
    FromRule(u8, Vec<String>),
    Free(String),
}

/// A header, query or body-key name: one a permit would allow (benign
/// headers, the rules' query parameters and schema properties) or one it
/// must refuse (reserved, injected, overrides), either respelled; or free text.
#[derive(Debug, Arbitrary)]
enum NamePick {
    Allowed(u8, Respell),
    Refused(u8, Respell),
    Free(String),
}

/// Respellings that upstreams read as the same name, so a check that
/// compares bytes (or only letter case) would miss them.
#[derive(Debug, Arbitrary)]
enum Respell {
    AsIs,
    Upper,
    Lower,
    /// `-` as `_`: CGI-style servers read `X_Forwarded_Host` as `X-Forwarded-Host`.
    Underscores,
    Dashes,
    /// `_` as `.`: PHP reads `api.key` as `api_key`.
    Dots,
}

/// A header value: a content type from [`CONTENT_TYPES`] or free text.
#[derive(Debug, Arbitrary)]
enum ValuePick {
    ContentType(u8),
    Free(String),
}

/// A body: none, raw bytes, or a JSON object, form or multipart body whose
/// names come from the rules' schemas and the method overrides.
#[derive(Debug, Arbitrary)]
enum BodyPick {
    None,
    Bytes(Vec<u8>),
    /// Written out by hand, so a key may repeat (strict JSON must refuse it).
    JsonObject(Vec<(NamePick, JsonPick)>),
    /// Every property the rules' schemas name, with a fitting value made
    /// from the next string, then the extra members: often valid.
    Conforming(Vec<String>, Vec<(NamePick, JsonPick)>),
    Form(Vec<(NamePick, String)>),
    Multipart(Vec<(NamePick, String)>),
}

/// A JSON value in a generated object, or raw text that may not be JSON.
#[derive(Debug, Arbitrary)]
enum JsonPick {
    /// A value of the `type` the rules' schemas give the key, so objects often validate.
    Fitting(String),
    Str(String),
    Int(i64),
    Bool(bool),
    Null,
    Strings(Vec<String>),
    Raw(String),
}

/// A redirect status: one `redirect` may follow, or any number.
#[derive(Debug, Arbitrary)]
enum StatusPick {
    Redirect(u8),
    Any(u16),
}

/// A `Location`: the integration's base URL, a path and a suffix (query,
/// fragment, junk), so hops often stay in scope; or free text.
#[derive(Debug, Arbitrary)]
enum LocationPick {
    UnderBase(PathPick, String),
    Free(String),
}

/// Where a request goes.
#[derive(Debug, Arbitrary)]
enum Target {
    /// A rule's integration and method, and its glob filled in by the given
    /// segments: such requests get past the path and method checks.
    Rule(u8, u8, Vec<String>),
    /// Each part chosen on its own.
    Parts { integration: Pick, method: Pick, path: PathPick },
}

/// One request and one redirect hop, before names are resolved against the permit.
#[derive(Debug, Arbitrary)]
struct Request {
    target: Target,
    query: Vec<(NamePick, Pick)>,
    headers: Vec<(NamePick, ValuePick)>,
    body: BodyPick,
    redirect_status: StatusPick,
    location: LocationPick,
}

/// Runs one fuzz input: spec bytes, NUL, request bytes. Panics when an
/// invariant in the module docs does not hold; returns quietly otherwise
/// (including for request bytes `arbitrary` cannot use).
pub fn run_one(data: &[u8]) {
    let (spec_bytes, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(request) = Request::arbitrary_take_rest(Unstructured::new(rest)) else { return };
    let text = String::from_utf8_lossy(spec_bytes);

    let compiled = match PermitSpec::from_json(&text) {
        Ok(spec) => {
            check_spec(&spec);
            match spec.compile(&CompileOptions::default()) {
                Ok(permit) => {
                    assert_eq!(*permit.spec_hash(), spec.spec_hash());
                    Some(permit)
                }
                Err(e) => {
                    let _ = e.to_string();
                    None
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
            None
        }
    };
    let permit = compiled.as_ref().unwrap_or(&FALLBACK_PERMIT);
    let _ = permit.describe().to_string();
    let wit = permit.wit();
    assert!(wit.contains("world permit {"));
    let _ = permit.spec_hash().to_string();
    check_request(permit, &request);
}

/// The normal form is idempotent and the canonical JSON reads back to the same hash.
fn check_spec(spec: &PermitSpec) {
    let normal = spec.normalized();
    assert_eq!(normal, normal.normalized(), "normalized() is not idempotent");
    let canonical = spec.canonical_json();
    let again = PermitSpec::from_json(&canonical).expect("canonical JSON reads back");
    assert_eq!(again.spec_hash(), spec.spec_hash(), "canonical JSON changes the hash: {canonical}");
}

/// Names worth trying, from the permit and the crate's own lists: for each
/// of headers, query parameters and JSON body keys, ones a rule may allow
/// and ones `decide` must refuse.
struct Names {
    headers: (Vec<String>, Vec<String>),
    query: (Vec<String>, Vec<String>),
    query_values: Vec<String>,
    body_keys: (Vec<String>, Vec<String>),
    /// The JSON `type` the rules' schemas give each property.
    body_types: Vec<(String, String)>,
}

impl Names {
    fn of(permit: &CompiledPermit) -> Names {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Near misses of reserved names are allowed: `x-forwarded` is not an `x-forwarded-` header.
        let mut headers = (
            strings(&["content-type", "accept", "user-agent", "x-request-id", "x-forwarded", "x-originally"]),
            strings(RESERVED_HEADERS),
        );
        headers.1.extend(RESERVED_HEADER_PREFIXES.iter().map(|p| format!("{p}host")));
        headers.1.extend(strings(METHOD_OVERRIDE_NAMES));
        let mut query = (strings(&["page"]), strings(ROUTING_QUERY_NAMES));
        query.1.extend(strings(METHOD_OVERRIDE_NAMES));
        let mut body_keys = (strings(&["title"]), strings(METHOD_OVERRIDE_NAMES));
        let (mut query_values, mut body_types) = (Vec::new(), Vec::new());
        for integration in permit.integrations() {
            headers.1.extend(integration.inject_headers().iter().map(|(n, _)| n.clone()));
            headers.1.extend(integration.inject_basic().map(|_| "Authorization".to_owned()));
            query.1.extend(integration.inject_query().iter().map(|(n, _)| n.clone()));
        }
        for rule in permit.spec().integrations.iter().flat_map(|i| &i.rules) {
            for (name, param) in rule.query.iter().flatten() {
                query.0.push(name.clone());
                query_values.extend(param.values.iter().flatten().cloned());
            }
            if let Some(Value::Object(schema)) = &rule.body
                && let Some(Value::Object(properties)) = schema.get("properties")
            {
                body_keys.0.extend(properties.keys().cloned());
                body_types.extend(
                    properties
                        .iter()
                        .filter_map(|(key, property)| Some((key.clone(), property.get("type")?.as_str()?.to_owned()))),
                );
            }
        }
        Names { headers, query, query_values, body_keys, body_types }
    }

    /// A JSON value of the type a schema gives `key` (a string if none), built from `text`.
    fn fitting(&self, key: &str, text: &str) -> Value {
        match self.body_types.iter().find(|(k, _)| k == key).map(|(_, t)| t.as_str()) {
            Some("array") => Value::from(vec![text]),
            Some("integer" | "number") => Value::from(text.len()),
            Some("boolean") => Value::from(text.is_empty()),
            Some("object") => Value::Object(Default::default()),
            Some("null") => Value::Null,
            _ => Value::from(text),
        }
    }
}

fn pick(list: &[String], p: &Pick) -> String {
    match p {
        Pick::Known(i) if !list.is_empty() => list[*i as usize % list.len()].clone(),
        Pick::Known(_) => String::new(),
        Pick::Free(s) => s.clone(),
    }
}

/// A name from `(allowed, refused)`, respelled, or free; lists must not be empty.
fn name((allowed, refused): &(Vec<String>, Vec<String>), p: &NamePick) -> String {
    let (name, respell) = match p {
        NamePick::Free(s) => return s.clone(),
        NamePick::Allowed(i, respell) => (&allowed[*i as usize % allowed.len()], respell),
        NamePick::Refused(i, respell) => (&refused[*i as usize % refused.len()], respell),
    };
    match respell {
        Respell::AsIs => name.clone(),
        Respell::Upper => name.to_ascii_uppercase(),
        Respell::Lower => name.to_ascii_lowercase(),
        Respell::Underscores => name.replace('-', "_"),
        Respell::Dashes => name.replace('_', "-"),
        Respell::Dots => name.replace(['_', '-'], "."),
    }
}

/// A request path: free text, or a rule's glob (of the named integration,
/// else the first) filled in.
fn path_of(permit: &CompiledPermit, integration: &str, p: &PathPick) -> String {
    let (i, fill) = match p {
        PathPick::Free(s) => return s.clone(),
        PathPick::FromRule(i, fill) => (i, fill),
    };
    let specs = &permit.spec().integrations;
    let rules = &specs.iter().find(|s| s.name == integration).unwrap_or(&specs[0]).rules;
    fill_glob(&rules[*i as usize % rules.len()].path, fill)
}

/// A glob with each `*` and `**` replaced by the next fill segment (`x` when they run out).
fn fill_glob(glob: &str, fill: &[String]) -> String {
    let mut fill = fill.iter();
    let mut out = String::new();
    for seg in glob.split('/').skip(1).filter(|s| !s.is_empty()) {
        let seg = if seg == "*" || seg == "**" { fill.next().map_or("x", String::as_str) } else { seg };
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() { "/".to_owned() } else { out }
}

fn body_of(names: &Names, b: &BodyPick) -> Option<Vec<u8>> {
    let key = |k: &NamePick| name(&names.body_keys, k);
    let quote = |s: &str| Value::from(s).to_string();
    let member = |(k, v): &(NamePick, JsonPick)| {
        let k = key(k);
        let value = match v {
            JsonPick::Fitting(s) => names.fitting(&k, s).to_string(),
            JsonPick::Str(s) => quote(s),
            JsonPick::Int(n) => n.to_string(),
            JsonPick::Bool(b) => b.to_string(),
            JsonPick::Null => "null".to_owned(),
            JsonPick::Strings(items) => Value::from(items.clone()).to_string(),
            JsonPick::Raw(raw) => raw.clone(),
        };
        format!("{}:{value}", quote(&k))
    };
    let text = match b {
        BodyPick::None => return None,
        BodyPick::Bytes(bytes) => return Some(bytes.clone()),
        BodyPick::JsonObject(members) => format!("{{{}}}", members.iter().map(member).collect::<Vec<_>>().join(",")),
        BodyPick::Conforming(texts, extra) => {
            let mut texts = texts.iter().map(String::as_str);
            let fitting = names.body_types.iter().map(|(k, _)| {
                let value = names.fitting(k, texts.next().unwrap_or_default());
                format!("{}:{value}", quote(k))
            });
            format!("{{{}}}", fitting.chain(extra.iter().map(member)).collect::<Vec<_>>().join(","))
        }
        BodyPick::Form(fields) => fields.iter().map(|(k, v)| format!("{}={v}", key(k))).collect::<Vec<_>>().join("&"),
        BodyPick::Multipart(parts) => {
            let mut out: String = parts
                .iter()
                .map(|(k, v)| format!("--b\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{v}\r\n", key(k)))
                .collect();
            out.push_str("--b--\r\n");
            out
        }
    };
    Some(text.into_bytes())
}

fn check_request(permit: &CompiledPermit, r: &Request) {
    let names = Names::of(permit);
    let (integration, method, path) = match &r.target {
        Target::Rule(i, j, fill) => {
            let specs = &permit.spec().integrations;
            let spec = &specs[*i as usize % specs.len()];
            let rule = &spec.rules[*j as usize % spec.rules.len()];
            (spec.name.clone(), rule.method.clone(), fill_glob(&rule.path, fill))
        }
        Target::Parts { integration, method, path } => {
            let integrations: Vec<String> = permit.integrations().iter().map(|i| i.name().to_owned()).collect();
            let methods: Vec<String> = METHODS.iter().map(|m| m.to_string()).collect();
            let integration = pick(&integrations, integration);
            let path = path_of(permit, &integration, path);
            (integration, pick(&methods, method), path)
        }
    };
    let query: Vec<(String, String)> =
        r.query.iter().map(|(n, v)| (name(&names.query, n), pick(&names.query_values, v))).collect();
    let headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|(n, v)| {
            let value = match v {
                ValuePick::ContentType(i) => CONTENT_TYPES[*i as usize % CONTENT_TYPES.len()].to_owned(),
                ValuePick::Free(s) => s.clone(),
            };
            (name(&names.headers, n), value)
        })
        .collect();
    let body = body_of(&names, &r.body);
    let request = OutboundRequest {
        integration: &integration,
        method: &method,
        path: &path,
        query: &query,
        headers: &headers,
        body: body.as_deref(),
    };

    let decision = permit.decide(&request);
    assert_eq!(decision, permit.decide(&request), "decide is not deterministic");
    match &decision {
        Decision::Allow(allow) => check_allowed(permit, &request, allow.integration, allow.rule),
        Decision::Deny(d) => assert!(!d.message.is_empty(), "a deny without a message"),
    }

    let status = match r.redirect_status {
        StatusPick::Redirect(i) => [301, 302, 303, 307, 308][i as usize % 5],
        StatusPick::Any(status) => status,
    };
    let location = match &r.location {
        LocationPick::Free(s) => s.clone(),
        LocationPick::UnderBase(p, suffix) => {
            let base = permit.integration(&integration).map_or_else(String::new, CompiledIntegration::base_url);
            format!("{base}{}{suffix}", path_of(permit, &integration, p))
        }
    };
    match permit.redirect(&request, status, &location) {
        Redirect::Follow { allow, method, path, query, keep_body } => {
            assert!(matches!(status, 301..=303 | 307 | 308), "followed status {status}");
            assert!(path::segments(&path).is_ok(), "followed redirect to a path not in normal form: {path:?}");
            let body = if keep_body { request.body } else { None };
            let next = OutboundRequest { method: &method, path: &path, query: &query, body, ..request };
            assert_eq!(permit.decide(&next), Decision::Allow(allow), "followed redirect is not allowed");
            check_allowed(permit, &next, allow.integration, allow.rule);
        }
        Redirect::Deny(d) => assert!(!d.message.is_empty()),
    }
}

/// The invariants of a request that `decide` allowed by `rules[rule]` of
/// `integrations[integration]`.
fn check_allowed(permit: &CompiledPermit, request: &OutboundRequest<'_>, integration: usize, rule: usize) {
    let compiled = &permit.integrations()[integration];
    let rule: &Rule = &permit.spec().integrations[integration].rules[rule];
    assert_eq!(compiled.name(), request.integration);
    assert_eq!(rule.method, request.method);
    let segments = path::segments(request.path).expect("allowed path is in normal form");
    assert!(PathGlob::parse(&rule.path).unwrap().matches(&segments), "allowed path does not match its rule");
    // What the rules match is what the upstream sees: the base path adds no ambiguity.
    let upstream = compiled.upstream_path(request.path);
    assert!(
        path::segments(&upstream).is_ok(),
        "allowed a request whose upstream path {upstream:?} is not in normal form"
    );

    for (name, _) in request.headers {
        assert!(!is_reserved_header(name), "allowed a reserved header {name:?}");
        assert!(
            !compiled.inject_headers().iter().any(|(n, _)| same_header(n, name)),
            "allowed injected header {name:?}"
        );
        assert!(
            compiled.inject_basic().is_none() || !same_header("Authorization", name),
            "allowed {name:?} beside injected HTTP Basic credentials"
        );
    }
    for (name, _) in request.query {
        assert!(!is_routing_query_name(name), "allowed routing query parameter {name:?}");
        assert!(
            !OVERRIDES.iter().chain(ROUTES).any(|o| same_query_name(o, name)),
            "allowed a query parameter an upstream routes on: {name:?}"
        );
        assert!(
            !compiled.inject_query().iter().any(|(n, _)| same_query_name(n, name)),
            "allowed injected query parameter {name:?}"
        );
    }

    assert!(request.body.is_none_or(|b| b.len() as u64 <= compiled.limits().max_request_bytes));
    // An empty body carries nothing: it counts as none.
    let body = request.body.filter(|b| !b.is_empty());
    match (&rule.body, body) {
        (None | Some(Value::Bool(false)), Some(b)) => {
            panic!("allowed a {}-byte body where the rule names none", b.len())
        }
        (Some(Value::Object(_)), None) => panic!("allowed no body where the rule has a schema"),
        (Some(Value::Object(_)), Some(b)) => {
            assert!(parse_strict_json(b).is_ok(), "allowed a body that is not strict JSON where the rule has a schema");
            for (name, value) in request.headers {
                assert!(
                    !name.eq_ignore_ascii_case("content-type") || is_json_media_type(value),
                    "allowed a schema-checked body sent as {value:?}"
                );
            }
        }
        _ => {}
    }
    if let Some(b) = body {
        check_no_method_override(b, request.headers);
    }
}

/// An allowed body sets no method override that an upstream framework would
/// read: a top-level JSON key (whatever the content type: Laravel reads
/// JSON regardless), or, as the body's Content-Type says, a form field or a
/// multipart part. Checked on the raw names, so only spellings that need no
/// decoding are covered (the `decide` tests cover `%5Fmethod` and friends).
fn check_no_method_override(body: &[u8], headers: &[(String, String)]) {
    if let Ok(Value::Object(map)) = parse_strict_json(body) {
        assert!(!map.keys().any(|k| is_method_override(k)), "allowed a JSON body with a method override");
    }
    // The Content-Type `decide` reads: the first, matched in any letter case.
    let content_type = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-type")).map(|(_, v)| v);
    let essence = content_type.map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let text = String::from_utf8_lossy(body);
    match essence.as_deref() {
        Some("application/x-www-form-urlencoded") => {
            let raw_names = text.split('&').map(|field| field.split('=').next().unwrap_or(""));
            for name in raw_names.filter(|n| !n.contains(['%', '+'])) {
                assert!(!is_method_override(name), "allowed a form body with the field {name:?}");
                assert!(!OVERRIDES.iter().any(|o| same_query_name(o, name)), "allowed the form field {name:?}");
            }
        }
        Some("multipart/form-data") => {
            for name in METHOD_OVERRIDE_NAMES {
                assert!(!text.contains(&format!("name=\"{name}\"")), "allowed a multipart body with the part {name:?}");
            }
        }
        _ => {}
    }
}

/// True when an upstream reads two parameter names as one: letter case
/// ignored (many frameworks), leading spaces dropped and `.`, ` `, `[` read
/// as `_` (PHP), and `-` as `_` (the header spelling). Written out here,
/// independently of the crate's copy.
fn same_query_name(a: &str, b: &str) -> bool {
    let fold = |name: &str| -> Vec<u8> {
        let name = name.trim_start_matches(' ');
        name.bytes()
            .map(|c| if matches!(c, b'.' | b' ' | b'[' | b'-') { b'_' } else { c.to_ascii_lowercase() })
            .collect()
    };
    fold(a) == fold(b)
}

/// Names an upstream reads as the method or the route, independently listed.
const OVERRIDES: &[&str] = &["_method", "_httpmethod", "x-http-method-override", "x-http-method", "x-method-override"];
const ROUTES: &[&str] = &["_url", "rest_route"];
