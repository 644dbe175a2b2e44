//! The owner's side of attestation: what `oauth3 attest verify` checks in a
//! gateway's `/attestation` document before anyone hands it a secret.
//!
//! Each check is reported on its own, so a failure says which link broke:
//! the nonce is echoed; `config_hash` is the SHA-256 of the JCS form of
//! `config`; `report_data` binds key, config and nonce; the quote is over
//! that `report_data`; RTMR3 replays from the event log, whose runtime
//! events match their digests; the log's `app-id` and `compose-hash` are the
//! document's; the compose hash is that of the file the owner expects; and
//! the quote itself verifies against Intel's collateral (dcap-qvl).

use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::quote::{Quote, TDReport10};
use ring::digest::{SHA256, SHA384, digest};
use serde_json::Value;

use super::attest;
use super::dstack::hex_bytes;
use crate::keys::hex;

/// The event type of dstack's runtime events (those extended into RTMR3).
pub const RUNTIME_EVENT: u32 = 0x0800_0001;

/// Where Intel publishes the SGX root CA's CRL (its distribution point).
pub const INTEL_ROOT_CA_CRL: &str = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";

/// The most a collateral or attestation response may hold.
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// Phala's public PCCS, the default source of collateral.
pub const DEFAULT_PCCS: &str = "https://pccs.phala.network";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It held.
    Ok,
    /// It did not.
    Fail,
    /// Nothing to compare with: the owner gave no expected value.
    Unpinned,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
        Check { name, status: if ok { Status::Ok } else { Status::Fail }, detail: detail.into() }
    }

    fn unpinned(name: &'static str, detail: impl Into<String>) -> Check {
        Check { name, status: Status::Unpinned, detail: detail.into() }
    }

    /// Whether it held.
    pub fn ok(&self) -> bool {
        self.status == Status::Ok
    }
}

/// The TD's boot measurements, as a dstack OS image yields them (hex; the
/// JSON `dstack-mr` prints): firmware (MRTD), firmware config (RTMR0),
/// kernel (RTMR1), kernel command line and initrd (RTMR2).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Measurements {
    /// MRTD.
    pub mrtd: String,
    /// RTMR0.
    pub rtmr0: String,
    /// RTMR1.
    pub rtmr1: String,
    /// RTMR2.
    pub rtmr2: String,
}

/// What the owner expects of the gateway.
#[derive(Debug, Default)]
pub struct Expected<'a> {
    /// The fresh nonce sent.
    pub nonce: &'a [u8],
    /// The URL asked: the attested `public_url` must be its origin.
    pub url: Option<&'a str>,
    /// The app-compose.json it should run.
    pub compose: Option<&'a [u8]>,
    /// Its dstack app id (hex).
    pub app_id: Option<&'a str>,
    /// The key provider's id (the `id` of the `key-provider` event).
    pub key_provider_id: Option<&'a str>,
    /// The OS image's measurements.
    pub measurements: Option<&'a Measurements>,
}

