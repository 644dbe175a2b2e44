//! What the gateway answers, as typed views: the JSON API serialises them,
//! and the web UI, MCP and CLI are to show the same structs. Times are
//! RFC 3339 strings; statuses are the store's enums.

use oauth3_drafting::Provenance;
use oauth3_host::{CallRecord, Outcome};
use oauth3_policy::{CompiledPermit, PermitSpec, Summary};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::auth::Role;
use crate::db::{rfc3339, rfc3339_opt, unix_ms};
use crate::store::{
    AuditRow, ConfirmationRow, ConfirmationStatus, ExecutionRow, ExecutionStatus, PermitRow, PermitStatus, RequestRow,
    RequestStatus, SecretRow,
};

/// A spec as owners and agents read it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SpecView {
    /// The normalised spec.
    pub spec: PermitSpec,
    /// What an approval binds.
    pub spec_hash: String,
    /// The summary in words.
    pub summary: String,
    /// The same, structured, with the risks flagged.
    pub risks: Summary,
    /// The WIT world of the permit's functions.
    pub wit: String,
    /// One line per integration.
    pub capabilities: Vec<CapabilityView>,
}

impl SpecView {
    /// The view of `compiled`.
    pub(crate) fn of(compiled: &CompiledPermit) -> SpecView {
        let summary = compiled.describe();
        SpecView {
            spec: compiled.spec().clone(),
            spec_hash: compiled.spec_hash().to_string(),
            summary: summary.to_string(),
            capabilities: CapabilityView::all(&summary),
            risks: summary,
            wit: compiled.wit(),
        }
    }
}

/// One integration of a spec: its function and what it may do.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CapabilityView {
    /// The integration's name.
    pub name: String,
    /// How the agent calls it.
    pub signature: String,
    /// What it may do, in words.
    pub summary: String,
}

impl CapabilityView {
    /// One per integration of `summary`.
    pub(crate) fn all(summary: &Summary) -> Vec<CapabilityView> {
        summary
            .integrations
            .iter()
            .map(|integration| CapabilityView {
                name: integration.name.clone(),
                signature: integration.signature.clone(),
                summary: Summary { integrations: vec![integration.clone()] }.to_string(),
            })
            .collect()
    }
}

/// `POST /draft`: a preview; nothing is stored.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DraftView {
    /// The drafted spec.
    #[serde(flatten)]
    pub spec: SpecView,
    /// Who drafted it from what, and why.
    pub draft: Provenance,
}

/// `POST /permit`: the request made.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RequestCreated {
    /// `req_…`.
    pub request_id: String,
    /// The permit it creates or extends.
    pub permit_id: String,
    /// `pending`.
    pub status: RequestStatus,
    /// Where the owner approves it.
    pub approval_url: String,
    /// Where the agent follows it.
    pub status_url: String,
    /// What an approval will bind.
    pub spec_hash: String,
    /// One line per integration.
    pub capabilities: Vec<CapabilityView>,
    /// The drafter's notes, when drafted.
    pub draft: Option<Provenance>,
}

/// A permit request, for its agent and for the owner asked to approve it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RequestView {
    /// `req_…`.
    pub request_id: String,
    /// The permit.
    pub permit_id: String,
    /// The requesting agent.
    pub agent_id: String,
    /// Its name, as it signed up (agent-written).
    pub agent_name: String,
    /// Where it is.
    pub status: RequestStatus,
    /// What the approval bound, once approved: `spec_hash`, or the hash of
    /// the narrower spec the owner approved instead.
    pub approved_spec_hash: Option<String>,
    /// True when the owner approved a narrower spec than the one asked for.
    pub narrowed: bool,
    /// What for, in the agent's words.
    pub description: String,
    /// The intents drafted, when drafted.
    pub intent: Value,
    /// The drafter, when drafted.
    pub drafter: Option<String>,
    /// The drafter's notes, when drafted.
    pub draft: Value,
    /// The spec hash of the permit it extends.
    pub extends: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// RFC 3339.
    pub decided_at: Option<String>,
    /// The deciding owner.
    pub decided_by: Option<String>,
    /// Where the owner approves it.
    pub approval_url: String,
    /// Where the agent follows it.
    pub status_url: String,
    /// The spec to approve.
    #[serde(flatten)]
    pub spec: SpecView,
    /// Once approved: the gateway's signed statement of what was approved
    /// (`oauth3-approval-v1`).
    pub approval_receipt: Option<crate::receipts::Receipt>,
}

