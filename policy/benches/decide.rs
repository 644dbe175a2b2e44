//! Benchmarks [`CompiledPermit::decide`] on a 1-rule and a 50-rule GitHub-like
//! permit, next to the same authorizations written as Cedar policies and
//! decided by `cedar_policy::Authorizer::is_authorized` in the same run.
//!
//! Groups:
//! - `decide/*`: oauth3-policy, permit compiled once from JSON.
//! - `cedar/*`: Cedar, the `Request` (uids, context) built from the outbound
//!   request inside the measured closure, as a gateway must per call; the
//!   path is in the context and the entity store is empty.
//! - `cedar_prebuilt/*`: Cedar with the `Request` built outside the loop
//!   (authorization only).
//! - `cedar_entity/*`: Cedar with the path as an attribute of a per-request
//!   resource entity (`resource.path like ...`), entity store built per call.
//! - `parts/*`: pieces of `decide` (path normal-form check, 50 glob matches).
//!
//! Before measuring, every bench request (and a few extra probes) is checked
//! to get the same allow/deny from oauth3-policy and both Cedar encodings.
//! Cedar's `like` `*` also matches across `/`; the probes avoid paths where
//! that would differ from the per-segment globs. Body validation has no Cedar
//! equivalent, so `decide/50_rules_allow_body` has no Cedar counterpart.

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet,
    Request, RestrictedExpression,
};
use criterion::{Criterion, criterion_group, criterion_main};
use oauth3_policy::{CompileOptions, CompiledPermit, OutboundRequest, PathGlob, PermitSpec, path};
use serde_json::{Value, json};

/// One rule: method, path glob, optional query allow-list (name, allowed
/// values; an empty list means any value), and whether it has a body schema.
struct RuleDef {
    method: &'static str,
    path: &'static str,
    query: Option<&'static [(&'static str, &'static [&'static str])]>,
    body: bool,
}

const fn rule(method: &'static str, path: &'static str) -> RuleDef {
    RuleDef { method, path, query: None, body: false }
}

const fn rule_q(
    method: &'static str,
    path: &'static str,
    query: &'static [(&'static str, &'static [&'static str])],
) -> RuleDef {
    RuleDef { method, path, query: Some(query), body: false }
}

const STATE: &[&str] = &["open", "closed", "all"];

