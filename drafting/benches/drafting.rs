//! Benchmark of the offline drafter: reading an API document into the model
//! and drafting from it, on the committed fixtures or on any OpenAPI /
//! Swagger document on disk (real ones are large: GitHub's is 13 MB).
//!
//! ```text
//! cargo bench -p oauth3-gateway --bench drafting
//! cargo bench -p oauth3-gateway --bench drafting -- --doc /path/api.github.com.json \
//!     --goal "list the issues in acme/widgets" --hint GITHUB_TOKEN
//! ```
//!
//! For each document it prints the time to parse the bytes (JSON or YAML),
//! to build the model (`ApiDoc::from_value`), and the median and p99 of one
//! offline draft per goal, then the process's peak RSS (`VmHWM`).

use std::time::{Duration, Instant};

use oauth3_drafting::{ApiDoc, DocContent, DocKind, DraftInput, FetchedDoc, Intent, OfflineDrafter};
use oauth3_policy::CompileOptions;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openapi");

/// A document and the goals drafted from it.
struct Case {
    path: String,
    goals: Vec<String>,
    hints: Vec<String>,
}

fn fixtures() -> Vec<Case> {
    let case = |file: &str, goals: &[&str], hint: &str| Case {
        path: format!("{FIXTURES}/{file}"),
        goals: goals.iter().map(|g| g.to_string()).collect(),
        hints: vec![hint.to_owned()],
    };
    vec![
        case(
            "github.json",
            &["list and create issues in acme/widgets", "comment on issue 42 in acme/widgets"],
            "GITHUB_TOKEN",
        ),
        case("slack.yaml", &["post a message to a channel"], "SLACK_BOT_TOKEN"),
        case("stripe.json", &["create a customer and list charges"], "STRIPE_SECRET_KEY"),
        case("weather.yaml", &["get the forecast"], "WEATHER_KEY"),
    ]
}

/// `--doc PATH --goal G [--goal G …] [--hint NAME …]`, or the fixtures.
fn cases() -> Vec<Case> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let values =
        |flag: &str| -> Vec<String> { args.windows(2).filter(|w| w[0] == flag).map(|w| w[1].clone()).collect() };
    match values("--doc").into_iter().next() {
        Some(path) => vec![Case { path, goals: values("--goal"), hints: values("--hint") }],
        None => fixtures(),
    }
}

fn main() {
    for case in cases() {
        let bytes = std::fs::read(&case.path).unwrap_or_else(|e| panic!("{}: {e}", case.path));
        let started = Instant::now();
        let value: Value = if case.path.ends_with(".json") {
            serde_json::from_slice(&bytes).expect("JSON")
        } else {
            serde_yaml_ng::from_slice(&bytes).expect("YAML")
        };
        let parsed = started.elapsed();
        let url = url::Url::parse("https://docs.example/api").unwrap();
        let started = Instant::now();
        let api = ApiDoc::from_value(&value, &url).expect("readable").expect("an API description");
        let modelled = started.elapsed();
        drop(value);
        println!(
            "{}: {} bytes, {} operations; parse {:.1} ms, model {:.1} ms",
            case.path.rsplit('/').next().unwrap_or_default(),
            bytes.len(),
            api.operations.len(),
            ms(parsed),
            ms(modelled)
        );
        let doc = FetchedDoc {
            url: url.to_string(),
            sha256: String::new(),
            bytes: bytes.len(),
            kind: DocKind::Openapi,
            content: DocContent::Api(Box::new(api)),
        };
        let docs = [doc];
        let compile = CompileOptions::default();
        for goal in &case.goals {
            let intent = Intent {
                name: "bench".into(),
                goal: goal.clone(),
                doc_urls: vec![url.to_string()],
                secret_hints: case.hints.clone(),
                operations: vec![],
            };
            let input = DraftInput { intent: &intent, docs: &docs, compile: &compile };
            let outcome = OfflineDrafter.draft_now(input).map(|p| p.integration.rules.len());
            let runs = 200;
            let mut times: Vec<Duration> = (0..runs)
                .map(|_| {
                    let started = Instant::now();
                    std::hint::black_box(OfflineDrafter.draft_now(input).ok());
                    started.elapsed()
                })
                .collect();
            times.sort();
            let result = match outcome {
                Ok(rules) => format!("{rules} rules"),
                Err(error) => format!("refused: {error}"),
            };
            println!(
                "  draft {goal:?}: p50 {:.2} ms, p99 {:.2} ms ({result})",
                ms(times[runs / 2]),
                ms(times[runs * 99 / 100])
            );
        }
    }
    let peak = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
    });
    println!("peak RSS: {} kB", peak.unwrap_or_else(|| "?".into()));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
