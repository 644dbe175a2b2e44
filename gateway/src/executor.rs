//! Executions: queued in the database, claimed by compare-and-swap, run by a
//! bounded worker pool through `oauth3-host`, finished in the database.
//!
//! An execution is claimed once (`queued` → `running` by exactly one worker
//! of one replica). After a crash, `running` executions are marked failed
//! with `interrupted` and never re-run: their calls may have had side effects.
//! On a graceful shutdown ([`Workers::stop`]) nothing new is claimed, running
//! executions may finish within the grace period, and the rest are marked
//! the same way; queued ones stay queued for the next start.

use std::sync::Arc;
use std::time::Duration;

use oauth3_host::{CallContext, Limits, Outcome, RunContext};
use serde_json::{Value, json};
use sqlx::Row;
use tokio::sync::{Semaphore, mpsc};

use crate::capabilities::OwnerSecrets;
use crate::db::{Db, now_ms};
use crate::error::{Error, Result};
use crate::state::{Gateway, Phase};

/// A replica whose heartbeat is older than this is presumed dead.
const REPLICA_TIMEOUT_MS: i64 = 60_000;
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Registers this replica and marks executions left `running` by it (a
/// previous process on this data dir) or by replicas that stopped
/// heart-beating as failed. Returns how many were marked.
pub async fn recover(db: &Db, replica_id: &str) -> Result<u64> {
    sqlx::query(
        "INSERT INTO replicas (id, heartbeat_at) VALUES ($1, $2) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
    )
    .bind(replica_id)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    fail_interrupted(db, Some(replica_id)).await
}

/// Marks running executions failed with `interrupted`: those of
/// `replica_id`, those no worker holds, and those of replicas whose
/// heartbeat stopped. Returns how many were marked.
async fn fail_interrupted(db: &Db, replica_id: Option<&str>) -> Result<u64> {
    let now = now_ms();
    let marked = sqlx::query(
        "UPDATE executions SET status = 'failed', finished_at = $1, result = $2 \
         WHERE status = 'running' AND (worker = $3 OR worker IS NULL \
           OR worker IN (SELECT id FROM replicas WHERE heartbeat_at < $4))",
    )
    .bind(now)
    .bind(interrupted_result().to_string())
    .bind(replica_id.unwrap_or(""))
    .bind(now - REPLICA_TIMEOUT_MS)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(marked)
}

fn interrupted_result() -> Value {
    failure(
        "interrupted",
        "the gateway stopped while this execution was running; it was not re-run because its calls may have had \
         side effects",
    )
}

fn failure(code: &str, message: &str) -> Value {
    json!({"success": false, "stdout": "", "stderr": "", "duration_ms": 0, "calls": [],
           "error": {"code": code, "message": message}})
}

/// The running worker pool: one slot per execution it may run at once.
pub struct Workers {
    slots: Arc<Semaphore>,
    size: u32,
}

/// Starts the worker pool and the sweeper. `queue` receives ids of queued
/// executions; the sweeper also finds ones the channel missed. Dispatch ends
/// when the gateway begins to stop; the sweeper's heartbeat goes on until
/// it has stopped.
pub fn start(gateway: Arc<Gateway>, queue: mpsc::Receiver<String>) -> Workers {
    let size = gateway.config.max_concurrent.clamp(1, u32::MAX as usize) as u32;
    let slots = Arc::new(Semaphore::new(size as usize));
    tokio::spawn(dispatch(Arc::clone(&gateway), queue, Arc::clone(&slots)));
    tokio::spawn(sweep(gateway));
    Workers { slots, size }
}

impl Workers {
    /// Ends the pool once [`crate::state::Stopping::begin`] was called:
    /// waits until `deadline` for running executions to finish, then drops
    /// the rest and marks them interrupted (with any a dead replica left).
    /// Returns how many were marked.
    pub async fn stop(&self, gateway: &Gateway, deadline: tokio::time::Instant) -> Result<u64> {
        let all = tokio::time::timeout_at(deadline, self.slots.acquire_many(self.size)).await;
        if all.is_ok() {
            return Ok(0);
        }
        // Abandon the rest: each run is dropped, so its calls not yet sent
        // never are, before it is reported interrupted.
        gateway.stopping.advance(Phase::Aborting);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.slots.acquire_many(self.size)).await;
        fail_interrupted(&gateway.db, Some(&gateway.replica_id)).await
    }

    /// Executions running in this process now.
    pub fn running(&self) -> usize {
        self.size as usize - self.slots.available_permits()
    }
}

