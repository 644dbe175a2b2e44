//! Executions and the audit log: agents submit code under a permit and read
//! the result (long-polling); owners read every call made under their permits.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use super::{Json, Query};
use crate::auth::{Agent, Auth, Owner, Role};
use crate::db::{now_ms, rfc3339, rfc3339_opt};
use crate::error::{Error, Result};
use crate::keys::new_id;
use crate::state::Gateway;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    permit_id: String,
    action_id: String,
    code: String,
    #[serde(default)]
    args: Option<Value>,
}

/// `POST /execute`: queue `code` under a permit issued to the caller. The same
/// `action_id` with the same code returns the existing execution.
pub async fn submit(
    State(gateway): State<Arc<Gateway>>,
    agent: Agent,
    Json(body): Json<Submit>,
) -> Result<(StatusCode, Json<Value>)> {
    if body.action_id.is_empty() || body.action_id.len() > 200 {
        return Err(Error::bad_request("invalid_request", "action_id: 1–200 bytes, unique per action"));
    }
    let permit = sqlx::query("SELECT status, expires_at FROM permits WHERE id = $1 AND agent_id = $2")
        .bind(&body.permit_id)
        .bind(&agent.id)
        .fetch_optional(&gateway.db.pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no permit {} issued to you", body.permit_id)))?;
    let status: String = permit.try_get("status")?;
    let expires_at: Option<i64> = permit.try_get("expires_at")?;
    if status != "active" {
        return Err(Error::conflict("permit_not_active", format!("the permit is {status}; it must be approved first")));
    }
    if expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(Error::conflict("permit_expired", "the permit has expired; request a new one"));
    }
    // Syntax errors are reported now, with line and column.
    gateway.runtime.compile_js(&body.code).await?;
    let args = body.args.clone().unwrap_or(Value::Null).to_string();
    let cap = gateway.config.max_executions_per_agent.clamp(1, i64::MAX as u64) as i64;
    // Usually a random slot is free: one plain insert. The unique index
    // refuses it if not, and the search below takes over.
    let id = new_id("exe")?;
    let guess = (u64::from_le_bytes(crate::keys::random_bytes::<8>()?) % cap as u64) as i64;
    if insert_at(&gateway, &id, &agent.id, &body, &args, Slot::Exactly(guess)).await? {
        let _ = gateway.queue.try_send(id.clone());
        return Ok(accepted(&gateway, id, "queued".to_owned()));
    }
    for _ in 0..SLOT_ATTEMPTS {
        let id = new_id("exe")?;
        if insert_at(&gateway, &id, &agent.id, &body, &args, Slot::AnyFreeBelow(cap)).await? {
            // A full channel is fine: the sweeper finds queued executions.
            let _ = gateway.queue.try_send(id.clone());
            return Ok(accepted(&gateway, id, "queued".to_owned()));
        }
        // Nothing inserted: the action exists already (a retry gets its
        // execution, even at the cap), every slot is taken, or another
        // submission took the free slot this one chose.
        if let Some((id, status)) = existing_action(&gateway, &agent.id, &body, &args).await? {
            return Ok(accepted(&gateway, id, status));
        }
        let in_flight: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM executions WHERE agent_id = $1 AND status IN ('queued', 'running')",
        )
        .bind(&agent.id)
        .fetch_one(&gateway.db.pool)
        .await?;
        if in_flight >= cap {
            return Err(Error::TooManyRequests(format!(
                "you have {in_flight} executions queued or running; wait for some to finish"
            )));
        }
    }
    Err(Error::TooManyRequests("too many submissions at once; try again".into()))
}

/// Tries before a burst of submissions racing for the same free slots gives up.
const SLOT_ATTEMPTS: usize = 8;

/// Which of the agent's slots an insert takes.
enum Slot {
    /// This one (below the cap).
    Exactly(i64),
    /// A free one below the cap, chosen at random so parallel submissions
    /// rarely collide.
    AnyFreeBelow(i64),
}

