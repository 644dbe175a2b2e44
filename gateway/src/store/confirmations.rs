//! The owner's confirmations of single calls, and their transitions:
//!
//! ```text
//! pending ──approve──▶ approved ──an identical call──▶ used
//!    ├──────deny─────▶ denied       └──past expires_at──▶ expired
//!    └──past expires_at──▶ expired
//! ```
//!
//! At most one row per (permit, request hash) is live (`pending` or
//! `approved`; a unique index says so), so a retried call finds the one
//! waiting, and using an approval is one conditional update: of two
//! identical calls racing for it, on any replica, one gets it.

use super::rows::{ConfirmationRow, NewConfirmation};
use super::status::ConfirmationStatus;
use crate::db::Db;
use crate::error::Result;

/// A [`ConfirmationRow`]'s columns, from `confirmations c`.
const COLUMNS: &str = "c.id, c.permit_id, c.execution_id, c.integration, c.method, c.url, c.request_hash, c.query, \
    c.headers, c.body, c.status, c.created_at, c.decided_at, c.decided_by, c.expires_at, c.used_at, \
    (SELECT r.description FROM permit_requests r WHERE r.permit_id = c.permit_id AND r.status = 'approved' \
     ORDER BY r.decided_at DESC LIMIT 1) AS goal";

/// Uses up the approval of this exact request under `permit_id`, if one is
/// approved and unexpired at `now`: its id, now `used`.
pub async fn use_approval(db: &Db, permit_id: &str, request_hash: &str, now: i64) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "UPDATE confirmations SET status = $1, used_at = $2 \
         WHERE permit_id = $3 AND request_hash = $4 AND status = $5 AND expires_at > $2 RETURNING id",
    )
    .bind(ConfirmationStatus::Used.as_str())
    .bind(now)
    .bind(permit_id)
    .bind(request_hash)
    .bind(ConfirmationStatus::Approved.as_str())
    .fetch_optional(&db.writer)
    .await?)
}

/// What [`wait`] found or made for a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Waiting {
    /// A new pending confirmation (the owner is to be told).
    Created(String),
    /// The one already pending for this permit and request.
    Pending(String),
    /// One approved meanwhile: use it ([`use_approval`]).
    Approved,
}

/// Makes `new` the pending confirmation of its request, unless one is
/// already live: then that one. A live row past its expiry is first marked
/// `expired`, so it no longer stands in the way.
pub async fn wait(db: &Db, new: &NewConfirmation<'_>) -> Result<Waiting> {
    let live = [ConfirmationStatus::Pending.as_str(), ConfirmationStatus::Approved.as_str()];
    sqlx::query(
        "UPDATE confirmations SET status = $1 \
         WHERE permit_id = $2 AND request_hash = $3 AND status IN ($4, $5) AND expires_at <= $6",
    )
    .bind(ConfirmationStatus::Expired.as_str())
    .bind(new.permit_id)
    .bind(new.request_hash)
    .bind(live[0])
    .bind(live[1])
    .bind(new.created_at)
    .execute(&db.writer)
    .await?;
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO confirmations (id, permit_id, execution_id, integration, method, url, request_hash, query, \
         headers, body, status, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (permit_id, request_hash) WHERE status IN ('pending', 'approved') DO NOTHING RETURNING id",
    )
    .bind(new.id)
    .bind(new.permit_id)
    .bind(new.execution_id)
    .bind(new.integration)
    .bind(new.method)
    .bind(new.url)
    .bind(new.request_hash)
    .bind(&new.query)
    .bind(&new.headers)
    .bind(new.body.as_deref())
    .bind(ConfirmationStatus::Pending.as_str())
    .bind(new.created_at)
    .bind(new.expires_at)
    .fetch_optional(&db.writer)
    .await?;
    if let Some(id) = inserted {
        return Ok(Waiting::Created(id));
    }
    let existing: Option<(String, String)> = sqlx::query_as(
        "SELECT id, status FROM confirmations WHERE permit_id = $1 AND request_hash = $2 AND status IN ($3, $4)",
    )
    .bind(new.permit_id)
    .bind(new.request_hash)
    .bind(live[0])
    .bind(live[1])
    .fetch_optional(&db.writer)
    .await?;
    Ok(match existing {
        Some((id, status)) if status == live[0] => Waiting::Pending(id),
        // Approved, or used or expired since the insert found it live.
        _ => Waiting::Approved,
    })
}

