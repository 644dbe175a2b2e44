//! Executions and the replicas that run them, and their transitions:
//!
//! ```text
//! (insert, holding one of the agent's slots) queued ──claim──▶ running ──finish──▶ completed | failed
//! (insert on a free worker, holding a slot) ─────────────────▶ running
//!                                                                  └──interrupted (crash, shutdown)──▶ failed
//! ```

use std::sync::{Arc, LazyLock};

use oauth3_host::CallRecord;

use super::rows::{ActionRow, Claimed, ExecutionRow, NewExecution};
use super::status::{ExecutionStatus, PermitStatus};
use crate::db::{Backend, Db};
use crate::error::{Error, Result};
use crate::group_commit::Write;
use crate::receipts::{Issued, Receipt};
use crate::sql::{Arg, Conn};

/// Which of the agent's slots an insert takes.
#[derive(Debug, Clone, Copy)]
pub enum Slot {
    /// This one (below the cap).
    Exactly(i64),
    /// A free one below the cap, chosen at random so parallel submissions
    /// rarely collide.
    AnyFreeBelow(i64),
}

/// Inserts the execution `queued`, holding a slot, in one statement that
/// also checks its permit: issued to the agent, `active` and not expired at
/// `created_at`. The unique index on (agent, slot) over queued and running
/// executions is what enforces the cap: no two can hold a slot, however many
/// race. False when nothing was inserted (the permit refuses it, the slot is
/// taken or none is free, or the action exists); the caller finds out which.
pub async fn insert_queued(db: &Db, new: &NewExecution, slot: Slot) -> Result<bool> {
    let write: Write<(NewExecution, Slot), bool> = |conn, (new, slot)| {
        Box::pin(async move {
            let (sql, args) = insert(new, *slot, None);
            Ok(conn.execute(sql, &args).await? == 1)
        })
    };
    db.group.run((new.clone(), slot), write).await
}

/// [`insert_queued`], but inserted `running` on `worker` as a claim leaves
/// it (one statement instead of an insert and a claim, for a replica with a
/// free worker): what the worker needs, or None where [`insert_queued`]
/// gives false.
pub async fn insert_running(db: &Db, new: NewExecution, slot: Slot, worker: &str) -> Result<Option<Claimed>> {
    let write: Write<(NewExecution, Slot, String), Option<Claimed>> = |conn, (new, slot, worker)| {
        Box::pin(async move {
            let (sql, args) = insert(new, *slot, Some(worker));
            conn.fetch_optional(sql, &args).await
        })
    };
    db.group.run((new, slot, worker.to_owned()), write).await
}

// The permit's row is the one `FROM` row when it allows the run: its status
// ($12 active) and expiry are read in the same statement as the insert. (A
// revoke committing after a queued insert is caught by the claim, which
// reads the permit again.)
const INSERT_PERMIT: &str = "permits p WHERE p.id = $2 AND p.agent_id = $3 AND p.status = $12 \
     AND (p.expires_at IS NULL OR p.expires_at > $7)";
const INSERT_COLUMNS: &str =
    "id, permit_id, agent_id, action_id, code, args, status, created_at, slot, component_hash, code_hash";
/// The values of [`INSERT_COLUMNS`] but the slot's, and queued ($9).
const INSERT_QUEUED: &str = "$1, $2, $3, $4, $5, $6, $9";
/// The same, and the columns a claim sets, running ($13) on worker $14.
const INSERT_RUNNING: &str = "$1, $2, $3, $4, $5, $6, $13";
const RUNNING_COLUMNS: &str = ", started_at, worker, spec_hash";
const RUNNING_VALUES: &str = ", $7, $14, p.spec_hash";

/// The insert into slot `$8` (`slot`: its value) or a free one below `$8`,
/// queued or running; the search also names running ($13), to find the
/// slots in use.
fn insert_sql(search: bool, running: bool) -> String {
    let (status, more_columns, more_values) =
        if running { (INSERT_RUNNING, RUNNING_COLUMNS, RUNNING_VALUES) } else { (INSERT_QUEUED, "", "") };
    let (with, slot, from) = if search {
        (
            "WITH RECURSIVE slots(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM slots WHERE n + 1 < $8), \
             free AS (SELECT n FROM slots WHERE n NOT IN (SELECT slot FROM executions WHERE agent_id = $3 \
               AND status IN ($9, $13) AND slot IS NOT NULL) ORDER BY random() LIMIT 1) ",
            "free.n",
            "free, ",
        )
    } else {
        ("", "$8", "")
    };
    let returning = if running { format!(" RETURNING {CLAIMED}") } else { String::new() };
    format!(
        "{with}INSERT INTO executions ({INSERT_COLUMNS}{more_columns}) \
         SELECT {status}, $7, {slot}, $10, $11{more_values} FROM {from}{INSERT_PERMIT} ON CONFLICT DO NOTHING{returning}"
    )
}