impl RequestView {
    /// The view of `row` at `now`, with its compiled spec and URLs.
    pub(crate) fn of(row: &RequestRow, now: i64, spec: SpecView, urls: &RequestUrls) -> RequestView {
        let json = |text: &Option<String>| text.as_deref().and_then(|t| serde_json::from_str(t).ok());
        RequestView {
            request_id: row.id.clone(),
            permit_id: row.permit_id.clone(),
            agent_id: row.agent_id.clone(),
            agent_name: row.agent_name.clone(),
            status: row.shown_status(now),
            approved_spec_hash: row.approved_spec_hash.clone(),
            narrowed: row.approved_spec_hash.as_ref().is_some_and(|h| *h != row.spec_hash),
            description: row.description.clone(),
            intent: json(&row.intent).unwrap_or(Value::Null),
            drafter: row.drafter.clone(),
            draft: json(&row.draft).unwrap_or(Value::Null),
            extends: row.base_spec_hash.clone(),
            created_at: rfc3339(row.created_at),
            expires_at: rfc3339(row.expires_at),
            decided_at: rfc3339_opt(row.decided_at),
            decided_by: row.decided_by.clone(),
            approval_url: urls.approval.clone(),
            status_url: urls.status.clone(),
            spec,
            approval_receipt: None,
        }
    }
}

/// Where a request is approved and followed.
#[derive(Debug)]
pub struct RequestUrls {
    /// `…/approve/{id}`.
    pub approval: String,
    /// `…/permit/{id}`.
    pub status: String,
}

/// `POST /approve/{id}`: the decision.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DecisionView {
    /// `req_…`.
    pub request_id: String,
    /// The permit.
    pub permit_id: String,
    /// `approved` or `denied`.
    pub status: RequestStatus,
    /// The spec hash decided on: after a narrowed approval, the narrower
    /// spec's, which is what the permit now runs.
    pub spec_hash: String,
    /// The spec hash the agent asked for.
    pub requested_spec_hash: String,
    /// True when the owner approved a narrower spec than the one asked for.
    pub narrowed: bool,
    /// The permit's expiry, RFC 3339.
    pub expires_at: Option<String>,
    /// Where the request is followed.
    pub status_url: String,
    /// After an approval: the gateway's signed statement of what was
    /// approved (`oauth3-approval-v1`).
    pub approval_receipt: Option<crate::receipts::Receipt>,
    /// After an approval: secrets the spec injects that the owner has not stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_secrets: Option<Vec<String>>,
}

/// A permit, for its agent and its owner.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PermitView {
    /// `prm_…`.
    pub permit_id: String,
    /// Where it is (`expired` when active past its expiry).
    pub status: PermitStatus,
    /// Its agent.
    pub agent_id: String,
    /// Its owner, once approved.
    pub owner_id: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub approved_at: Option<String>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    /// RFC 3339.
    pub revoked_at: Option<String>,
    /// The newest request waiting for the owner.
    pub pending_request_id: Option<String>,
    /// The spec hash the agent asked for, when the owner approved a narrower
    /// spec (`spec_hash`).
    pub narrowed_from: Option<String>,
    /// The approved spec, once approved.
    #[serde(flatten)]
    pub spec: Option<SpecView>,
}

impl PermitView {
    /// The view of `row` at `now`.
    pub(crate) fn of(
        row: &PermitRow,
        now: i64,
        pending_request_id: Option<String>,
        spec: Option<SpecView>,
    ) -> PermitView {
        PermitView {
            permit_id: row.id.clone(),
            status: row.shown_status(now),
            agent_id: row.agent_id.clone(),
            owner_id: row.owner_id.clone(),
            created_at: rfc3339(row.created_at),
            approved_at: rfc3339_opt(row.approved_at),
            expires_at: rfc3339_opt(row.expires_at),
            revoked_at: rfc3339_opt(row.revoked_at),
            pending_request_id,
            narrowed_from: row.narrowed_from.clone(),
            spec,
        }
    }
}

