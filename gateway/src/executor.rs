//! Executions: queued in the database and claimed by compare-and-swap (or
//! inserted running by a replica with a free worker), run by a bounded
//! worker pool through `oauth3-host`, finished in the database.
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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::capabilities::OwnerSecrets;
use crate::db::{Db, now_ms};
use crate::error::{Error, Result};
use crate::receipts::{self, ExecutionFacts};
use crate::state::{Gateway, Phase, lock};
use crate::store::executions::Slot;
use crate::store::{Claimed, ExecutionRow, ExecutionStatus, NewExecution, PermitStatus};
use crate::store::{components, executions, permits};
use crate::views::OutcomeView;

/// How often a replica heartbeats: a quarter of the timeout after which
/// the others take it for dead, and at least every 5 s.
fn heartbeat_every(timeout_ms: u64) -> Duration {
    Duration::from_millis(timeout_ms / 4).min(Duration::from_secs(5))
}

/// Registers this replica and marks executions left `running` by it (a
/// previous process on this data dir) or by replicas whose heartbeat is
/// older than `timeout_ms` as failed. Returns how many were marked.
pub async fn recover(db: &Db, replica_id: &str, timeout_ms: u64) -> Result<u64> {
    executions::register_replica(db, replica_id, now_ms()).await?;
    Ok(fail_interrupted(db, Some(replica_id), timeout_ms).await?.len() as u64)
}

/// Marks running executions failed with `interrupted`: those of
/// `replica_id`, those no worker holds, and those of replicas whose
/// heartbeat is older than `timeout_ms`. Returns their ids.
async fn fail_interrupted(db: &Db, replica_id: Option<&str>, timeout_ms: u64) -> Result<Vec<String>> {
    let now = now_ms();
    executions::fail_interrupted(db, replica_id, &interrupted().to_string(), now, now - timeout_ms as i64).await
}

/// The result of an execution marked interrupted.
fn interrupted() -> Value {
    failure(
        "interrupted",
        "the gateway stopped while this execution was running; it was not re-run because its calls may have had \
         side effects",
    )
}

/// How long a row may be `running` on this replica with no run here
/// holding it before it is taken for orphaned: far longer than the moment
/// between a claim's (or a running insert's) commit and its run's start.
const ORPHAN_AFTER_MS: i64 = 10_000;

/// Marks `interrupted` the executions `running` on this replica that no
/// run here holds: a claim or a running insert committed but its writer
/// heard an error (the commit's outcome was unknown), or a finish failed.
/// Nothing else would end them while this replica heartbeats. Returns how
/// many.
async fn interrupt_orphans(gateway: &Gateway) -> Result<u64> {
    // Stopping: what it abandons is marked by `Workers::stop`, after the
    // audit outcomes of its calls are written.
    if gateway.stopping.is_stopping() {
        return Ok(0);
    }
    let now = now_ms();
    let listed = executions::running_on(&gateway.db, &gateway.replica_id, now - ORPHAN_AFTER_MS).await?;
    let result = interrupted().to_string();
    let mut marked = 0;
    for id in listed.into_iter().filter(|id| !gateway.running.holds(id)) {
        if executions::fail_running(&gateway.db, &id, &gateway.replica_id, &result, now).await? {
            tracing::warn!(execution = %id, "marked interrupted: running here in the database, but not run here");
            gateway.finished.notify(&id, None);
            marked += 1;
        }
    }
    Ok(marked)
}

/// The executions this process is running or starting, by id, with how
/// many hold each (see [`interrupt_orphans`]): a queued id may reach two
/// workers, one of which runs it while the other finds it claimed.
#[derive(Default)]
pub struct Running(Holds);

/// Holds by execution id.
type Holds = Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>;

impl Running {
    /// Holds `id` until the guard drops.
    fn hold(&self, id: &str) -> Held {
        *lock(&self.0).entry(id.to_owned()).or_default() += 1;
        Held { running: Arc::clone(&self.0), id: id.to_owned() }
    }

    fn holds(&self, id: &str) -> bool {
        lock(&self.0).contains_key(id)
    }
}

/// A hold on an execution being started or run.
struct Held {
    running: Holds,
    id: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut running = lock(&self.running);
        if let Some(holds) = running.get_mut(&self.id) {
            *holds -= 1;
            if *holds == 0 {
                running.remove(&self.id);
            }
        }
    }
}

/// [`fail_interrupted`], then wakes the waiters of those marked here (other
/// replicas' by the NOTIFY of their update). Returns how many.
async fn interrupt(gateway: &Gateway, replica_id: Option<&str>) -> Result<u64> {
    let marked = fail_interrupted(&gateway.db, replica_id, gateway.config.replica_timeout_ms).await?;
    for id in &marked {
        gateway.finished.notify(id, None);
    }
    Ok(marked.len() as u64)
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
    let audit_done = gateway.audit.take(id);
    let finished = executions::finish(&gateway.db, id, ExecutionStatus::Failed, &failed, now_ms(), None, &audit_done);
    if let Err(error) = finished.await {
        tracing::error!(execution = %id, %error, "could not record an execution's failure");
        gateway.audit.write(&audit_done).await;
    }
    gateway.finished.notify(id, None);
}

