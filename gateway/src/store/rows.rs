//! Every typed row the store reads or writes. Statuses are read into their
//! enums; times are unix ms; JSON columns stay text.

use super::status::{ConfirmationStatus, ExecutionStatus, PermitStatus, RequestStatus};
use crate::error::Result;
use crate::sql::{FromRecord, Record};

/// A row of `permits` (times in unix ms; `spec`, `spec_hash`, `owner_id`
/// and `approved_at` are set by the approval).
#[derive(Debug, sqlx::FromRow)]
pub struct PermitRow {
    pub id: String,
    pub agent_id: String,
    pub owner_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: PermitStatus,
    pub spec: Option<String>,
    pub spec_hash: Option<String>,
    pub created_at: i64,
    pub approved_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The spec hash the agent asked for, when the owner approved a narrower spec.
    pub narrowed_from: Option<String>,
}

impl PermitRow {
    /// The status as shown at `now`: an active permit past its expiry is
    /// `expired`.
    pub fn shown_status(&self, now: i64) -> PermitStatus {
        if self.status == PermitStatus::Active && self.expires_at.is_some_and(|at| at <= now) {
            PermitStatus::Expired
        } else {
            self.status
        }
    }
}

/// Who holds a permit, its status and expiry (unix ms).
#[derive(Debug, sqlx::FromRow)]
pub struct PermitState {
    pub agent_id: String,
    pub owner_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: PermitStatus,
    pub expires_at: Option<i64>,
}

/// A row of `permit_requests` (times in unix ms; `intent` and `draft` are
/// JSON, set when drafted), with its permit's current owner, status, spec
/// hash and expiry (`permit_*`), which a decision needs.
#[derive(Debug, sqlx::FromRow)]
pub struct RequestRow {
    pub id: String,
    pub permit_id: String,
    pub agent_id: String,
    /// The agent's name, as it signed up: agent-written text.
    pub agent_name: String,
    pub description: String,
    pub intent: Option<String>,
    pub spec: String,
    pub spec_hash: String,
    pub base_spec_hash: Option<String>,
    pub drafter: Option<String>,
    pub draft: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: RequestStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub permit_expires_at: Option<i64>,
    /// What the approval bound: `spec_hash`, or a narrower spec's.
    pub approved_spec_hash: Option<String>,
    pub permit_owner: Option<String>,
    #[sqlx(try_from = "String")]
    pub permit_status: PermitStatus,
    pub permit_spec_hash: Option<String>,
    pub permit_current_expires_at: Option<i64>,
}

impl RequestRow {
    /// The status as shown at `now`: a pending request past its expiry is
    /// `expired`.
    pub fn shown_status(&self, now: i64) -> RequestStatus {
        if self.status == RequestStatus::Pending && self.expires_at <= now {
            RequestStatus::Expired
        } else {
            self.status
        }
    }
}

/// A request to store `pending`, and its permit `pending` when
/// `new_permit`; `base_spec_hash` is the extended permit's spec hash.
pub struct NewRequest<'a> {
    pub id: &'a str,
    pub permit_id: &'a str,
    pub new_permit: bool,
    pub agent_id: &'a str,
    pub description: &'a str,
    pub intent: Option<String>,
    pub spec: &'a str,
    pub spec_hash: &'a str,
    pub base_spec_hash: Option<&'a str>,
    pub drafter: Option<&'a str>,
    pub draft: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An execution to queue (`args` is JSON text, `created_at` unix ms).
/// Owned: its insert may run in a batch after the request has moved on.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub id: String,
    pub permit_id: String,
    pub agent_id: String,
    pub action_id: String,
    /// JavaScript source; empty when `component_hash` names a component.
    pub code: String,
    pub args: String,
    pub component_hash: Option<String>,
    /// Hex SHA-256 of `code`, or `component_hash`.
    pub code_hash: String,
    pub created_at: i64,
}

/// The execution already made for an action: its id, code, args and status.
#[derive(Debug, sqlx::FromRow)]
pub struct ActionRow {
    pub id: String,
    pub code: String,
    pub args: String,
    pub component_hash: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: ExecutionStatus,
}

/// A row of `executions` as its agent and the permit's owner read it
/// (times in unix ms, `result` JSON once finished), with the permit's owner.
#[derive(Debug, sqlx::FromRow)]
pub struct ExecutionRow {
    pub id: String,
    pub agent_id: String,
    pub permit_id: String,
    pub action_id: String,
    #[sqlx(try_from = "String")]
    pub status: ExecutionStatus,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub result: Option<String>,
    pub owner_id: Option<String>,
    /// The spec hash it was claimed under.
    pub spec_hash: Option<String>,
    /// Hex SHA-256 of its code or component.
    pub code_hash: Option<String>,
    /// Its signed receipt (JSON), once finished.
    pub receipt: Option<String>,
    /// While it runs: the complete lines it has printed so far.
    pub stdout_so_far: Option<String>,
}