/// `GET /permits`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PermitList {
    /// Newest first.
    pub permits: Vec<PermitListItem>,
}

/// One permit in a list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PermitListItem {
    /// `prm_…`.
    pub permit_id: String,
    /// Where it is.
    pub status: PermitStatus,
    /// The approved spec's hash.
    pub spec_hash: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: Option<String>,
}

impl PermitListItem {
    /// The list item of `row` at `now`.
    pub(crate) fn of(row: &PermitRow, now: i64) -> PermitListItem {
        PermitListItem {
            permit_id: row.id.clone(),
            status: row.shown_status(now),
            spec_hash: row.spec_hash.clone(),
            created_at: rfc3339(row.created_at),
            expires_at: rfc3339_opt(row.expires_at),
        }
    }
}

/// `POST /permits/{id}/revoke`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PermitRevoked {
    /// `prm_…`.
    pub permit_id: String,
    /// `revoked`.
    pub status: PermitStatus,
    /// RFC 3339: when it was first revoked.
    pub revoked_at: String,
}

/// `POST /execute`: the execution queued (or the one the action already made).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecutionAccepted {
    /// `exe_…`.
    pub request_id: String,
    /// Where it is.
    pub status: ExecutionStatus,
    /// Where it is followed.
    pub status_url: String,
}

/// An execution, for its agent and the permit's owner.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecutionView {
    /// `exe_…`.
    pub request_id: String,
    /// The permit.
    pub permit_id: String,
    /// The agent's idempotency key.
    pub action_id: String,
    /// Where it is.
    pub status: ExecutionStatus,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub started_at: Option<String>,
    /// RFC 3339.
    pub finished_at: Option<String>,
    /// The [`OutcomeView`] once finished, as stored.
    pub result: Value,
    /// Once finished: the gateway's signed statement of what ran under
    /// which spec and how it ended (`oauth3-receipt-v1`).
    pub receipt: Option<crate::receipts::Receipt>,
    /// While it runs: the complete lines it has printed so far (the start
    /// of `result.stdout`), to show output as it comes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_so_far: Option<String>,
}

impl ExecutionView {
    /// The view of `row`.
    pub(crate) fn of(row: &ExecutionRow) -> ExecutionView {
        ExecutionView {
            request_id: row.id.clone(),
            permit_id: row.permit_id.clone(),
            action_id: row.action_id.clone(),
            status: row.status,
            created_at: rfc3339(row.created_at),
            started_at: rfc3339_opt(row.started_at),
            finished_at: rfc3339_opt(row.finished_at),
            result: row.result.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null),
            receipt: row.receipt.as_deref().and_then(|r| serde_json::from_str(r).ok()),
            stdout_so_far: row.stdout_so_far.clone().filter(|_| row.status == ExecutionStatus::Running),
        }
    }
}

/// How an execution ended: what the script printed, every call it made,
/// and its error, if any.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OutcomeView {
    /// True when it ran to the end without an error.
    pub success: bool,
    /// What it printed.
    pub stdout: String,
    /// What it printed to stderr.
    pub stderr: String,
    /// What a component's `run` returned (`ok`); scripts print instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// How long it ran.
    pub duration_ms: u64,
    /// Fuel it used, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<u64>,
    /// Every call, in order.
    pub calls: Vec<CallView>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorView>,
}

impl OutcomeView {
    /// The view of a run's outcome.
    pub(crate) fn of(outcome: &Outcome) -> OutcomeView {
        OutcomeView {
            success: outcome.is_ok(),
            stdout: outcome.stdout.clone(),
            stderr: outcome.stderr.clone(),
            output: outcome.output.clone(),
            duration_ms: outcome.duration.as_millis() as u64,
            fuel_used: Some(outcome.fuel_used),
            calls: outcome.calls.iter().map(CallView::of).collect(),
            error: outcome.error.as_ref().map(|e| ErrorView { code: e.code().to_owned(), message: e.to_string() }),
        }
    }

    /// An execution that did not run: refused, or interrupted.
    pub(crate) fn failure(code: &str, message: &str) -> OutcomeView {
        OutcomeView {
            success: false,
            stdout: String::new(),
            stderr: String::new(),
            output: None,
            duration_ms: 0,
            fuel_used: None,
            calls: Vec::new(),
            error: Some(ErrorView { code: code.to_owned(), message: message.to_owned() }),
        }
    }
}

