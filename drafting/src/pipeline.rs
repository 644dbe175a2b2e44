//! The drafting pipeline: check the intents, fetch their docs once each,
//! draft one integration per intent, ground every proposal.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use oauth3_policy::{CompileOptions, IntegrationName, PermitSpec, SPEC_VERSION, is_secret_name};
use serde::{Deserialize, Serialize};

use crate::error::{DraftError, Result};
use crate::grounding;
use crate::model::{DocRecord, DocSource, DraftInput, Drafter, FetchedDoc, Intent};
use crate::text::{clip, one_line};

/// Most intents in one request.
pub const MAX_INTENTS: usize = 10;
/// Most doc URLs per intent.
pub const MAX_DOC_URLS: usize = 5;
/// Longest goal, in bytes.
pub const MAX_GOAL_BYTES: usize = 4000;
/// Most distinct doc URLs fetched for one request.
pub const MAX_DOCS_PER_REQUEST: usize = 8;
/// Drafts in progress at once; others wait. Docs can be large (GitHub's
/// OpenAPI document is 13 MB, ~80 MB parsed), so this bounds memory.
pub const MAX_CONCURRENT_DRAFTS: usize = 4;
/// Longest doc URL, in bytes.
pub const MAX_DOC_URL_BYTES: usize = 2048;
/// Most operations an intent may name.
pub const MAX_OPERATIONS: usize = 50;
/// Longest operation entry, in bytes.
pub const MAX_OPERATION_BYTES: usize = 300;
/// Longest line of a drafter's rationale or warnings shown to the owner.
const MAX_NOTE_CHARS: usize = 600;

/// The docs, the drafter and the checks, put together.
pub struct Drafting {
    docs: Arc<dyn DocSource>,
    drafter: Arc<dyn Drafter>,
    compile: CompileOptions,
    running: tokio::sync::Semaphore,
}

/// A drafted spec and how it came about.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The proposed spec.
    pub spec: PermitSpec,
    /// Which drafter produced it, and what the owner should know.
    pub provenance: Provenance,
}

/// Who drafted a spec from what, and why it looks the way it does; stored
/// with the request and shown to the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Provenance {
    /// The drafter's name.
    pub drafter: String,
    /// The model, for LLM drafters.
    pub model: Option<String>,
    /// Per integration, in intent order.
    pub integrations: Vec<IntegrationNotes>,
}

/// The rationale, warnings and docs for one drafted integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IntegrationNotes {
    /// Integration name.
    pub name: String,
    /// One line per choice.
    pub rationale: Vec<String>,
    /// What the owner should look at twice.
    pub warnings: Vec<String>,
    /// The docs the drafter read, with their hashes.
    pub docs: Vec<DocRecord>,
}

impl Drafting {
    /// A pipeline over `docs` and `drafter`.
    pub fn new(docs: Arc<dyn DocSource>, drafter: Arc<dyn Drafter>, compile: CompileOptions) -> Drafting {
        Drafting { docs, drafter, compile, running: tokio::sync::Semaphore::new(MAX_CONCURRENT_DRAFTS) }
    }

    /// Drafts one spec covering every intent, or says clearly why not.
    pub async fn draft(&self, intents: &[Intent]) -> Result<Draft> {
        check_intents(intents)?;
        let _running = self.running.acquire().await.map_err(|_| DraftError::Internal("drafting stopped".into()))?;
        let mut fetched: HashMap<&str, FetchedDoc> = HashMap::new();
        for url in intents.iter().flat_map(|i| &i.doc_urls) {
            if !fetched.contains_key(url.as_str()) {
                let doc = self.docs.fetch(url).await?;
                fetched.insert(url, doc);
            }
        }
        let mut integrations = Vec::with_capacity(intents.len());
        let mut notes = Vec::with_capacity(intents.len());
        for intent in intents {
            let docs: Vec<FetchedDoc> = intent.doc_urls.iter().map(|u| fetched[u.as_str()].clone()).collect();
            check_operations(intent, &docs)?;
            let input = DraftInput { intent, docs: &docs, compile: &self.compile };
            let mut proposal = self.drafter.draft(input).await?;
            // Facts the gateway knows are not left to the drafter, and the
            // spec is kept (and grounded) as it will be enforced.
            proposal.integration.name = intent.name.clone();
            proposal.integration.doc_urls = intent.doc_urls.clone();
            proposal.integration = grounding::normalize(&proposal.integration);
            // The gateway's own warnings first: a drafter cannot bury them
            // under its own lines, nor hide them with control characters.
            let mut warnings = grounding::check(input, &proposal)?;
            for warning in proposal.warnings.iter().map(|w| clean_line(w)) {
                if !warning.is_empty() && !warnings.contains(&warning) {
                    warnings.push(warning);
                }
            }
            notes.push(IntegrationNotes {
                name: intent.name.clone(),
                rationale: proposal.rationale.iter().map(|r| clean_line(r)).filter(|r| !r.is_empty()).collect(),
                warnings,
                docs: docs.iter().map(FetchedDoc::record).collect(),
            });
            integrations.push(proposal.integration);
        }
        let spec = PermitSpec { version: SPEC_VERSION, integrations };
        if let Err(source) = spec.compile(&self.compile) {
            return Err(DraftError::DoesNotCompile { drafter: self.drafter.name().to_owned(), source });
        }
        Ok(Draft {
            spec,
            provenance: Provenance {
                drafter: self.drafter.name().to_owned(),
                model: self.drafter.model().map(str::to_owned),
                integrations: notes,
            },
        })
    }
}

