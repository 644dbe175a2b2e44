//! Executions and the audit log: agents submit code under a permit and read
//! the result (long-polling); owners read every call made under their permits.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use super::{Json, Query};
use crate::auth::{Agent, AnyRole, Auth, Owner, Role};
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::executor::{self, Inserted, SIGNED_ON_READ};
use crate::keys::new_id;
use crate::receipts::{self, ExecutionFacts};
use crate::state::{Gateway, Waiter};
use crate::store::components;
use crate::store::executions::{self, Slot};
use crate::store::permits::{self, Party};
use crate::store::{ExecutionRow, NewExecution};
use crate::store::{ExecutionStatus, PermitStatus, audit};
use crate::views::{AuditEntry, AuditView, ExecutionAccepted, ExecutionView};

/// What `POST /execute` carries, from either form of the request (or an
/// MCP `execute` call).
pub struct Submit {
    permit_id: String,
    action_id: String,
    args: Option<Value>,
    code: Code,
    /// How long to wait for it to end before answering 202.
    wait: Option<Wait>,
}

/// `wait` on a submission: `true` (30 s) or seconds (0–60).
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(crate) enum Wait {
    /// `true`: up to 30 s; `false`: answer at once.
    Flag(bool),
    /// Up to this many seconds, 0–60.
    Seconds(f64),
}

impl Wait {
    /// The seconds to wait, checked; 0 for none.
    fn seconds(self) -> Result<f64> {
        match self {
            Wait::Flag(wait) => Ok(if wait { 30.0 } else { 0.0 }),
            Wait::Seconds(s) if (0.0..=60.0).contains(&s) => Ok(s),
            Wait::Seconds(_) => Err(Error::bad_request("invalid_request", "wait: true, or seconds from 0 to 60")),
        }
    }

    /// From a query string: `true`, `false` or seconds.
    fn parse(text: &str) -> Result<Wait> {
        match text {
            "true" => Ok(Wait::Flag(true)),
            "false" => Ok(Wait::Flag(false)),
            seconds => seconds
                .parse()
                .map(Wait::Seconds)
                .map_err(|_| Error::bad_request("invalid_request", "wait: true, or seconds from 0 to 60")),
        }
    }
}

/// What runs: a script, or a component's bytes.
pub(crate) enum Code {
    Script(String),
    Component(Vec<u8>),
}

impl Code {
    /// From a JSON submission's `code` or `component` (base64, at most
    /// `max_component` bytes decoded): exactly one of them.
    pub(crate) fn from_json(code: Option<String>, component: Option<String>, max_component: usize) -> Result<Code> {
        match (code, component) {
            (Some(code), None) => Ok(Code::Script(code)),
            (None, Some(encoded)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|e| Error::bad_request("invalid_request", format!("component: not base64: {e}")))?;
                if bytes.len() > max_component {
                    return Err(Error::TooLarge(max_component));
                }
                Ok(Code::Component(bytes))
            }
            _ => Err(Error::bad_request("invalid_request", "give exactly one of code or component")),
        }
    }
}

/// The JSON form: `code` or `component` (base64), not both.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitJson {
    /// An active permit issued to the caller.
    permit_id: String,
    /// Unique per action: a retry with the same code and args returns the same execution.
    action_id: String,
    /// JavaScript to run.
    #[serde(default)]
    code: Option<String>,
    /// Or a Wasm component, base64.
    #[serde(default)]
    component: Option<String>,
    /// Any JSON; the script reads it as `args`.
    #[serde(default)]
    args: Option<Value>,
    /// Wait for it to end: `true` (up to 30 s) or seconds (0–60). If it ends in time the answer is
    /// 200 with the finished execution, as its status gives it; else 202 as without `wait`.
    #[serde(default)]
    wait: Option<Wait>,
}

/// The query of the raw form (`Content-Type: application/wasm`); `args` is JSON text.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitQuery {
    /// An active permit issued to the caller.
    permit_id: String,
    /// Unique per action.
    action_id: String,
    /// JSON text; the component reads it.
    #[serde(default)]
    args: Option<String>,
    /// `true` or seconds (0–60): as `wait` in the JSON form.
    #[serde(default)]
    wait: Option<String>,
}

impl FromRequest<Arc<Gateway>> for Submit {
    type Rejection = Error;

