//! The offline drafter: deterministic, no LLM, for OpenAPI / Swagger docs.
//! It picks the operations the goal asks for, narrows their paths to the
//! values the goal names, keeps only the body properties the goal needs,
//! takes the base URL from `servers` and the credential from the security
//! schemes plus the secret hints, and says why for each choice. When the
//! docs are not an API description or the goal is ambiguous it refuses
//! rather than guess wide.
//!
//! It only ever emits documented operations, so goal text cannot talk it
//! into a rule the API does not describe.

mod auth;
mod body;
mod paths;
mod select;

use std::collections::BTreeMap;

use oauth3_policy::{IntegrationSpec, Limits, PermitSpec, QueryParam, RateLimit, Rule, SPEC_VERSION};

use crate::error::{DraftError, Result};
use crate::goal::{self, Goal, Stated};
use crate::grounding;
use crate::model::{DocContent, DraftInput, Drafter, FetchedDoc, Proposal};
use crate::openapi::ApiDoc;
use crate::pin;
use crate::text::{clip, one_line};

/// The rate limit every drafted integration starts with.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit { max_calls: 30, window_seconds: 60 };

/// The offline OpenAPI drafter (the default when no LLM is configured).
#[derive(Debug, Default, Clone, Copy)]
pub struct OfflineDrafter;

#[async_trait::async_trait]
impl Drafter for OfflineDrafter {
    fn name(&self) -> &str {
        "offline-openapi"
    }

    async fn draft(&self, input: DraftInput<'_>) -> Result<Proposal> {
        self.draft_now(input)
    }
}

impl OfflineDrafter {
    /// [`Drafter::draft`], synchronously (it does no I/O). Fails with
    /// [`DraftError::Undraftable`] saying what to write instead when no doc is an API
    /// description, the goal has no verb, nothing matches, the best matches
    /// tie, or the credential cannot be worked out.
    pub fn draft_now(&self, input: DraftInput<'_>) -> Result<Proposal> {
        draft(input)
    }
}

