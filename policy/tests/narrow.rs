//! Narrowing: an owner takes rules away or lowers a rate limit, and the
//! result never allows what the original did not.

use std::collections::{BTreeMap, BTreeSet};

use oauth3_policy::{CompileOptions, CompiledPermit, Narrowing, OutboundRequest, PermitSpec, PolicyError, RateLimit};
use proptest::prelude::*;
use proptest::test_runner::Config;

const SPEC: &str = include_str!("fixtures/two_integrations.json");

fn spec() -> PermitSpec {
    PermitSpec::from_json(SPEC).unwrap()
}

fn compile(spec: &PermitSpec) -> CompiledPermit {
    spec.compile(&CompileOptions::default()).unwrap()
}

fn dropping(rules: &[(&str, usize)]) -> Narrowing {
    Narrowing { drop_rules: rules.iter().map(|(n, i)| (n.to_string(), *i)).collect(), ..Narrowing::default() }
}

fn limit(max_calls: u32, window_seconds: u32) -> RateLimit {
    RateLimit { max_calls, window_seconds }
}

fn messages(error: PolicyError) -> String {
    error.to_string()
}

/// Requests covering every rule of the fixture, and some no rule allows.
fn probes(query: &[(String, String)]) -> Vec<OutboundRequest<'_>> {
    vec![
        OutboundRequest::new("github", "GET", "/repos/a/b/issues"),
        OutboundRequest::new("github", "GET", "/repos/o/r/contents/x/y"),
        OutboundRequest::new("github", "GET", "/search/issues").with_query(query),
        OutboundRequest::new("github", "POST", "/repos/o/r/issues").with_body(br#"{"title":"t"}"#),
        OutboundRequest::new("github", "DELETE", "/repos/o/r/issues/1/labels/bug"),
        OutboundRequest::new("github", "GET", "/"),
        OutboundRequest::new("github", "GET", "/user"),
        OutboundRequest::new("weather", "GET", "/forecast/today"),
        OutboundRequest::new("weather", "PUT", "/stations/7").with_body(b"{}"),
        OutboundRequest::new("weather", "DELETE", "/stations/7"),
    ]
}

#[test]
fn an_empty_narrowing_keeps_the_spec_and_its_hash() {
    let narrowed = spec().narrow(&Narrowing::default()).unwrap();
    assert_eq!(narrowed, spec());
    assert_eq!(compile(&narrowed).spec_hash(), compile(&spec()).spec_hash());
}