/// An error code and message.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorView {
    /// Stable snake_case code.
    pub code: String,
    /// What happened.
    pub message: String,
}

/// One call as agents and owners see it (an audit entry has the same fields).
#[derive(Debug, Serialize, JsonSchema)]
pub struct CallView {
    /// The integration.
    pub integration: String,
    /// The method as the guest gave it.
    pub method: String,
    /// The URL, injected values redacted.
    pub url: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// The deny or failure code.
    pub reason: Option<String>,
    /// The upstream status. In the audit, an allowed call without one is on the wire, or its answer was
    /// never recorded (the gateway stopped while it was out).
    pub status: Option<u16>,
    /// Bytes sent.
    pub request_bytes: u64,
    /// Bytes received.
    pub response_bytes: u64,
    /// RFC 3339.
    pub started_at: String,
    /// How long it took.
    pub duration_ms: u64,
    /// The confirmation it waits for (`confirmation_required`): the owner
    /// approves it at `POST /confirmations/{id}`, then the identical call passes once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_id: Option<String>,
}

impl CallView {
    /// The view of `call`.
    pub(crate) fn of(call: &CallRecord) -> CallView {
        CallView {
            integration: call.integration.clone(),
            method: call.method.clone(),
            url: call.url.clone(),
            decision: call.decision.as_str().to_owned(),
            reason: call.reason.map(str::to_owned),
            status: call.status,
            request_bytes: call.request_bytes,
            response_bytes: call.response_bytes,
            started_at: rfc3339(unix_ms(call.started_at)),
            duration_ms: call.duration.as_millis() as u64,
            confirmation_id: call.confirmation_id.clone(),
        }
    }
}

/// `GET /audit`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditView {
    /// Newest first; with `after`, oldest first.
    pub entries: Vec<AuditEntry>,
}

/// One audited call.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditEntry {
    /// Increasing.
    pub id: i64,
    /// The permit.
    pub permit_id: String,
    /// The execution.
    pub execution_id: String,
    /// The id of the execution's signed receipt (hex SHA-256 of its
    /// payload's JCS bytes), once the execution has finished.
    pub receipt_id: Option<String>,
    /// The call.
    #[serde(flatten)]
    pub call: CallView,
}

impl AuditEntry {
    /// The view of `row`.
    pub(crate) fn of(row: AuditRow) -> AuditEntry {
        AuditEntry {
            id: row.id,
            permit_id: row.permit_id,
            execution_id: row.execution_id,
            receipt_id: row.receipt_id,
            call: CallView {
                integration: row.integration,
                method: row.method,
                url: row.url,
                decision: row.decision,
                reason: row.reason,
                status: row.status.and_then(|s| u16::try_from(s).ok()),
                request_bytes: row.request_bytes.max(0) as u64,
                response_bytes: row.response_bytes.max(0) as u64,
                started_at: rfc3339(row.started_at),
                duration_ms: row.duration_ms.max(0) as u64,
                // The confirmation names its execution; the audit row does not name it.
                confirmation_id: None,
            },
        }
    }
}

/// A secret's name and timestamps; never its value.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SecretView {
    /// The name.
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl SecretView {
    /// The view of `row`.
    pub(crate) fn of(row: &SecretRow) -> SecretView {
        SecretView { name: row.name.clone(), created_at: rfc3339(row.created_at), updated_at: rfc3339(row.updated_at) }
    }
}

/// `GET /secrets`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SecretList {
    /// By name.
    pub secrets: Vec<SecretView>,
}

/// `POST /signup`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SignedUp {
    /// `agent_…` or `owner_…`.
    pub tenant_id: String,
    /// The name given.
    pub name: String,
    /// `agent` or `owner`.
    pub role: Role,
    /// A bearer token.
    pub token: String,
}

/// `POST /invites`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InviteView {
    /// A single-use code for `POST /signup`.
    pub invite: String,
}