fn draft(input: DraftInput<'_>) -> Result<Proposal> {
    let intent = input.intent;
    let (doc, api, mut rationale) = first_api(input.docs).map_err(DraftError::Undraftable)?;
    // What the goal says not to do is not asked for (the grounding checks
    // read the goal the same way).
    let (asked, negated) = goal::without_negated_actions(&intent.goal);
    let goal = Goal::parse(&asked);
    for part in goal.ignored() {
        rationale.push(format!("goal text addressed to the drafter was not read: \"{part}\""));
    }
    for verb in &negated {
        rationale.push(format!("the goal says not to {verb}: nothing is drafted for it"));
    }
    let hinted = !intent.operations.is_empty();
    let picks = if hinted {
        select::named(api, &goal, &intent.operations).map_err(DraftError::UnknownOperation)?
    } else if goal.clauses().is_empty() {
        return Err(DraftError::Undraftable(
            "the goal names no action: say what the agent will do (list, get, create, update, delete …) \
             and to what, e.g. \"list issues in acme/widgets\", or name the operations it needs in `operations`"
                .into(),
        ));
    } else {
        select::select(api, &goal).map_err(DraftError::Undraftable)?
    };
    let (base_url, line) = base_url(api, doc).map_err(DraftError::Undraftable)?;
    rationale.push(line);
    let ops: Vec<_> = picks.iter().map(|p| p.op).collect();
    let suggest = format!("{}_TOKEN", intent.name.to_ascii_uppercase());
    let auth = auth::auth(api, &ops, &intent.secret_hints, &suggest).map_err(DraftError::Undraftable)?;
    let mut warnings = auth.warnings.clone();
    let mut rules: Vec<Rule> = Vec::new();
    // With the operations named, a named value (`issue 42`) is the resource
    // the first operation taking it acts on; later ones act on what that
    // one returns (`the issues that issue 42 lists`).
    let mut taken: Vec<String> = Vec::new();
    let mut narrowed_all = Vec::new();
    for pick in &picks {
        let narrowed = paths::narrow_except(&pick.op.path, &goal, &taken).map_err(DraftError::Undraftable)?;
        if hinted {
            taken.extend(narrowed.named_values());
        }
        narrowed_all.push(narrowed);
    }
    // A value that names a path's resource is not also a body's value.
    let path_values: Vec<String> =
        narrowed_all.iter().flat_map(|n| n.named_values()).chain(taken.iter().cloned()).collect();
    let stated: Vec<Stated> = goal.stated().iter().filter(|s| !path_values.contains(&s.value)).cloned().collect();
    for (pick, narrowed) in picks.iter().zip(narrowed_all) {
        let op = pick.op;
        let label = format!("{} {}", op.method, op.path);
        rationale.push(pick.why.clone());
        if !narrowed.fills.is_empty() {
            rationale.push(format!("{label}: {}", narrowed.describe()));
        }
        let query = query(op, auth.query_name.as_deref(), &label, &stated);
        rationale.push(query.line);
        let verbs: Vec<&str> = pick.clauses.iter().map(|&c| goal.clauses()[c].verb.as_str()).collect();
        let body = body::body(op, &label, &goal, &stated, &verbs, hinted);
        rationale.extend(body.rationale);
        warnings.extend(body.warning);
        let mut pinned: Vec<String> = narrowed.pinned();
        pinned.extend(query.pinned);
        pinned.extend(body.pinned);
        let mut free = query.free;
        free.extend(body.free);
        rationale.push(parameters_line(&label, &pinned, &free));
        if rules.iter().any(|r| r.method == op.method && r.path == narrowed.glob) {
            // Its confirm is the kept rule's, judged over every operation
            // that rule reaches.
            continue;
        }
        let description = op.summary.as_deref().or(op.operation_id.as_deref()).map(|t| clip(&one_line(t), 120));
        let mut rule = Rule {
            method: op.method.clone(),
            path: narrowed.glob.clone(),
            query: Some(query.params),
            body: body.schema,
            description: Some(description.unwrap_or(label.clone())),
            confirm: false,
        };
        // The grounding rule, applied by the drafter to itself: a write that
        // leaves a recipient, destination, account, URL, email, amount or
        // file open waits for the owner (so does one whose target the goal
        // names only for another operation).
        let mut open = grounding::open_parameters_of(&rule, &base_url, api, goal.stated());
        if grounding::is_write(&op.method) {
            open.extend(narrowed.taken());
            // Values this operation's own path does not take.
            let own = narrowed.named_values();
            let elsewhere: Vec<Stated> = goal
                .stated()
                .iter()
                .filter(|s| path_values.contains(&s.value) && !own.contains(&s.value))
                .cloned()
                .collect();
            open.extend(pin::open_targets(op.body.as_ref(), rule.body.as_ref(), &elsewhere));
            let queried =
                rule.query.iter().flatten().filter(|(name, q)| q.values.is_none() && pin::named_for(name, &elsewhere));
            open.extend(queried.map(|(name, _)| format!("?{name}")));
        }
        rule.confirm = grounding::is_write(&op.method) && !open.is_empty();
        if rule.confirm {
            rationale.push(format!(
                "{label}: confirm: each call waits for the owner's confirmation of the exact request, because the \
                 goal does not fix {}",
                open.join(", ")
            ));
        }
        rules.push(rule);
    }
    rationale.extend(auth.rationale);
    rationale.push(format!(
        "rate_limit: {} calls per {} s, a conservative default; the owner may raise it",
        DEFAULT_RATE_LIMIT.max_calls, DEFAULT_RATE_LIMIT.window_seconds
    ));
    let integration = IntegrationSpec {
        name: intent.name.clone(),
        base_url,
        doc_urls: intent.doc_urls.clone(),
        rules,
        inject: auth.inject,
        secrets: auth.secrets,
        rate_limit: Some(DEFAULT_RATE_LIMIT),
        limits: Limits::default(),
    };
    let permit = PermitSpec { version: SPEC_VERSION, integrations: vec![integration.clone()] };
    if let Err(error) = permit.compile(input.compile) {
        return Err(DraftError::Undraftable(format!("the drafted spec does not compile: {error}")));
    }
    Ok(Proposal { integration, rationale, warnings })
}

/// "`label`: pinned from the goal: a = …; free: b, c".
fn parameters_line(label: &str, pinned: &[String], free: &[String]) -> String {
    let mut parts = Vec::new();
    if !pinned.is_empty() {
        parts.push(format!("pinned from the goal: {}", pinned.join("; ")));
    }
    if !free.is_empty() {
        parts.push(format!("free: {}", free.join(", ")));
    }
    if parts.is_empty() {
        parts.push("no parameters to pin".into());
    }
    format!("{label}: parameters {}", parts.join("; "))
}