/// The checks that need no network: everything but the quote's signature
/// chain. What `expected` leaves out is reported [`Status::Unpinned`].
pub fn check_document(document: &Value, expected: &Expected<'_>) -> Vec<Check> {
    let nonce = expected.nonce;
    let mut checks = Vec::new();
    let field = |name: &str| document.get(name).and_then(Value::as_str).and_then(|t| hex_bytes(t).ok());
    checks.push(Check::new("nonce", field("nonce").as_deref() == Some(nonce), "the gateway echoed the fresh nonce"));
    if let Some(url) = expected.url {
        let attested = document["config"]["public_url"].as_str().unwrap_or_default();
        checks.push(Check::new(
            "public_url",
            same_origin(url, attested),
            format!("the attested public URL {attested:?} is the one asked"),
        ));
    }

    let config_hash = attest::config_hash(&document["config"]).ok();
    let config_ok = config_hash.is_some() && field("config_hash").as_deref() == config_hash.as_ref().map(|h| &h[..]);
    checks.push(Check::new("config_hash", config_ok, "SHA-256 of the JCS form of config"));

    let key = field("signing_key").filter(|key| key.len() == 32);
    let bound = match (&key, config_hash) {
        (Some(key), Some(hash)) => Some(attest::report_data(key, &hash, nonce)),
        _ => None,
    };
    let report_data = field("report_data");
    let binding_ok = bound.is_some() && report_data.as_deref() == bound.as_ref().map(|e| &e[..]);
    checks.push(Check::new(
        "report_data",
        binding_ok,
        "SHA-512(\"oauth3-attest-v1\" ‖ signing_key (32 bytes) ‖ config_hash ‖ nonce)",
    ));

    if document["tee"] != Value::Bool(true) {
        checks.push(Check::new("tee", false, "the gateway says it runs outside a TEE: nothing is attested"));
        return checks;
    }
    let parsed = field("quote")
        .ok_or_else(|| "no quote".to_owned())
        .and_then(|bytes| Quote::parse(&bytes).map_err(|e| format!("not a quote: {e}")).map(|quote| (bytes, quote)));
    let report = match &parsed {
        Ok((_, quote)) => quote.report.as_td10().cloned().ok_or_else(|| "not a TDX quote".to_owned()),
        Err(error) => Err(error.clone()),
    };
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            checks.push(Check::new("quote", false, error));
            return checks;
        }
    };
    checks.push(Check::new(
        "quote_report_data",
        report_data.as_deref() == Some(&report.report_data[..]),
        "the quote is over the document's report_data",
    ));
    let measured = measurements(&report);
    checks.push(match expected.measurements {
        Some(wanted) => {
            Check::new("os_measurements", lower(wanted) == measured, "MRTD and RTMR0-2 are the expected OS image's")
        }
        None => Check::unpinned(
            "os_measurements",
            "MRTD and RTMR0-2 not compared with a known dstack OS image (--measurements): any OS could have \
             extended RTMR3",
        ),
    });

    let replay = replay_rtmr3(&document["event_log"]);
    let (replay_ok, detail) = match &replay {
        Ok(replayed) => (replayed.rtmr3 == report.rt_mr3, format!("RTMR3 {}", hex(&report.rt_mr3))),
        Err(error) => (false, error.clone()),
    };
    checks.push(Check::new("rtmr3", replay_ok, detail));
    let logged = |name: &str| replay.as_ref().ok().and_then(|r| r.event(name)).map(hex);
    let said = |name: &str| document.get(name).and_then(Value::as_str).map(str::to_ascii_lowercase);
    checks.push(Check::new(
        "app_id",
        logged("app-id").is_some() && logged("app-id") == said("app_id"),
        "the event log's app-id is the document's",
    ));
    checks.push(pinned("expected_app_id", expected.app_id, logged("app-id"), "--app-id"));
    checks.push(Check::new(
        "compose_hash",
        logged("compose-hash").is_some() && logged("compose-hash") == said("compose_hash"),
        "the event log's compose-hash is the document's",
    ));
    let file_hash = expected.compose.map(|compose| hex(digest(&SHA256, compose).as_ref()));
    checks.push(pinned("expected_compose", file_hash.as_deref(), said("compose_hash"), "--compose"));

    let provider = replay
        .as_ref()
        .ok()
        .and_then(|r| r.event("key-provider"))
        .and_then(|payload| serde_json::from_slice::<Value>(payload).ok());
    let name = provider.as_ref().and_then(|p| p["name"].as_str()).unwrap_or_default().to_owned();
    checks.push(Check::new("key_provider", name == "kms", format!("keys from a dstack KMS (the log says {name:?})")));
    let id = provider.as_ref().and_then(|p| p["id"].as_str()).map(str::to_ascii_lowercase);
    checks.push(pinned("expected_key_provider", expected.key_provider_id, id, "--key-provider-id"));
    checks
}

/// An expected value (hex, any case) against the found one, or unpinned.
fn pinned(name: &'static str, expected: Option<&str>, found: Option<String>, option: &str) -> Check {
    let found_text = found.clone().unwrap_or_else(|| "none".into());
    match expected {
        Some(wanted) => Check::new(
            name,
            found.is_some_and(|f| f.eq_ignore_ascii_case(wanted.trim())),
            format!("expected {}, attested {found_text}", wanted.trim()),
        ),
        None => Check::unpinned(name, format!("attested {found_text}; nothing expected ({option})")),
    }
}

fn lower(measurements: &Measurements) -> Measurements {
    let clean = |text: &str| text.trim().trim_start_matches("0x").to_ascii_lowercase();
    Measurements {
        mrtd: clean(&measurements.mrtd),
        rtmr0: clean(&measurements.rtmr0),
        rtmr1: clean(&measurements.rtmr1),
        rtmr2: clean(&measurements.rtmr2),
    }
}

