//! `HttpDocs`: trusted doc fetching against real servers on 127.0.0.1:0.
//! Only the URL given, https or an allow-listed plain-http upstream, the
//! egress address guard on every hop, size and time limits, and reading
//! the bytes as an API description or text.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use oauth3_drafting::{DocContent, DocKind, DocSource, DocsConfig, DraftError, FetchedDoc, HttpDocs};
use oauth3_policy::HostPort;

const OPENAPI_JSON: &str = r#"{
  "openapi": "3.0.3",
  "info": {"title": "Issues", "version": "1"},
  "servers": [{"url": "https://api.issues.example/v1"}],
  "paths": {"/issues": {"get": {"summary": "List issues", "responses": {"200": {"description": "ok"}}}}}
}"#;

const OPENAPI_YAML: &str = "openapi: 3.1.0
info:
  title: Issues
  version: '1'
servers:
  - url: https://api.issues.example/v1
paths:
  /issues/{id}:
    get:
      summary: One issue
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      responses:
        200:
          description: ok
";

const SWAGGER_YAML: &str = "swagger: '2.0'
info:
  title: Pets
  version: '1'
host: pets.example
basePath: /api
schemes: [https]
paths:
  /pets:
    get:
      summary: List pets
      responses:
        200:
          description: ok
";

/// Serves `app` on 127.0.0.1:0.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn host_port(s: &str) -> HostPort {
    s.parse().unwrap()
}

fn fetcher(allowed: &[String], max_bytes: usize, timeout: Duration) -> HttpDocs {
    let insecure_upstreams: BTreeSet<HostPort> = allowed.iter().map(|s| host_port(s)).collect();
    HttpDocs::new(DocsConfig { insecure_upstreams, max_bytes, timeout }).unwrap()
}

/// A fetcher that allow-lists `addr` (2 MB, 5 s).
fn allowing(addr: SocketAddr) -> HttpDocs {
    fetcher(&[addr.to_string()], 2 << 20, Duration::from_secs(5))
}

