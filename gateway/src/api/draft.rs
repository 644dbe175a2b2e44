//! `POST /draft`: preview what the drafter makes of an intent, without
//! creating a request.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Json;
use super::permits::spec_json;
use crate::auth::Auth;
use crate::error::Result;
use crate::state::Gateway;
use oauth3_drafting::Intents;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    intent: Intents,
}

/// `POST /draft {intent}` (agent or owner): the drafted spec, its rationale,
/// warnings and the hashes of the docs read.
pub async fn draft(
    State(gateway): State<Arc<Gateway>>,
    caller: Auth,
    Json(body): Json<DraftRequest>,
) -> Result<Json<Value>> {
    let draft = gateway.drafting.draft(&body.intent.into_vec()).await?;
    let compiled = gateway.compile(&draft.spec)?;
    tracing::info!(caller = %caller.id, drafter = %draft.provenance.drafter, spec_hash = %compiled.spec_hash(), "drafted");
    let mut view = spec_json(&compiled);
    view["draft"] = serde_json::to_value(&draft.provenance).unwrap_or(Value::Null);
    Ok(Json(json!(view)))
}