/// Refuses intents no drafter could ground, naming the field.
fn check_intents(intents: &[Intent]) -> Result<()> {
    let bad = |field: String, problem: &str| Err(DraftError::InvalidIntent { field, problem: problem.to_owned() });
    if intents.is_empty() || intents.len() > MAX_INTENTS {
        return bad("intent".into(), &format!("give 1–{MAX_INTENTS} intents"));
    }
    let mut names = BTreeSet::new();
    for (i, intent) in intents.iter().enumerate() {
        let at = |field: &str| format!("intent[{i}].{field}");
        if let Err(why) = IntegrationName::parse(&intent.name) {
            return bad(at("name"), &why);
        }
        if !names.insert(intent.name.as_str()) {
            return bad(at("name"), &format!("`{}` is named twice; one intent per integration", intent.name));
        }
        if intent.goal.trim().is_empty() || intent.goal.len() > MAX_GOAL_BYTES {
            return bad(at("goal"), &format!("say what the agent will do with the API (1–{MAX_GOAL_BYTES} bytes)"));
        }
        if intent.doc_urls.is_empty() || intent.doc_urls.len() > MAX_DOC_URLS {
            return bad(
                at("doc_urls"),
                &format!("give 1–{MAX_DOC_URLS} URLs of the API's documentation (an OpenAPI document works best)"),
            );
        }
        for (j, url) in intent.doc_urls.iter().enumerate() {
            if let Err(why) = check_doc_url(url) {
                return bad(format!("intent[{i}].doc_urls[{j}]"), &why);
            }
        }
        if intent.operations.len() > MAX_OPERATIONS {
            return bad(at("operations"), &format!("name at most {MAX_OPERATIONS} operations"));
        }
        for (j, entry) in intent.operations.iter().enumerate() {
            let printable = entry.chars().all(|c| !c.is_control() && !oauth3_policy::is_invisible(c));
            if entry.trim().is_empty() || entry.len() > MAX_OPERATION_BYTES || !printable {
                return bad(
                    format!("intent[{i}].operations[{j}]"),
                    &format!(
                        "a documented operationId or `METHOD /path/template` (1–{MAX_OPERATION_BYTES} printable bytes)"
                    ),
                );
            }
        }
        for (j, hint) in intent.secret_hints.iter().enumerate() {
            if !is_secret_name(hint) {
                return bad(
                    format!("intent[{i}].secret_hints[{j}]"),
                    "a secret name: letters, digits and `_`, not starting with a digit (`GITHUB_TOKEN`)",
                );
            }
        }
    }
    let distinct: BTreeSet<&str> = intents.iter().flat_map(|i| &i.doc_urls).map(String::as_str).collect();
    if distinct.len() > MAX_DOCS_PER_REQUEST {
        return bad("intent".into(), &format!("at most {MAX_DOCS_PER_REQUEST} distinct doc URLs per request"));
    }
    Ok(())
}

/// Every entry of the intent's `operations` names a documented operation of
/// one of its API descriptions (checked before any drafter runs, so an LLM
/// is never asked for an operation that does not exist). With text docs
/// only, there is nothing to check against.
fn check_operations(intent: &Intent, docs: &[FetchedDoc]) -> Result<()> {
    let apis: Vec<&crate::openapi::ApiDoc> = docs
        .iter()
        .filter_map(|d| match &d.content {
            crate::model::DocContent::Api(api) => Some(api.as_ref()),
            crate::model::DocContent::Text(_) => None,
        })
        .collect();
    let Some(first) = apis.first() else { return Ok(()) };
    for entry in &intent.operations {
        if !apis.iter().any(|api| api.find_operation(entry).is_ok()) {
            let why = first.find_operation(entry).err().unwrap_or_default();
            return Err(DraftError::UnknownOperation(format!("intent `{}`: {why}", intent.name)));
        }
    }
    Ok(())
}

/// A doc URL is shown to the owner as given, so it must read as what is
/// fetched: printable ASCII without spaces (the URL parser drops tabs and
/// new lines, so `https://docs.x.com\n.evil.net/` would fetch from
/// `docs.x.com.evil.net`), and a host written as it is resolved (no
/// percent-encoding, numeric or octal IPv4, or non-ASCII look-alikes: IDNs
/// are given in their `xn--` form).
fn check_doc_url(text: &str) -> std::result::Result<(), String> {
    if text.len() > MAX_DOC_URL_BYTES {
        return Err(format!("at most {MAX_DOC_URL_BYTES} bytes"));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("printable ASCII without spaces or control characters (percent-encode the rest; an IDN host in its xn-- form)".into());
    }
    let url = url::Url::parse(text).map_err(|_| "not an absolute URL".to_owned())?;
    if let Some(host) = url.host_str()
        && let Some((_, rest)) = text.split_once("://")
    {
        let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let written = match host_port.rfind(':') {
            Some(colon) if !host_port[colon..].contains(']') => &host_port[..colon],
            _ => host_port,
        };
        if !written.eq_ignore_ascii_case(host) {
            return Err(format!("write the host as `{host}`, the way it is resolved"));
        }
    }
    Ok(())
}

/// A drafter's line for the owner: control and invisible characters (bidi
/// overrides, zero-width) dropped, whitespace collapsed, clipped.
fn clean_line(text: &str) -> String {
    let visible: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| !oauth3_policy::is_invisible(*c))
        .collect();
    clip(&one_line(&visible), MAX_NOTE_CHARS)
}