#[test]
fn a_dropped_rule_is_denied_and_the_others_still_allowed() {
    let narrowed = compile(&spec().narrow(&dropping(&[("github", 3)])).unwrap());
    let post = OutboundRequest::new("github", "POST", "/repos/o/r/issues").with_body(br#"{"title":"t"}"#);
    assert!(compile(&spec()).decide(&post).is_allow());
    assert!(!narrowed.decide(&post).is_allow(), "the unticked rule");
    assert!(narrowed.decide(&OutboundRequest::new("github", "GET", "/repos/a/b/issues")).is_allow());
    assert_ne!(narrowed.spec_hash(), compile(&spec()).spec_hash(), "a narrower spec has a hash of its own");
}

#[test]
fn an_integration_left_without_rules_is_dropped_with_its_secrets() {
    let narrowed = spec().narrow(&dropping(&[("weather", 0), ("weather", 1)])).unwrap();
    assert_eq!(narrowed.integrations.len(), 1);
    assert!(!narrowed.integrations.iter().flat_map(|i| &i.secrets).any(|s| s == "WEATHER_KEY"));
    let narrowed = compile(&narrowed);
    assert!(!narrowed.decide(&OutboundRequest::new("weather", "GET", "/forecast/today")).is_allow());
}

#[test]
fn dropping_every_rule_is_refused() {
    let all: Vec<(&str, usize)> = (0..6).map(|i| ("github", i)).chain([("weather", 0), ("weather", 1)]).collect();
    let error = messages(spec().narrow(&dropping(&all)).unwrap_err());
    assert!(error.contains("deny the request instead"), "{error}");
}

#[test]
fn choices_naming_nothing_in_the_spec_are_refused() {
    let error = messages(spec().narrow(&dropping(&[("github", 6), ("gitlab", 0)])).unwrap_err());
    assert!(error.contains("\"github\" has no rule 6") && error.contains("no integration \"gitlab\""), "{error}");
    let unknown = Narrowing { rate_limits: BTreeMap::from([("gitlab".into(), limit(1, 60))]), ..Narrowing::default() };
    assert!(spec().narrow(&unknown).is_err());
}

#[test]
fn a_rate_limit_must_be_stricter_than_the_specs() {
    let with_limit = |max_calls, window_seconds| Narrowing {
        rate_limits: BTreeMap::from([("github".into(), limit(max_calls, window_seconds))]),
        ..Narrowing::default()
    };
    // The fixture's github limit is 30 per 60 s.
    let lowered = spec().narrow(&with_limit(5, 60)).unwrap();
    assert_eq!(lowered.integrations[0].rate_limit, Some(limit(5, 60)));
    assert!(spec().narrow(&with_limit(30, 120)).is_ok(), "a longer window is stricter");
    for (max_calls, window_seconds) in [(31, 60), (30, 30), (0, 60), (5, 0)] {
        let error = spec().narrow(&with_limit(max_calls, window_seconds));
        assert!(error.is_err(), "{max_calls} per {window_seconds} s must be refused");
    }
    // weather has none: any limit narrows it.
    let weather =
        Narrowing { rate_limits: BTreeMap::from([("weather".into(), limit(1000, 1))]), ..Narrowing::default() };
    assert_eq!(spec().narrow(&weather).unwrap().integrations[1].rate_limit, Some(limit(1000, 1)));
}

fn narrowings() -> impl Strategy<Value = Narrowing> {
    let rules = proptest::collection::btree_set((prop::sample::select(vec!["github", "weather"]), 0usize..6), 0..6);
    let limits = proptest::collection::btree_map(
        prop::sample::select(vec!["github".to_owned(), "weather".to_owned()]),
        (1u32..40, 60u32..200).prop_map(|(m, w)| limit(m, w)),
        0..2,
    );
    (rules, limits).prop_map(|(rules, rate_limits)| Narrowing {
        drop_rules: rules.into_iter().map(|(n, i)| (n.to_owned(), i)).collect::<BTreeSet<_>>(),
        rate_limits,
        ..Narrowing::default()
    })
}

proptest! {
    #![proptest_config(Config { cases: 256, failure_persistence: None, ..Config::default() })]

    #[test]
    fn a_narrowed_spec_never_allows_what_the_original_denies(narrowing in narrowings()) {
        let original = compile(&spec());
        let Ok(narrowed) = spec().narrow(&narrowing) else { return Ok(()) };
        let narrowed = compile(&narrowed);
        let query = [("q".to_owned(), "bug".to_owned())];
        for probe in probes(&query) {
            if narrowed.decide(&probe).is_allow() {
                prop_assert!(original.decide(&probe).is_allow(), "{probe:?}");
            }
        }
        for integration in &narrowed.spec().integrations {
            let before = spec().integrations.into_iter().find(|i| i.name == integration.name).unwrap();
            if let (Some(before), Some(after)) = (before.rate_limit, integration.rate_limit) {
                prop_assert!(after.max_calls <= before.max_calls && after.window_seconds >= before.window_seconds);
            }
            prop_assert!(before.rate_limit.is_none() || integration.rate_limit.is_some());
        }
    }
}

/// A spec whose one POST rule asks for confirmation of each call.
fn confirming() -> PermitSpec {
    PermitSpec::from_json(
        r#"{"version":1,"integrations":[{"name":"mail","base_url":"https://api.mail.example","rules":[
            {"method":"GET","path":"/messages"},
            {"method":"POST","path":"/messages","body":{"type":"object"},"confirm":true}]}]}"#,
    )
    .unwrap()
}

fn no_confirm(rules: &[(&str, usize)]) -> Narrowing {
    Narrowing { no_confirm: rules.iter().map(|(n, i)| (n.to_string(), *i)).collect(), ..Narrowing::default() }
}

#[test]
fn dropping_confirm_stops_asking_for_that_rule_and_makes_a_new_spec_hash() {
    let send = OutboundRequest::new("mail", "POST", "/messages").with_body(b"{}");
    let confirm = |permit: &CompiledPermit| match permit.decide(&send) {
        oauth3_policy::Decision::Allow(allow) => allow.confirm,
        oauth3_policy::Decision::Deny(d) => panic!("{d}"),
    };
    let original = compile(&confirming());
    let relaxed = compile(&confirming().narrow(&no_confirm(&[("mail", 1)])).unwrap());
    assert!(confirm(&original));
    assert!(!confirm(&relaxed), "no longer asks");
    assert_ne!(relaxed.spec_hash(), original.spec_hash(), "the owner approves another spec");
    assert!(!relaxed.spec().integrations[0].rules[1].confirm);
    // It allows nothing new: the rule's body schema still holds.
    let not_json = OutboundRequest::new("mail", "POST", "/messages").with_body(b"x");
    assert!(!relaxed.decide(&not_json).is_allow());
    assert!(!relaxed.decide(&OutboundRequest::new("mail", "DELETE", "/messages")).is_allow());
}

#[test]
fn dropping_confirm_must_name_a_rule_that_asks() {
    for (rules, needle) in [
        (&[("mail", 0)][..], "rule 0 of \"mail\" does not ask for confirmation"),
        (&[("mail", 7)][..], "\"mail\" has no rule 7"),
        (&[("gmail", 1)][..], "no integration \"gmail\""),
    ] {
        let error = messages(confirming().narrow(&no_confirm(rules)).unwrap_err());
        assert!(error.contains(needle) && error.contains("no_confirm"), "{error}");
    }
}