fn failure(code: &str, message: &str) -> Value {
    serde_json::to_value(OutcomeView::failure(code, message)).unwrap_or(Value::Null)
}

/// The places of the worker pool (`Gateway::workers`): one per execution
/// it may run at once.
pub fn places(config: &crate::Config) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(pool_size(config) as usize))
}

fn pool_size(config: &crate::Config) -> u32 {
    config.max_concurrent.clamp(1, u32::MAX as usize) as u32
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
    let size = pool_size(&gateway.config);
    let slots = Arc::clone(&gateway.workers);
    tokio::spawn(dispatch(Arc::clone(&gateway), queue, Arc::clone(&slots)));
    tokio::spawn(heartbeats(Arc::clone(&gateway)));
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
            // Outcomes of calls that ended after their runs.
            gateway.audit.flush().await;
            return Ok(0);
        }
        // Abandon the rest: each run is dropped, so its calls not yet sent
        // never are, before it is reported interrupted.
        gateway.stopping.advance(Phase::Aborting);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.slots.acquire_many(self.size)).await;
        // The calls of abandoned runs that were answered: their outcomes.
        gateway.audit.flush().await;
        interrupt(gateway, Some(&gateway.replica_id)).await
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
        tokio::spawn(run_in(Arc::clone(&gateway), id, None, slot));
    }
}

/// A free place in this replica's worker pool, unless it is stopping: the
/// caller may [`insert_and_run`] an execution in it.
pub fn free_worker(gateway: &Gateway) -> Option<OwnedSemaphorePermit> {
    if gateway.stopping.is_stopping() {
        return None;
    }
    Arc::clone(&gateway.workers).try_acquire_owned().ok()
}

/// What [`insert_and_run`] did.
pub enum Inserted {
    /// Inserted running here, and started.
    Running,
    /// Nothing was inserted ([`executions::insert_queued`] says why, or
    /// this replica began to stop); the place is still free.
    Not(OwnedSemaphorePermit),
}

/// Inserts `new` running on this replica into `slot`
/// ([`executions::insert_running`]) and runs it in `place`. In a task of
/// its own: once inserted running, it must run even if the request that
/// submitted it goes away.
pub async fn insert_and_run(
    gateway: Arc<Gateway>,
    new: NewExecution,
    slot: Slot,
    place: OwnedSemaphorePermit,
) -> Result<Inserted> {
    let (tell, told) = oneshot::channel();
    tokio::spawn(async move {
        // Draining began meanwhile: not started here after all.
        if gateway.stopping.is_stopping() {
            let _ = tell.send(Ok(Inserted::Not(place)));
            return;
        }
        // Held from before it is inserted: however long the insert takes,
        // it is never taken for an orphan.
        let id = new.id.clone();
        let _held = gateway.running.hold(&id);
        match executions::insert_running(&gateway.db, new, slot, &gateway.replica_id).await {
            Ok(Some(claimed)) => {
                let _ = tell.send(Ok(Inserted::Running));
                run_in(gateway, id, Some(claimed), place).await;
            }
            Ok(None) => {
                let _ = tell.send(Ok(Inserted::Not(place)));
            }
            Err(error) => {
                let _ = tell.send(Err(error));
            }
        }
    });
    told.await.map_err(|_| Error::Internal("starting an execution failed".into()))?
}

/// Runs `id` in `place` (claiming it first unless `claimed`), and fails it
/// if the run panics.
async fn run_in(gateway: Arc<Gateway>, id: String, claimed: Option<Claimed>, place: OwnedSemaphorePermit) {
    // Until it has finished (or failed to).
    let _held = gateway.running.hold(&id);
    let task = tokio::spawn(execute(Arc::clone(&gateway), id.clone(), claimed));
    if let Err(error) = task.await {
        tracing::error!(execution = %id, %error, "execution task panicked");
        fail_internally(&gateway, &id, "the gateway failed running this").await;
    }
    drop(place);
}

/// Every quarter of the replica timeout: heartbeat, and fail the running
/// executions of replicas that died. Its own loop, so that a slow sweep
/// never delays a heartbeat; it goes on while draining, so that other
/// replicas do not take this one for dead during a long grace period.
async fn heartbeats(gateway: Arc<Gateway>) {
    let mut tick = tokio::time::interval(heartbeat_every(gateway.config.replica_timeout_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = gateway.stopping.reached(Phase::Stopped) => return,
            _ = tick.tick() => {}
        }
        let beat = async {
            heartbeat(&gateway).await?;
            interrupt(&gateway, None).await?;
            interrupt_orphans(&gateway).await
        };
        if let Err(error) = beat.await {
            tracing::warn!(%error, "heartbeat failed");
        }
    }
}

