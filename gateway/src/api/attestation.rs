//! `GET /attestation?nonce=`: the binding of the receipt-signing key, the
//! public configuration and the caller's nonce, quoted by the TEE when there
//! is one (see `tee::attest`).

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;

use super::{Json, Query};
use crate::error::Result;
use crate::keys::hex;
use crate::state::Gateway;
use crate::tee::attest::{self, Attestation};

#[derive(Deserialize, schemars::JsonSchema)]
pub struct NonceQuery {
    /// 16–32 random bytes, hex: the quote's report data binds it.
    nonce: String,
}

/// Anyone may ask: the document holds nothing secret.
pub async fn attestation(
    State(gateway): State<Arc<Gateway>>,
    Query(query): Query<NonceQuery>,
) -> Result<Json<Attestation>> {
    let nonce = attest::nonce(&query.nonce)?;
    let tee = &gateway.tee;
    let signing_key = ring::signature::KeyPair::public_key(&tee.signing).as_ref().to_vec();
    let config = attest::public_config(&gateway.config, &gateway.public_url, &tee.key_provider);
    let config_hash = attest::config_hash(&config)?;
    let report_data = attest::report_data(&signing_key, &config_hash, &nonce);
    let mut document = Attestation {
        tee: false,
        report_data: hex(&report_data),
        signing_key: hex(&signing_key),
        config_hash: hex(&config_hash),
        config,
        nonce: hex(&nonce),
        quote: None,
        event_log: None,
        app_id: None,
        compose_hash: None,
        instance_id: None,
    };
    if let Some(agent) = &tee.agent {
        let quote = agent.get_quote(&report_data).await?;
        let info = tee.info.get_or_try_init(|| agent.info()).await?;
        let text = |key: &str| info.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        document.tee = true;
        document.quote = Some(quote.quote);
        document.event_log = serde_json::from_str(&quote.event_log).ok();
        document.app_id = text("app_id");
        document.compose_hash = text("compose_hash");
        document.instance_id = text("instance_id");
    }
    Ok(Json(document))
}