/// Whether two URLs have the same scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin() && a.origin().is_tuple(),
        _ => false,
    }
}

/// The boot measurements a quote carries, to print and to pin.
pub fn measurements_of(quote: &[u8]) -> Option<Measurements> {
    Some(measurements(Quote::parse(quote).ok()?.report.as_td10()?))
}

fn measurements(report: &TDReport10) -> Measurements {
    Measurements {
        mrtd: hex(&report.mr_td),
        rtmr0: hex(&report.rt_mr0),
        rtmr1: hex(&report.rt_mr1),
        rtmr2: hex(&report.rt_mr2),
    }
}

/// Verifies the quote's signature chain and TCB against `collateral` at
/// `now_secs` (Unix seconds). The TCB must be `UpToDate`, or one of the
/// statuses in `also_allowed` (say `SWHardeningNeeded`).
pub fn verify_quote(quote: &[u8], collateral: &QuoteCollateralV3, now_secs: u64, also_allowed: &[String]) -> Check {
    match dcap_qvl::verify::verify(quote, collateral, now_secs) {
        Ok(report) => {
            let ok = report.status == "UpToDate" || also_allowed.contains(&report.status);
            let advisories = if report.advisory_ids.is_empty() {
                String::new()
            } else {
                format!(" (advisories: {})", report.advisory_ids.join(", "))
            };
            Check::new("quote_signature", ok, format!("Intel DCAP: TCB status {}{advisories}", report.status))
        }
        Err(error) => Check::new("quote_signature", false, format!("Intel DCAP: {error:#}")),
    }
}

/// The RTMR3 an event log replays to, and its runtime events.
#[derive(Debug)]
pub struct Replayed {
    /// SHA-384 chain over the digests of the log's IMR 3 events.
    pub rtmr3: [u8; 48],
    events: Vec<(String, Vec<u8>)>,
}

impl Replayed {
    /// The payload of the first runtime event named `name`.
    pub fn event(&self, name: &str) -> Option<&[u8]> {
        self.events.iter().find(|(n, _)| n == name).map(|(_, payload)| payload.as_slice())
    }
}

/// Replays RTMR3: from 48 zero bytes, `mr = SHA-384(mr ‖ digest)` for each
/// IMR 3 event, in order. A runtime event's digest must be
/// `SHA-384(u32le(event_type) ‖ ":" ‖ event ‖ ":" ‖ payload)`, so its name
/// and payload cannot be swapped under a measured digest.
pub fn replay_rtmr3(log: &Value) -> Result<Replayed, String> {
    let entries = log.as_array().ok_or("no event log")?;
    let mut rtmr3 = [0u8; 48];
    let mut events = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry["imr"].as_u64() != Some(3) {
            continue;
        }
        let bad = |what: &str| format!("event {i}: {what}");
        let digest_bytes = entry["digest"].as_str().and_then(|d| hex_bytes(d).ok()).ok_or_else(|| bad("digest"))?;
        if digest_bytes.len() != 48 {
            return Err(bad("digest is not 48 bytes"));
        }
        let event_type = entry["event_type"].as_u64().and_then(|t| u32::try_from(t).ok()).ok_or_else(|| bad("type"))?;
        if event_type == RUNTIME_EVENT {
            let name = entry["event"].as_str().ok_or_else(|| bad("name"))?;
            let payload =
                entry["event_payload"].as_str().and_then(|p| hex_bytes(p).ok()).ok_or_else(|| bad("payload"))?;
            if runtime_event_digest(name, &payload)[..] != digest_bytes[..] {
                return Err(bad(&format!("{name}'s digest does not match its payload")));
            }
            events.push((name.to_owned(), payload));
        }
        let extended = digest(&SHA384, &[&rtmr3[..], &digest_bytes].concat());
        rtmr3.copy_from_slice(extended.as_ref());
    }
    Ok(Replayed { rtmr3, events })
}

/// `SHA-384(u32le(0x08000001) ‖ ":" ‖ name ‖ ":" ‖ payload)`.
pub fn runtime_event_digest(name: &str, payload: &[u8]) -> [u8; 48] {
    let message = [&RUNTIME_EVENT.to_le_bytes()[..], b":", name.as_bytes(), b":", payload].concat();
    digest(&SHA384, &message).as_ref().try_into().expect("SHA-384 is 48 bytes")
}