/// A realistic GitHub-like mix. The last rule is the one `allow_last` hits.
const RULES_50: [RuleDef; 50] = [
    rule("GET", "/user"),
    rule_q("GET", "/user/repos", &[("visibility", &["all", "public", "private"]), ("per_page", &[]), ("page", &[])]),
    rule("GET", "/users/*"),
    rule("GET", "/users/*/repos"),
    rule("GET", "/orgs/*"),
    rule("GET", "/orgs/*/repos"),
    rule("GET", "/repos/o/r"),
    rule("PATCH", "/repos/o/r"),
    rule_q("GET", "/repos/o/r/issues", &[("state", STATE), ("labels", &[]), ("per_page", &[]), ("page", &[])]),
    RuleDef { method: "POST", path: "/repos/o/r/issues", query: Some(&[]), body: true },
    rule("GET", "/repos/o/r/issues/*"),
    rule("PATCH", "/repos/o/r/issues/*"),
    rule("GET", "/repos/o/r/issues/*/comments"),
    rule("POST", "/repos/o/r/issues/*/comments"),
    rule("PATCH", "/repos/o/r/issues/comments/*"),
    rule("DELETE", "/repos/o/r/issues/comments/*"),
    rule("GET", "/repos/o/r/issues/*/labels"),
    rule("POST", "/repos/o/r/issues/*/labels"),
    rule("DELETE", "/repos/o/r/issues/*/labels/*"),
    rule("GET", "/repos/o/r/labels"),
    rule("POST", "/repos/o/r/labels"),
    rule("GET", "/repos/o/r/milestones"),
    rule_q("GET", "/repos/o/r/pulls", &[("state", STATE), ("per_page", &[]), ("page", &[])]),
    rule("POST", "/repos/o/r/pulls"),
    rule("GET", "/repos/o/r/pulls/*"),
    rule("PATCH", "/repos/o/r/pulls/*"),
    rule("GET", "/repos/o/r/pulls/*/files"),
    rule("GET", "/repos/o/r/pulls/*/reviews"),
    rule("POST", "/repos/o/r/pulls/*/reviews"),
    rule_q("GET", "/repos/o/r/commits", &[("sha", &[]), ("path", &[]), ("per_page", &[]), ("page", &[])]),
    rule("GET", "/repos/o/r/commits/*"),
    rule("GET", "/repos/o/r/branches"),
    rule("GET", "/repos/o/r/branches/*"),
    rule("GET", "/repos/o/r/contents/**"),
    rule("PUT", "/repos/o/r/contents/**"),
    rule("GET", "/repos/o/r/releases"),
    rule("GET", "/repos/o/r/releases/latest"),
    rule("GET", "/repos/o/r/tags"),
    rule_q("GET", "/repos/o/r/actions/runs", &[("status", &["queued", "in_progress", "completed"]), ("per_page", &[])]),
    rule("GET", "/repos/o/r/actions/runs/*"),
    rule("POST", "/repos/o/r/actions/runs/*/rerun"),
    rule("GET", "/repos/o/r/actions/workflows"),
    rule("POST", "/repos/o/r/actions/workflows/*/dispatches"),
    rule("GET", "/repos/o/r/git/refs/**"),
    rule("GET", "/repos/o/r/compare/*"),
    rule_q(
        "GET",
        "/search/issues",
        &[("q", &[]), ("sort", &["created", "updated", "comments"]), ("order", &["asc", "desc"]), ("per_page", &[])],
    ),
    rule_q("GET", "/search/code", &[("q", &[]), ("per_page", &[])]),
    rule_q("GET", "/notifications", &[("all", &["true", "false"]), ("participating", &["true", "false"])]),
    rule("PATCH", "/notifications/threads/*"),
    rule_q("GET", "/repos/o/r/pulls/**", &[("per_page", &[]), ("page", &[])]),
];

const RULES_1: [RuleDef; 1] = [rule("GET", "/repos/o/r/issues")];

fn issue_schema() -> Value {
    json!({
        "type": "object",
        "required": ["title"],
        "additionalProperties": false,
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 256},
            "body": {"type": "string", "maxLength": 65536},
            "labels": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
            "assignees": {"type": "array", "items": {"type": "string"}, "maxItems": 10}
        }
    })
}

fn permit(rules: &[RuleDef]) -> CompiledPermit {
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            let mut v = json!({"method": r.method, "path": r.path});
            if let Some(q) = r.query {
                let params: serde_json::Map<String, Value> = q
                    .iter()
                    .map(|(name, values)| {
                        let p = if values.is_empty() { json!({}) } else { json!({ "values": values }) };
                        ((*name).to_owned(), p)
                    })
                    .collect();
                v["query"] = Value::Object(params);
            }
            if r.body {
                v["body"] = issue_schema();
            }
            v
        })
        .collect();
    let spec = json!({
        "version": 1,
        "integrations": [{
            "name": "github",
            "base_url": "https://api.github.com",
            "rules": rules,
            "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
            "secrets": ["GITHUB_TOKEN"],
            "rate_limit": {"max_calls": 60, "window_seconds": 60}
        }]
    });
    PermitSpec::from_json(&spec.to_string())
        .expect("spec parses")
        .compile(&CompileOptions::default())
        .expect("spec compiles")
}

/// Where the Cedar policies read the request path from.
#[derive(Clone, Copy)]
enum PathIn {
    /// `context.path`; resource is `Integration::"github"`.
    Context,
    /// `resource.path` of a per-request `Call` entity.
    Resource,
}

