//! Input: spec JSON text, a NUL byte, then bytes that `arbitrary` turns into
//! one request and one redirect hop. A spec that does not parse or compile
//! falls back to a fixed permit, so every input reaches `decide`.
//!
//! Checked on every input: nothing panics; `decide` is deterministic; an
//! allowed request is in normal form, uses the allowed rule's method and
//! path, and sets no injected or reserved name; a followed redirect is itself
//! allowed; the normal form and canonical JSON round-trip to the same hash.

#![no_main]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use oauth3_policy::{
    CompileOptions, CompiledPermit, Decision, METHODS, OutboundRequest, PathGlob, PermitSpec, Redirect,
    is_reserved_header, path,
};

/// The permit the property tests use.
const FALLBACK: &str = include_str!("../../tests/fixtures/two_integrations.json");

static FALLBACK_PERMIT: LazyLock<CompiledPermit> =
    LazyLock::new(|| PermitSpec::from_json(FALLBACK).unwrap().compile(&CompileOptions::default()).unwrap());

/// Text chosen from the permit (so requests often reach the rules) or free.
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

#[derive(Debug, Arbitrary)]
struct Request {
    integration: Pick,
    method: Pick,
    path: PathPick,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    redirect_status: u16,
    location: String,
}

fuzz_target!(|data: &[u8]| {
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
});

/// The normal form is idempotent and the canonical JSON reads back to the same hash.
fn check_spec(spec: &PermitSpec) {
    let normal = spec.normalized();
    assert_eq!(normal, normal.normalized(), "normalized() is not idempotent");
    let canonical = spec.canonical_json();
    let again = PermitSpec::from_json(&canonical).expect("canonical JSON reads back");
    assert_eq!(again.spec_hash(), spec.spec_hash(), "canonical JSON changes the hash: {canonical}");
}

fn check_request(permit: &CompiledPermit, r: &Request) {
    let integrations = permit.integrations();
    let integration = match &r.integration {
        Pick::Known(i) => integrations[*i as usize % integrations.len()].name().to_owned(),
        Pick::Free(s) => s.clone(),
    };
    let method = match &r.method {
        Pick::Known(i) => METHODS[*i as usize % METHODS.len()].to_owned(),
        Pick::Free(s) => s.clone(),
    };
    let path = match &r.path {
        PathPick::Free(s) => s.clone(),
        PathPick::FromRule(i, fill) => {
            let specs = &permit.spec().integrations;
            let rules = &specs.iter().find(|s| s.name == integration).unwrap_or(&specs[0]).rules;
            let glob = &rules[*i as usize % rules.len()].path;
            let mut fill = fill.iter();
            let mut out = String::new();
            for seg in glob.split('/').skip(1).filter(|s| !s.is_empty()) {
                let seg = if seg == "*" || seg == "**" { fill.next().map_or("x", String::as_str) } else { seg };
                out.push('/');
                out.push_str(seg);
            }
            if out.is_empty() { "/".to_owned() } else { out }
        }
    };
    let request = OutboundRequest {
        integration: &integration,
        method: &method,
        path: &path,
        query: &r.query,
        headers: &r.headers,
        body: r.body.as_deref(),
    };

    let decision = permit.decide(&request);
    assert_eq!(decision, permit.decide(&request), "decide is not deterministic");
    if let Decision::Allow(allow) = &decision {
        let compiled = &permit.integrations()[allow.integration];
        let rule = &permit.spec().integrations[allow.integration].rules[allow.rule];
        assert_eq!(compiled.name(), integration);
        assert_eq!(rule.method, method);
        let segments = path::segments(&path).expect("allowed path is in normal form");
        assert!(PathGlob::parse(&rule.path).unwrap().matches(&segments), "allowed path does not match its rule");
        for (name, _) in &r.headers {
            assert!(!is_reserved_header(name), "allowed a reserved header {name:?}");
            assert!(
                !compiled.inject_headers().iter().any(|(n, _)| n.eq_ignore_ascii_case(name)),
                "allowed injected header {name:?}"
            );
        }
        for (name, _) in &r.query {
            assert!(
                !compiled.inject_query().iter().any(|(n, _)| n.eq_ignore_ascii_case(name)),
                "allowed injected query {name:?}"
            );
        }
        assert!(r.body.as_ref().is_none_or(|b| b.len() as u64 <= compiled.limits().max_request_bytes));
    }

    match permit.redirect(&request, r.redirect_status, &r.location) {
        Redirect::Follow { allow, method, path, query, keep_body } => {
            assert!(matches!(r.redirect_status, 301..=303 | 307 | 308));
            assert!(path::segments(&path).is_ok(), "followed redirect to a path not in normal form: {path:?}");
            let body = if keep_body { request.body } else { None };
            let next = OutboundRequest { method: &method, path: &path, query: &query, body, ..request };
            assert_eq!(permit.decide(&next), Decision::Allow(allow), "followed redirect is not allowed");
        }
        Redirect::Deny(d) => assert!(!d.message.is_empty()),
    }
}