    async fn from_request(request: Request, gateway: &Arc<Gateway>) -> Result<Submit> {
        let max_component = gateway.config.max_component_bytes;
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if content_type.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/wasm") {
            let (mut parts, body) = request.into_parts();
            let Query(query) = Query::<SubmitQuery>::from_request_parts(&mut parts, gateway).await?;
            let bytes = super::body_within(Request::from_parts(parts, body), max_component).await?;
            let args = match query.args {
                Some(text) => Some(
                    serde_json::from_str(&text)
                        .map_err(|e| Error::bad_request("invalid_request", format!("args: not JSON: {e}")))?,
                ),
                None => None,
            };
            let code = Code::Component(bytes.to_vec());
            let wait = query.wait.as_deref().map(Wait::parse).transpose()?;
            return Ok(Submit { permit_id: query.permit_id, action_id: query.action_id, args, code, wait });
        }
        // Room for a component base64-encoded, and the rest of the JSON; a
        // script's submission keeps the usual limit.
        let max_body = gateway.config.max_body_bytes;
        let limit = max_body.max(max_component.div_ceil(3) * 4 + (64 << 10));
        let bytes = super::json_bytes_within(request, limit).await?;
        let body: SubmitJson = super::decode(&bytes)?;
        if body.code.is_some() && body.component.is_none() && bytes.len() > max_body {
            return Err(Error::TooLarge(max_body));
        }
        let code = Code::from_json(body.code, body.component, max_component)?;
        Ok(Submit { permit_id: body.permit_id, action_id: body.action_id, args: body.args, code, wait: body.wait })
    }
}

/// `POST /execute`: [`accept`], then with `wait`, the finished execution
/// (200, as its status gives it) if it ends in time, else the 202.
pub async fn submit(State(gateway): State<Arc<Gateway>>, agent: Agent, body: Submit) -> Result<Response> {
    // Checked before anything is stored.
    let wait = body.wait.map(Wait::seconds).transpose()?.unwrap_or(0.0);
    if wait <= 0.0 {
        return Ok(accept(State(gateway), agent, body).await?.into_response());
    }
    let caller = Auth::<AnyRole>::check((*agent).clone())?;
    // Subscribed before the insert, so the worker hands over the finished
    // row however soon it ends: nothing is read back.
    let id = new_id("exe")?;
    let waiter = gateway.finished.subscribe(&id);
    let (status, Json(accepted)) = accept_as(&gateway, agent, body, id.clone()).await?;
    let waited = if accepted.request_id == id {
        wait_on(&gateway, &caller, &id, wait, &waiter, Known::Queued).await
    } else {
        // A retry: the action's existing execution.
        drop(waiter);
        wait_for(&gateway, &caller, &accepted.request_id, wait).await
    };
    match waited {
        Ok(view) if view.status.is_finished() => return Ok(Json(view).into_response()),
        Ok(_) => {}
        // It is queued: the 202 with its id, not an error inviting a second submission.
        Err(error) => {
            tracing::warn!(error = %error.chain(), execution = %accepted.request_id, "waiting on a submission")
        }
    }
    Ok((status, Json(accepted)).into_response())
}

/// Queues a script or a component under a permit issued to the caller, as
/// [`accept_as`] with a fresh id.
pub(crate) async fn accept(
    State(gateway): State<Arc<Gateway>>,
    agent: Agent,
    body: Submit,
) -> Result<(StatusCode, Json<ExecutionAccepted>)> {
    let id = new_id("exe")?;
    accept_as(&gateway, agent, body, id).await
}