/// The Cedar condition for a per-segment glob. `*` segments become Cedar `*`
/// (which also crosses `/`); a trailing `/**` matches the prefix itself or
/// anything below it.
fn cedar_path_cond(glob: &str, attr: &str) -> String {
    assert!(!glob.trim_end_matches("/**").contains("**"), "only a trailing ** is translated: {glob}");
    let cmp = |p: &str| {
        if p.contains('*') { format!("{attr} like \"{p}\"") } else { format!("{attr} == \"{p}\"") }
    };
    match glob.strip_suffix("/**") {
        Some(prefix) => format!("({} || {attr} like \"{prefix}/*\")", cmp(prefix)),
        None => cmp(glob),
    }
}

fn cedar_policies(rules: &[RuleDef], path_in: PathIn) -> PolicySet {
    let mut text = String::new();
    for r in rules {
        let (resource, mut conds) = match path_in {
            PathIn::Context => ("resource == Integration::\"github\"", vec![cedar_path_cond(r.path, "context.path")]),
            PathIn::Resource => (
                "resource",
                vec!["resource.integration == \"github\"".to_owned(), cedar_path_cond(r.path, "resource.path")],
            ),
        };
        if let Some(q) = r.query {
            if q.is_empty() {
                conds.push("context.query_names.isEmpty()".to_owned());
            } else {
                let names: Vec<String> = q.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                conds.push(format!("[{}].containsAll(context.query_names)", names.join(", ")));
                for (name, values) in q.iter().filter(|(_, v)| !v.is_empty()) {
                    let values: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
                    conds.push(format!(
                        "(!(context.query has \"{name}\") || [{}].contains(context.query[\"{name}\"]))",
                        values.join(", ")
                    ));
                }
            }
        }
        text.push_str(&format!(
            "permit(principal, action == Action::\"{}\", {resource}) when {{ {} }};\n",
            r.method,
            conds.join(" && ")
        ));
    }
    PolicySet::from_str(&text).unwrap_or_else(|e| panic!("cedar policies parse: {e:?}\n{text}"))
}

/// Entity type names a gateway would parse once at start-up.
struct CedarTypes {
    agent: EntityTypeName,
    action: EntityTypeName,
    integration: EntityTypeName,
    call: EntityTypeName,
}

impl CedarTypes {
    fn new() -> Self {
        let t = |s: &str| EntityTypeName::from_str(s).expect("type name");
        CedarTypes { agent: t("Agent"), action: t("Action"), integration: t("Integration"), call: t("Call") }
    }
}

fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

/// Query as Cedar values: the set of names and a name → value record.
fn cedar_query(req: &OutboundRequest<'_>) -> [(String, RestrictedExpression); 2] {
    let names =
        RestrictedExpression::new_set(req.query.iter().map(|(n, _)| RestrictedExpression::new_string(n.clone())));
    let record = RestrictedExpression::new_record(
        req.query.iter().map(|(n, v)| (n.clone(), RestrictedExpression::new_string(v.clone()))),
    )
    .expect("no repeated query names in the bench");
    [("query_names".to_owned(), names), ("query".to_owned(), record)]
}

/// Everything a gateway builds per call for the `context.path` encoding.
fn cedar_request(t: &CedarTypes, req: &OutboundRequest<'_>) -> Request {
    let [names, record] = cedar_query(req);
    let context = Context::from_pairs([
        ("path".to_owned(), RestrictedExpression::new_string(req.path.to_owned())),
        names,
        record,
    ])
    .expect("context");
    Request::new(
        uid(&t.agent, "agent"),
        uid(&t.action, req.method),
        uid(&t.integration, req.integration),
        context,
        None,
    )
    .expect("request")
}