async fn dispatch(gateway: Arc<Gateway>, mut queue: mpsc::Receiver<String>, slots: Arc<Semaphore>) {
    loop {
        let next = tokio::select! {
            biased;
            () = gateway.stopping.wait() => return,
            next = queue.recv() => next,
        };
        let Some(id) = next else { return };
        let slot = tokio::select! {
            biased;
            () = gateway.stopping.wait() => return,
            slot = Arc::clone(&slots).acquire_owned() => slot,
        };
        let Ok(slot) = slot else { return };
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move {
            let task = tokio::spawn(execute(Arc::clone(&gateway), id.clone()));
            if let Err(error) = task.await {
                tracing::error!(execution = %id, %error, "execution task panicked");
                let _ = finish(&gateway, &id, "failed", &failure("internal", "the gateway failed running this")).await;
            }
            drop(slot);
        });
    }
}

/// Every second: heartbeat, requeue executions the channel dropped or other
/// replicas left queued, and fail those of replicas that died.
async fn sweep(gateway: Arc<Gateway>) {
    let mut tick = tokio::time::interval(Duration::from_millis(1000));
    let mut last_heartbeat = tokio::time::Instant::now();
    loop {
        // The heartbeat goes on while draining, so that other replicas do
        // not take this one for dead during a long grace period.
        tokio::select! {
            biased;
            () = gateway.stopping.reached(Phase::Stopped) => return,
            _ = tick.tick() => {}
        }
        if last_heartbeat.elapsed() >= HEARTBEAT {
            last_heartbeat = tokio::time::Instant::now();
            let beat = async { heartbeat(&gateway).await.and(fail_interrupted(&gateway.db, None).await) };
            if let Err(error) = beat.await {
                tracing::warn!(%error, "heartbeat failed");
            }
        }
        if gateway.stopping.is_stopping() {
            continue;
        }
        let queued: Result<Vec<String>, _> = sqlx::query_scalar(
            "SELECT id FROM executions WHERE status = 'queued' AND created_at < $1 ORDER BY created_at LIMIT 256",
        )
        .bind(now_ms() - 500)
        .fetch_all(&gateway.db.pool)
        .await;
        match queued {
            Ok(ids) => {
                for id in ids {
                    if gateway.queue.try_send(id).is_err() {
                        break;
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "could not look for queued executions"),
        }
    }
}

async fn heartbeat(gateway: &Gateway) -> Result<u64> {
    sqlx::query("UPDATE replicas SET heartbeat_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(&gateway.replica_id)
        .execute(&gateway.db.pool)
        .await?;
    Ok(0)
}

async fn execute(gateway: Arc<Gateway>, id: String) {
    if gateway.stopping.is_stopping() {
        return; // stays queued for the next start
    }
    let claimed = sqlx::query(
        "UPDATE executions SET status = 'running', started_at = $1, worker = $2 WHERE id = $3 AND status = 'queued'",
    )
    .bind(now_ms())
    .bind(&gateway.replica_id)
    .bind(&id)
    .execute(&gateway.db.pool)
    .await;
    match claimed {
        Ok(done) if done.rows_affected() == 1 => {}
        Ok(_) => return, // another worker has it, or it already ended
        Err(error) => {
            tracing::error!(execution = %id, %error, "could not claim an execution");
            return;
        }
    }
    let ran = tokio::select! {
        biased;
        // Past the grace period: dropped here, marked interrupted by `Workers::stop`.
        () = gateway.stopping.reached(Phase::Aborting) => return,
        ran = run(&gateway, &id) => ran,
    };
    let (status, result) = match ran {
        Ok(Ended::Ran(outcome)) => (if outcome.is_ok() { "completed" } else { "failed" }, outcome_json(&outcome)),
        Ok(Ended::Refused(code, message)) => ("failed", failure(code, &message)),
        Err(error) => {
            tracing::error!(execution = %id, error = %error.chain(), "execution could not run");
            ("failed", failure("internal", "the gateway could not run this execution"))
        }
    };
    let code = result["error"]["code"].as_str().unwrap_or("");
    tracing::info!(execution = %id, status, error = code, duration_ms = %result["duration_ms"], "execution ended");
    if let Err(error) = finish(&gateway, &id, status, &result).await {
        tracing::error!(execution = %id, %error, "could not record an execution's result");
    }
}

/// How an execution ended.
enum Ended {
    /// The script ran (successfully or not).
    Ran(Outcome),
    /// It was refused before running: code and message for the agent.
    Refused(&'static str, String),
}

async fn run(gateway: &Gateway, id: &str) -> Result<Ended> {
    let row = sqlx::query(
        "SELECT e.code, e.args, e.permit_id, p.status, p.spec, p.spec_hash, p.owner_id, p.expires_at \
         FROM executions e JOIN permits p ON p.id = e.permit_id WHERE e.id = $1",
    )
    .bind(id)
    .fetch_one(&gateway.db.pool)
    .await?;
    let permit_id: String = row.try_get("permit_id")?;
    let status: String = row.try_get("status")?;
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    let (Some(spec), Some(hash), Some(owner)) = (
        row.try_get::<Option<String>, _>("spec")?,
        row.try_get::<Option<String>, _>("spec_hash")?,
        row.try_get::<Option<String>, _>("owner_id")?,
    ) else {
        return Ok(Ended::Refused("permit_not_active", "the permit has no approved spec".into()));
    };
    if status != "active" {
        return Ok(Ended::Refused("permit_not_active", format!("the permit is {status}")));
    }
    if expires_at.is_some_and(|at| at <= now_ms()) {
        return Ok(Ended::Refused("permit_expired", "the permit has expired".into()));
    }
    let permit = gateway.compiled(&hash, &spec)?;
    let code: String = row.try_get("code")?;
    let args: Value = serde_json::from_str(&row.try_get::<String, _>("args")?).unwrap_or(Value::Null);
    let script = match gateway.runtime.compile_js(&code).await {
        Ok(script) => script,
        Err(error @ oauth3_host::HostError::Syntax { .. }) => {
            return Ok(Ended::Refused("syntax_error", error.to_string()));
        }
        Err(error) => return Err(Error::Host(error)),
    };
    let context = CallContext {
        permit_id,
        execution_id: id.to_owned(),
        permit: Arc::clone(&permit),
        secrets: Arc::new(OwnerSecrets::new(gateway.db.clone(), Arc::clone(&gateway.sealer), owner)),
    };
    let limits = Limits::default()
        .max_calls(gateway.config.max_calls)
        .fuel(gateway.config.fuel)
        .memory_bytes(gateway.config.memory_mb << 20)
        .wall_time(gateway.config.timeout());
    let run = RunContext::for_permit(&permit).args(args).limits(limits);
    Ok(Ended::Ran(gateway.runtime.run(&script, Arc::new(gateway.egress.bind(context)), run).await?))
}

fn outcome_json(outcome: &Outcome) -> Value {
    let mut result = json!({
        "success": outcome.is_ok(),
        "stdout": outcome.stdout,
        "stderr": outcome.stderr,
        "duration_ms": outcome.duration.as_millis() as u64,
        "fuel_used": outcome.fuel_used,
        "calls": outcome.calls.iter().map(call_json).collect::<Vec<_>>(),
    });
    if let Some(error) = &outcome.error {
        result["error"] = json!({"code": error.code(), "message": error.to_string()});
    }
    result
}

/// One call as agents and owners see it (the audit log has the same fields).
fn call_json(call: &oauth3_host::CallRecord) -> Value {
    json!({
        "integration": call.integration,
        "method": call.method,
        "url": call.url,
        "decision": call.decision,
        "reason": call.reason,
        "status": call.status,
        "request_bytes": call.request_bytes,
        "response_bytes": call.response_bytes,
        "started_at": crate::db::rfc3339(crate::db::unix_ms(call.started_at)),
        "duration_ms": call.duration.as_millis() as u64,
    })
}

async fn finish(gateway: &Gateway, id: &str, status: &str, result: &Value) -> Result<()> {
    sqlx::query(
        "UPDATE executions SET status = $1, finished_at = $2, result = $3 WHERE id = $4 AND status = 'running'",
    )
    .bind(status)
    .bind(now_ms())
    .bind(result.to_string())
    .bind(id)
    .execute(&gateway.db.pool)
    .await?;
    gateway.finished.notify(id);
    Ok(())
}