/// [`insert_sql`] by (search, running).
static INSERTS: LazyLock<[[String; 2]; 2]> = LazyLock::new(|| {
    [[insert_sql(false, false), insert_sql(false, true)], [insert_sql(true, false), insert_sql(true, true)]]
});

/// An insert's statement and its arguments ($13 and $14 only for the
/// statements that name them).
fn insert<'a>(new: &'a NewExecution, slot: Slot, worker: Option<&'a str>) -> (&'static str, Vec<Arg<'a>>) {
    let (slot, search) = match slot {
        Slot::Exactly(n) => (n, false),
        Slot::AnyFreeBelow(cap) => (cap, true),
    };
    let mut args: Vec<Arg<'a>> = [&new.id, &new.permit_id, &new.agent_id, &new.action_id, &new.code, &new.args]
        .into_iter()
        .map(Arg::from)
        .collect();
    args.extend::<[Arg; 6]>([
        new.created_at.into(),
        slot.into(),
        ExecutionStatus::Queued.as_str().into(),
        new.component_hash.as_deref().into(),
        new.code_hash.as_str().into(),
        PermitStatus::Active.as_str().into(),
    ]);
    if search || worker.is_some() {
        args.push(ExecutionStatus::Running.as_str().into());
    }
    if let Some(worker) = worker {
        args.push(worker.into());
    }
    (&INSERTS[search as usize][worker.is_some() as usize], args)
}

