//! Attacks on drafting, each tried and required to fail: SSRF through doc
//! URLs and their redirects, size and time caps, doc URLs that read as one
//! host and fetch another, drafts that a normalisation or a negated goal
//! would widen past the grounding checks, method overrides by injection, and
//! drafter notes that would hide the gateway's own warnings.

#[path = "support/drafting.rs"]
mod drafting;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use drafting::{API_DOC_URL, FixedDrafter, MemoryDocs, issues_api, issues_spec, markdown_doc, spec_with};
use oauth3_drafting::{DocSource, DocsConfig, Draft, DraftError, Drafting, FetchedDoc, HttpDocs, Intent, Proposal};
use oauth3_policy::{CompileOptions, HostPort, IntegrationSpec};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Doc fetching (real servers on 127.0.0.1:0)

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn fetcher(allowed: &[String], max_bytes: usize, timeout: Duration) -> HttpDocs {
    let insecure_upstreams: BTreeSet<HostPort> = allowed.iter().map(|s| s.parse().unwrap()).collect();
    HttpDocs::new(DocsConfig { insecure_upstreams, max_bytes, timeout }).unwrap()
}

fn code_of(error: &DraftError) -> &'static str {
    match error {
        DraftError::Internal(_) | DraftError::Config(_) => panic!("unexpected error {error:?}"),
        _ => error.code(),
    }
}

/// A server counting every request it gets.
async fn counting_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { ([(header::CONTENT_TYPE, "text/plain")], "internal secrets").into_response() }
    });
    (serve(app).await, hits)
}

/// Spellings of loopback that are not `127.0.0.1`, on `port`.
fn loopback_spellings(port: u16) -> Vec<String> {
    vec![
        format!("https://[::ffff:127.0.0.1]:{port}/x"),
        format!("https://[::ffff:7f00:1]:{port}/x"),
        format!("https://[::127.0.0.1]:{port}/x"),
        format!("https://[64:ff9b::7f00:1]:{port}/x"),
        format!("https://[::]:{port}/x"),
        format!("https://2130706433:{port}/x"),
        format!("https://0177.0.0.1:{port}/x"),
        format!("https://0x7f000001:{port}/x"),
        format!("https://0x7f.1:{port}/x"),
        format!("https://127.1:{port}/x"),
        format!("https://0.0.0.0:{port}/x"),
        format!("https://0:{port}/x"),
        format!("https://%31%32%37.0.0.1:{port}/x"),
        format!("https://localhost.:{port}/x"),
        format!("HTTPS://LOCALHOST:{port}/x"),
        format!("https://%6c%6fcalhost:{port}/x"),
        format!("https://ｌｏｃａｌｈｏｓｔ:{port}/x"),
        format!("https://good.example@127.0.0.1:{port}/x"),
        format!("https://good.example:pw@localhost:{port}/x"),
        format!("https://127.0.0.1:{port}/x#https://good.example/"),
        format!("https://[::1]:{port}/x"),
        format!("https://[fe80::1]:{port}/x"),
        format!("https://[fd00::1]:{port}/x"),
        "https://169.254.169.254/latest/meta-data/".into(),
        "https://[::ffff:169.254.169.254]/latest/meta-data/".into(),
        "https://100.100.100.200/latest/meta-data/".into(),
        "https://metadata.google.internal./computeMetadata/v1/".into(),
    ]
}