/// The first doc that is an API description, and a rationale line.
fn first_api(docs: &[FetchedDoc]) -> std::result::Result<(&FetchedDoc, &ApiDoc, Vec<String>), String> {
    let apis: Vec<(&FetchedDoc, &ApiDoc)> = docs
        .iter()
        .filter_map(|d| match &d.content {
            DocContent::Api(api) => Some((d, api.as_ref())),
            DocContent::Text(_) => None,
        })
        .collect();
    let Some(&(doc, api)) = apis.first() else {
        let read: Vec<String> = docs.iter().map(|d| format!("{} ({:?})", d.url, d.kind).to_lowercase()).collect();
        return Err(format!(
            "none of the docs is an OpenAPI 3.x or Swagger 2.0 description (read: {}); the offline drafter needs \
             one: give the URL of the API's OpenAPI document in doc_urls",
            if read.is_empty() { "nothing".to_owned() } else { read.join(", ") }
        ));
    };
    let title = api.title.as_deref().map(|t| clip(&one_line(t), 80)).unwrap_or_else(|| "untitled".into());
    let mut line = format!("drafted from the API description at {} ({title}, version {})", doc.url, api.version);
    if apis.len() > 1 {
        line.push_str(&format!("; {} API descriptions were given, only the first is used", apis.len()));
    }
    Ok((doc, api, vec![line]))
}

/// The base URL: the first https server (or the first server), no trailing `/`.
fn base_url(api: &ApiDoc, doc: &FetchedDoc) -> std::result::Result<(String, String), String> {
    let Some(server) = api.servers.iter().find(|s| s.url.starts_with("https://")).or(api.servers.first()) else {
        return Err(format!(
            "the API description at {} declares no usable server URL; give docs that name the API's host",
            doc.url
        ));
    };
    let url = server.url.trim_end_matches('/').to_owned();
    let mut line = if api.version.starts_with('2') {
        format!("base_url {url}: Swagger 2 host + basePath with the https scheme where offered")
    } else {
        format!("base_url {url}: from the documented server `{}`", server.declared)
    };
    if !server.declared.contains("://") {
        line.push_str(", resolved against the document's URL");
    }
    if api.servers.len() > 1 {
        line.push_str(&format!(
            "; {} servers are documented, this is the first {}",
            api.servers.len(),
            if server.url.starts_with("https://") { "https one" } else { "one (none is https)" }
        ));
    }
    Ok((url, line))
}

/// A rule's query allow-list and what pinning did to it.
struct Query {
    params: BTreeMap<String, QueryParam>,
    line: String,
    pinned: Vec<String>,
    free: Vec<String>,
}

/// Exactly the documented query parameters (never the injected key), each
/// pinned to the values the goal states for it.
fn query(op: &super::Operation, injected: Option<&str>, label: &str, stated: &[Stated]) -> Query {
    let mut params = BTreeMap::new();
    let (mut pinned, mut free) = (Vec::new(), Vec::new());
    for param in &op.query_params {
        if injected.is_some_and(|k| k.eq_ignore_ascii_case(&param.name)) {
            continue;
        }
        let field = pin::Field {
            name: &param.name,
            parents: &[],
            description: param.description.as_deref(),
            format: param.format.as_deref(),
        };
        let stated: Vec<String> = field
            .pins(stated, &serde_json::json!({"type": "string"}))
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .filter(|v| param.values.as_ref().is_none_or(|documented| documented.contains(v)))
            .collect();
        let values = if stated.is_empty() {
            if param.values.is_none() {
                free.push(param.name.clone());
            }
            param.values.clone()
        } else {
            pinned.push(format!("{} = {}", param.name, stated.join(" | ")));
            Some(stated)
        };
        params.insert(param.name.clone(), QueryParam { values });
    }
    let line = if params.is_empty() {
        format!("{label}: no query parameters documented, none allowed")
    } else {
        let names: Vec<String> = params
            .iter()
            .map(|(name, q)| match &q.values {
                Some(values) => format!("{name} ({})", values.join("|")),
                None => name.clone(),
            })
            .collect();
        format!("{label}: query limited to the documented parameters {}", names.join(", "))
    };
    Query { params, line, pinned, free }
}