/// `POST /tokens/revoke`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "revoked", rename_all = "snake_case")]
pub enum TokensRevoked {
    /// The token used for the call.
    Token {
        /// The tenant.
        tenant_id: String,
    },
    /// Every token of the tenant; a fresh one is returned.
    All {
        /// The tenant.
        tenant_id: String,
        /// `agent` or `owner`.
        role: Role,
        /// The fresh token.
        token: String,
    },
}

/// `GET /`: what this gateway is and its endpoints.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Discovery {
    /// `oauth3`.
    pub name: &'static str,
    /// The gateway's version.
    pub version: &'static str,
    /// Where it is reached.
    pub public_url: String,
    /// How to authenticate.
    pub auth: &'static str,
    /// The owner's sign-in page.
    pub web_ui: String,
    /// The machine-readable description of every endpoint.
    pub openapi: String,
    /// Every endpoint.
    pub endpoints: Vec<EndpointView>,
}

/// One endpoint, as `GET /` lists it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EndpointView {
    /// `GET`, `POST` or `DELETE`.
    pub method: &'static str,
    /// The path, with `{parameters}`.
    pub path: &'static str,
    /// Who may call it: `none`, `agent`, `owner`, `agent or owner`, `any`.
    pub auth: &'static str,
    /// What it does.
    pub description: &'static str,
}

/// `GET /health`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    /// `ok`, or `unavailable` (503).
    pub status: &'static str,
    /// The database: `ok` or `unavailable`.
    pub database: &'static str,
}

/// `GET /ready`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Readiness {
    /// `ready`, or `unavailable` (503).
    pub status: &'static str,
    /// The database: `ok` or `unavailable`.
    pub database: &'static str,
    /// The sandbox (a script compiles): `ok` or `unavailable`.
    pub sandbox: &'static str,
    /// `serving`, or `stopping` (503: draining before a stop).
    pub process: &'static str,
}

/// A call as the owner is asked to confirm it: the agent's request exactly,
/// never a secret (injected headers are left out, injected query values
/// show as `[redacted]` in the URL). Every string is agent-written.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ShownRequest {
    /// The integration.
    pub integration: String,
    /// The method.
    pub method: String,
    /// The upstream URL the call would go to.
    pub url: String,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The agent's headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body: pretty-printed JSON, text (clipped), or a note for binary data; none when empty.
    pub body: Option<String>,
}

/// A call waiting for (or decided by) the owner's confirmation.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ConfirmationView {
    /// `cfm_…`.
    pub id: String,
    /// `pending`, `approved`, `denied`, `used` or `expired`.
    pub status: ConfirmationStatus,
    /// The permit the call is made under; an approval holds under it only.
    pub permit_id: String,
    /// The execution that made the call.
    pub execution_id: String,
    /// What the permit is for: its approved request's description (agent-written).
    pub goal: Option<String>,
    /// The exact call.
    pub request: ShownRequest,
    /// Hex SHA-256 of the call's canonical encoding: what an approval binds.
    pub request_hash: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, once decided.
    pub decided_at: Option<String>,
    /// The owner who decided.
    pub decided_by: Option<String>,
    /// RFC 3339: a pending one expires unanswered then; an approved one, unused.
    pub expires_at: String,
    /// RFC 3339, once its approval let the call through.
    pub used_at: Option<String>,
}

impl ConfirmationView {
    /// The view of `row` at `now`.
    pub(crate) fn of(row: ConfirmationRow, now: i64) -> ConfirmationView {
        let pairs = |json: &str| serde_json::from_str(json).unwrap_or_default();
        ConfirmationView {
            status: row.shown_status(now),
            request: ShownRequest {
                integration: row.integration,
                method: row.method,
                url: row.url,
                query: pairs(&row.query),
                headers: pairs(&row.headers),
                body: row.body,
            },
            id: row.id,
            permit_id: row.permit_id,
            execution_id: row.execution_id,
            goal: row.goal,
            request_hash: row.request_hash,
            created_at: rfc3339(row.created_at),
            decided_at: rfc3339_opt(row.decided_at),
            decided_by: row.decided_by,
            expires_at: rfc3339(row.expires_at),
            used_at: rfc3339_opt(row.used_at),
        }
    }
}

/// `GET /confirmations`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ConfirmationList {
    /// Newest first.
    pub confirmations: Vec<ConfirmationView>,
}