/// Inserts the execution queued, holding a slot, in one statement. The
/// unique index on (agent, slot) over queued and running executions is what
/// enforces the cap: no two can hold a slot, however many race. False when
/// nothing was inserted (the slot is taken or none is free, or the action
/// exists).
async fn insert_at(gateway: &Gateway, id: &str, agent: &str, body: &Submit, args: &str, slot: Slot) -> Result<bool> {
    let (sql, slot) = match slot {
        Slot::Exactly(n) => (
            "INSERT INTO executions (id, permit_id, agent_id, action_id, code, args, status, created_at, slot) \
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8) ON CONFLICT DO NOTHING",
            n,
        ),
        Slot::AnyFreeBelow(cap) => (
            "WITH RECURSIVE slots(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM slots WHERE n + 1 < $8), \
             free AS (SELECT n FROM slots WHERE n NOT IN (SELECT slot FROM executions WHERE agent_id = $3 \
               AND status IN ('queued', 'running') AND slot IS NOT NULL) ORDER BY random() LIMIT 1) \
             INSERT INTO executions (id, permit_id, agent_id, action_id, code, args, status, created_at, slot) \
             SELECT $1, $2, $3, $4, $5, $6, 'queued', $7, free.n FROM free WHERE true ON CONFLICT DO NOTHING",
            cap,
        ),
    };
    let inserted = sqlx::query(sql)
        .bind(id)
        .bind(&body.permit_id)
        .bind(agent)
        .bind(&body.action_id)
        .bind(&body.code)
        .bind(args)
        .bind(now_ms())
        .bind(slot)
        .execute(&gateway.db.pool)
        .await?
        .rows_affected();
    Ok(inserted == 1)
}

fn accepted(gateway: &Gateway, id: String, status: String) -> (StatusCode, Json<Value>) {
    let status_url = gateway.url(&format!("/execute/{id}/status"));
    (StatusCode::ACCEPTED, Json(json!({"request_id": id, "status": status, "status_url": status_url})))
}

/// The execution already made for this action, if any: (id, status).
async fn existing_action(
    gateway: &Gateway,
    agent: &str,
    body: &Submit,
    args: &str,
) -> Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT id, code, args, status FROM executions WHERE agent_id = $1 AND permit_id = $2 AND action_id = $3",
    )
    .bind(agent)
    .bind(&body.permit_id)
    .bind(&body.action_id)
    .fetch_optional(&gateway.db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let same_args = row.try_get::<String, _>("args")? == args;
    if row.try_get::<String, _>("code")? != body.code || !same_args {
        return Err(Error::conflict(
            "action_id_reused",
            "this action_id was already used with different code or args; use a new action_id",
        ));
    }
    Ok(Some((row.try_get("id")?, row.try_get("status")?)))
}

#[derive(Deserialize)]
pub struct StatusQuery {
    #[serde(default)]
    wait: Option<bool>,
    #[serde(default)]
    timeout: Option<f64>,
}

