//! Fetching the docs an intent names: only its `doc_urls`, https (or an
//! operator allow-listed upstream), through the same address guard as
//! egress, size-capped and time-limited; then read as an API description
//! (OpenAPI 3.x / Swagger 2.0, JSON or YAML) or as text (HTML converted,
//! Markdown and plain text as they are). Each doc is hashed, so the owner
//! sees exactly what the drafter read.

mod read;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use oauth3_netguard::{AddressRefused, GuardedResolver, check_url, tls_config};
use oauth3_policy::HostPort;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use url::Url;

use crate::error::{DraftError, Result};
use crate::model::{DocSource, FetchedDoc};

/// Limits for [`HttpDocs`].
#[derive(Debug, Clone)]
pub struct DocsConfig {
    /// Upstreams that may be fetched over plain http and past the address
    /// guard (`OAUTH3_INSECURE_UPSTREAMS`).
    pub insecure_upstreams: BTreeSet<HostPort>,
    /// Largest doc, in bytes (after decompression).
    pub max_bytes: usize,
    /// Whole-fetch time limit (all redirect hops).
    pub timeout: Duration,
}

/// Most redirect hops followed per doc.
pub const MAX_DOC_REDIRECTS: usize = 5;

/// What the fetcher asks for, best first.
const ACCEPT_DOCS: &str = "application/openapi+json, application/json, application/openapi+yaml, \
    application/yaml, text/yaml, text/markdown, text/plain;q=0.9, text/html;q=0.8, */*;q=0.5";

/// Fetches docs over HTTP(S) with the address guard.
///
/// Two clients share the egress guard ([`GuardedResolver`]): `strict` lets no
/// name resolve to a non-public address, `allow_listed` lets the allow-listed
/// host names through and is used only for a URL whose exact host:port is
/// allow-listed, so an allow-listed host is not reachable on another port.
pub struct HttpDocs {
    config: DocsConfig,
    strict: reqwest::Client,
    allow_listed: reqwest::Client,
}

impl HttpDocs {
    /// A fetcher with `config`: rustls with ring and the Mozilla roots, no
    /// proxy, no automatic redirects (each hop is checked again here).
    pub fn new(config: DocsConfig) -> Result<HttpDocs> {
        let hosts = config.insecure_upstreams.iter().map(|hp| hp.host().to_owned()).collect();
        let strict = client(HashSet::new(), config.timeout)?;
        let allow_listed = client(hosts, config.timeout)?;
        Ok(HttpDocs { config, strict, allow_listed })
    }

    /// GETs `start`, following at most [`MAX_DOC_REDIRECTS`] redirects, each
    /// checked again; returns the final URL, its Content-Type and the body.
    async fn get(&self, given: &str, start: Url) -> Result<(Url, Option<String>, Vec<u8>)> {
        let mut url = start;
        for hop in 0..=MAX_DOC_REDIRECTS {
            let allow_listed =
                check_url(&url, &self.config.insecure_upstreams).map_err(|why| not_allowed(given, hop, &why))?;
            let client = if allow_listed { &self.allow_listed } else { &self.strict };
            let mut target = url.clone();
            target.set_fragment(None);
            let mut response =
                client.get(target).header(ACCEPT, ACCEPT_DOCS).send().await.map_err(|e| fetch_error(given, hop, e))?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(LOCATION)
            {
                let next = location.to_str().ok().and_then(|l| url.join(l).ok()).ok_or_else(|| {
                    DraftError::DocFetchFailed(format!("{given} answered {} with an invalid Location", status.as_u16()))
                })?;
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(DraftError::DocFetchFailed(format!("{given} answered {}", status.as_u16())));
            }
            let max = self.config.max_bytes;
            let too_large = || DraftError::DocTooLarge(format!("{given} is larger than {max} bytes"));
            if response.content_length().is_some_and(|len| len > max as u64) {
                return Err(too_large());
            }
            let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| fetch_error(given, hop, e))? {
                if body.len() + chunk.len() > max {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            return Ok((url, content_type, body));
        }
        Err(DraftError::DocFetchFailed(format!("{given} redirects more than {MAX_DOC_REDIRECTS} times")))
    }
}

#[async_trait::async_trait]
impl DocSource for HttpDocs {
    async fn fetch(&self, url: &str) -> Result<FetchedDoc> {
        let start =
            Url::parse(url).map_err(|e| DraftError::DocUrlNotAllowed(format!("{url}: not an absolute URL ({e})")))?;
        let timeout = self.config.timeout;
        let (final_url, content_type, body) = match tokio::time::timeout(timeout, self.get(url, start)).await {
            Ok(fetched) => fetched?,
            Err(_) => {
                return Err(DraftError::DocFetchTimeout(format!(
                    "{url} was not fetched within {}",
                    humantime::format_duration(timeout)
                )));
            }
        };
        let (kind, content) = read::read(url, &final_url, content_type.as_deref(), &body).await?;
        Ok(FetchedDoc { url: url.to_owned(), sha256: sha256_hex(&body), bytes: body.len(), kind, content })
    }
}

/// Reads a doc's bytes obtained some other way (a mirror, a cache, an
/// evaluation's fixtures) exactly as [`HttpDocs`] reads a fetched one:
/// `url` is where it is published (relative server URLs resolve against
/// it), `content_type` what it would be served as.
pub async fn read_doc(url: &str, content_type: Option<&str>, body: &[u8]) -> Result<FetchedDoc> {
    let parsed =
        Url::parse(url).map_err(|e| DraftError::DocUrlNotAllowed(format!("{url}: not an absolute URL ({e})")))?;
    let (kind, content) = read::read(url, &parsed, content_type, body).await?;
    Ok(FetchedDoc { url: url.to_owned(), sha256: sha256_hex(body), bytes: body.len(), kind, content })
}

/// The doc client: egress's TLS setup and address guard, no proxy, no
/// automatic redirects.
fn client(insecure_hosts: HashSet<String>, timeout: Duration) -> Result<reqwest::Client> {
    let tls = tls_config(&[]).map_err(|e| DraftError::Internal(format!("doc client TLS: {e}")))?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .dns_resolver(Arc::new(GuardedResolver::new(insecure_hosts)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(timeout)
        .user_agent(concat!("oauth3-docs/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DraftError::Internal(format!("doc client: {e}")))
}

/// A failed send or body read: a guard refusal is the URL's fault (400),
/// anything else the doc host's (502). Never quotes the request URL back from
/// reqwest (it may be a redirect target).
fn fetch_error(given: &str, hop: usize, error: reqwest::Error) -> DraftError {
    if AddressRefused::in_chain(&error).is_some() {
        return not_allowed(given, hop, "the host resolves only to non-public addresses");
    }
    if error.is_timeout() {
        return DraftError::DocFetchTimeout(format!("{given} did not answer in time"));
    }
    let why = if error.is_connect() {
        "could not connect"
    } else if error.is_decode() || error.is_body() {
        "the body could not be read"
    } else {
        "the request failed"
    };
    DraftError::DocFetchFailed(format!("{given}: {why}"))
}

/// A URL the rules refuse: the one given (`hop` 0) or a redirect's target,
/// which is not quoted (it comes from the response).
fn not_allowed(given: &str, hop: usize, why: &str) -> DraftError {
    DraftError::DocUrlNotAllowed(if hop == 0 {
        format!("{given}: {why}")
    } else {
        format!("{given} redirects to a URL that is not allowed: {why}")
    })
}

/// SHA-256 of `bytes`, lower-case hex.
fn sha256_hex(bytes: &[u8]) -> String {
    crate::text::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}