/// The execution the agent already made for this action, if any.
pub async fn for_action(db: &Db, agent: &str, permit_id: &str, action_id: &str) -> Result<Option<ActionRow>> {
    Ok(sqlx::query_as(
        "SELECT id, code, args, component_hash, status FROM executions WHERE agent_id = $1 AND permit_id = $2 AND action_id = $3",
    )
    .bind(agent)
    .bind(permit_id)
    .bind(action_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// The agent's queued and running executions.
pub async fn in_flight(db: &Db, agent: &str) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM executions WHERE agent_id = $1 AND status IN ($2, $3)")
        .bind(agent)
        .bind(ExecutionStatus::Queued.as_str())
        .bind(ExecutionStatus::Running.as_str())
        .fetch_one(&db.pool)
        .await?)
}

/// The execution `id`, with its permit's owner.
pub async fn execution(db: &Db, id: &str) -> Result<Option<ExecutionRow>> {
    Ok(sqlx::query_as(
        "SELECT e.id, e.agent_id, e.permit_id, e.action_id, e.status, e.created_at, e.started_at, e.finished_at, \
         e.result, p.owner_id, e.spec_hash, e.code_hash, e.receipt, e.stdout_so_far \
         FROM executions e JOIN permits p ON p.id = e.permit_id WHERE e.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Records what the running execution `id` has printed so far.
pub async fn set_stdout_so_far(db: &Db, id: &str, stdout: &str) -> Result<()> {
    sqlx::query("UPDATE executions SET stdout_so_far = $1 WHERE id = $2 AND status = $3")
        .bind(stdout)
        .bind(id)
        .bind(ExecutionStatus::Running.as_str())
        .execute(&db.writer)
        .await?;
    Ok(())
}

/// Queued executions created before `before`, oldest first.
pub async fn queued_before(db: &Db, before: i64, limit: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM executions WHERE status = $1 AND created_at < $2 ORDER BY created_at LIMIT $3",
    )
    .bind(ExecutionStatus::Queued.as_str())
    .bind(before)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

/// `queued` → `running` by `worker`, recording the spec hash its permit has
/// now (what its receipt names), and returning in the same statement what
/// the worker needs to run it, its permit's state included. None when
/// another worker has it, or it already ended.
pub async fn claim(db: &Db, id: &str, worker: &str, at: i64) -> Result<Option<Claimed>> {
    let state = (id.to_owned(), worker.to_owned(), at);
    db.group.run(state, |conn, (id, worker, at)| Box::pin(claim_on(conn, id, worker, *at))).await
}

/// What a claim returns: the running execution, and its permit's columns
/// by subqueries on `executions.permit_id`.
const CLAIMED: &str = "id, agent_id, permit_id, action_id, created_at, started_at, code, args, component_hash, \
     code_hash, spec_hash, \
     (SELECT p.status FROM permits p WHERE p.id = executions.permit_id) AS permit_status, \
     (SELECT p.owner_id FROM permits p WHERE p.id = executions.permit_id) AS owner_id, \
     (SELECT p.expires_at FROM permits p WHERE p.id = executions.permit_id) AS expires_at, \
     (SELECT t.secrets_version FROM permits p JOIN tenants t ON t.id = p.owner_id \
       WHERE p.id = executions.permit_id) AS secrets_version";

/// [`claim`].
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE executions SET status = $1, started_at = $2, worker = $3, \
         spec_hash = (SELECT p.spec_hash FROM permits p WHERE p.id = executions.permit_id) \
         WHERE id = $4 AND status = $5 RETURNING {CLAIMED}"
    )
});

async fn claim_on(conn: &mut Conn<'_>, id: &str, worker: &str, at: i64) -> Result<Option<Claimed>> {
    let args = [
        ExecutionStatus::Running.as_str().into(),
        at.into(),
        worker.into(),
        id.into(),
        ExecutionStatus::Queued.as_str().into(),
    ];
    conn.fetch_optional(&CLAIM, &args).await
}

/// `running` → `completed` or `failed`, with the outcome (JSON) and its
/// signed receipt, after completing the audit outcomes of its calls not
/// yet completed (`audit_done`), so that the audit is whole once it reads
/// as finished. If that fails, it finishes again without them (once, on a
/// new connection: the failure may have been the connection's, and a
/// finish that did commit is not done twice) and then tries them alone
/// (errors logged): every call already has its entry, only its outcome
/// would be missing. False when it was not running (interrupted meanwhile,
/// or finished by the first try after all). Without a receipt, one is
/// signed when the execution is first read.
pub async fn finish(
    db: &Db,
    id: &str,
    to: ExecutionStatus,
    result: &str,
    at: i64,
    receipt: Option<&Issued>,
    audit_done: &[(i64, CallRecord)],
) -> Result<bool> {
    if !to.is_finished() {
        return Err(Error::Internal(format!("an execution cannot finish as {to}")));
    }
    let finish = Arc::new(Finish {
        backend: db.backend,
        id: id.to_owned(),
        to,
        result: result.to_owned(),
        at,
        receipt: receipt.map(|issued| receipt_json(&issued.receipt)).transpose()?,
        receipt_id: receipt.map(|issued| issued.id.clone()),
        audit_done: audit_done.to_vec(),
    });
    let write: Write<Arc<Finish>, bool> = |conn, finish| Box::pin(finish_on(conn, finish));
    match db.group.run(Arc::clone(&finish), write).await {
        Err(error) => {
            tracing::error!(%error, execution = %id, "finishing failed; finishing again without audit outcomes");
            let plain = Finish { audit_done: Vec::new(), ..Finish::clone(&finish) };
            let finished = db.group.run(Arc::new(plain), write).await?;
            if let Err(error) = super::audit::complete_all(db, audit_done).await {
                tracing::error!(%error, execution = %id, "could not complete audit records");
            }
            Ok(finished)
        }
        finished => finished,
    }
}

/// A finish, as [`finish`] writes it.
#[derive(Clone)]
struct Finish {
    backend: Backend,
    id: String,
    to: ExecutionStatus,
    result: String,
    at: i64,
    receipt: Option<String>,
    receipt_id: Option<String>,
    audit_done: Vec<(i64, CallRecord)>,
}

const FINISH: &str = "UPDATE executions SET status = $1, finished_at = $2, result = $3, receipt = $6, \
     receipt_id = $7, stdout_so_far = NULL WHERE id = $4 AND status = $5";
/// [`FINISH`], completing one audit entry too (its parameters from `$8`).
static FINISH_COMPLETING: LazyLock<String> =
    LazyLock::new(|| format!("WITH completed AS ({}) {FINISH}", super::audit::complete_sql(8)));

async fn finish_on(conn: &mut Conn<'_>, finish: &Finish) -> Result<bool> {
    // On Postgres, where every commit waits for its WAL flush, the last
    // outcome is completed in the finish's own statement (one commit when
    // it runs alone).
    let (earlier, last) = match (finish.backend, finish.audit_done.split_last()) {
        (Backend::Postgres, Some((last, earlier))) => (earlier, Some(last)),
        _ => (&finish.audit_done[..], None),
    };
    super::audit::complete(conn, earlier).await?;
    let sql: &str = match last {
        Some(_) => &FINISH_COMPLETING,
        None => FINISH,
    };
    let mut args = vec![
        finish.to.as_str().into(),
        finish.at.into(),
        (&finish.result).into(),
        (&finish.id).into(),
        ExecutionStatus::Running.as_str().into(),
        finish.receipt.as_deref().into(),
        finish.receipt_id.as_deref().into(),
    ];
    if let Some((entry, record)) = last {
        args.extend(super::audit::outcome(*entry, record));
    }
    // Postgres counts the rows of the main statement only, not the CTE's.
    Ok(conn.execute(sql, &args).await? == 1)
}

/// Stores the receipt of a finished execution that has none (one ended by
/// an interruption).
pub async fn set_receipt(db: &Db, id: &str, receipt: &Issued) -> Result<()> {
    sqlx::query("UPDATE executions SET receipt = $1, receipt_id = $2 WHERE id = $3 AND receipt IS NULL")
        .bind(receipt_json(&receipt.receipt)?)
        .bind(receipt.id.as_str())
        .bind(id)
        .execute(&db.writer)
        .await?;
    Ok(())
}

pub(crate) fn receipt_json(receipt: &Receipt) -> Result<String> {
    serde_json::to_string(receipt).map_err(|e| Error::Internal(format!("serialising a receipt: {e}")))
}

/// `running` → `failed` with `result`, for the executions of `replica` (a
/// previous process on this data dir, or this one at shutdown), those no
/// worker holds, and those of replicas whose heartbeat is older than
/// `dead_before`. Returns their ids.
pub async fn fail_interrupted(
    db: &Db,
    replica: Option<&str>,
    result: &str,
    at: i64,
    dead_before: i64,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "UPDATE executions SET status = $1, finished_at = $2, result = $3 \
         WHERE status = $4 AND (worker = $5 OR worker IS NULL \
           OR worker IN (SELECT id FROM replicas WHERE heartbeat_at < $6)) RETURNING id",
    )
    .bind(ExecutionStatus::Failed.as_str())
    .bind(at)
    .bind(result)
    .bind(ExecutionStatus::Running.as_str())
    .bind(replica.unwrap_or(""))
    .bind(dead_before)
    .fetch_all(&db.writer)
    .await?)
}