/// `GET /execute/{id}/status[?wait=true&timeout=S]`: the submitting agent or
/// the permit's owner. `wait` returns as soon as the execution ends, or
/// after `timeout` seconds (default 30, at most 60) with the current status.
pub async fn status(
    State(gateway): State<Arc<Gateway>>,
    caller: Auth,
    Path(id): Path<String>,
    Query(query): Query<StatusQuery>,
) -> Result<Json<Value>> {
    let timeout = query.timeout.unwrap_or(30.0);
    if !(0.0..=60.0).contains(&timeout) {
        return Err(Error::bad_request("invalid_request", "timeout: seconds, from 0 to 60"));
    }
    if !query.wait.unwrap_or(false) {
        return Ok(Json(read_status(&gateway, &caller, &id).await?));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(timeout);
    let notify = gateway.finished.subscribe(&id);
    let result = loop {
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let view = read_status(&gateway, &caller, &id).await;
        let done = view.as_ref().map_or(true, |v| matches!(v["status"].as_str(), Some("completed" | "failed")));
        let now = tokio::time::Instant::now();
        if done || now >= deadline {
            break view;
        }
        if gateway.stopping.is_stopping() {
            break view; // the current status; the client asks again elsewhere
        }
        // Local executions wake us; other replicas' are seen by re-reading.
        tokio::select! {
            _ = tokio::time::timeout((deadline - now).min(Duration::from_secs(1)), woken) => {}
            () = gateway.stopping.wait() => {}
        }
    };
    gateway.finished.unsubscribe(&id, notify);
    Ok(Json(result?))
}

async fn read_status(gateway: &Gateway, caller: &Auth, id: &str) -> Result<Value> {
    let row = sqlx::query(
        "SELECT e.id, e.agent_id, e.permit_id, e.action_id, e.status, e.created_at, e.started_at, e.finished_at, \
         e.result, p.owner_id FROM executions e JOIN permits p ON p.id = e.permit_id WHERE e.id = $1",
    )
    .bind(id)
    .fetch_optional(&gateway.db.pool)
    .await?;
    let row = row
        .filter(|row| {
            let column = if caller.role == Role::Agent { "agent_id" } else { "owner_id" };
            row.try_get::<Option<String>, _>(column).ok().flatten().as_deref() == Some(&caller.id)
        })
        .ok_or_else(|| Error::NotFound(format!("no execution {id} visible to you")))?;
    let result: Option<String> = row.try_get("result")?;
    let result: Value = result.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
    Ok(json!({
        "request_id": row.try_get::<String, _>("id")?,
        "permit_id": row.try_get::<String, _>("permit_id")?,
        "action_id": row.try_get::<String, _>("action_id")?,
        "status": row.try_get::<String, _>("status")?,
        "created_at": rfc3339(row.try_get("created_at")?),
        "started_at": rfc3339_opt(row.try_get("started_at")?),
        "finished_at": rfc3339_opt(row.try_get("finished_at")?),
        "result": result,
    }))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    permit_id: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /audit?permit_id=&limit=`: the newest calls under the owner's
/// permits (all of them, or one), newest first. `limit` defaults to 100, at most 1000.
pub async fn audit(
    State(gateway): State<Arc<Gateway>>,
    owner: Owner,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::bad_request("invalid_request", "limit: from 1 to 1000"));
    }
    if let Some(permit) = &query.permit_id {
        let owned: Option<String> = sqlx::query_scalar("SELECT id FROM permits WHERE id = $1 AND owner_id = $2")
            .bind(permit)
            .bind(&owner.id)
            .fetch_optional(&gateway.db.pool)
            .await?;
        if owned.is_none() {
            return Err(Error::NotFound(format!("no permit {permit} owned by you")));
        }
    }
    let rows = sqlx::query(
        "SELECT a.id, a.permit_id, a.execution_id, a.integration, a.method, a.url, a.decision, a.reason, a.status, \
         a.request_bytes, a.response_bytes, a.started_at, a.duration_ms \
         FROM audit a JOIN permits p ON p.id = a.permit_id \
         WHERE p.owner_id = $1 AND ($2 = '' OR a.permit_id = $2) ORDER BY a.id DESC LIMIT $3",
    )
    .bind(&owner.id)
    .bind(query.permit_id.as_deref().unwrap_or(""))
    .bind(limit)
    .fetch_all(&gateway.db.pool)
    .await?;
    let entries = rows
        .iter()
        .map(|row| {
            Ok(json!({
                "id": row.try_get::<i64, _>("id")?,
                "permit_id": row.try_get::<String, _>("permit_id")?,
                "execution_id": row.try_get::<String, _>("execution_id")?,
                "integration": row.try_get::<String, _>("integration")?,
                "method": row.try_get::<String, _>("method")?,
                "url": row.try_get::<String, _>("url")?,
                "decision": row.try_get::<String, _>("decision")?,
                "reason": row.try_get::<Option<String>, _>("reason")?,
                "status": row.try_get::<Option<i64>, _>("status")?,
                "request_bytes": row.try_get::<i64, _>("request_bytes")?,
                "response_bytes": row.try_get::<i64, _>("response_bytes")?,
                "started_at": rfc3339(row.try_get("started_at")?),
                "duration_ms": row.try_get::<i64, _>("duration_ms")?,
            }))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Json(json!({"entries": entries})))
}