/// Queues a script or a component under a permit issued to the caller.
/// Both are checked first: a script for syntax errors, a component against
/// the permit's world (422 `component_rejected`). The same `action_id` with
/// the same code (or component) and args returns the existing execution.
/// A new execution gets the id `id`.
async fn accept_as(
    gateway: &Arc<Gateway>,
    agent: Agent,
    body: Submit,
    id: String,
) -> Result<(StatusCode, Json<ExecutionAccepted>)> {
    if body.action_id.is_empty() || body.action_id.len() > 200 {
        return Err(Error::bad_request("invalid_request", "action_id: 1–200 bytes, unique per action"));
    }
    let args = body.args.clone().unwrap_or(Value::Null).to_string();
    let cap = gateway.config.max_executions_per_agent.clamp(1, i64::MAX as u64) as i64;
    let component_hash = match &body.code {
        // Syntax errors are reported now, with line and column, unless the
        // permit refuses the run anyway (its refusal comes first). The
        // compiled script is cached, so the worker does not compile again.
        Code::Script(code) => {
            if let Err(error) = gateway.runtime.compile_js(code).await {
                permit_allows(gateway, &agent.id, &body.permit_id).await?;
                return Err(error.into());
            }
            None
        }
        Code::Component(bytes) => {
            permit_allows(gateway, &agent.id, &body.permit_id).await?;
            let hash = receipts::code_hash(bytes);
            // A retry gets its execution, and an agent at its cap is
            // refused, before anything is compiled or stored.
            if let Some((id, status)) = existing_action(gateway, &agent.id, &body, &args, Some(&hash)).await? {
                return Ok(accepted(gateway, id, status));
            }
            let in_flight = executions::in_flight(&gateway.db, &agent.id).await?;
            if in_flight >= cap {
                return Err(Error::TooManyRequests(format!(
                    "you have {in_flight} executions queued or running; wait for some to finish"
                )));
            }
            store_component(gateway, &body.permit_id, bytes).await?;
            Some(hash)
        }
    };
    let code_hash = component_hash.clone().unwrap_or_else(|| receipts::code_hash(body.script().as_bytes()));
    // Usually the permit allows it and a random slot is free: one insert
    // that checks the permit. The unique index refuses a taken slot, and
    // the search below takes over.
    let guess = (u64::from_le_bytes(crate::keys::random_bytes::<8>()?) % cap as u64) as i64;
    let slots =
        std::iter::once(Slot::Exactly(guess)).chain(std::iter::repeat_n(Slot::AnyFreeBelow(cap), SLOT_ATTEMPTS));
    let mut new = NewExecution {
        id: id.clone(),
        permit_id: body.permit_id.clone(),
        agent_id: agent.id.clone(),
        action_id: body.action_id.clone(),
        code: body.script().to_owned(),
        args: args.clone(),
        component_hash: component_hash.clone(),
        code_hash,
        created_at: 0,
    };
    // With a free worker here, it is inserted running on it: no claim, and
    // no hand-over to the pool.
    let mut worker = executor::free_worker(gateway);
    for (attempt, slot) in slots.enumerate() {
        new.created_at = now_ms();
        if let Some(place) = worker.take() {
            match executor::insert_and_run(Arc::clone(gateway), new.clone(), slot, place).await? {
                Inserted::Running => return Ok(accepted(gateway, id, ExecutionStatus::Running)),
                Inserted::Not(place) => worker = (!gateway.stopping.is_stopping()).then_some(place),
            }
        } else if executions::insert_queued(&gateway.db, &new, slot).await? {
            // A full channel is fine: the sweeper finds queued executions.
            let _ = gateway.queue.try_send(id.clone());
            return Ok(accepted(gateway, id, ExecutionStatus::Queued));
        }
        if attempt == 0 {
            // Usually the guessed slot was taken; the search takes over.
            continue;
        }
        // Nothing inserted: the permit refuses it, the action exists already
        // (a retry gets its execution, even at the cap), every slot is
        // taken, or another submission took the free slot this one chose.
        permit_allows(gateway, &agent.id, &body.permit_id).await?;
        if let Some((id, status)) = existing_action(gateway, &agent.id, &body, &args, component_hash.as_deref()).await?
        {
            return Ok(accepted(gateway, id, status));
        }
        let in_flight = executions::in_flight(&gateway.db, &agent.id).await?;
        if in_flight >= cap {
            return Err(Error::TooManyRequests(format!(
                "you have {in_flight} executions queued or running; wait for some to finish"
            )));
        }
    }
    Err(Error::TooManyRequests("too many submissions at once; try again".into()))
}

/// Ok when the permit is issued to `agent`, active and not expired; else
/// the refusal the agent gets (404 or 409).
async fn permit_allows(gateway: &Gateway, agent: &str, permit_id: &str) -> Result<()> {
    let permit = permits::state_of(&gateway.db, permit_id, Party::Agent(agent))
        .await?
        .ok_or_else(|| Error::NotFound(format!("no permit {permit_id} issued to you")))?;
    if permit.status != PermitStatus::Active {
        let status = permit.status;
        return Err(Error::conflict("permit_not_active", format!("the permit is {status}; it must be approved first")));
    }
    if permit.expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(Error::conflict("permit_expired", "the permit has expired; request a new one"));
    }
    Ok(())
}

