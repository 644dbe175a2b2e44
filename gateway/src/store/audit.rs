//! The audit log: one row per call, written by egress's audit sink (ahead of
//! an allowed call, completed after it), read by owners.

use std::sync::LazyLock;

use oauth3_host::CallRecord;

use super::rows::{AuditRow, PermitUse};
use crate::db::{Db, unix_ms};
use crate::error::Result;
use crate::sql::{Arg, Conn, FromRecord, Record};

/// Appends `record`, complete.
pub async fn insert(db: &Db, permit_id: &str, execution_id: &str, record: &CallRecord) -> Result<()> {
    let mut conn = db.writer.acquire().await?;
    insert_returning(&mut Conn::Sqlx(&mut conn), permit_id, execution_id, record).await?;
    Ok(())
}

/// Appends `record` as it is before its call is sent (allowed, no status:
/// "sent, outcome not recorded" until completed), after completing `done`,
/// earlier calls of the execution. The new entry's id.
pub async fn insert_ahead(
    db: &Db,
    permit_id: &str,
    execution_id: &str,
    record: &CallRecord,
    done: &[(i64, CallRecord)],
) -> Result<i64> {
    let state = (permit_id.to_owned(), execution_id.to_owned(), record.clone(), done.to_vec());
    db.group
        .run(state, |conn, (permit_id, execution_id, record, done)| {
            Box::pin(async move {
                complete(conn, done).await?;
                insert_returning(conn, permit_id, execution_id, record).await
            })
        })
        .await
}

async fn insert_returning(
    conn: &mut Conn<'_>,
    permit_id: &str,
    execution_id: &str,
    record: &CallRecord,
) -> Result<i64> {
    // The outcome's columns first ($1–$7), bound as a completion binds them.
    let mut args = outcome_fields(record).to_vec();
    args.extend::<[Arg; 5]>([
        permit_id.into(),
        execution_id.into(),
        (&record.integration).into(),
        (&record.method).into(),
        unix_ms(record.started_at).into(),
    ]);
    let sql = "INSERT INTO audit (url, decision, reason, status, request_bytes, response_bytes, duration_ms, \
               permit_id, execution_id, integration, method, started_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id";
    Ok(conn.fetch_one::<EntryId>(sql, &args).await?.0)
}

/// An entry's id, from `RETURNING id`.
struct EntryId(i64);

impl FromRecord for EntryId {
    fn from_record(record: &Record) -> Result<EntryId> {
        record.int_not_null("id").map(EntryId)
    }
}

/// Completes the entry written ahead as `id` with its call's outcome.
pub async fn complete_one(db: &Db, id: i64, record: &CallRecord) -> Result<()> {
    let mut conn = db.writer.acquire().await?;
    Conn::Sqlx(&mut conn).execute(&COMPLETE, &outcome(id, record)).await?;
    Ok(())
}

/// Completes entries written ahead (by id) with their calls' outcomes.
pub async fn complete(conn: &mut Conn<'_>, done: &[(i64, CallRecord)]) -> Result<()> {
    for (id, record) in done {
        conn.execute(&COMPLETE, &outcome(*id, record)).await?;
    }
    Ok(())
}

/// [`complete`] on a writer connection of its own, outside any batch.
pub async fn complete_all(db: &Db, done: &[(i64, CallRecord)]) -> Result<()> {
    if done.is_empty() {
        return Ok(());
    }
    complete(&mut Conn::Sqlx(&mut *db.writer.acquire().await?), done).await
}

/// The statement completing one entry, on its own.
static COMPLETE: LazyLock<String> = LazyLock::new(|| complete_sql(1));

/// The statement completing one entry, its placeholders numbered from
/// `first` (for use inside another statement); its arguments are [`outcome`]'s.
pub(crate) fn complete_sql(first: usize) -> String {
    let p = |n: usize| format!("${}", first + n);
    format!(
        "UPDATE audit SET url = {}, decision = {}, reason = {}, status = {}, request_bytes = {}, response_bytes = {}, \
         duration_ms = {} WHERE id = {}",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7)
    )
}

