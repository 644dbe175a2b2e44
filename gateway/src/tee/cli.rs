//! `oauth3 attest verify` and `oauth3 receipt verify`: an owner's checks of
//! a gateway, run on the owner's machine. Each prints what it checked and
//! returns false unless everything held (the binary then exits non-zero).
//! What the gateway sends is untrusted: it is printed with control
//! characters escaped, so it cannot redraw the terminal.

use std::path::Path;
use std::time::Duration;

use dcap_qvl::QuoteCollateralV3;
use serde_json::Value;

use super::dstack::hex_bytes;
use super::verify::{
    Check, Expected, Measurements, Status, chain, check_document, fetch_collateral, measurements_of, read_limited,
    verify_quote,
};
use crate::config::Expectations;
use crate::keys::{hex, random_bytes};
use crate::offline::{read_input, read_json};
use crate::receipts::Receipt;
use crate::visible::shown as printable;

/// `oauth3 attest verify`: fetches `/attestation` with a fresh nonce and
/// checks it against `expected`.
pub async fn attest_verify(url: &str, expected: &Expectations) -> bool {
    match attest(url, expected).await {
        Ok((passed, _)) => passed,
        Err(error) => {
            eprintln!("oauth3 attest verify: {}", printable(&error));
            false
        }
    }
}

/// Verifies the gateway at `url`: whether it all held, and the document.
async fn attest(url: &str, expected: &Expectations) -> Result<(bool, Value), String> {
    let compose = expected.compose.as_deref().map(read).transpose()?;
    let measurements: Option<Measurements> = expected.measurements.as_deref().map(read_json).transpose()?;
    let collateral: Option<QuoteCollateralV3> = expected.collateral.as_deref().map(read_json).transpose()?;
    let client = client()?;
    let nonce = random_bytes::<32>().map_err(|e| e.to_string())?;
    let document = attestation(&client, url, &nonce).await?;

    let shown = |name: &str| printable(document.get(name).and_then(Value::as_str).unwrap_or("-"));
    println!("gateway       {}", printable(url));
    for name in ["app_id", "compose_hash", "instance_id", "signing_key"] {
        println!("{name:<13} {}", shown(name));
    }
    let quote = document["quote"].as_str().and_then(|q| hex_bytes(q).ok()).unwrap_or_default();
    if let Some(measured) = measurements_of(&quote) {
        let json = serde_json::to_string(&measured).unwrap_or_default();
        println!("measurements  {json}");
    }
    let config = serde_json::to_string_pretty(&document["config"]).unwrap_or_default();
    println!("config        {}", config.replace('\n', "\n              "));

    let mut checks = vec![transport(url)];
    let pins = Expected {
        nonce: &nonce,
        url: Some(url),
        compose: compose.as_deref(),
        app_id: expected.app_id.as_deref(),
        key_provider_id: expected.key_provider_id.as_deref(),
        measurements: measurements.as_ref(),
    };
    checks.extend(check_document(&document, &pins));
    if document["tee"] == Value::Bool(true) {
        let collateral = match collateral {
            Some(collateral) => Ok(collateral),
            None => fetch_collateral(&client, &expected.pccs, &quote).await,
        };
        checks.push(match collateral {
            Ok(collateral) => verify_quote(&quote, &collateral, now_secs(), &expected.allow_tcb_status),
            Err(error) => {
                Check { name: "quote_signature", status: Status::Fail, detail: format!("collateral: {error}") }
            }
        });
    }
    for check in &checks {
        let label = match check.status {
            Status::Ok => "ok",
            Status::Fail => "FAIL",
            Status::Unpinned => "UNPINNED",
        };
        println!("{label:<8} {:<21} {}", check.name, printable(&check.detail));
    }
    let count = |status| checks.iter().filter(|c| c.status == status).count();
    let (failed, unpinned) = (count(Status::Fail), count(Status::Unpinned));
    if failed > 0 {
        println!("NOT verified: {failed} of {} checks failed", checks.len());
    } else if unpinned > 0 {
        println!("NOT verified: every check held, but {unpinned} had nothing to compare with (see UNPINNED)");
    } else {
        println!("verified: every check passed");
    }
    Ok((failed == 0 && unpinned == 0, document))
}

/// Plain http lets anyone on the path relay a genuine attestation and read
/// what follows it; only a loopback address is spared.
fn transport(url: &str) -> Check {
    let parsed = url::Url::parse(url);
    let ok = match &parsed {
        Ok(parsed) if parsed.scheme() == "https" => true,
        Ok(parsed) if parsed.scheme() == "http" => crate::config::names_this_machine(parsed),
        _ => false,
    };
    Check {
        name: "transport",
        status: if ok { Status::Ok } else { Status::Fail },
        detail: "https (plain http only to a loopback address)".into(),
    }
}

/// `oauth3 receipt verify`: checks a saved receipt (or a status or decision
/// response holding one) against `key` (hex), or the key of the gateway at
/// `url` once its attestation verifies against `expected`.
pub async fn receipt_verify(path: &Path, key: Option<&str>, url: Option<&str>, expected: &Expectations) -> bool {
    match receipt(path, key, url, expected).await {
        Ok(()) => true,
        Err(error) => {
            eprintln!("oauth3 receipt verify: {}", printable(&error));
            false
        }
    }
}

async fn receipt(path: &Path, key: Option<&str>, url: Option<&str>, expected: &Expectations) -> Result<(), String> {
    let text = read(path)?;
    let value: Value = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    // The receipt itself, or the response that carries one.
    let found = ["receipt", "approval_receipt"].iter().find_map(|name| value.get(*name).filter(|v| v.is_object()));
    let receipt: Receipt = serde_json::from_value(found.unwrap_or(&value).clone())
        .map_err(|e| format!("{}: not a receipt ({e})", path.display()))?;
    let key = match (key, url) {
        (Some(key), _) => hex_bytes(key.trim()).map_err(|e| format!("--key: hex ({e})"))?,
        (None, Some(url)) => {
            let (verified, document) = attest(url, expected).await?;
            if !verified {
                return Err(format!("{url} did not verify, so its key is not trusted"));
            }
            document["signing_key"].as_str().and_then(|k| hex_bytes(k).ok()).ok_or("the attestation has no key")?
        }
        (None, None) => return Err("give --key or --url".into()),
    };
    if key.len() != 32 {
        return Err("--key: an Ed25519 public key is 32 bytes".into());
    }
    receipt.verify(&key).map_err(|e| format!("INVALID: {e}"))?;
    let kind = receipt.payload.get("type").and_then(Value::as_str).unwrap_or("-");
    println!("valid {} signed by {}", printable(kind), hex(&key));
    println!("{}", serde_json::to_string_pretty(&receipt.payload).unwrap_or_default());
    Ok(())
}

async fn attestation(client: &reqwest::Client, url: &str, nonce: &[u8]) -> Result<Value, String> {
    let url = format!("{}/attestation?nonce={}", url.trim_end_matches('/'), hex(nonce));
    let response = client.get(&url).send().await.map_err(|e| format!("{url}: {}", chain(&e)))?;
    let status = response.status();
    let body = read_limited(response, &url).await?;
    if !status.is_success() {
        return Err(format!(
            "{url}: HTTP {status}: {}",
            String::from_utf8_lossy(&body).chars().take(300).collect::<String>()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON ({e})"))
}

fn client() -> Result<reqwest::Client, String> {
    let tls = oauth3_netguard::tls_config(&[]).map_err(|e| format!("TLS: {e}"))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// `-` reads standard input.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    read_input(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
