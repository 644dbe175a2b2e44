//! `oauth3 attest verify` and `oauth3 receipt verify`: an owner's checks of
//! a gateway, run on the owner's machine. Each prints what it checked and
//! returns false on any mismatch (the binary then exits non-zero).

use std::path::Path;
use std::time::Duration;

use dcap_qvl::QuoteCollateralV3;
use serde_json::Value;

use super::dstack::hex_bytes;
use super::verify::{Check, chain, check_document, fetch_collateral, verify_quote};
use crate::keys::{hex, random_bytes};
use crate::receipts::Receipt;

/// `oauth3 attest verify`: fetches `/attestation` with a fresh nonce and
/// checks it all; `compose` is the app-compose.json the owner expects,
/// `collateral` a saved collateral file (else fetched from `pccs`).
pub async fn attest_verify(url: &str, compose: Option<&Path>, pccs: &str, collateral: Option<&Path>) -> bool {
    match attest(url, compose, pccs, collateral).await {
        Ok(passed) => passed,
        Err(error) => {
            eprintln!("oauth3 attest verify: {error}");
            false
        }
    }
}

async fn attest(url: &str, compose: Option<&Path>, pccs: &str, collateral: Option<&Path>) -> Result<bool, String> {
    let compose = compose.map(read).transpose()?;
    let collateral: Option<QuoteCollateralV3> = collateral
        .map(|path| serde_json::from_slice(&read(path)?).map_err(|e| format!("{}: {e}", path.display())))
        .transpose()?;
    let client = client()?;
    let nonce = random_bytes::<32>().map_err(|e| e.to_string())?;
    let document = attestation(&client, url, &nonce).await?;

    let shown = |name: &str| document.get(name).and_then(Value::as_str).unwrap_or("-").to_owned();
    println!("gateway       {url}");
    for name in ["app_id", "compose_hash", "instance_id", "signing_key"] {
        println!("{name:<13} {}", shown(name));
    }
    let config = serde_json::to_string_pretty(&document["config"]).unwrap_or_default();
    println!("config        {}", config.replace('\n', "\n              "));

    let mut checks = check_document(&document, &nonce, compose.as_deref());
    if document["tee"] == Value::Bool(true) {
        let quote = document["quote"].as_str().and_then(|q| hex_bytes(q).ok()).unwrap_or_default();
        let collateral = match collateral {
            Some(collateral) => Ok(collateral),
            None => fetch_collateral(&client, pccs, &quote).await,
        };
        checks.push(match collateral {
            Ok(collateral) => verify_quote(&quote, &collateral, now_secs()),
            Err(error) => Check { name: "quote_signature", ok: false, detail: format!("collateral: {error}") },
        });
    }
    for check in &checks {
        println!("{} {:<17} {}", if check.ok { "ok  " } else { "FAIL" }, check.name, check.detail);
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        println!("verified: every check passed");
    } else {
        println!("NOT verified: {failed} of {} checks failed", checks.len());
    }
    Ok(failed == 0)
}

/// `oauth3 receipt verify`: checks a saved receipt (or a status or decision
/// response holding one) against `key` (hex), or the key a gateway's
/// `/attestation` names.
pub async fn receipt_verify(path: &Path, key: Option<&str>, url: Option<&str>) -> bool {
    match receipt(path, key, url).await {
        Ok(()) => true,
        Err(error) => {
            eprintln!("oauth3 receipt verify: {error}");
            false
        }
    }
}

async fn receipt(path: &Path, key: Option<&str>, url: Option<&str>) -> Result<(), String> {
    let text = read(path)?;
    let value: Value = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    // The receipt itself, or the response that carries one.
    let found = ["receipt", "approval_receipt"].iter().find_map(|name| value.get(*name).filter(|v| v.is_object()));
    let receipt: Receipt = serde_json::from_value(found.unwrap_or(&value).clone())
        .map_err(|e| format!("{}: not a receipt ({e})", path.display()))?;
    let key = match (key, url) {
        (Some(key), _) => hex_bytes(key.trim()).map_err(|e| format!("--key: hex ({e})"))?,
        (None, Some(url)) => {
            let nonce = random_bytes::<16>().map_err(|e| e.to_string())?;
            let document = attestation(&client()?, url, &nonce).await?;
            eprintln!("key from {url}/attestation; `oauth3 attest verify --url {url}` checks that key");
            document["signing_key"].as_str().and_then(|k| hex_bytes(k).ok()).ok_or("the attestation has no key")?
        }
        (None, None) => return Err("give --key or --url".into()),
    };
    if key.len() != 32 {
        return Err("--key: an Ed25519 public key is 32 bytes".into());
    }
    receipt.verify(&key).map_err(|e| format!("INVALID: {e}"))?;
    let field = |name: &str| receipt.payload.get(name).and_then(Value::as_str).unwrap_or("-").to_owned();
    println!("valid {} signed by {}", field("type"), hex(&key));
    println!("{}", serde_json::to_string_pretty(&receipt.payload).unwrap_or_default());
    Ok(())
}

async fn attestation(client: &reqwest::Client, url: &str, nonce: &[u8]) -> Result<Value, String> {
    let url = format!("{}/attestation?nonce={}", url.trim_end_matches('/'), hex(nonce));
    let response = client.get(&url).send().await.map_err(|e| format!("{url}: {}", chain(&e)))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
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
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map_err(|e| format!("stdin: {e}"))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