/// Every second: requeue executions the channel dropped or other replicas
/// left queued.
async fn sweep(gateway: Arc<Gateway>) {
    let mut tick = tokio::time::interval(Duration::from_millis(1000));
    loop {
        tokio::select! {
            biased;
            () = gateway.stopping.wait() => return,
            _ = tick.tick() => {}
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

async fn heartbeat(gateway: &Gateway) -> Result<()> {
    executions::heartbeat(&gateway.db, &gateway.replica_id, now_ms()).await
}

async fn execute(gateway: Arc<Gateway>, id: String, claimed: Option<Claimed>) {
    let claimed = match claimed {
        Some(claimed) => claimed,
        None => {
            if gateway.stopping.is_stopping() {
                return; // stays queued for the next start
            }
            match executions::claim(&gateway.db, &id, &gateway.replica_id, now_ms()).await {
                Ok(Some(claimed)) => claimed,
                Ok(None) => return, // another worker has it, or it already ended
                Err(error) => {
                    tracing::error!(execution = %id, error = %error.chain(), "could not claim an execution");
                    return;
                }
            }
        }
    };
    gateway.audit.open(&id);
    // What the receipt names and waiters are handed, beside the outcome.
    let row = claimed.running_row();
    let tap = StdoutTap::new();
    let ran = tokio::select! {
        biased;
        // Past the grace period: dropped here, marked interrupted by `Workers::stop`.
        () = gateway.stopping.reached(Phase::Aborting) => return,
        ran = run(&gateway, &id, claimed, &tap) => ran,
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
    if let Err(error) = finish(&gateway, row, status, &result).await {
        tracing::error!(execution = %id, %error, "could not record an execution's result");
        // Its calls' outcomes, if the finish failed before taking them.
        gateway.audit.release(&id).await;
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

async fn run(gateway: &Gateway, id: &str, row: Claimed, tap: &StdoutTap) -> Result<Ended> {
    let (permit_id, status, expires_at, code) = (row.permit_id, row.permit_status, row.expires_at, row.code);
    let (Some(hash), Some(owner)) = (row.spec_hash, row.owner_id) else {
        return Ok(Ended::Refused("permit_not_active", "the permit has no approved spec".into()));
    };
    if status != PermitStatus::Active {
        return Ok(Ended::Refused("permit_not_active", format!("the permit is {status}")));
    }
    if expires_at.is_some_and(|at| at <= now_ms()) {
        return Ok(Ended::Refused("permit_expired", "the permit has expired".into()));
    }
    let permit = match gateway.compiled_if_cached(&hash) {
        Some(permit) => permit,
        None => match permits::approved_spec(&gateway.db, &permit_id).await? {
            Some((spec, current)) if current == hash => gateway.compiled(&hash, &spec)?,
            // An approval changed the spec since the claim: the receipt
            // would name a spec other than the one run.
            _ => {
                return Ok(Ended::Refused(
                    "permit_changed",
                    "the permit's spec changed as this started; submit it again".into(),
                ));
            }
        },
    };
    let mut secrets = OwnerSecrets::new(gateway.db.clone(), Arc::clone(&gateway.keyring), owner);
    if let Some(version) = row.secrets_version {
        secrets = secrets.cached(version, Arc::clone(&gateway.secrets));
    }
    let args: Value = serde_json::from_str(&row.args).unwrap_or(Value::Null);
    let context =
        CallContext { permit_id, execution_id: id.to_owned(), permit: Arc::clone(&permit), secrets: Arc::new(secrets) };
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

/// Records the outcome and its receipt, then wakes waiters: local ones get
/// the committed row, other replicas' the NOTIFY its update sends.
async fn finish(gateway: &Gateway, mut row: ExecutionRow, status: ExecutionStatus, result: &Value) -> Result<()> {
    let at = now_ms();
    let facts = ExecutionFacts {
        request_id: &row.id,
        permit_id: &row.permit_id,
        spec_hash: row.spec_hash.as_deref(),
        code_hash: row.code_hash.as_deref(),
        status: status.as_str(),
        finished_at: Some(at),
        result,
    };
    let receipt = receipts::execution(&gateway.tee.signing, &facts)?;
    let result = result.to_string();
    let audit_done = gateway.audit.take(&row.id);
    let finished = executions::finish(&gateway.db, &row.id, status, &result, at, Some(&receipt), &audit_done).await;
    let finished = match finished {
        Ok(finished) => finished,
        Err(error) => {
            gateway.audit.write(&audit_done).await;
            return Err(error);
        }
    };
    let id = row.id.clone();
    if finished {
        row.status = status;
        row.finished_at = Some(at);
        row.result = Some(result);
        row.receipt = Some(executions::receipt_json(&receipt.receipt)?);
        gateway.finished.notify(&id, Some(row));
    } else {
        // Not running any more (interrupted meanwhile): waiters read it.
        gateway.finished.notify(&id, None);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Running;

    #[test]
    fn an_execution_two_workers_hold_stays_held_until_both_let_go() {
        let running = Running::default();
        let runs = running.hold("exe_1");
        let finds_it_claimed = running.hold("exe_1");
        drop(finds_it_claimed);
        assert!(running.holds("exe_1"));
        drop(runs);
        assert!(!running.holds("exe_1"));
    }
}