/// Everything a gateway builds per call for the `resource.path` encoding.
fn cedar_entity_request(t: &CedarTypes, req: &OutboundRequest<'_>) -> (Request, Entities) {
    let resource = uid(&t.call, "call");
    let attrs = HashMap::from([
        ("path".to_owned(), RestrictedExpression::new_string(req.path.to_owned())),
        ("integration".to_owned(), RestrictedExpression::new_string(req.integration.to_owned())),
    ]);
    let entity = Entity::new(resource.clone(), attrs, HashSet::new()).expect("entity");
    let entities = Entities::from_entities([entity], None).expect("entities");
    let context = Context::from_pairs(cedar_query(req)).expect("context");
    let request =
        Request::new(uid(&t.agent, "agent"), uid(&t.action, req.method), resource, context, None).expect("request");
    (request, entities)
}

struct Cedar {
    by_context: PolicySet,
    by_resource: PolicySet,
}

impl Cedar {
    fn new(rules: &[RuleDef]) -> Self {
        Cedar {
            by_context: cedar_policies(rules, PathIn::Context),
            by_resource: cedar_policies(rules, PathIn::Resource),
        }
    }
}

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
}

/// Checks that oauth3-policy and both Cedar encodings agree on `req`, and
/// that the decision is `expect_allow`.
fn assert_agree(t: &CedarTypes, permit: &CompiledPermit, cedar: &Cedar, req: &OutboundRequest<'_>, expect_allow: bool) {
    let auth = Authorizer::new();
    let ours = permit.decide(req);
    let by_context = auth.is_authorized(&cedar_request(t, req), &cedar.by_context, &Entities::empty());
    let (request, entities) = cedar_entity_request(t, req);
    let by_resource = auth.is_authorized(&request, &cedar.by_resource, &entities);
    let what = format!("{} {} {:?}", req.method, req.path, req.query);
    assert_eq!(ours.is_allow(), expect_allow, "oauth3-policy on {what}: {ours:?}");
    for (name, resp) in [("context", by_context), ("resource", by_resource)] {
        assert!(resp.diagnostics().errors().next().is_none(), "cedar ({name}) errors on {what}: {resp:?}");
        assert_eq!(resp.decision() == CedarDecision::Allow, expect_allow, "cedar ({name}) on {what}");
    }
}

