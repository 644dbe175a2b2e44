//! `/secrets`: owners store sealed values and list names. No endpoint ever
//! returns a value.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::Json;
use crate::auth::Owner;
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::state::Gateway;
use crate::store::{SecretRow, secrets};
use crate::views::{SecretList, SecretView};

const MAX_VALUE_BYTES: usize = 64 << 10;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    /// As specs name it: `GITHUB_TOKEN`.
    name: String,
    /// The credential; sealed, and never returned by any endpoint.
    value: String,
}

/// Stores or replaces a secret: 201 when new, 200 when replaced.
pub async fn put(
    State(gateway): State<Arc<Gateway>>,
    owner: Owner,
    Json(body): Json<PutSecret>,
) -> Result<(StatusCode, Json<SecretView>)> {
    let (row, replaced) = store(&gateway, &owner.id, &body.name, &body.value).await?;
    let status = if replaced { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(SecretView::of(&row))))
}

/// Seals and stores `owner`'s secret `name`: the row, and whether it
/// replaced one. The JSON API and the web UI's forms both come here.
pub(crate) async fn store(gateway: &Gateway, owner: &str, name: &str, value: &str) -> Result<(SecretRow, bool)> {
    check_name(name)?;
    if value.is_empty() || value.len() > MAX_VALUE_BYTES {
        return Err(Error::bad_request("invalid_request", format!("value: 1 to {MAX_VALUE_BYTES} bytes")));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        // Secrets are injected into headers and query strings.
        return Err(Error::bad_request("invalid_request", "value: must not contain control characters or newlines"));
    }
    // Sealed under the version the database names; a rotation moving it on
    // in between makes the write refuse, and this seals again.
    for _ in 0..3 {
        let version = secrets::sealing_version(&gateway.db).await?;
        let bytes = gateway.keyring.sealer(version).await?.seal(owner, name, value.as_bytes())?;
        let sealed = secrets::Sealed { bytes, version };
        if let Some(stored) = secrets::put(&gateway.db, owner, name, &sealed, now_ms()).await? {
            tracing::info!(owner, secret = %name, key = %version, "secret stored");
            return Ok(stored);
        }
    }
    Err(Error::Internal("the sealing key version kept changing; try again".into()))
}

/// The owner's secret names and timestamps.
pub async fn list(State(gateway): State<Arc<Gateway>>, owner: Owner) -> Result<Json<SecretList>> {
    let rows = secrets::of_owner(&gateway.db, &owner.id).await?;
    Ok(Json(SecretList { secrets: rows.iter().map(SecretView::of).collect() }))
}

/// Deletes a secret: 204, or 404 when the owner has none of that name.
pub async fn delete(State(gateway): State<Arc<Gateway>>, owner: Owner, Path(name): Path<String>) -> Result<StatusCode> {
    if !secrets::delete(&gateway.db, &owner.id, &name).await? {
        return Err(Error::NotFound(format!("no secret named {name}")));
    }
    tracing::info!(owner = %owner.id, secret = %name, "secret deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The same names specs may declare in `secrets`.
fn check_name(name: &str) -> Result<()> {
    if oauth3_policy::is_secret_name(name) {
        Ok(())
    } else {
        Err(Error::bad_request(
            "invalid_request",
            "name: a letter or '_' then letters, digits or '_' (at most 128), e.g. GITHUB_TOKEN",
        ))
    }
}
