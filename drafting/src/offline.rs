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
use crate::goal::{self, Goal};
use crate::model::{DocContent, DraftInput, Drafter, FetchedDoc, Proposal};
use crate::openapi::ApiDoc;
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
        draft(input).map_err(DraftError::Undraftable)
    }
}

fn draft(input: DraftInput<'_>) -> std::result::Result<Proposal, String> {
    let intent = input.intent;
    let (doc, api, mut rationale) = first_api(input.docs)?;
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
    if goal.clauses().is_empty() {
        return Err("the goal names no action: say what the agent will do (list, get, create, update, delete …) \
                    and to what, e.g. \"list issues in acme/widgets\""
            .into());
    }
    let picks = select::select(api, &goal)?;
    let (base_url, line) = base_url(api, doc)?;
    rationale.push(line);
    let ops: Vec<_> = picks.iter().map(|p| p.op).collect();
    let suggest = format!("{}_TOKEN", intent.name.to_ascii_uppercase());
    let auth = auth::auth(api, &ops, &intent.secret_hints, &suggest)?;
    let mut warnings = auth.warnings.clone();
    let mut rules: Vec<Rule> = Vec::new();
    for pick in &picks {
        let op = pick.op;
        let label = format!("{} {}", op.method, op.path);
        rationale.push(pick.why.clone());
        let narrowed = paths::narrow(&op.path, &goal)?;
        if !narrowed.fills.is_empty() {
            rationale.push(format!("{label}: {}", narrowed.describe()));
        }
        let (query, line) = query(op, auth.query_name.as_deref(), &label);
        rationale.push(line);
        let verbs: Vec<&str> = pick.clauses.iter().map(|&c| goal.clauses()[c].verb.as_str()).collect();
        let body = body::body(op, &label, &goal, &verbs);
        rationale.extend(body.rationale);
        warnings.extend(body.warning);
        if rules.iter().any(|r| r.method == op.method && r.path == narrowed.glob) {
            continue;
        }
        let description = op.summary.as_deref().or(op.operation_id.as_deref()).map(|t| clip(&one_line(t), 120));
        rules.push(Rule {
            method: op.method.clone(),
            path: narrowed.glob,
            query: Some(query),
            body: body.schema,
            description: Some(description.unwrap_or(label)),
        });
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
        return Err(format!("the drafted spec does not compile: {error}"));
    }
    Ok(Proposal { integration, rationale, warnings })
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

/// Exactly the documented query parameters (never the injected key).
fn query(op: &super::Operation, injected: Option<&str>, label: &str) -> (BTreeMap<String, QueryParam>, String) {
    let mut query = BTreeMap::new();
    for param in &op.query_params {
        if injected.is_some_and(|k| k.eq_ignore_ascii_case(&param.name)) {
            continue;
        }
        query.insert(param.name.clone(), QueryParam { values: param.values.clone() });
    }
    let line = if query.is_empty() {
        format!("{label}: no query parameters documented, none allowed")
    } else {
        let names: Vec<String> = query
            .iter()
            .map(|(name, q)| match &q.values {
                Some(values) => format!("{name} ({})", values.join("|")),
                None => name.clone(),
            })
            .collect();
        format!("{label}: query limited to the documented parameters {}", names.join(", "))
    };
    (query, line)
}
