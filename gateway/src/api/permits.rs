//! Permits: agents request them (a spec they propose, or an intent for the
//! drafter), owners approve or deny the exact spec hash, and revoke.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use oauth3_policy::{CompiledPermit, PermitSpec, Summary};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Json;
use crate::auth::{self, Agent, Auth, Caller, Owner, Role};
use crate::db::{now_ms, rfc3339, rfc3339_opt};
use crate::error::{Error, Result};
use crate::keys::new_id;
use crate::state::Gateway;
use oauth3_drafting::Intents;

const MAX_EXPIRES_IN_SECS: u64 = 10 * 365 * 24 * 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermitRequest {
    description: String,
    #[serde(default)]
    intent: Option<Intents>,
    #[serde(default)]
    capabilities: Option<Vec<Value>>,
    #[serde(default)]
    permit_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: String,
    permit_id: String,
    agent_id: String,
    description: String,
    intent: Option<String>,
    spec: String,
    spec_hash: String,
    base_spec_hash: Option<String>,
    drafter: Option<String>,
    draft: Option<String>,
    status: String,
    created_at: i64,
    expires_at: i64,
    decided_at: Option<i64>,
    decided_by: Option<String>,
    permit_expires_at: Option<i64>,
    permit_owner: Option<String>,
    permit_status: String,
    permit_spec_hash: Option<String>,
    permit_current_expires_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct PermitRow {
    id: String,
    agent_id: String,
    owner_id: Option<String>,
    status: String,
    spec: Option<String>,
    spec_hash: Option<String>,
    created_at: i64,
    approved_at: Option<i64>,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

/// `POST /permit`: an agent asks for a new permit, or to extend one.
pub async fn request(
    State(gateway): State<Arc<Gateway>>,
    agent: Agent,
    Json(body): Json<PermitRequest>,
) -> Result<(StatusCode, Json<Value>)> {
    let description = body.description.trim();
    if description.is_empty() || description.len() > 4000 {
        return Err(Error::bad_request("invalid_request", "description: say what the permit is for (1–4000 bytes)"));
    }
    let intent = body.intent.map(Intents::into_vec).filter(|i| !i.is_empty());
    let capabilities = body.capabilities.filter(|c| !c.is_empty());
    let (proposed, provenance) = match (&intent, capabilities) {
        (Some(_), Some(_)) => {
            return Err(Error::bad_request("invalid_request", "give either `intent` or `capabilities`, not both"));
        }
        (Some(intents), None) => {
            let draft = gateway.drafting.draft(intents).await?;
            (draft.spec, Some(draft.provenance))
        }
        (None, Some(items)) => (PermitSpec::from_capabilities(items)?, None),
        (None, None) => {
            return Err(Error::bad_request(
                "invalid_request",
                "give `capabilities` (the spec you propose) or `intent` (for the drafter)",
            ));
        }
    };

    let base = match &body.permit_id {
        Some(id) => Some(extendable_permit(&gateway, &agent, id).await?),
        None => None,
    };
    let spec = match &base {
        Some(permit) => combine(permit, proposed)?,
        None => proposed,
    };
    let compiled = gateway.compile(&spec)?;
    let spec_json =
        serde_json::to_string(compiled.spec()).map_err(|e| Error::Internal(format!("serialising a spec: {e}")))?;
    let spec_hash = compiled.spec_hash().to_string();
    let provenance_view = serde_json::to_value(&provenance).unwrap_or(Value::Null);

    let now = now_ms();
    let request_id = new_id("req")?;
    let permit_id = match &base {
        Some(permit) => permit.id.clone(),
        None => new_id("prm")?,
    };
    let mut tx = gateway.db.pool.begin().await?;
    if base.is_none() {
        sqlx::query("INSERT INTO permits (id, agent_id, status, created_at) VALUES ($1, $2, 'pending', $3)")
            .bind(&permit_id)
            .bind(&agent.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO permit_requests (id, permit_id, agent_id, description, intent, spec, spec_hash, base_spec_hash, \
         drafter, draft, status, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12)",
    )
    .bind(&request_id)
    .bind(&permit_id)
    .bind(&agent.id)
    .bind(description)
    .bind(intent.map(|i| serde_json::to_string(&i).unwrap_or_default()))
    .bind(&spec_json)
    .bind(&spec_hash)
    .bind(base.as_ref().and_then(|p| p.spec_hash.clone()))
    .bind(provenance.as_ref().map(|p| p.drafter.clone()))
    .bind(provenance.as_ref().map(serde_json::to_string).transpose().map_err(|e| Error::Internal(e.to_string()))?)
    .bind(now)
    .bind(now + (gateway.config.request_ttl_secs as i64) * 1000)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(request = %request_id, permit = %permit_id, agent = %agent.id, %spec_hash, "permit requested");

    Ok((
        StatusCode::CREATED,
        Json(json!({
            "request_id": request_id,
            "permit_id": permit_id,
            "status": "pending",
            "approval_url": gateway.url(&format!("/approve/{request_id}")),
            "status_url": gateway.url(&format!("/permit/{request_id}")),
            "spec_hash": spec_hash,
            "capabilities": capabilities_json(&compiled),
            "draft": provenance_view,
        })),
    ))
}

async fn extendable_permit(gateway: &Gateway, agent: &Caller, id: &str) -> Result<PermitRow> {
    let permit = load_permit(gateway, id).await?.filter(|p| p.agent_id == agent.id);
    let permit = permit.ok_or_else(|| Error::NotFound(format!("no permit {id} issued to you")))?;
    if permit.status != "active" {
        return Err(Error::conflict(
            "permit_not_active",
            format!("permit {id} is {}; only an active permit can be extended", permit.status),
        ));
    }
    Ok(permit)
}

/// The approved spec with `proposed`'s integrations added; an integration of
/// the same name is replaced (the owner approves the combined spec).
fn combine(permit: &PermitRow, proposed: PermitSpec) -> Result<PermitSpec> {
    let mut spec = PermitSpec::from_json(permit.spec.as_deref().unwrap_or("{\"version\":1,\"integrations\":[]}"))?;
    for integration in proposed.integrations {
        match spec.integrations.iter_mut().find(|i| i.name == integration.name) {
            Some(existing) => *existing = integration,
            None => spec.integrations.push(integration),
        }
    }
    Ok(spec)
}

/// `GET /permit/{request_id}`: the requesting agent, or an owner who may decide it.
pub async fn show_request(
    State(gateway): State<Arc<Gateway>>,
    caller: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let row = visible_request(&gateway, &caller, &id).await?;
    Ok(Json(request_json(&gateway, &row)?))
}

/// `GET /approve/{request_id}`: what an owner is asked to approve.
pub async fn show_for_approval(
    State(gateway): State<Arc<Gateway>>,
    owner: Owner,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let row = visible_request(&gateway, &owner, &id).await?;
    Ok(Json(request_json(&gateway, &row)?))
}

async fn visible_request(gateway: &Gateway, caller: &Caller, id: &str) -> Result<RequestRow> {
    let row = load_request(gateway, id).await?;
    let visible = row.as_ref().is_some_and(|r| match caller.role {
        Role::Agent => r.agent_id == caller.id,
        Role::Owner => {
            r.permit_owner.as_deref() == Some(&caller.id)
                || r.decided_by.as_deref() == Some(&caller.id)
                // An expired request stays visible, so retrying says so (409).
                || (r.permit_owner.is_none() && matches!(r.status.as_str(), "pending" | "expired"))
        }
    });
    match row {
        Some(row) if visible => Ok(row),
        _ => Err(Error::NotFound(format!("no permit request {id} visible to you"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    action: String,
    #[serde(default)]
    owner_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// `POST /approve/{request_id}`: an owner approves or denies the exact spec.
pub async fn approve(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Approval>,
) -> Result<Json<Value>> {
    // The Authorization header wins; `owner_token` in the body is the
    // quickstart's form.
    let token = match (headers.get(AUTHORIZATION), &body.owner_token) {
        (Some(value), _) => auth::bearer(Some(value.to_str().unwrap_or("")))?,
        (None, Some(token)) => token.as_str(),
        (None, None) => auth::bearer(None)?,
    };
    let caller = auth::authenticate(&gateway, token).await?;
    let owner = Owner::check(caller)?;
    let approve = match body.action.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(Error::bad_request("invalid_request", "action: must be \"approve\" or \"deny\"")),
    };
    if body.expires_in.is_some_and(|s| s == 0 || s > MAX_EXPIRES_IN_SECS) {
        return Err(Error::bad_request("invalid_request", "expires_in: seconds, from 1 to ten years"));
    }
    let row = visible_request(&gateway, &owner, &id).await?;
    if row.permit_owner.as_deref().is_some_and(|o| o != owner.id) {
        return Err(Error::Forbidden("this permit belongs to another owner".into()));
    }
    let wanted = if approve { "approved" } else { "denied" };
    match row.status.as_str() {
        "pending" if row.expires_at <= now_ms() => {
            mark_expired(&gateway, &row.id).await?;
            return Err(Error::conflict("request_expired", "this request expired; the agent must request again"));
        }
        "pending" => {}
        status if status == wanted && row.decided_by.as_deref() == Some(&owner.id) => {
            return Ok(Json(decision_json(&gateway, &row, row.status.as_str(), row.permit_expires_at)?));
        }
        "expired" => {
            return Err(Error::conflict("request_expired", "this request expired; the agent must request again"));
        }
        status => return Err(Error::conflict("already_decided", format!("this request was already {status}"))),
    }

    let now = now_ms();
    // Without `expires_in`, an extension keeps the permit's current expiry.
    let permit_expires_at = match body.expires_in {
        Some(secs) => Some(now + (secs as i64) * 1000),
        None => row.permit_current_expires_at,
    };
    let mut tx = gateway.db.pool.begin().await?;
    let decided = sqlx::query(
        "UPDATE permit_requests SET status = $1, decided_at = $2, decided_by = $3, permit_expires_at = $4 \
         WHERE id = $5 AND status = 'pending'",
    )
    .bind(wanted)
    .bind(now)
    .bind(&owner.id)
    .bind(permit_expires_at)
    .bind(&row.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if decided != 1 {
        return Err(Error::conflict("already_decided", "this request was decided meanwhile; read it again"));
    }
    if approve {
        if row.base_spec_hash != row.permit_spec_hash {
            return Err(Error::conflict(
                "permit_changed",
                "the permit changed since this request was made; the agent must request again",
            ));
        }
        // Still valid under the operator's current settings.
        gateway.compile(&PermitSpec::from_json(&row.spec)?)?;
        let updated = sqlx::query(
            "UPDATE permits SET status = 'active', spec = $1, spec_hash = $2, owner_id = $3, approved_at = $4, \
             expires_at = $5 WHERE id = $6 AND (owner_id IS NULL OR owner_id = $3) AND status IN ('pending', 'active')",
        )
        .bind(&row.spec)
        .bind(&row.spec_hash)
        .bind(&owner.id)
        .bind(now)
        .bind(permit_expires_at)
        .bind(&row.permit_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 {
            return Err(Error::conflict("permit_not_active", "the permit was revoked or taken meanwhile"));
        }
    } else if row.permit_status == "pending" {
        sqlx::query("UPDATE permits SET status = 'denied' WHERE id = $1 AND status = 'pending'")
            .bind(&row.permit_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    tracing::info!(request = %row.id, permit = %row.permit_id, owner = %owner.id, decision = wanted, "permit request decided");
    let mut response = decision_json(&gateway, &row, wanted, permit_expires_at)?;
    if approve {
        response["missing_secrets"] = json!(missing_secrets(&gateway, &owner.id, &row.spec).await?);
    }
    Ok(Json(response))
}

fn decision_json(gateway: &Gateway, row: &RequestRow, status: &str, expires_at: Option<i64>) -> Result<Value> {
    Ok(json!({
        "request_id": row.id,
        "permit_id": row.permit_id,
        "status": status,
        "spec_hash": row.spec_hash,
        "expires_at": rfc3339_opt(expires_at),
        "status_url": gateway.url(&format!("/permit/{}", row.id)),
    }))
}

/// Secrets the spec injects that the owner has not stored yet.
async fn missing_secrets(gateway: &Gateway, owner: &str, spec: &str) -> Result<Vec<String>> {
    let spec = PermitSpec::from_json(spec)?;
    let mut missing = Vec::new();
    for name in spec.integrations.iter().flat_map(|i| i.secrets.iter()) {
        let found: Option<i64> = sqlx::query_scalar("SELECT created_at FROM secrets WHERE owner_id = $1 AND name = $2")
            .bind(owner)
            .bind(name)
            .fetch_optional(&gateway.db.pool)
            .await?;
        if found.is_none() && !missing.contains(name) {
            missing.push(name.clone());
        }
    }
    Ok(missing)
}

async fn mark_expired(gateway: &Gateway, id: &str) -> Result<()> {
    sqlx::query("UPDATE permit_requests SET status = 'expired' WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .execute(&gateway.db.pool)
        .await?;
    Ok(())
}

/// `GET /permits/{permit_id}`: its agent or its owner.
pub async fn show_permit(
    State(gateway): State<Arc<Gateway>>,
    caller: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let permit = load_permit(&gateway, &id)
        .await?
        .filter(|p| p.agent_id == caller.id || p.owner_id.as_deref() == Some(&caller.id))
        .ok_or_else(|| Error::NotFound(format!("no permit {id} visible to you")))?;
    Ok(Json(permit_json(&gateway, &permit).await?))
}

/// `GET /permits`: the caller's permits (issued to an agent, or owned by an owner).
pub async fn list(State(gateway): State<Arc<Gateway>>, caller: Auth) -> Result<Json<Value>> {
    let column = match caller.role {
        Role::Agent => "agent_id",
        Role::Owner => "owner_id",
    };
    let sql = format!(
        "SELECT id, agent_id, owner_id, status, spec, spec_hash, created_at, approved_at, expires_at, revoked_at \
         FROM permits WHERE {column} = $1 ORDER BY created_at DESC LIMIT 1000"
    );
    let rows: Vec<PermitRow> = sqlx::query_as(&sql).bind(&caller.id).fetch_all(&gateway.db.pool).await?;
    let permits: Vec<Value> = rows
        .iter()
        .map(|p| {
            json!({"permit_id": p.id, "status": effective_status(p), "spec_hash": p.spec_hash,
                   "created_at": rfc3339(p.created_at), "expires_at": rfc3339_opt(p.expires_at)})
        })
        .collect();
    Ok(Json(json!({"permits": permits})))
}

/// `POST /permits/{permit_id}/revoke`: its owner. Idempotent.
pub async fn revoke(State(gateway): State<Arc<Gateway>>, owner: Owner, Path(id): Path<String>) -> Result<Json<Value>> {
    let permit = load_permit(&gateway, &id)
        .await?
        .filter(|p| p.owner_id.as_deref() == Some(&owner.id))
        .ok_or_else(|| Error::NotFound(format!("no permit {id} owned by you")))?;
    let now = now_ms();
    sqlx::query("UPDATE permits SET status = 'revoked', revoked_at = $1 WHERE id = $2 AND status <> 'revoked'")
        .bind(now)
        .bind(&permit.id)
        .execute(&gateway.db.pool)
        .await?;
    sqlx::query("UPDATE permit_requests SET status = 'denied', decided_at = $1, decided_by = $2 WHERE permit_id = $3 AND status = 'pending'")
        .bind(now)
        .bind(&owner.id)
        .bind(&permit.id)
        .execute(&gateway.db.pool)
        .await?;
    tracing::info!(permit = %permit.id, owner = %owner.id, "permit revoked");
    let revoked_at = permit.revoked_at.unwrap_or(now);
    Ok(Json(json!({"permit_id": permit.id, "status": "revoked", "revoked_at": rfc3339(revoked_at)})))
}

async fn load_request(gateway: &Gateway, id: &str) -> Result<Option<RequestRow>> {
    Ok(sqlx::query_as(
        "SELECT r.id, r.permit_id, r.agent_id, r.description, r.intent, r.spec, r.spec_hash, r.base_spec_hash, \
         r.drafter, r.draft, r.status, r.created_at, r.expires_at, r.decided_at, r.decided_by, r.permit_expires_at, \
         p.owner_id AS permit_owner, p.status AS permit_status, p.spec_hash AS permit_spec_hash, \
         p.expires_at AS permit_current_expires_at \
         FROM permit_requests r JOIN permits p ON p.id = r.permit_id WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(&gateway.db.pool)
    .await?)
}

async fn load_permit(gateway: &Gateway, id: &str) -> Result<Option<PermitRow>> {
    Ok(sqlx::query_as(
        "SELECT id, agent_id, owner_id, status, spec, spec_hash, created_at, approved_at, expires_at, revoked_at \
         FROM permits WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&gateway.db.pool)
    .await?)
}

fn effective_status(permit: &PermitRow) -> &str {
    if permit.status == "active" && permit.expires_at.is_some_and(|at| at <= now_ms()) {
        "expired"
    } else {
        &permit.status
    }
}

fn request_json(gateway: &Gateway, row: &RequestRow) -> Result<Value> {
    let status = if row.status == "pending" && row.expires_at <= now_ms() { "expired" } else { row.status.as_str() };
    let compiled = gateway.compiled(&row.spec_hash, &row.spec)?;
    let intent: Value = row.intent.as_deref().and_then(|i| serde_json::from_str(i).ok()).unwrap_or(Value::Null);
    let draft: Value = row.draft.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null);
    let mut view = json!({
        "request_id": row.id,
        "permit_id": row.permit_id,
        "agent_id": row.agent_id,
        "status": status,
        "description": row.description,
        "intent": intent,
        "drafter": row.drafter,
        "draft": draft,
        "extends": row.base_spec_hash,
        "created_at": rfc3339(row.created_at),
        "expires_at": rfc3339(row.expires_at),
        "decided_at": rfc3339_opt(row.decided_at),
        "decided_by": row.decided_by,
        "approval_url": gateway.url(&format!("/approve/{}", row.id)),
        "status_url": gateway.url(&format!("/permit/{}", row.id)),
    });
    merge(&mut view, spec_json(&compiled));
    Ok(view)
}

async fn permit_json(gateway: &Gateway, permit: &PermitRow) -> Result<Value> {
    let pending: Option<String> = sqlx::query_scalar(
        "SELECT id FROM permit_requests WHERE permit_id = $1 AND status = 'pending' ORDER BY created_at DESC LIMIT 1",
    )
    .bind(&permit.id)
    .fetch_optional(&gateway.db.pool)
    .await?;
    let mut view = json!({
        "permit_id": permit.id,
        "status": effective_status(permit),
        "agent_id": permit.agent_id,
        "owner_id": permit.owner_id,
        "created_at": rfc3339(permit.created_at),
        "approved_at": rfc3339_opt(permit.approved_at),
        "expires_at": rfc3339_opt(permit.expires_at),
        "revoked_at": rfc3339_opt(permit.revoked_at),
        "pending_request_id": pending,
    });
    if let (Some(spec), Some(hash)) = (&permit.spec, &permit.spec_hash) {
        merge(&mut view, spec_json(&*gateway.compiled(hash, spec)?));
    }
    Ok(view)
}

/// The spec as the owner and agent see it: spec, hash, summary, WIT.
pub(super) fn spec_json(compiled: &CompiledPermit) -> Value {
    let summary = compiled.describe();
    json!({
        "spec": compiled.spec(),
        "spec_hash": compiled.spec_hash().to_string(),
        "summary": summary.to_string(),
        "risks": summary,
        "wit": compiled.wit(),
        "capabilities": capabilities_json(compiled),
    })
}

fn capabilities_json(compiled: &CompiledPermit) -> Vec<Value> {
    compiled
        .describe()
        .integrations
        .into_iter()
        .map(|integration| {
            let name = integration.name.clone();
            let signature = integration.signature.clone();
            let summary = Summary { integrations: vec![integration] }.to_string();
            json!({"name": name, "signature": signature, "summary": summary})
        })
        .collect()
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}
