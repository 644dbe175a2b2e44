//! `/secrets`: owners store sealed values and list names. No endpoint ever
//! returns a value.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use super::Json;
use crate::auth::Owner;
use crate::db::{now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::state::Gateway;

const MAX_VALUE_BYTES: usize = 64 << 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    name: String,
    value: String,
}

/// Stores or replaces a secret: 201 when new, 200 when replaced.
pub async fn put(
    State(gateway): State<Arc<Gateway>>,
    owner: Owner,
    Json(body): Json<PutSecret>,
) -> Result<(StatusCode, Json<Value>)> {
    check_name(&body.name)?;
    if body.value.is_empty() || body.value.len() > MAX_VALUE_BYTES {
        return Err(Error::bad_request("invalid_request", format!("value: 1 to {MAX_VALUE_BYTES} bytes")));
    }
    if body.value.chars().any(|c| c.is_control() && c != '\t') {
        // Secrets are injected into headers and query strings.
        return Err(Error::bad_request("invalid_request", "value: must not contain control characters or newlines"));
    }
    let sealed = gateway.sealer.seal(&owner.id, &body.name, body.value.as_bytes())?;
    let now = now_ms();
    let replaced = sqlx::query("UPDATE secrets SET sealed = $1, updated_at = $2 WHERE owner_id = $3 AND name = $4")
        .bind(&sealed)
        .bind(now)
        .bind(&owner.id)
        .bind(&body.name)
        .execute(&gateway.db.pool)
        .await?
        .rows_affected()
        == 1;
    let created_at: i64 = if replaced {
        sqlx::query_scalar("SELECT created_at FROM secrets WHERE owner_id = $1 AND name = $2")
            .bind(&owner.id)
            .bind(&body.name)
            .fetch_one(&gateway.db.pool)
            .await?
    } else {
        sqlx::query(
            "INSERT INTO secrets (owner_id, name, sealed, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (owner_id, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(&owner.id)
        .bind(&body.name)
        .bind(&sealed)
        .bind(now)
        .execute(&gateway.db.pool)
        .await?;
        now
    };
    tracing::info!(owner = %owner.id, secret = %body.name, "secret stored");
    let status = if replaced { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(json!({"name": body.name, "created_at": rfc3339(created_at), "updated_at": rfc3339(now)}))))
}

/// The owner's secret names and timestamps.
pub async fn list(State(gateway): State<Arc<Gateway>>, owner: Owner) -> Result<Json<Value>> {
    let rows = sqlx::query("SELECT name, created_at, updated_at FROM secrets WHERE owner_id = $1 ORDER BY name")
        .bind(&owner.id)
        .fetch_all(&gateway.db.pool)
        .await?;
    let secrets = rows
        .iter()
        .map(|row| {
            Ok(json!({
                "name": row.try_get::<String, _>("name")?,
                "created_at": rfc3339(row.try_get("created_at")?),
                "updated_at": rfc3339(row.try_get("updated_at")?),
            }))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Json(json!({"secrets": secrets})))
}

/// Deletes a secret: 204, or 404 when the owner has none of that name.
pub async fn delete(State(gateway): State<Arc<Gateway>>, owner: Owner, Path(name): Path<String>) -> Result<StatusCode> {
    let deleted = sqlx::query("DELETE FROM secrets WHERE owner_id = $1 AND name = $2")
        .bind(&owner.id)
        .bind(&name)
        .execute(&gateway.db.pool)
        .await?
        .rows_affected();
    if deleted == 0 {
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