fn benches(c: &mut Criterion) {
    let permit1 = permit(&RULES_1);
    let permit50 = permit(&RULES_50);
    let cedar1 = Cedar::new(&RULES_1);
    let cedar50 = Cedar::new(&RULES_50);
    let types = CedarTypes::new();

    let last_query = q(&[("per_page", "100"), ("page", "2")]);
    let req_1_allow = OutboundRequest::new("github", "GET", "/repos/o/r/issues");
    let req_allow_last = OutboundRequest::new("github", "GET", "/repos/o/r/pulls/42/commits").with_query(&last_query);
    let req_deny = OutboundRequest::new("github", "GET", "/repos/o/r/hooks");
    let body_headers = q(&[("Content-Type", "application/json")]);
    let body = br#"{"title":"Crash on empty config","body":"Steps: run with an empty file.","labels":["bug","p2"]}"#;
    let req_body =
        OutboundRequest::new("github", "POST", "/repos/o/r/issues").with_headers(&body_headers).with_body(body);

    // Same answers before any timing.
    assert_agree(&types, &permit1, &cedar1, &req_1_allow, true);
    assert_agree(&types, &permit50, &cedar50, &req_allow_last, true);
    assert_agree(&types, &permit50, &cedar50, &req_deny, false);
    let probes_query = [
        q(&[("state", "open"), ("per_page", "50")]),
        q(&[("state", "bogus")]),
        q(&[("q", "is:open"), ("sort", "updated")]),
        q(&[("q", "x"), ("sort", "stars")]),
        q(&[("debug", "1")]),
    ];
    let probes = [
        (OutboundRequest::new("github", "GET", "/repos/o/r/issues").with_query(&probes_query[0]), true),
        (OutboundRequest::new("github", "GET", "/repos/o/r/issues").with_query(&probes_query[1]), false),
        (OutboundRequest::new("github", "GET", "/search/issues").with_query(&probes_query[2]), true),
        (OutboundRequest::new("github", "GET", "/search/issues").with_query(&probes_query[3]), false),
        (OutboundRequest::new("github", "GET", "/repos/o/r/pulls/7").with_query(&probes_query[4]), true),
        (OutboundRequest::new("github", "GET", "/repos/o/r/pulls").with_query(&probes_query[4]), false),
        (OutboundRequest::new("github", "DELETE", "/repos/o/r/issues/comments/5"), true),
        (OutboundRequest::new("github", "DELETE", "/repos/o/r/issues/5"), false),
        (OutboundRequest::new("github", "GET", "/repos/o/r/contents"), true),
        (OutboundRequest::new("github", "GET", "/repos/o/r/contents/src/main.rs"), true),
        (OutboundRequest::new("github", "PUT", "/repos/o/r/contents/README.md"), true),
        (OutboundRequest::new("github", "POST", "/repos/o/r/hooks"), false),
        (OutboundRequest::new("github", "GET", "/users/octocat"), true),
        (OutboundRequest::new("gitlab", "GET", "/users/octocat"), false),
    ];
    for (req, allow) in &probes {
        assert_agree(&types, &permit50, &cedar50, req, *allow);
    }
    match permit50.decide(&req_allow_last) {
        oauth3_policy::Decision::Allow(a) => {
            assert_eq!(a.rule, 49, "allow_last must hit the last rule")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        permit50.decide(&req_deny).deny_code(),
        Some(oauth3_policy::DenyCode::PathNotAllowed),
        "deny must scan every rule"
    );
    assert!(permit50.decide(&req_body).is_allow(), "{:?}", permit50.decide(&req_body));

    let cases = [
        ("1_rule_allow", &permit1, &cedar1, req_1_allow),
        ("50_rules_allow_last", &permit50, &cedar50, req_allow_last),
        ("50_rules_deny", &permit50, &cedar50, req_deny),
    ];

    let mut g = c.benchmark_group("decide");
    for (name, permit, _, req) in &cases {
        g.bench_function(*name, |b| b.iter(|| black_box(permit).decide(black_box(req))));
    }
    g.bench_function("50_rules_allow_body", |b| b.iter(|| black_box(&permit50).decide(black_box(&req_body))));
    g.finish();

    let auth = Authorizer::new();
    let empty = Entities::empty();
    let mut g = c.benchmark_group("cedar");
    for (name, _, cedar, req) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let request = cedar_request(&types, black_box(req));
                auth.is_authorized(&request, &cedar.by_context, &empty)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("cedar_prebuilt");
    for (name, _, cedar, req) in &cases {
        let request = cedar_request(&types, req);
        g.bench_function(*name, |b| b.iter(|| auth.is_authorized(black_box(&request), &cedar.by_context, &empty)));
    }
    g.finish();

    let mut g = c.benchmark_group("cedar_entity");
    for (name, _, cedar, req) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let (request, entities) = cedar_entity_request(&types, black_box(req));
                auth.is_authorized(&request, &cedar.by_resource, &entities)
            })
        });
    }
    g.finish();

    // Pieces of the 50-rule deny: the path check, then one glob match per rule.
    let globs: Vec<PathGlob> = RULES_50.iter().map(|r| PathGlob::parse(r.path).expect("glob")).collect();
    let mut g = c.benchmark_group("parts");
    g.bench_function("path_segments", |b| b.iter(|| path::segments(black_box(req_deny.path)).map(|s| s.len())));
    let segments = path::segments(req_deny.path).expect("normal form");
    g.bench_function("glob_scan_50", |b| {
        b.iter(|| globs.iter().filter(|glob| glob.matches(black_box(&segments))).count())
    });
    g.finish();
}

criterion_group!(decide_benches, benches);
criterion_main!(decide_benches);