/// Executions `running` on `worker` that started before `before`.
pub async fn running_on(db: &Db, worker: &str, before: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT id FROM executions WHERE status = $1 AND worker = $2 AND started_at < $3")
        .bind(ExecutionStatus::Running.as_str())
        .bind(worker)
        .bind(before)
        .fetch_all(&db.pool)
        .await?)
}

/// `running` on `worker` → `failed` with `result`. False when it was not
/// running there.
pub async fn fail_running(db: &Db, id: &str, worker: &str, result: &str, at: i64) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE executions SET status = $1, finished_at = $2, result = $3 WHERE id = $4 AND status = $5 AND worker = $6",
    )
    .bind(ExecutionStatus::Failed.as_str())
    .bind(at)
    .bind(result)
    .bind(id)
    .bind(ExecutionStatus::Running.as_str())
    .bind(worker)
    .execute(&db.writer)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Registers `replica` (or refreshes it) with a heartbeat at `at`.
pub async fn register_replica(db: &Db, replica: &str, at: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO replicas (id, heartbeat_at) VALUES ($1, $2) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
    )
    .bind(replica)
    .bind(at)
    .execute(&db.writer)
    .await?;
    Ok(())
}

/// `replica` is alive at `at`.
pub async fn heartbeat(db: &Db, replica: &str, at: i64) -> Result<()> {
    sqlx::query("UPDATE replicas SET heartbeat_at = $1 WHERE id = $2")
        .bind(at)
        .bind(replica)
        .execute(&db.writer)
        .await?;
    Ok(())
}