impl Submit {
    /// A submission of `code` under `permit_id`, idempotent per `action_id`.
    pub(crate) fn new(permit_id: String, action_id: String, args: Option<Value>, code: Code) -> Submit {
        Submit { permit_id, action_id, args, code, wait: None }
    }

    /// The script's source; empty for a component.
    fn script(&self) -> &str {
        match &self.code {
            Code::Script(code) => code,
            Code::Component(_) => "",
        }
    }
}

/// Checks a component against the permit's approved world (compiling it,
/// or finding it compiled) and stores it.
async fn store_component(gateway: &Gateway, permit_id: &str, bytes: &[u8]) -> Result<()> {
    let (spec, hash) = permits::approved_spec(&gateway.db, permit_id)
        .await?
        .ok_or_else(|| Error::conflict("permit_not_active", "the permit has no approved spec"))?;
    let permit = gateway.compiled(&hash, &spec)?;
    let component = gateway.runtime.load_component(bytes, &permit).await?;
    components::put(&gateway.db, &component.hash_hex(), bytes, now_ms()).await?;
    Ok(())
}

/// Tries before a burst of submissions racing for the same free slots gives up.
const SLOT_ATTEMPTS: usize = 8;

fn accepted(gateway: &Gateway, id: String, status: ExecutionStatus) -> (StatusCode, Json<ExecutionAccepted>) {
    let status_url = gateway.url(&format!("/execute/{id}/status"));
    (StatusCode::ACCEPTED, Json(ExecutionAccepted { request_id: id, status, status_url }))
}

/// The execution already made for this action, if any: (id, status).
async fn existing_action(
    gateway: &Gateway,
    agent: &str,
    body: &Submit,
    args: &str,
    component_hash: Option<&str>,
) -> Result<Option<(String, ExecutionStatus)>> {
    let row = executions::for_action(&gateway.db, agent, &body.permit_id, &body.action_id).await?;
    let Some(row) = row else { return Ok(None) };
    if row.code != body.script() || row.args != args || row.component_hash.as_deref() != component_hash {
        return Err(Error::conflict(
            "action_id_reused",
            "this action_id was already used with different code, component or args; use a new action_id",
        ));
    }
    Ok(Some((row.id, row.status)))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
pub struct StatusQuery {
    /// Wait for the execution to end.
    #[serde(default)]
    pub(crate) wait: Option<bool>,
    /// For at most this many seconds: 0–60, default 30.
    #[serde(default)]
    pub(crate) timeout: Option<f64>,
}

/// `GET /execute/{id}/status[?wait=true&timeout=S]`: the submitting agent or
/// the permit's owner. `wait` returns as soon as the execution ends, or
/// after `timeout` seconds (default 30, at most 60) with the current status.
pub async fn status(
    State(gateway): State<Arc<Gateway>>,
    caller: Auth,
    Path(id): Path<String>,
    Query(query): Query<StatusQuery>,
) -> Result<Json<ExecutionView>> {
    let timeout = query.timeout.unwrap_or(30.0);
    if !(0.0..=60.0).contains(&timeout) {
        return Err(Error::bad_request("invalid_request", "timeout: seconds, from 0 to 60"));
    }
    if !query.wait.unwrap_or(false) {
        return Ok(Json(read_status(&gateway, &caller, &id).await?));
    }
    wait_for(&gateway, &caller, &id, timeout).await.map(Json)
}

/// The execution `id` once it ends, or after `timeout` seconds as it is then.
async fn wait_for(gateway: &Gateway, caller: &Auth, id: &str, timeout: f64) -> Result<ExecutionView> {
    let waiter = gateway.finished.subscribe(id);
    wait_on(gateway, caller, id, timeout, &waiter, Known::Nothing).await
}

/// What a waiter knows of the execution before it reads it.
#[derive(PartialEq)]
enum Known {
    Nothing,
    /// The caller just queued it, and subscribed before: no first read.
    Queued,
}

/// [`wait_for`] on a `waiter` subscribed to `id` already.
async fn wait_on(
    gateway: &Gateway,
    caller: &Auth,
    id: &str,
    timeout: f64,
    waiter: &Waiter,
    mut known: Known,
) -> Result<ExecutionView> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(timeout);
    loop {
        let woken = waiter.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if let Some(row) = waiter.row() {
            // Ended here: the worker handed over the row it committed.
            return view_of(caller, row);
        }
        let now = tokio::time::Instant::now();
        let answer_now = now >= deadline || gateway.stopping.is_stopping();
        if known == Known::Nothing || waiter.ended() || answer_now {
            let view = read_status(gateway, caller, id).await;
            let done = view.as_ref().map_or(true, |v| v.status.is_finished());
            // Stopping: the current status; the client asks again elsewhere.
            if done || answer_now {
                return view;
            }
        }
        known = Known::Nothing;
        // Local executions wake us, and on Postgres other replicas' (by
        // NOTIFY); re-reading is the fallback.
        let reread = Duration::from_millis(gateway.config.reread_ms.max(10));
        tokio::select! {
            _ = tokio::time::timeout((deadline - now).min(reread), woken) => {}
            () = gateway.stopping.wait() => {}
        }
    }
}

