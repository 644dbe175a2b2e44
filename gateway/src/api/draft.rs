//! `POST /draft`: preview what the drafter makes of an intent, without
//! creating a request.

use std::sync::Arc;

use axum::extract::State;
use oauth3_drafting::Intents;
use serde::Deserialize;

use super::Json;
use crate::auth::Auth;
use crate::error::Result;
use crate::state::Gateway;
use crate::views::{DraftView, SpecView};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    /// What the agent needs, per API.
    intent: Intents,
}

/// `POST /draft {intent}` (agent or owner): the drafted spec, its rationale,
/// warnings and the hashes of the docs read.
pub async fn draft(
    State(gateway): State<Arc<Gateway>>,
    caller: Auth,
    Json(body): Json<DraftRequest>,
) -> Result<Json<DraftView>> {
    let draft = gateway.drafting.draft(&body.intent.into_vec()).await?;
    let compiled = gateway.compile(&draft.spec)?;
    tracing::info!(caller = %caller.id, drafter = %draft.provenance.drafter, spec_hash = %compiled.spec_hash(), "drafted");
    Ok(Json(DraftView { spec: SpecView::of(&compiled), draft: draft.provenance }))
}
