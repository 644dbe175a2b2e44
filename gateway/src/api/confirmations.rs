//! The owner's confirmations of single calls: a call that a rule marked
//! `confirm` allows waits here (see `crate::confirm`); its owner lists,
//! reads and decides them. Approving lets that exact request through once,
//! within 15 minutes, under that permit.

use std::sync::Arc;

use axum::extract::{Path, State};
use serde::Deserialize;

use super::{Json, Query};
use crate::auth::Owner;
use crate::confirm::APPROVED_FOR_MS;
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::state::Gateway;
use crate::store::ConfirmationStatus;
use crate::store::confirmations::{self, Filter};
use crate::views::{ConfirmationList, ConfirmationView};

/// `GET /confirmations`' query.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `pending` (the default), `approved`, `denied`, `used`, `expired` or `all`.
    #[serde(default)]
    status: Option<String>,
}

/// `GET /confirmations`: the owner's confirmations, newest first; pending
/// ones unless `status` says otherwise.
pub async fn list(
    State(gateway): State<Arc<Gateway>>,
    owner: Owner,
    Query(query): Query<ListQuery>,
) -> Result<Json<ConfirmationList>> {
    let filter = match query.status.as_deref().unwrap_or("pending") {
        "all" => Filter::All,
        status => Filter::Shown(status.parse::<ConfirmationStatus>().map_err(|_| {
            Error::bad_request("invalid_request", "status: one of pending, approved, denied, used, expired, all")
        })?),
    };
    Ok(Json(list_of(&gateway, &owner.id, filter).await?))
}

/// The owner's confirmations `filter` admits, as the API and the web page show them.
pub(crate) async fn list_of(gateway: &Gateway, owner: &str, filter: Filter) -> Result<ConfirmationList> {
    let now = now_ms();
    let rows = confirmations::of_owner(&gateway.db, owner, filter, now).await?;
    Ok(ConfirmationList { confirmations: rows.into_iter().map(|row| ConfirmationView::of(row, now)).collect() })
}

/// `GET /confirmations/{id}`: one of the owner's confirmations.
pub async fn show(
    State(gateway): State<Arc<Gateway>>,
    owner: Owner,
    Path(id): Path<String>,
) -> Result<Json<ConfirmationView>> {
    Ok(Json(visible(&gateway, &owner.id, &id).await?))
}

/// The confirmation `id` if it is under one of `owner`'s permits, else 404
/// (whether or not it exists).
pub(crate) async fn visible(gateway: &Gateway, owner: &str, id: &str) -> Result<ConfirmationView> {
    let row = confirmations::of_owner_by_id(&gateway.db, owner, id).await?;
    let row = row.ok_or_else(|| Error::NotFound(format!("no confirmation {id} visible to you")))?;
    Ok(ConfirmationView::of(row, now_ms()))
}

/// `POST /confirmations/{id}`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationDecision {
    /// `approve` or `deny`.
    action: String,
}

/// `POST /confirmations/{id}` (JSON): the owner approves or denies a pending confirmation.
pub async fn decide(
    State(gateway): State<Arc<Gateway>>,
    owner: Owner,
    Path(id): Path<String>,
    Json(body): Json<ConfirmationDecision>,
) -> Result<Json<ConfirmationView>> {
    let approve = match body.action.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(Error::bad_request("invalid_request", "action: must be \"approve\" or \"deny\"")),
    };
    decide_as(&gateway, &owner.id, &id, approve).await.map(Json)
}

/// Decides the confirmation `id` as `owner` chose, from the API or the web
/// form: 404 if it is not under one of their permits, 409 once it is no
/// longer pending. The decision is kept on the row (who, when) and logged.
pub(crate) async fn decide_as(gateway: &Gateway, owner: &str, id: &str, approve: bool) -> Result<ConfirmationView> {
    let current = visible(gateway, owner, id).await?;
    let not_pending =
        |status: ConfirmationStatus| Error::conflict("already_decided", format!("this confirmation is {status}"));
    if current.status != ConfirmationStatus::Pending {
        return Err(not_pending(current.status));
    }
    let now = now_ms();
    let (status, expires_at) = match approve {
        true => (ConfirmationStatus::Approved, now + APPROVED_FOR_MS),
        false => (ConfirmationStatus::Denied, now),
    };
    let decision = confirmations::Decision { owner, status, at: now, expires_at };
    if !confirmations::decide(&gateway.db, id, &decision).await? {
        // Decided or expired since it was read.
        return Err(not_pending(visible(gateway, owner, id).await?.status));
    }
    tracing::info!(
        confirmation = %id, permit = %current.permit_id, owner, decision = %status,
        request_hash = %current.request_hash, "call confirmation decided"
    );
    visible(gateway, owner, id).await
}