/// Which confirmations a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every one.
    All,
    /// Those shown with this status at the time of the list (see
    /// [`ConfirmationRow::shown_status`]).
    Shown(ConfirmationStatus),
}

/// The newest 200 confirmations under `owner`'s permits that `filter`
/// admits at `now`, newest first.
pub async fn of_owner(db: &Db, owner: &str, filter: Filter, now: i64) -> Result<Vec<ConfirmationRow>> {
    use ConfirmationStatus::{Approved, Expired, Pending};
    // $2: a stored status shown as itself until $4 (now); $3: also live
    // ones past their expiry; $5: a stored status shown as stored.
    let (live, settled) = match filter {
        Filter::All => ("", ""),
        Filter::Shown(status @ (Pending | Approved)) => (status.as_str(), ""),
        Filter::Shown(Expired) => ("", Expired.as_str()),
        Filter::Shown(status) => ("", status.as_str()),
    };
    let expired = if filter == Filter::Shown(Expired) { "expired" } else { "" };
    let sql = format!(
        "SELECT {COLUMNS} FROM confirmations c WHERE c.permit_id IN (SELECT id FROM permits WHERE owner_id = $1) \
         AND (($2 = '' AND $5 = '') \
              OR (c.status = $2 AND c.expires_at > $4) \
              OR c.status = $5 \
              OR ($3 <> '' AND c.status IN ('pending', 'approved') AND c.expires_at <= $4)) \
         ORDER BY c.created_at DESC, c.id DESC LIMIT 200"
    );
    Ok(sqlx::query_as(&sql).bind(owner).bind(live).bind(expired).bind(now).bind(settled).fetch_all(&db.pool).await?)
}

/// The confirmation `id`, whoever's it is.
pub async fn by_id(db: &Db, id: &str) -> Result<Option<ConfirmationRow>> {
    let sql = format!("SELECT {COLUMNS} FROM confirmations c WHERE c.id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&db.writer).await?)
}

/// The confirmation `id` if it is under one of `owner`'s permits.
pub async fn of_owner_by_id(db: &Db, owner: &str, id: &str) -> Result<Option<ConfirmationRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM confirmations c \
         WHERE c.id = $1 AND c.permit_id IN (SELECT id FROM permits WHERE owner_id = $2)"
    );
    Ok(sqlx::query_as(&sql).bind(id).bind(owner).fetch_optional(&db.pool).await?)
}

/// The owner's decision on a pending confirmation.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// The owner deciding.
    pub owner: &'a str,
    /// `approved` or `denied`.
    pub status: ConfirmationStatus,
    /// When.
    pub at: i64,
    /// Until when an approval may be used (a denial keeps the row's expiry).
    pub expires_at: i64,
}

/// Records `decision` on `id` if it is still pending and unexpired, under
/// one of the owner's permits. False when it was not (decided, used or
/// expired meanwhile).
pub async fn decide(db: &Db, id: &str, decision: &Decision<'_>) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE confirmations SET status = $1, decided_at = $2, decided_by = $3, expires_at = $4 \
         WHERE id = $5 AND status = $6 AND expires_at > $2 \
         AND permit_id IN (SELECT id FROM permits WHERE owner_id = $3)",
    )
    .bind(decision.status.as_str())
    .bind(decision.at)
    .bind(decision.owner)
    .bind(decision.expires_at)
    .bind(id)
    .bind(ConfirmationStatus::Pending.as_str())
    .execute(&db.writer)
    .await?;
    Ok(done.rows_affected() == 1)
}