/// The arguments, in [`complete_sql`]'s order, of the outcome of entry `id`.
pub(crate) fn outcome(id: i64, record: &CallRecord) -> [Arg<'_>; 8] {
    let [a, b, c, d, e, f, g] = outcome_fields(record);
    [a, b, c, d, e, f, g, id.into()]
}

/// A call's outcome: url, decision, reason, status, request and response
/// bytes, duration (the order both the insert and a completion use).
fn outcome_fields(record: &CallRecord) -> [Arg<'_>; 7] {
    [
        (&record.url).into(),
        record.decision.as_str().into(),
        record.reason.into(),
        record.status.map(i64::from).into(),
        (record.request_bytes as i64).into(),
        (record.response_bytes as i64).into(),
        (record.duration.as_millis() as i64).into(),
    ]
}

/// An [`AuditRow`]'s columns, from `audit a`: the receipt id is its
/// execution's.
const COLUMNS: &str = "a.id, a.permit_id, a.execution_id, a.integration, a.method, a.url, a.decision, a.reason, \
                       a.status, a.request_bytes, a.response_bytes, a.started_at, a.duration_ms, \
                       (SELECT e.receipt_id FROM executions e WHERE e.id = a.execution_id) AS receipt_id";

/// The newest `limit` calls under `owner`'s permits (or the one permit),
/// newest first.
pub async fn of_owner(db: &Db, owner: &str, permit_id: Option<&str>, limit: i64) -> Result<Vec<AuditRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit a JOIN permits p ON p.id = a.permit_id \
         WHERE p.owner_id = $1 AND ($2 = '' OR a.permit_id = $2) ORDER BY a.id DESC LIMIT $3"
    );
    Ok(sqlx::query_as(&sql).bind(owner).bind(permit_id.unwrap_or("")).bind(limit).fetch_all(&db.pool).await?)
}

/// Up to `limit` calls under `owner`'s permits (or the one permit) with an
/// id above `after`, oldest first: what `audit --follow` has not seen.
pub async fn after_of_owner(
    db: &Db,
    owner: &str,
    permit_id: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit a JOIN permits p ON p.id = a.permit_id \
         WHERE p.owner_id = $1 AND ($2 = '' OR a.permit_id = $2) AND a.id > $3 ORDER BY a.id LIMIT $4"
    );
    let query = sqlx::query_as(&sql).bind(owner).bind(permit_id.unwrap_or("")).bind(after).bind(limit);
    Ok(query.fetch_all(&db.pool).await?)
}

/// A page of calls under `owner`'s permits (or the one permit), newest
/// first: up to `limit` with an id below `before` (keyset pagination, so a
/// page costs the same however deep it is).
pub async fn page_of_owner(
    db: &Db,
    owner: &str,
    permit_id: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    let before = before.unwrap_or(i64::MAX);
    let sql = match permit_id {
        // One permit: its index, after checking it is the owner's.
        Some(_) => format!(
            "SELECT {COLUMNS} FROM audit a WHERE a.permit_id = $1 AND a.id < $2 \
             AND EXISTS (SELECT 1 FROM permits p WHERE p.id = $1 AND p.owner_id = $3) ORDER BY a.id DESC LIMIT $4"
        ),
        None => format!(
            "SELECT {COLUMNS} FROM audit a WHERE a.permit_id IN (SELECT id FROM permits WHERE owner_id = $3) \
             AND a.id < $2 AND $1 = '' ORDER BY a.id DESC LIMIT $4"
        ),
    };
    Ok(sqlx::query_as(&sql)
        .bind(permit_id.unwrap_or(""))
        .bind(before)
        .bind(owner)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?)
}

/// Calls, denials and last use of each of `permit_ids` that has any calls.
pub async fn use_of(db: &Db, permit_ids: &[&str]) -> Result<Vec<PermitUse>> {
    if permit_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (2..permit_ids.len() + 2).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT permit_id, COUNT(*) AS calls, SUM(CASE WHEN decision = $1 THEN 1 ELSE 0 END) AS denials, \
         MAX(started_at) AS last_used_at FROM audit WHERE permit_id IN ({}) GROUP BY permit_id",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as(&sql).bind("deny");
    for id in permit_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(&db.pool).await?)
}
