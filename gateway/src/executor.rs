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

use oauth3_host::{CallContext, HostError, Limits, Outcome, RunContext, StdoutTap};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};

use crate::capabilities::OwnerSecrets;
use crate::db::{Db, now_ms};
use crate::error::{Error, Result};
use crate::receipts::{self, ExecutionFacts};
use crate::state::{Gateway, Phase};
use crate::store::{ExecutionStatus, PermitStatus, RunRow};
use crate::store::{components, executions};
use crate::views::OutcomeView;

/// A replica whose heartbeat is older than this is presumed dead.
const REPLICA_TIMEOUT_MS: i64 = 60_000;
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Registers this replica and marks executions left `running` by it (a
/// previous process on this data dir) or by replicas that stopped
/// heart-beating as failed. Returns how many were marked.
pub async fn recover(db: &Db, replica_id: &str) -> Result<u64> {
    executions::register_replica(db, replica_id, now_ms()).await?;
    fail_interrupted(db, Some(replica_id)).await
}

/// Marks running executions failed with `interrupted`: those of
/// `replica_id`, those no worker holds, and those of replicas whose
/// heartbeat stopped. Returns how many were marked.
async fn fail_interrupted(db: &Db, replica_id: Option<&str>) -> Result<u64> {
    let now = now_ms();
    let result = failure(
        "interrupted",
        "the gateway stopped while this execution was running; it was not re-run because its calls may have had \
         side effects",
    );
    executions::fail_interrupted(db, replica_id, &result.to_string(), now, now - REPLICA_TIMEOUT_MS).await
}

/// The failures the gateway records without a worker's finish (so without
/// a receipt): an interruption, or an internal error before or around the
/// run. Only these are signed later, on first read; a finished row of any
/// other kind without a receipt is not vouched for.
pub(crate) const SIGNED_ON_READ: [&str; 2] = ["interrupted", "internal"];

/// Finishes `id` as failed with an internal error, unsigned (signed when
/// first read), when its worker cannot finish it normally.
async fn fail_internally(gateway: &Gateway, id: &str, message: &str) {
    let failed = failure("internal", message).to_string();
    if let Err(error) = executions::finish(&gateway.db, id, ExecutionStatus::Failed, &failed, now_ms(), None).await {
        tracing::error!(execution = %id, %error, "could not record an execution's failure");
    }
    gateway.finished.notify(id);
    crate::wakeups::announce(&gateway.db, id).await;
}

fn failure(code: &str, message: &str) -> Value {
    serde_json::to_value(OutcomeView::failure(code, message)).unwrap_or(Value::Null)
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
                fail_internally(&gateway, &id, "the gateway failed running this").await;
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
        let queued = executions::queued_before(&gateway.db, now_ms() - 500, 256).await;
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
    executions::heartbeat(&gateway.db, &gateway.replica_id, now_ms()).await?;
    Ok(0)
}

async fn execute(gateway: Arc<Gateway>, id: String) {
    if gateway.stopping.is_stopping() {
        return; // stays queued for the next start
    }
    match executions::claim(&gateway.db, &id, &gateway.replica_id, now_ms()).await {
        Ok(true) => {}
        Ok(false) => return, // another worker has it, or it already ended
        Err(error) => {
            tracing::error!(execution = %id, %error, "could not claim an execution");
            return;
        }
    }
    let row = match executions::for_run(&gateway.db, &id).await {
        Ok(row) => row,
        Err(error) => {
            tracing::error!(execution = %id, error = %error.chain(), "could not read a claimed execution");
            fail_internally(&gateway, &id, "the gateway could not run this execution").await;
            return;
        }
    };
    let signed = Signed {
        permit_id: row.permit_id.clone(),
        spec_hash: row.claimed_spec_hash.clone(),
        code_hash: row.code_hash.clone(),
    };
    let tap = StdoutTap::new();
    let ran = tokio::select! {
        biased;
        // Past the grace period: dropped here, marked interrupted by `Workers::stop`.
        () = gateway.stopping.reached(Phase::Aborting) => return,
        ran = run(&gateway, &id, row, &tap) => ran,
        never = record_stdout(&gateway, &id, &tap) => match never {},
    };
    let (status, result) = match ran {
        Ok(Ended::Ran(outcome)) => {
            let status = if outcome.is_ok() { ExecutionStatus::Completed } else { ExecutionStatus::Failed };
            (status, serde_json::to_value(OutcomeView::of(&outcome)).unwrap_or(Value::Null))
        }
        Ok(Ended::Refused(code, message)) => (ExecutionStatus::Failed, failure(code, &message)),
        Err(error) => {
            tracing::error!(execution = %id, error = %error.chain(), "execution could not run");
            (ExecutionStatus::Failed, failure("internal", "the gateway could not run this execution"))
        }
    };
    let code = result["error"]["code"].as_str().unwrap_or("");
    tracing::info!(execution = %id, %status, error = code, duration_ms = %result["duration_ms"], "execution ended");
    if let Err(error) = finish(&gateway, &id, status, &result, &signed).await {
        tracing::error!(execution = %id, %error, "could not record an execution's result");
    }
}

/// Writes what the run has printed (whole lines) to its row as it grows,
/// for whichever replica a client polls; stopped when the run ends.
async fn record_stdout(gateway: &Gateway, id: &str, tap: &StdoutTap) -> std::convert::Infallible {
    let mut recorded = 0;
    loop {
        tokio::time::sleep(STDOUT_EVERY).await;
        let lines = tap.lines();
        if lines.len() > recorded {
            match executions::set_stdout_so_far(&gateway.db, id, &lines).await {
                Ok(()) => recorded = lines.len(),
                Err(error) => tracing::warn!(execution = %id, %error, "could not record output so far"),
            }
        }
    }
}

/// How often a running execution's output is recorded.
const STDOUT_EVERY: Duration = Duration::from_millis(500);

/// How an execution ended.
enum Ended {
    /// The script ran (successfully or not).
    Ran(Outcome),
    /// It was refused before running: code and message for the agent.
    Refused(&'static str, String),
}

/// What an execution's receipt names besides its outcome.
struct Signed {
    permit_id: String,
    spec_hash: Option<String>,
    code_hash: Option<String>,
}

async fn run(gateway: &Gateway, id: &str, row: RunRow, tap: &StdoutTap) -> Result<Ended> {
    let (permit_id, status, expires_at, code) = (row.permit_id, row.status, row.expires_at, row.code);
    let (Some(spec), Some(hash), Some(owner)) = (row.spec, row.spec_hash, row.owner_id) else {
        return Ok(Ended::Refused("permit_not_active", "the permit has no approved spec".into()));
    };
    if row.claimed_spec_hash.as_deref() != Some(hash.as_str()) {
        // An approval changed the spec between the claim and this read: the
        // receipt would name a spec other than the one run.
        return Ok(Ended::Refused(
            "permit_changed",
            "the permit's spec changed as this started; submit it again".into(),
        ));
    }
    if status != PermitStatus::Active {
        return Ok(Ended::Refused("permit_not_active", format!("the permit is {status}")));
    }
    if expires_at.is_some_and(|at| at <= now_ms()) {
        return Ok(Ended::Refused("permit_expired", "the permit has expired".into()));
    }
    let permit = gateway.compiled(&hash, &spec)?;
    let args: Value = serde_json::from_str(&row.args).unwrap_or(Value::Null);
    let context = CallContext {
        permit_id,
        execution_id: id.to_owned(),
        permit: Arc::clone(&permit),
        secrets: Arc::new(OwnerSecrets::new(gateway.db.clone(), Arc::clone(&gateway.keyring), owner)),
    };
    let limits = Limits::default()
        .max_calls(gateway.config.max_calls)
        .fuel(gateway.config.fuel)
        .memory_bytes(gateway.config.memory_mb << 20)
        .wall_time(gateway.config.timeout());
    let outbound = Arc::new(gateway.egress.bind(context));
    if let Some(hash) = row.component_hash {
        let component = match gateway.runtime.loaded_component(&hash) {
            Some(component) => Ok(component),
            None => {
                let bytes = components::get(&gateway.db, &hash)
                    .await?
                    .ok_or_else(|| Error::Internal(format!("component {hash} is not stored")))?;
                gateway.runtime.load_component(&bytes, &permit).await
            }
        };
        let ran = match component {
            Ok(component) => {
                gateway.runtime.run_component_tapped(&component, &permit, outbound, &args, limits, Some(tap)).await
            }
            Err(error) => Err(error),
        };
        return match ran {
            Ok(outcome) => Ok(Ended::Ran(outcome)),
            Err(HostError::ComponentRejected(rejected)) => {
                Ok(Ended::Refused("component_rejected", rejected.to_string()))
            }
            Err(error) => Err(Error::Host(error)),
        };
    }
    let script = match gateway.runtime.compile_js(&code).await {
        Ok(script) => script,
        Err(error @ HostError::Syntax { .. }) => {
            return Ok(Ended::Refused("syntax_error", error.to_string()));
        }
        Err(error) => return Err(Error::Host(error)),
    };
    let run = RunContext::for_permit(&permit).args(args).limits(limits).stdout(tap.clone());
    Ok(Ended::Ran(gateway.runtime.run(&script, outbound, run).await?))
}

async fn finish(gateway: &Gateway, id: &str, status: ExecutionStatus, result: &Value, signed: &Signed) -> Result<()> {
    let at = now_ms();
    let facts = ExecutionFacts {
        request_id: id,
        permit_id: &signed.permit_id,
        spec_hash: signed.spec_hash.as_deref(),
        code_hash: signed.code_hash.as_deref(),
        status: status.as_str(),
        finished_at: Some(at),
        result,
    };
    let receipt = receipts::execution(&gateway.tee.signing, &facts)?;
    executions::finish(&gateway.db, id, status, &result.to_string(), at, Some(&receipt)).await?;
    gateway.finished.notify(id);
    crate::wakeups::announce(&gateway.db, id).await;
    Ok(())
}