/// True when `caller` may see the execution `row`: its agent, or its
/// permit's owner.
fn visible(caller: &Auth, row: &ExecutionRow) -> bool {
    match caller.role {
        Role::Agent => row.agent_id == caller.id,
        Role::Owner => row.owner_id.as_deref() == Some(&caller.id),
    }
}

/// The view of a row a worker handed over, as `caller` may see it.
fn view_of(caller: &Auth, row: &ExecutionRow) -> Result<ExecutionView> {
    if !visible(caller, row) {
        return Err(Error::NotFound(format!("no execution {} visible to you", row.id)));
    }
    Ok(ExecutionView::of(row))
}

async fn read_status(gateway: &Gateway, caller: &Auth, id: &str) -> Result<ExecutionView> {
    let row = executions::execution(&gateway.db, id)
        .await?
        .filter(|row| visible(caller, row))
        .ok_or_else(|| Error::NotFound(format!("no execution {id} visible to you")))?;
    let mut view = ExecutionView::of(&row);
    let code = view.result["error"]["code"].as_str().unwrap_or_default();
    if row.status == ExecutionStatus::Failed && view.receipt.is_none() && SIGNED_ON_READ.contains(&code) {
        // Ended without a worker's finish (interrupted, or an internal
        // error): signed on first read. Nothing else is signed after the fact.
        let facts = ExecutionFacts {
            request_id: &row.id,
            permit_id: &row.permit_id,
            spec_hash: row.spec_hash.as_deref(),
            code_hash: row.code_hash.as_deref(),
            status: row.status.as_str(),
            finished_at: row.finished_at,
            result: &view.result,
        };
        let receipt = receipts::execution(&gateway.tee.signing, &facts)?;
        executions::set_receipt(&gateway.db, &row.id, &receipt).await?;
        view.receipt = Some(receipt.receipt);
    }
    Ok(view)
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct AuditQuery {
    /// One permit's calls only.
    #[serde(default)]
    permit_id: Option<String>,
    /// How many, newest first: 1–1000, default 100.
    #[serde(default)]
    limit: Option<i64>,
    /// Only calls after this entry `id`, oldest first: to follow the log.
    #[serde(default)]
    after: Option<i64>,
}

/// `GET /audit?permit_id=&limit=&after=`: the newest calls under the
/// owner's permits (all of them, or one), newest first; with `after`, the
/// calls after that entry, oldest first. `limit` defaults to 100, at most 1000.
pub async fn audit(
    State(gateway): State<Arc<Gateway>>,
    owner: Owner,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditView>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::bad_request("invalid_request", "limit: from 1 to 1000"));
    }
    if let Some(permit) = &query.permit_id
        && permits::state_of(&gateway.db, permit, Party::Owner(&owner.id)).await?.is_none()
    {
        return Err(Error::NotFound(format!("no permit {permit} owned by you")));
    }
    let permit = query.permit_id.as_deref();
    let rows = match query.after {
        Some(after) => audit::after_of_owner(&gateway.db, &owner.id, permit, after, limit).await?,
        None => audit::of_owner(&gateway.db, &owner.id, permit, limit).await?,
    };
    Ok(Json(AuditView { entries: rows.into_iter().map(AuditEntry::of).collect() }))
}