/// Intel's collateral for `quote` from a PCCS (or Intel's PCS), fetched
/// with `client`: PCK CRL, TCB info, QE identity and root CA CRL, with the
/// PCK chain the quote carries.
pub async fn fetch_collateral(client: &reqwest::Client, pccs: &str, quote: &[u8]) -> Result<QuoteCollateralV3, String> {
    let parsed = Quote::parse(quote).map_err(|e| format!("not a quote: {e}"))?;
    let pck_chain = std::str::from_utf8(parsed.raw_cert_chain().map_err(|e| format!("{e:#}"))?)
        .map_err(|_| "the quote's PCK chain is not PEM text")?
        .trim_end_matches('\0')
        .to_owned();
    let fmspc = hex(&dcap_qvl::intel::quote_fmspc(&parsed).map_err(|e| format!("{e:#}"))?);
    let ca = dcap_qvl::intel::quote_ca(&parsed).map_err(|e| format!("{e:#}"))?.as_id_str();
    let base = pccs.trim_end_matches('/');
    let tee = if parsed.header.is_sgx() { "sgx" } else { "tdx" };

    let (pck_crl, pck_crl_chain) =
        get(client, &format!("{base}/sgx/certification/v4/pckcrl?ca={ca}&encoding=der"), "SGX-PCK-CRL-Issuer-Chain")
            .await?;
    let (tcb, tcb_chain) =
        get(client, &format!("{base}/{tee}/certification/v4/tcb?fmspc={fmspc}"), "TCB-Info-Issuer-Chain").await?;
    let (identity, identity_chain) =
        get(client, &format!("{base}/{tee}/certification/v4/qe/identity"), "SGX-Enclave-Identity-Issuer-Chain").await?;
    // A PCCS serves the root CA's CRL (as hex); Intel's PCS does not, so
    // it comes from the CRL distribution point of Intel's SGX root CA.
    let root_ca_crl = match get(client, &format!("{base}/sgx/certification/v4/rootcacrl"), "").await {
        Ok((body, _)) => std::str::from_utf8(&body).ok().and_then(|t| hex_bytes(t.trim()).ok()).unwrap_or(body),
        Err(_) => get(client, INTEL_ROOT_CA_CRL, "").await?.0,
    };

    let signed = |body: &[u8], field: &str| -> Result<(String, Vec<u8>), String> {
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("{field}: {e}"))?;
        let signature =
            value["signature"].as_str().and_then(|s| hex_bytes(s).ok()).ok_or_else(|| format!("{field}: signature"))?;
        Ok((value[field].to_string(), signature))
    };
    let (tcb_info, tcb_info_signature) = signed(&tcb, "tcbInfo")?;
    let (qe_identity, qe_identity_signature) = signed(&identity, "enclaveIdentity")?;
    Ok(QuoteCollateralV3 {
        pck_crl_issuer_chain: pck_crl_chain,
        root_ca_crl,
        pck_crl,
        tcb_info_issuer_chain: tcb_chain,
        tcb_info,
        tcb_info_signature,
        qe_identity_issuer_chain: identity_chain,
        qe_identity,
        qe_identity_signature,
        pck_certificate_chain: Some(pck_chain),
    })
}

/// GETs `url`: the body, and the URL-decoded `header` (when named).
async fn get(client: &reqwest::Client, url: &str, header: &str) -> Result<(Vec<u8>, String), String> {
    let response = client.get(url).send().await.map_err(|e| format!("{url}: {}", chain(&e)))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let value = match header {
        "" => String::new(),
        // Intel's PCS names the TCB chain with an SGX- prefix.
        name => {
            let raw = response
                .headers()
                .get(name)
                .or_else(|| response.headers().get(format!("SGX-{name}")))
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{url}: no {name} header"))?;
            // Percent-decoding only: a literal `+` in base64 stays a `+`.
            percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| format!("{url}: {name} is not UTF-8"))?
                .into_owned()
        }
    };
    Ok((read_limited(response, url).await?, value))
}

/// A response's body, refused past [`MAX_RESPONSE_BYTES`].
pub(crate) async fn read_limited(mut response: reqwest::Response, url: &str) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {}", chain(&e)))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!("{url}: the response is over {MAX_RESPONSE_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An error and its sources, `: `-separated (reqwest's own text hides why).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