fn typed(content_type: &'static str, body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

fn redirect(to: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

fn text(doc: &FetchedDoc) -> &str {
    match &doc.content {
        DocContent::Text(text) => text,
        DocContent::Api(_) => panic!("text expected, got an API description"),
    }
}

/// The error's code and message.
fn code(error: DraftError) -> (String, String) {
    if matches!(error, DraftError::Internal(_) | DraftError::Config(_)) {
        panic!("unexpected error {error:?}");
    }
    (error.code().to_owned(), error.to_string())
}

async fn fetch_err(docs: &HttpDocs, url: &str) -> (String, String) {
    code(docs.fetch(url).await.expect_err(url))
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn docs_app() -> Router {
    Router::new()
        .route("/openapi.json", get(|| async { typed("application/json", OPENAPI_JSON) }))
        .route("/openapi.yaml", get(|| async { typed("application/yaml", OPENAPI_YAML) }))
        .route("/swagger", get(|| async { typed("text/plain; charset=utf-8", SWAGGER_YAML) }))
        .route("/data.json", get(|| async { typed("application/json", r#"{"a":[1,2]}"#) }))
        .route(
            "/page",
            get(|| async {
                typed(
                    "text/html; charset=utf-8",
                    "<!doctype html><html><head><title>T</title><style>body{color:red}</style>\
                     <script>window.stealCredentials()</script></head><body><h1>Issues API</h1>\
                     <p>Base URL: https://api.issues.example/v1</p><script>alert('xss')</script>\
                     <style>.hidden{display:none}</style></body></html>",
                )
            }),
        )
        .route("/guide.md", get(|| async { typed("text/plain", "# Guide\n\n* `GET /issues` lists issues\n") }))
        .route("/notes", get(|| async { typed("text/plain", "Call GET /issues.\r\n") }))
        .route("/binary", get(|| async { typed("application/octet-stream", &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..]) }))
}

#[tokio::test]
async fn an_openapi_json_document_reads_as_an_api_description() {
    let addr = serve(docs_app()).await;
    let doc = allowing(addr).fetch(&format!("http://{addr}/openapi.json")).await.unwrap();
    assert_eq!(doc.kind, DocKind::Openapi);
    let DocContent::Api(api) = &doc.content else { panic!("API description expected") };
    assert_eq!(api.servers[0].url, "https://api.issues.example/v1");
    assert_eq!(api.operations[0].method, "GET");
    assert_eq!(api.operations[0].path, "/issues");
}

#[tokio::test]
async fn an_openapi_yaml_document_reads_as_an_api_description() {
    let addr = serve(docs_app()).await;
    let doc = allowing(addr).fetch(&format!("http://{addr}/openapi.yaml")).await.unwrap();
    assert_eq!(doc.kind, DocKind::Openapi);
    let DocContent::Api(api) = &doc.content else { panic!("API description expected") };
    assert_eq!(api.operations[0].path, "/issues/{id}");
}

#[tokio::test]
async fn a_swagger_2_yaml_document_served_as_plain_text_reads_as_an_api_description() {
    let addr = serve(docs_app()).await;
    let doc = allowing(addr).fetch(&format!("http://{addr}/swagger")).await.unwrap();
    assert_eq!(doc.kind, DocKind::Swagger);
    let DocContent::Api(api) = &doc.content else { panic!("API description expected") };
    assert_eq!(api.operations[0].path, "/pets");
}

#[tokio::test]
async fn other_json_is_pretty_printed_text() {
    let addr = serve(docs_app()).await;
    let doc = allowing(addr).fetch(&format!("http://{addr}/data.json")).await.unwrap();
    assert_eq!(doc.kind, DocKind::Text);
    assert_eq!(text(&doc), "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
}

#[tokio::test]
async fn html_is_converted_to_text_without_scripts_or_styles() {
    let addr = serve(docs_app()).await;
    let doc = allowing(addr).fetch(&format!("http://{addr}/page")).await.unwrap();
    assert_eq!(doc.kind, DocKind::Html);
    let text = text(&doc);
    assert!(text.contains("Issues API") && text.contains("https://api.issues.example/v1"), "{text}");
    for leaked in ["stealCredentials", "alert", "color:red", "display:none"] {
        assert!(!text.contains(leaked), "{leaked} survived: {text}");
    }
}

#[tokio::test]
async fn markdown_is_kept_as_it_is() {
    let addr = serve(docs_app()).await;
    let doc = allowing(addr).fetch(&format!("http://{addr}/guide.md")).await.unwrap();
    assert_eq!(doc.kind, DocKind::Markdown);
    assert_eq!(text(&doc), "# Guide\n\n* `GET /issues` lists issues\n");
}

#[tokio::test]
async fn plain_text_is_kept_as_it_is() {
    let addr = serve(docs_app()).await;
    let doc = allowing(addr).fetch(&format!("http://{addr}/notes")).await.unwrap();
    assert_eq!(doc.kind, DocKind::Text);
    assert_eq!(text(&doc), "Call GET /issues.\r\n");
}

#[tokio::test]
async fn the_hash_is_the_sha256_of_the_bytes_served_and_the_url_the_one_given() {
    let addr = serve(docs_app()).await;
    let url = format!("http://{addr}/notes#section");
    let doc = allowing(addr).fetch(&url).await.unwrap();
    assert_eq!(doc.sha256, sha256_hex(b"Call GET /issues.\r\n"));
    assert_eq!(doc.bytes, 19);
    assert_eq!(doc.url, url);
    assert_eq!(doc.record().sha256, doc.sha256);
}

#[tokio::test]
async fn binary_content_is_unusable() {
    let addr = serve(docs_app()).await;
    let (code, message) = fetch_err(&allowing(addr), &format!("http://{addr}/binary")).await;
    assert_eq!(code, "doc_unusable");
    assert!(message.starts_with(&format!("http://{addr}/binary: ")), "{message}");
}

#[tokio::test]
async fn a_404_is_a_failed_fetch_naming_the_url_and_status() {
    let addr = serve(docs_app()).await;
    let url = format!("http://{addr}/missing");
    assert_eq!(fetch_err(&allowing(addr), &url).await, ("doc_fetch_failed".into(), format!("{url} answered 404")));
}

#[tokio::test]
async fn plain_http_to_a_host_port_not_allow_listed_is_refused() {
    let addr = serve(docs_app()).await;
    let (code, message) =
        fetch_err(&fetcher(&[], 1 << 20, Duration::from_secs(5)), &format!("http://{addr}/notes")).await;
    assert_eq!(code, "doc_url_not_allowed");
    assert!(message.contains("plain http"), "{message}");
}

#[tokio::test]
async fn non_public_addresses_are_refused_unless_allow_listed_even_over_https() {
    let addr = serve(docs_app()).await;
    let port = addr.port();
    let docs = fetcher(&[], 1 << 20, Duration::from_secs(5));
    for url in [
        format!("https://127.0.0.1:{port}/notes"),
        format!("https://localhost:{port}/notes"),
        format!("https://[::1]:{port}/notes"),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "https://10.1.2.3/openapi.json".to_owned(),
        "https://[::ffff:10.0.0.1]/x".to_owned(),
        "https://0x7f.1/x".to_owned(),
    ] {
        let (code, message) = fetch_err(&docs, &url).await;
        assert_eq!(code, "doc_url_not_allowed", "{url}: {message}");
        assert!(message.starts_with(&url) || message.contains("non-public"), "{message}");
    }
    let (_, message) = fetch_err(&docs, &format!("https://localhost:{port}/notes")).await;
    assert!(message.contains("resolves only to non-public addresses"), "{message}");
}

#[tokio::test]
async fn an_allow_listed_host_is_refused_on_another_port() {
    let addr = serve(docs_app()).await;
    let other = serve(docs_app()).await;
    let docs = fetcher(&[addr.to_string(), format!("localhost:{}", addr.port())], 1 << 20, Duration::from_secs(5));
    assert!(docs.fetch(&format!("http://localhost:{}/notes", addr.port())).await.is_ok());
    for url in [
        format!("http://{other}/notes"),
        format!("https://{other}/notes"),
        format!("https://localhost:{}/notes", other.port()),
    ] {
        let (code, message) = fetch_err(&docs, &url).await;
        assert_eq!(code, "doc_url_not_allowed", "{url}: {message}");
    }
}

#[tokio::test]
async fn schemes_other_than_http_and_bad_urls_are_refused() {
    let docs = fetcher(&[], 1 << 20, Duration::from_secs(5));
    for (url, why) in [
        ("ftp://example.com/openapi.json", "only https"),
        ("file:///etc/passwd", "only https"),
        ("data:text/plain,hello", "only https"),
        ("javascript:alert(1)", "only https"),
        ("https://user:pw@example.com/openapi.json", "user info"),
        ("https://user@example.com/openapi.json", "user info"),
        ("not a url", "not an absolute URL"),
        ("/relative/openapi.json", "not an absolute URL"),
    ] {
        let (code, message) = fetch_err(&docs, url).await;
        assert_eq!(code, "doc_url_not_allowed", "{url}");
        assert!(message.starts_with(url) && message.contains(why), "{url}: {message}");
    }
}

#[tokio::test]
async fn an_allowed_redirect_is_followed_and_the_given_url_recorded() {
    let app = docs_app()
        .route("/old", get(|| async { redirect("/moved".into()) }))
        .route("/moved", get(|| async { redirect("notes".into()) }));
    let addr = serve(app).await;
    let url = format!("http://{addr}/old");
    let doc = allowing(addr).fetch(&url).await.unwrap();
    assert_eq!(doc.url, url);
    assert_eq!(text(&doc), "Call GET /issues.\r\n");
}

#[tokio::test]
async fn a_redirect_to_a_target_not_allowed_is_refused_without_quoting_it() {
    let elsewhere = serve(docs_app()).await;
    let targets = [
        format!("http://{elsewhere}/notes"),
        format!("https://localhost:{}/notes", elsewhere.port()),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://10.0.0.7/openapi.json".to_owned(),
        "ftp://example.com/x".to_owned(),
    ];
    for target in targets {
        let to = target.clone();
        let addr = serve(Router::new().route("/go", get(move || async move { redirect(to) }))).await;
        let url = format!("http://{addr}/go");
        let (code, message) = fetch_err(&allowing(addr), &url).await;
        assert_eq!(code, "doc_url_not_allowed", "{target}: {message}");
        assert!(message.starts_with(&format!("{url} redirects to a URL that is not allowed: ")), "{message}");
        assert!(!message.contains(&target), "{message}");
    }
}

#[tokio::test]
async fn a_redirect_loop_stops_after_five_hops() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new().route(
        "/loop",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { redirect("/loop".into()) }
        }),
    );
    let addr = serve(app).await;
    let url = format!("http://{addr}/loop");
    let (code, message) = fetch_err(&allowing(addr), &url).await;
    assert_eq!((code.as_str(), message), ("doc_fetch_failed", format!("{url} redirects more than 5 times")));
    assert_eq!(hits.load(Ordering::SeqCst), 6, "the first request and five redirects");
}

#[tokio::test]
async fn a_doc_larger_than_the_cap_by_content_length_is_refused() {
    let app = Router::new().route("/big", get(|| async { typed("text/plain", "x".repeat(2000)) }));
    let addr = serve(app).await;
    let docs = fetcher(&[addr.to_string()], 1000, Duration::from_secs(5));
    let url = format!("http://{addr}/big");
    assert_eq!(fetch_err(&docs, &url).await, ("doc_too_large".into(), format!("{url} is larger than 1000 bytes")));
}

#[tokio::test]
async fn a_chunked_doc_larger_than_the_cap_is_refused_while_streaming() {
    let app = Router::new().route(
        "/stream",
        get(|| async {
            // A stream body has no Content-Length: sent chunked.
            let body = Body::from_stream(Body::from("y".repeat(5000)).into_data_stream());
            typed("text/plain", body)
        }),
    );
    let addr = serve(app).await;
    let docs = fetcher(&[addr.to_string()], 1000, Duration::from_secs(5));
    let (code, _) = fetch_err(&docs, &format!("http://{addr}/stream")).await;
    assert_eq!(code, "doc_too_large");
    // Within the cap the same stream is fine.
    let roomy = fetcher(&[addr.to_string()], 5000, Duration::from_secs(5));
    assert_eq!(roomy.fetch(&format!("http://{addr}/stream")).await.unwrap().bytes, 5000);
}

#[tokio::test]
async fn a_gzip_bomb_is_capped_by_its_decompressed_size() {
    let bomb = gzip_of_repeated_a(1 << 20);
    assert!(bomb.len() < 10_000, "{} bytes compressed", bomb.len());
    let small = gzip_of_repeated_a(600);
    let app = Router::new()
        .route(
            "/bomb",
            get(move || async move {
                ([(header::CONTENT_TYPE, "text/plain"), (header::CONTENT_ENCODING, "gzip")], bomb).into_response()
            }),
        )
        .route(
            "/small",
            get(move || async move {
                ([(header::CONTENT_TYPE, "text/plain"), (header::CONTENT_ENCODING, "gzip")], small).into_response()
            }),
        );
    let addr = serve(app).await;
    let docs = fetcher(&[addr.to_string()], 100_000, Duration::from_secs(5));
    let (code, _) = fetch_err(&docs, &format!("http://{addr}/bomb")).await;
    assert_eq!(code, "doc_too_large");
    // The hash covers the decompressed bytes.
    let doc = docs.fetch(&format!("http://{addr}/small")).await.unwrap();
    assert_eq!((doc.bytes, doc.sha256), (600, sha256_hex(&[b'a'; 600])));
}

#[tokio::test]
async fn a_slow_doc_host_times_out() {
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }),
    );
    let addr = serve(app).await;
    let docs = fetcher(&[addr.to_string()], 1000, Duration::from_millis(300));
    let url = format!("http://{addr}/slow");
    let started = std::time::Instant::now();
    let (code, message) = fetch_err(&docs, &url).await;
    assert_eq!(code, "doc_fetch_timeout");
    assert!(message.starts_with(&url), "{message}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_connection_failure_is_a_failed_fetch() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{addr}/gone");
    let (code, message) = fetch_err(&allowing(addr), &url).await;
    assert_eq!((code.as_str(), message), ("doc_fetch_failed", format!("{url}: could not connect")));
}

/// A gzip stream of `n` (≥ 1) bytes `a`: one fixed-Huffman deflate block, a
/// literal then length-258 copies at distance 1 (13 bits per 258 bytes).
fn gzip_of_repeated_a(n: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u32,
        len: u32,
    }
    impl Bits {
        fn put(&mut self, value: u32, n: u32) {
            for i in 0..n {
                self.acc |= ((value >> i) & 1) << self.len;
                self.len += 1;
                if self.len == 8 {
                    self.out.push(self.acc as u8);
                    (self.acc, self.len) = (0, 0);
                }
            }
        }
        /// Huffman codes go most significant bit first.
        fn code(&mut self, code: u32, n: u32) {
            for i in (0..n).rev() {
                self.put((code >> i) & 1, 1);
            }
        }
        /// Literal/length symbol under the fixed code.
        fn symbol(&mut self, sym: u32) {
            match sym {
                0..=143 => self.code(0x30 + sym, 8),
                144..=255 => self.code(0x190 + sym - 144, 9),
                256..=279 => self.code(sym - 256, 7),
                _ => self.code(0xc0 + sym - 280, 8),
            }
        }
    }
    let mut bits = Bits { out: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff], acc: 0, len: 0 };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman
    bits.symbol(u32::from(b'a'));
    let mut left = n - 1;
    while left > 0 {
        // Lengths 3..=258; keep the last copy at least 3 long.
        let len = if left >= 261 || left == 258 {
            258
        } else if left > 258 {
            left - 3
        } else {
            left
        };
        if len < 3 {
            for _ in 0..len {
                bits.symbol(u32::from(b'a'));
            }
        } else {
            let (sym, extra_bits, base) = length_symbol(len as u32);
            bits.symbol(sym);
            bits.put(len as u32 - base, extra_bits);
            bits.code(0, 5); // distance 1
        }
        left -= len;
    }
    bits.symbol(256);
    if bits.len > 0 {
        bits.out.push(bits.acc as u8);
    }
    let mut out = bits.out;
    out.extend_from_slice(&crc32(&vec![b'a'; n]).to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out
}

/// Deflate length symbol, its extra bits and base length.
fn length_symbol(len: u32) -> (u32, u32, u32) {
    const BASE: [u32; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227,
        258,
    ];
    const EXTRA: [u32; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
    let i = BASE.iter().rposition(|&b| b <= len).unwrap();
    (257 + i as u32, EXTRA[i], BASE[i])
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