#[tokio::test]
async fn ssrf_spellings_of_loopback_and_metadata_addresses_are_refused_before_any_request() {
    let (addr, hits) = counting_server().await;
    let docs = fetcher(&[], 1 << 20, Duration::from_secs(3));
    for url in loopback_spellings(addr.port()) {
        let error = docs.fetch(&url).await.expect_err(&url);
        // A refusal, or a name that does not resolve offline: never a fetch.
        assert!(matches!(code_of(&error), "doc_url_not_allowed" | "doc_fetch_failed"), "{url}: {error}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the internal server was reached");
}

#[tokio::test]
async fn an_allow_listed_upstream_is_not_reachable_under_another_spelling_of_its_host() {
    let (addr, hits) = counting_server().await;
    let port = addr.port();
    // Only `localhost:port` is allow-listed (plain http, past the guard).
    let docs = fetcher(&[format!("localhost:{port}")], 1 << 20, Duration::from_secs(3));
    assert!(docs.fetch(&format!("http://localhost:{port}/x")).await.is_ok());
    assert_eq!(hits.swap(0, Ordering::SeqCst), 1);
    for url in [
        format!("http://localhost.:{port}/x"),
        format!("http://127.0.0.1:{port}/x"),
        format!("http://[::1]:{port}/x"),
        format!("https://127.0.0.1:{port}/x"),
        format!("http://localhost:{}/x", port.wrapping_add(1).max(1)),
    ] {
        let error = docs.fetch(&url).await.expect_err(&url);
        assert!(matches!(code_of(&error), "doc_url_not_allowed" | "doc_fetch_failed"), "{url}: {error}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a non-allow-listed spelling reached the server");
}

#[tokio::test]
async fn redirects_to_other_spellings_of_internal_hosts_are_refused_and_not_quoted() {
    let (internal, hits) = counting_server().await;
    for target in loopback_spellings(internal.port()) {
        let to = target.clone();
        let app = Router::new()
            .route("/go", get(move || async move { (StatusCode::FOUND, [(header::LOCATION, to)]).into_response() }));
        let front = serve(app).await;
        let url = format!("http://{front}/go");
        let error = fetcher(&[front.to_string()], 1 << 20, Duration::from_secs(3)).fetch(&url).await.expect_err(&url);
        assert!(matches!(code_of(&error), "doc_url_not_allowed" | "doc_fetch_failed"), "{target}: {error}");
        assert!(!error.to_string().contains(&target), "the Location was quoted: {error}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a redirect reached the internal server");
}

#[tokio::test]
async fn a_deflate_bomb_is_capped_by_its_decompressed_size() {
    // zlib (HTTP `deflate`) of 256 KiB of `a`: 278 bytes.
    let mut bomb = hex("78daedc13101000000c2a0aceb5fc2db0e4001");
    bomb.extend(std::iter::repeat_n(0u8, 253));
    bomb.extend(hex("bc01b5c016bd"));
    assert_eq!(bomb.len(), 278);
    let app = Router::new().route(
        "/bomb",
        get(move || async move {
            ([(header::CONTENT_TYPE, "text/plain"), (header::CONTENT_ENCODING, "deflate")], bomb).into_response()
        }),
    );
    let addr = serve(app).await;
    let docs = fetcher(&[addr.to_string()], 100_000, Duration::from_secs(5));
    let error = docs.fetch(&format!("http://{addr}/bomb")).await.unwrap_err();
    assert_eq!(code_of(&error), "doc_too_large", "{error}");
    // With room for it, the same body is read and hashed decompressed.
    let roomy = fetcher(&[addr.to_string()], 1 << 20, Duration::from_secs(5));
    assert_eq!(roomy.fetch(&format!("http://{addr}/bomb")).await.unwrap().bytes, 1 << 18);
}

#[tokio::test]
async fn an_unknown_content_encoding_is_not_a_way_around_the_cap() {
    let app = Router::new().route(
        "/zstd",
        get(|| async {
            ([(header::CONTENT_TYPE, "text/plain"), (header::CONTENT_ENCODING, "zstd")], vec![b'a'; 5000])
                .into_response()
        }),
    );
    let addr = serve(app).await;
    let docs = fetcher(&[addr.to_string()], 1000, Duration::from_secs(5));
    let error = docs.fetch(&format!("http://{addr}/zstd")).await.unwrap_err();
    assert_eq!(code_of(&error), "doc_too_large", "{error}");
}

#[tokio::test]
async fn a_slow_drip_body_hits_the_whole_fetch_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Headers at once, then one chunked byte every 50 ms, forever.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if socket.write_all(b"1\r\na\r\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let docs = fetcher(&[addr.to_string()], 1 << 20, Duration::from_millis(400));
    let started = std::time::Instant::now();
    let error = docs.fetch(&format!("http://{addr}/drip")).await.unwrap_err();
    assert_eq!(code_of(&error), "doc_fetch_timeout", "{error}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_fragment_is_not_sent_and_the_given_url_is_recorded() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = Arc::clone(&seen);
    let app = Router::new().fallback(move |uri: axum::http::Uri| {
        log.lock().unwrap().push(uri.to_string());
        async { ([(header::CONTENT_TYPE, "text/plain")], "GET /issues lists issues").into_response() }
    });
    let addr = serve(app).await;
    let url = format!("http://{addr}/guide#section");
    let doc = fetcher(&[addr.to_string()], 1 << 20, Duration::from_secs(3)).fetch(&url).await.unwrap();
    assert_eq!(doc.url, url);
    assert_eq!(*seen.lock().unwrap(), vec!["/guide".to_owned()]);
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

// ---------------------------------------------------------------------------
// The pipeline: intents checked before any fetch, drafts grounded as enforced

const GUIDE_URL: &str = "https://docs.issues.example/guide";

fn api_doc() -> FetchedDoc {
    issues_api(&[
        ("GET", "/repos/{owner}/{repo}/issues"),
        ("POST", "/repos/{owner}/{repo}/issues"),
        ("DELETE", "/repos/{owner}/{repo}"),
        ("GET", "/public/{page}"),
    ])
}

fn text_doc(text: &str) -> FetchedDoc {
    markdown_doc(GUIDE_URL, text)
}

/// A grounded read-only integration; `overrides` replace top-level fields.
fn spec(overrides: Value) -> IntegrationSpec {
    spec_with(issues_spec(json!({}), json!({"max_calls": 30, "window_seconds": 60})), overrides)
}

fn rules(rules: Value) -> IntegrationSpec {
    spec(json!({ "rules": rules }))
}

fn intent(goal: &str, doc_urls: Vec<String>) -> Intent {
    Intent {
        name: "issues".into(),
        goal: goal.into(),
        doc_urls,
        secret_hints: vec!["ISSUES_TOKEN".into()],
        operations: vec![],
    }
}

async fn run(intents: &[Intent], docs: Vec<FetchedDoc>, proposal: Proposal) -> (Result<Draft, DraftError>, usize) {
    let docs = Arc::new(MemoryDocs::new(docs));
    let drafting = Drafting::new(docs.clone(), Arc::new(FixedDrafter(proposal)), CompileOptions::default());
    let result = drafting.draft(intents).await;
    (result, docs.fetches())
}

fn proposal(integration: IntegrationSpec) -> Proposal {
    Proposal { integration, rationale: vec![], warnings: vec![] }
}

async fn draft(goal: &str, docs: Vec<FetchedDoc>, spec: IntegrationSpec) -> Result<Draft, DraftError> {
    let urls = docs.iter().map(|d| d.url.clone()).collect();
    run(&[intent(goal, urls)], docs, proposal(spec)).await.0
}

/// The `draft_not_grounded` message.
async fn blocked(goal: &str, docs: Vec<FetchedDoc>, spec: IntegrationSpec) -> String {
    match draft(goal, docs, spec).await {
        Err(error @ DraftError::NotGrounded { .. }) => error.to_string(),
        Err(e) => panic!("expected draft_not_grounded, got {e:?}"),
        Ok(d) => panic!("expected the draft to be blocked, got {:?}", d.spec),
    }
}

async fn grounded(goal: &str, docs: Vec<FetchedDoc>, spec: IntegrationSpec) -> Draft {
    draft(goal, docs, spec).await.unwrap_or_else(|e| panic!("expected a grounded draft: {e}"))
}

const READ_GOAL: &str = "list open issues in o/r";

#[tokio::test]
async fn doc_urls_that_read_as_one_host_and_fetch_another_are_refused_before_any_fetch() {
    for url in [
        "https://docs.issues.example\n.evil.net/openapi.json".to_owned(),
        "https://docs.issues.example\t.evil.net/openapi.json".to_owned(),
        "https://docs.issues.example/openapi.json ".to_owned(),
        "https://docs.issues.example/\u{202e}nosj.ipanepo".to_owned(),
        "https://dоcs.issues.example/openapi.json".to_owned(), // Cyrillic о
        "https://%64ocs.issues.example/openapi.json".to_owned(),
        "https://134744072/openapi.json".to_owned(),
        "https://0x08.0x08.0x08.0x08/openapi.json".to_owned(),
        format!("https://docs.issues.example/{}", "a".repeat(3000)),
    ] {
        let (result, fetches) = run(&[intent(READ_GOAL, vec![url.clone()])], vec![], proposal(spec(json!({})))).await;
        match result {
            Err(error @ DraftError::InvalidIntent { .. }) => {
                let message = error.to_string();
                assert!(message.starts_with("intent[0].doc_urls[0]: "), "{message}");
                assert!(message.len() < 300, "the message echoes the URL: {message}");
            }
            other => panic!("{url:?}: expected invalid_intent, got {other:?}"),
        }
        assert_eq!(fetches, 0, "{url:?} was fetched");
    }
}

#[tokio::test]
async fn too_many_doc_urls_are_refused_before_any_fetch() {
    let urls: Vec<String> = (0..6).map(|i| format!("https://docs.issues.example/{i}")).collect();
    let (result, fetches) = run(&[intent(READ_GOAL, urls)], vec![], proposal(spec(json!({})))).await;
    assert!(matches!(result, Err(DraftError::InvalidIntent { .. })), "{result:?}");
    assert_eq!(fetches, 0);
}

#[tokio::test]
async fn the_drafter_cannot_rename_the_integration_or_change_its_doc_urls() {
    let mut evil = spec(json!({}));
    evil.name = "github".into();
    evil.doc_urls = vec!["https://evil.example/docs".into()];
    let draft = grounded(READ_GOAL, vec![api_doc()], evil).await;
    assert_eq!(draft.spec.integrations[0].name, "issues");
    assert_eq!(draft.spec.integrations[0].doc_urls, vec![API_DOC_URL.to_owned()]);
    assert_eq!(draft.provenance.drafter, "fixed");
}

#[tokio::test]
async fn a_write_method_in_odd_case_is_judged_as_the_write_it_compiles_to() {
    for method in ["delete", "Delete", " DELETE", "DELETE\t"] {
        let message =
            blocked(READ_GOAL, vec![api_doc()], rules(json!([{"method": method, "path": "/repos/o/r"}]))).await;
        assert!(message.contains("`DELETE /repos/o/r` deletes data upstream"), "{method:?}: {message}");
    }
    let message =
        blocked(READ_GOAL, vec![api_doc()], rules(json!([{"method": "post", "path": "repos/o/r/issues"}]))).await;
    assert!(message.contains("`POST /repos/o/r/issues` changes data upstream"), "{message}");
    // A harmless spelling is normalised in the draft the owner sees.
    let draft =
        grounded(READ_GOAL, vec![api_doc()], rules(json!([{"method": "get", "path": "repos/o/r/issues"}]))).await;
    assert_eq!(draft.spec.integrations[0].rules[0].method, "GET");
    assert_eq!(draft.spec.integrations[0].rules[0].path, "/repos/o/r/issues");
}

#[tokio::test]
async fn a_base_path_the_policy_does_not_enforce_does_not_ground_a_rule() {
    // `Url` reads `\` as `/` (path `/public`), the policy takes the path as
    // written (none): `/*` would be enforced at the root.
    let message = blocked(
        READ_GOAL,
        vec![api_doc()],
        spec(json!({"base_url": "https://api.issues.example\\v1\\public", "rules": [{"method": "GET", "path": "/*"}]})),
    )
    .await;
    assert!(message.contains("is not a documented operation"), "{message}");
}

#[tokio::test]
async fn base_url_host_variants_are_not_grounded() {
    for base in [
        "https://api.issues.example.evil.net/v1",
        "https://evilapi.issues.example/v1",
        "https://api.issues.example./v1",
        "https://93.184.216.34/v1",
        "https://xn--api-issues-example.net/v1",
        "https://api.issues.example@evil.net/v1",
    ] {
        let result = draft(READ_GOAL, vec![api_doc()], spec(json!({ "base_url": base }))).await;
        assert!(
            matches!(result, Err(DraftError::NotGrounded { .. } | DraftError::DoesNotCompile { .. })),
            "{base}: {result:?}"
        );
    }
    // Letter case and a default port are only spelling.
    let draft =
        grounded(READ_GOAL, vec![api_doc()], spec(json!({"base_url": "HTTPS://API.Issues.EXAMPLE:443/v1/"}))).await;
    assert_eq!(draft.spec.integrations[0].base_url, "https://api.issues.example/v1");
}

#[tokio::test]
async fn a_port_the_text_docs_never_give_is_not_grounded() {
    let guide = || text_doc("The API lives at https://api.issues.example/v1. GET /repos/{owner}/{repo}/issues.");
    let message =
        blocked(READ_GOAL, vec![guide()], spec(json!({"base_url": "https://api.issues.example:8443/v1"}))).await;
    assert!(message.contains("base_url port 8443 is not given by the docs for `api.issues.example`"), "{message}");
    let with_port = text_doc("Staging: https://api.issues.example:8443/v1. GET /repos/{owner}/{repo}/issues.");
    let draft =
        grounded(READ_GOAL, vec![with_port], spec(json!({"base_url": "https://api.issues.example:8443/v1"}))).await;
    let warnings = &draft.provenance.integrations[0].warnings;
    assert!(warnings.iter().any(|w| w.contains("no API description was read")), "{warnings:?}");
}

#[tokio::test]
async fn rules_in_other_spellings_of_documented_paths_are_not_grounded() {
    for (method, path) in [
        ("GET", "/repos/o/r/%69ssues"),
        ("GET", "/repos/o/r/issues%2F..%2F..%2Fadmin"),
        ("GET", "/repos/o/r/../../admin"),
        ("GET", "/repos/o/r/issues/"),
        ("GET", "/repos/o/r/іssues"), // Cyrillic і
        ("GET", "/repos/*/*/*"),
        ("HEAD", "/repos/o/r/issues"),
        ("OPTIONS", "/repos/o/r/issues"),
        ("GET", "/**"),
    ] {
        let result = draft(READ_GOAL, vec![api_doc()], rules(json!([{"method": method, "path": path}]))).await;
        assert!(
            matches!(result, Err(DraftError::NotGrounded { .. } | DraftError::DoesNotCompile { .. })),
            "{method} {path}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_negated_verb_does_not_ask_for_a_change() {
    let delete = || rules(json!([{"method": "DELETE", "path": "/repos/o/r"}]));
    let create = || rules(json!([{"method": "POST", "path": "/repos/o/r/issues", "query": {}}]));
    for goal in [
        "don't delete anything, just list issues in o/r",
        "do not delete anything; list issues in o/r",
        "list issues in o/r. Do NOT delete.",
        "list issues in o/r and don\u{2019}t delete them",
        "never delete the repo o/r",
        "list issues in o/r without deleting or closing anything",
        "don't create or delete anything in o/r",
    ] {
        let message = blocked(goal, vec![api_doc()], delete()).await;
        assert!(message.contains("does not ask to delete anything"), "{goal}: {message}");
    }
    for goal in [
        "never create issues; list issues in o/r",
        "don't create or delete anything in o/r",
        "you must not open or post issues in o/r, only list them",
        "list issues in o/r but do not create any",
    ] {
        let message = blocked(goal, vec![api_doc()], create()).await;
        assert!(message.contains("does not ask for a change"), "{goal}: {message}");
    }
    // Only the negated verbs drop out, and the owner is told.
    let draft = grounded("delete the repo o/r, and don't create anything", vec![api_doc()], delete()).await;
    let warnings = &draft.provenance.integrations[0].warnings;
    assert!(warnings.iter().any(|w| w.starts_with("the goal says not to create")), "{warnings:?}");
    grounded("create an issue in o/r but never delete anything", vec![api_doc()], create()).await;
}

#[tokio::test]
async fn a_method_override_cannot_be_injected() {
    for name in ["_method", "X-HTTP-Method-Override", "_HttpMethod"] {
        let spec = spec(json!({"inject": {"query": {name: "DELETE"}}}));
        let message = blocked(READ_GOAL, vec![api_doc()], spec).await;
        assert!(message.contains("overrides the HTTP method upstream"), "{name}: {message}");
    }
}

#[tokio::test]
async fn a_credential_written_into_the_spec_is_flagged() {
    let spec = spec(json!({"inject": {"headers": {"Authorization": "Basic YWRtaW46aHVudGVyMg=="}}, "secrets": []}));
    let draft = grounded(READ_GOAL, vec![api_doc()], spec).await;
    let warnings = &draft.provenance.integrations[0].warnings;
    assert!(
        warnings.iter().any(|w| w.starts_with("the header `Authorization` is injected with the fixed value")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_drafter_cannot_bury_or_disguise_the_gateways_warnings() {
    let mut noisy = proposal(rules(json!([{"method": "POST", "path": "/repos/o/r/issues"}])));
    noisy.warnings = (0..40).map(|i| format!("all good {i}")).collect();
    noisy.warnings.push("\u{202e}sdrawkcab\u{202c} and\u{200b} hidden\nline".into());
    noisy.rationale = vec!["read-only\u{202e} rule".into(), "\u{7}".into()];
    let urls = vec![API_DOC_URL.to_owned()];
    let (result, _) = run(&[intent("create an issue in o/r", urls)], vec![api_doc()], noisy).await;
    let notes = &result.unwrap().provenance.integrations[0];
    let first_drafter_line = notes.warnings.iter().position(|w| w == "all good 0").unwrap();
    assert!(
        notes.warnings[..first_drafter_line].contains(&"`POST /repos/o/r/issues` changes data upstream".to_owned()),
        "{:?}",
        notes.warnings
    );
    assert!(notes.warnings.contains(&"sdrawkcab and hidden line".to_owned()), "{:?}", notes.warnings);
    assert!(
        notes.warnings.iter().chain(&notes.rationale).all(|w| !w.chars().any(|c| c.is_control()
            || ('\u{200b}'..='\u{200f}').contains(&c)
            || ('\u{202a}'..='\u{202e}').contains(&c)))
    );
    assert_eq!(notes.rationale, vec!["read-only rule".to_owned()]);
}

#[tokio::test]
async fn the_draft_is_what_the_policy_compiles_and_hashes() {
    let draft = grounded(
        READ_GOAL,
        vec![api_doc()],
        spec(json!({"base_url": "HTTPS://API.ISSUES.EXAMPLE/v1/", "rules": [{"method": "get", "path": "repos/o/r/issues"}]})),
    )
    .await;
    let compiled = draft.spec.compile(&CompileOptions::default()).unwrap();
    assert_eq!(serde_json::to_value(compiled.spec()).unwrap(), serde_json::to_value(&draft.spec).unwrap());
}