/// A claimed execution: what a worker needs to run it, and its permit's
/// state as the claim found it.
#[derive(Debug)]
pub struct Claimed {
    pub id: String,
    pub agent_id: String,
    pub permit_id: String,
    pub action_id: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub code: String,
    pub args: String,
    pub component_hash: Option<String>,
    pub code_hash: Option<String>,
    /// The permit's spec hash at the claim: the spec this runs, and its receipt names.
    pub spec_hash: Option<String>,
    pub permit_status: PermitStatus,
    pub owner_id: Option<String>,
    pub expires_at: Option<i64>,
    /// The owner's secrets version at the claim (opened secrets cached
    /// under another version are not used).
    pub secrets_version: Option<i64>,
}

impl FromRecord for Claimed {
    fn from_record(row: &Record) -> Result<Claimed> {
        Ok(Claimed {
            id: row.text_not_null("id")?,
            agent_id: row.text_not_null("agent_id")?,
            permit_id: row.text_not_null("permit_id")?,
            action_id: row.text_not_null("action_id")?,
            created_at: row.int_not_null("created_at")?,
            started_at: row.int("started_at")?,
            code: row.text_not_null("code")?,
            args: row.text_not_null("args")?,
            component_hash: row.text("component_hash")?,
            code_hash: row.text("code_hash")?,
            spec_hash: row.text("spec_hash")?,
            permit_status: PermitStatus::try_from(row.text_not_null("permit_status")?)?,
            owner_id: row.text("owner_id")?,
            expires_at: row.int("expires_at")?,
            secrets_version: row.int("secrets_version")?,
        })
    }
}

impl Claimed {
    /// Its row as it is while running (a finish fills in the rest).
    pub fn running_row(&self) -> ExecutionRow {
        ExecutionRow {
            id: self.id.clone(),
            agent_id: self.agent_id.clone(),
            permit_id: self.permit_id.clone(),
            action_id: self.action_id.clone(),
            status: ExecutionStatus::Running,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: None,
            result: None,
            owner_id: self.owner_id.clone(),
            spec_hash: self.spec_hash.clone(),
            code_hash: self.code_hash.clone(),
            receipt: None,
            stdout_so_far: None,
        }
    }
}

/// A row of `audit`: one call, with the fields of a `CallRecord` (times
/// in unix ms).
#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub permit_id: String,
    pub execution_id: String,
    pub integration: String,
    pub method: String,
    pub url: String,
    pub decision: String,
    pub reason: Option<String>,
    pub status: Option<i64>,
    pub request_bytes: i64,
    pub response_bytes: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    pub receipt_id: Option<String>,
}

/// A secret's name and timestamps in unix ms (never its value).
#[derive(Debug, sqlx::FromRow)]
pub struct SecretRow {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A permit's use, from the audit log: calls, denied calls, and the last
/// call's start (unix ms).
#[derive(Debug, sqlx::FromRow)]
pub struct PermitUse {
    pub permit_id: String,
    pub calls: i64,
    pub denials: i64,
    pub last_used_at: Option<i64>,
}

/// A pending request as the owner's dashboard lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct PendingRow {
    pub id: String,
    /// The agent's name: agent-written text.
    pub agent_name: String,
    /// Agent-written text.
    pub description: String,
    /// Set when it extends an approved permit.
    pub base_spec_hash: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A browser session's owner, read with the session.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionRow {
    pub tenant_id: String,
    pub name: String,
    pub role: String,
}

/// A row of `confirmations` (times in unix ms; `query` and `headers` are
/// JSON lists of `[name, value]`), with the goal of its permit: the
/// description of the permit's newest approved request.
#[derive(Debug, sqlx::FromRow)]
pub struct ConfirmationRow {
    pub id: String,
    pub permit_id: String,
    pub execution_id: String,
    pub integration: String,
    pub method: String,
    pub url: String,
    pub request_hash: String,
    pub query: String,
    pub headers: String,
    pub body: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: ConfirmationStatus,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub goal: Option<String>,
}

impl ConfirmationRow {
    /// The status as shown at `now`: pending or approved past its expiry is `expired`.
    pub fn shown_status(&self, now: i64) -> ConfirmationStatus {
        match self.status {
            ConfirmationStatus::Pending | ConfirmationStatus::Approved if self.expires_at <= now => {
                ConfirmationStatus::Expired
            }
            status => status,
        }
    }
}

/// A confirmation to store, `pending`.
#[derive(Debug)]
pub struct NewConfirmation<'a> {
    pub id: &'a str,
    pub permit_id: &'a str,
    pub execution_id: &'a str,
    pub integration: &'a str,
    pub method: &'a str,
    pub url: &'a str,
    pub request_hash: &'a str,
    pub query: String,
    pub headers: String,
    pub body: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}
