//! Permits and the requests for them, and their transitions:
//!
//! ```text
//! request:  pending ──approve──▶ approved        permit: pending ──approve──▶ active ──revoke──▶ revoked
//!              ├─────deny─────▶ denied                      └───deny────▶ denied
//!              └────expire────▶ expired                     (revoking denies its pending requests)
//! ```

use sqlx::{Any, Transaction};

use super::rows::{NewRequest, PendingRow, PermitRow, PermitState, RequestRow};
use super::status::{PermitStatus, RequestStatus};
use crate::auth::Role;
use crate::db::Db;
use crate::error::{Error, Result};

const PERMIT_COLUMNS: &str =
    "id, agent_id, owner_id, status, spec, spec_hash, created_at, approved_at, expires_at, revoked_at, narrowed_from";

/// The permit `id`.
pub async fn permit(db: &Db, id: &str) -> Result<Option<PermitRow>> {
    let sql = format!("SELECT {PERMIT_COLUMNS} FROM permits WHERE id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&db.pool).await?)
}

/// Who asks for a permit.
#[derive(Debug, Clone, Copy)]
pub enum Party<'a> {
    /// The agent it is issued to.
    Agent(&'a str),
    /// The owner who approved it.
    Owner(&'a str),
    /// Either.
    AgentOrOwner(&'a str),
}

impl Party<'_> {
    /// How a refusal names the relation: `issued to you`.
    pub fn relation(self) -> &'static str {
        match self {
            Party::Agent(_) => "issued to you",
            Party::Owner(_) => "owned by you",
            Party::AgentOrOwner(_) => "visible to you",
        }
    }

    /// Whether a permit issued to `agent_id` and owned by `owner_id` is this party's.
    fn holds(self, agent_id: &str, owner_id: Option<&str>) -> bool {
        match self {
            Party::Agent(agent) => agent_id == agent,
            Party::Owner(owner) => owner_id == Some(owner),
            Party::AgentOrOwner(tenant) => agent_id == tenant || owner_id == Some(tenant),
        }
    }
}

/// The permit `id`, if it is `party`'s.
pub async fn permit_of(db: &Db, id: &str, party: Party<'_>) -> Result<Option<PermitRow>> {
    Ok(permit(db, id).await?.filter(|p| party.holds(&p.agent_id, p.owner_id.as_deref())))
}

/// The status and expiry of the permit `id`, if it is `party`'s: what a
/// submission checks, without reading the spec.
pub async fn state_of(db: &Db, id: &str, party: Party<'_>) -> Result<Option<PermitState>> {
    let state: Option<PermitState> =
        sqlx::query_as("SELECT agent_id, owner_id, status, expires_at FROM permits WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(state.filter(|p| party.holds(&p.agent_id, p.owner_id.as_deref())))
}

/// The approved spec of the permit `id` and its hash, if it has one.
pub async fn approved_spec(db: &Db, id: &str) -> Result<Option<(String, String)>> {
    let row: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT spec, spec_hash FROM permits WHERE id = $1").bind(id).fetch_optional(&db.pool).await?;
    Ok(row.and_then(|(spec, hash)| Some((spec?, hash?))))
}

/// The permits issued to an agent or owned by an owner, newest first (at most 1000).
pub async fn permits_of(db: &Db, role: Role, tenant: &str) -> Result<Vec<PermitRow>> {
    let column = match role {
        Role::Agent => "agent_id",
        Role::Owner => "owner_id",
    };
    let sql = format!("SELECT {PERMIT_COLUMNS} FROM permits WHERE {column} = $1 ORDER BY created_at DESC LIMIT 1000");
    Ok(sqlx::query_as(&sql).bind(tenant).fetch_all(&db.pool).await?)
}

/// The request `id`, with its permit's current state.
pub async fn request(db: &Db, id: &str) -> Result<Option<RequestRow>> {
    Ok(sqlx::query_as(
        "SELECT r.id, r.permit_id, r.agent_id, t.name AS agent_name, r.description, r.intent, r.spec, r.spec_hash, r.base_spec_hash, \
         r.drafter, r.draft, r.status, r.created_at, r.expires_at, r.decided_at, r.decided_by, r.permit_expires_at, \
         r.approved_spec_hash, p.owner_id AS permit_owner, p.status AS permit_status, \
         p.spec_hash AS permit_spec_hash, p.expires_at AS permit_current_expires_at \
         FROM permit_requests r JOIN permits p ON p.id = r.permit_id JOIN tenants t ON t.id = r.agent_id \
         WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

/// The newest pending request for the permit `id`.
pub async fn pending_request(db: &Db, permit_id: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM permit_requests WHERE permit_id = $1 AND status = $2 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(permit_id)
    .bind(RequestStatus::Pending.as_str())
    .fetch_optional(&db.pool)
    .await?)
}

/// Stores a `pending` request, and its permit `pending` when new, in one
/// transaction.
pub async fn insert_request(db: &Db, request: &NewRequest<'_>) -> Result<()> {
    let mut tx = db.writer.begin().await?;
    if request.new_permit {
        sqlx::query("INSERT INTO permits (id, agent_id, status, created_at) VALUES ($1, $2, $3, $4)")
            .bind(request.permit_id)
            .bind(request.agent_id)
            .bind(PermitStatus::Pending.as_str())
            .bind(request.created_at)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO permit_requests (id, permit_id, agent_id, description, intent, spec, spec_hash, base_spec_hash, \
         drafter, draft, status, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(request.id)
    .bind(request.permit_id)
    .bind(request.agent_id)
    .bind(request.description)
    .bind(request.intent.as_deref())
    .bind(request.spec)
    .bind(request.spec_hash)
    .bind(request.base_spec_hash)
    .bind(request.drafter)
    .bind(request.draft.as_deref())
    .bind(RequestStatus::Pending.as_str())
    .bind(request.created_at)
    .bind(request.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `pending` → `expired`.
pub async fn expire_request(db: &Db, id: &str) -> Result<()> {
    sqlx::query("UPDATE permit_requests SET status = $1 WHERE id = $2 AND status = $3")
        .bind(RequestStatus::Expired.as_str())
        .bind(id)
        .bind(RequestStatus::Pending.as_str())
        .execute(&db.writer)
        .await?;
    Ok(())
}

/// An owner's decision on a pending request, at unix ms `at`, with the
/// permit's expiry after an approval.
pub struct Decision<'a> {
    pub owner: &'a str,
    pub at: i64,
    pub permit_expires_at: Option<i64>,
}

/// The spec an approval binds: the request's, or a narrower one the owner
/// built from it.
pub struct ApprovedSpec<'a> {
    pub spec: &'a str,
    pub spec_hash: &'a str,
}

/// The request `pending` → `approved` and its permit `pending` | `active` →
/// `active` with `approved` (the request's spec, or a narrower one), in one
/// transaction. Refused (409) when the request was decided meanwhile, the
/// permit's spec changed since the request was made, `still_valid` fails
/// (the spec under the operator's current settings), or the permit was
/// revoked or taken meanwhile.
pub async fn approve(
    db: &Db,
    row: &RequestRow,
    decision: &Decision<'_>,
    approved: &ApprovedSpec<'_>,
    still_valid: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let mut tx = db.writer.begin().await?;
    decide(&mut tx, row, RequestStatus::Approved, decision, Some(approved.spec_hash)).await?;
    if row.base_spec_hash != row.permit_spec_hash {
        return Err(Error::conflict(
            "permit_changed",
            "the permit changed since this request was made; the agent must request again",
        ));
    }
    still_valid()?;
    let narrowed_from = (approved.spec_hash != row.spec_hash).then_some(row.spec_hash.as_str());
    // The permit must still have the spec the request extends (checked
    // above from the row read before; here again, atomically, so two
    // extensions approved at once cannot both land and one be lost).
    let updated = sqlx::query(
        "UPDATE permits SET status = $1, spec = $2, spec_hash = $3, owner_id = $4, approved_at = $5, \
         expires_at = $6, narrowed_from = $9 \
         WHERE id = $7 AND (owner_id IS NULL OR owner_id = $4) AND status IN ($8, $1) \
         AND COALESCE(spec_hash, '') = $10",
    )
    .bind(PermitStatus::Active.as_str())
    .bind(approved.spec)
    .bind(approved.spec_hash)
    .bind(decision.owner)
    .bind(decision.at)
    .bind(decision.permit_expires_at)
    .bind(&row.permit_id)
    .bind(PermitStatus::Pending.as_str())
    .bind(narrowed_from)
    .bind(row.base_spec_hash.as_deref().unwrap_or(""))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated != 1 {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM permits WHERE id = $1")
            .bind(&row.permit_id)
            .fetch_optional(&mut *tx)
            .await?;
        return Err(match status.as_deref() {
            Some("revoked" | "denied") | None => {
                Error::conflict("permit_not_active", "the permit was revoked or taken meanwhile")
            }
            _ => Error::conflict(
                "permit_changed",
                "the permit changed since this request was made; the agent must request again",
            ),
        });
    }
    tx.commit().await?;
    Ok(())
}

/// The request `pending` → `denied`, and a permit still `pending` (never
/// approved) → `denied`, in one transaction. Refused (409) when the request
/// was decided meanwhile.
pub async fn deny(db: &Db, row: &RequestRow, decision: &Decision<'_>) -> Result<()> {
    let mut tx = db.writer.begin().await?;
    decide(&mut tx, row, RequestStatus::Denied, decision, None).await?;
    if row.permit_status == PermitStatus::Pending {
        sqlx::query("UPDATE permits SET status = $1 WHERE id = $2 AND status = $3")
            .bind(PermitStatus::Denied.as_str())
            .bind(&row.permit_id)
            .bind(PermitStatus::Pending.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The request `pending` → `to`, with the spec hash an approval bound.
async fn decide(
    tx: &mut Transaction<'_, Any>,
    row: &RequestRow,
    to: RequestStatus,
    by: &Decision<'_>,
    approved_spec_hash: Option<&str>,
) -> Result<()> {
    let decided = sqlx::query(
        "UPDATE permit_requests SET status = $1, decided_at = $2, decided_by = $3, permit_expires_at = $4, \
         approved_spec_hash = $7 WHERE id = $5 AND status = $6",
    )
    .bind(to.as_str())
    .bind(by.at)
    .bind(by.owner)
    .bind(by.permit_expires_at)
    .bind(&row.id)
    .bind(RequestStatus::Pending.as_str())
    .bind(approved_spec_hash)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if decided != 1 {
        return Err(Error::conflict("already_decided", "this request was decided meanwhile; read it again"));
    }
    Ok(())
}

/// The permit (any status but `revoked`) → `revoked`, and its pending
/// requests → `denied` by `owner`. Idempotent.
pub async fn revoke(db: &Db, permit_id: &str, owner: &str, at: i64) -> Result<()> {
    sqlx::query("UPDATE permits SET status = $1, revoked_at = $2 WHERE id = $3 AND status <> $1")
        .bind(PermitStatus::Revoked.as_str())
        .bind(at)
        .bind(permit_id)
        .execute(&db.writer)
        .await?;
    sqlx::query(
        "UPDATE permit_requests SET status = $1, decided_at = $2, decided_by = $3 WHERE permit_id = $4 AND status = $5",
    )
    .bind(RequestStatus::Denied.as_str())
    .bind(at)
    .bind(owner)
    .bind(permit_id)
    .bind(RequestStatus::Pending.as_str())
    .execute(&db.writer)
    .await?;
    Ok(())
}

/// Requests waiting for `owner` at `now`, newest first: a page of `limit`
/// after `offset`, and how many there are. Listed: extensions of `owner`'s
/// permits, and new permits from agents that already hold one of
/// `owner`'s, or from any agent while `owner` is the only owner. (Any owner
/// may decide a new permit's request by its link, but the dashboard does not
/// show one owner's agents' requests to every other owner.)
pub async fn pending_for(db: &Db, owner: &str, now: i64, limit: i64, offset: i64) -> Result<(Vec<PendingRow>, i64)> {
    const WAITING: &str = "FROM permit_requests r JOIN permits p ON p.id = r.permit_id \
         JOIN tenants t ON t.id = r.agent_id \
         WHERE r.status = $1 AND r.expires_at > $2 AND (p.owner_id = $3 OR (p.owner_id IS NULL AND ( \
           EXISTS (SELECT 1 FROM permits q WHERE q.agent_id = r.agent_id AND q.owner_id = $3) \
           OR (SELECT COUNT(*) FROM tenants o WHERE o.role = 'owner') = 1)))";
    let rows = sqlx::query_as(&format!(
        "SELECT r.id, t.name AS agent_name, r.description, r.base_spec_hash, r.created_at, \
         r.expires_at {WAITING} ORDER BY r.created_at DESC, r.id LIMIT $4 OFFSET $5"
    ))
    .bind(RequestStatus::Pending.as_str())
    .bind(now)
    .bind(owner)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let total = sqlx::query_scalar(&format!("SELECT COUNT(*) {WAITING}"))
        .bind(RequestStatus::Pending.as_str())
        .bind(now)
        .bind(owner)
        .fetch_one(&db.pool)
        .await?;
    Ok((rows, total))
}

/// `owner`'s permits, newest first: a page of `limit` after `offset`, and
/// how many there are.
pub async fn page_of_owner(db: &Db, owner: &str, limit: i64, offset: i64) -> Result<(Vec<PermitRow>, i64)> {
    let sql = format!(
        "SELECT {PERMIT_COLUMNS} FROM permits WHERE owner_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
    );
    let rows = sqlx::query_as(&sql).bind(owner).bind(limit).bind(offset).fetch_all(&db.pool).await?;
    let total =
        sqlx::query_scalar("SELECT COUNT(*) FROM permits WHERE owner_id = $1").bind(owner).fetch_one(&db.pool).await?;
    Ok((rows, total))
}
