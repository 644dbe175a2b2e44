//! Permits: agents request them (a spec they propose, or an intent for the
//! drafter), owners approve or deny the exact spec hash, and revoke.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header, header::AUTHORIZATION};
use oauth3_drafting::Intents;
use oauth3_policy::{Narrowing, PermitSpec, RateLimit};
use serde::Deserialize;
use serde_json::Value;

use super::Json;
use crate::auth::{self, Agent, Auth, Caller, Owner, Requirement, Role};
use crate::db::{now_ms, rfc3339, rfc3339_opt};
use crate::error::{Error, Result};
use crate::keys::new_id;
use crate::notify::{AgentRef, ApprovalNotice};
use crate::receipts::{self, ApprovalFacts, Receipt};
use crate::state::Gateway;
use crate::store::permits::{self, ApprovedSpec, Decision, Party};
use crate::store::{NewRequest, PermitRow, RequestRow};
use crate::store::{PermitStatus, RequestStatus, secrets, tenants};
use crate::views::{
    CapabilityView, DecisionView, PermitList, PermitListItem, PermitRevoked, PermitView, RequestCreated, RequestUrls,
    RequestView, SpecView,
};

const MAX_EXPIRES_IN_SECS: u64 = 10 * 365 * 24 * 3600;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PermitRequest {
    /// What the permit is for; the owner reads it.
    pub(crate) description: String,
    /// What the agent needs, per API, for the drafter.
    #[serde(default)]
    pub(crate) intent: Option<Intents>,
    /// Instead of `intent`: the integration specs the agent proposes.
    #[serde(default)]
    #[schemars(with = "Option<Vec<oauth3_policy::IntegrationSpec>>")]
    pub(crate) capabilities: Option<Vec<Value>>,
    /// Extend this active permit instead of asking for a new one.
    #[serde(default)]
    pub(crate) permit_id: Option<String>,
}

/// `POST /permit`: an agent asks for a new permit, or to extend one.
pub async fn request(
    State(gateway): State<Arc<Gateway>>,
    agent: Agent,
    Json(body): Json<PermitRequest>,
) -> Result<(StatusCode, Json<RequestCreated>)> {
    let description = body.description.trim();
    if description.is_empty() || description.len() > 4000 {
        return Err(Error::bad_request("invalid_request", "description: say what the permit is for (1–4000 bytes)"));
    }
    let intent = body.intent.map(Intents::into_vec).filter(|i| !i.is_empty());
    let capabilities = body.capabilities.filter(|c| !c.is_empty());
    let (proposed, provenance) = match (&intent, capabilities) {
        (Some(_), Some(_)) => {
            return Err(Error::bad_request("invalid_request", "give either `intent` or `capabilities`, not both"));
        }
        (Some(intents), None) => {
            let draft = gateway.drafting.draft(intents).await?;
            (draft.spec, Some(draft.provenance))
        }
        (None, Some(items)) => (PermitSpec::from_capabilities(items)?, None),
        (None, None) => {
            return Err(Error::bad_request(
                "invalid_request",
                "give `capabilities` (the spec you propose) or `intent` (for the drafter)",
            ));
        }
    };

    let base = match &body.permit_id {
        Some(id) => Some(extendable_permit(&gateway, &agent, id).await?),
        None => None,
    };
    let spec = match &base {
        Some(permit) => combine(permit, proposed)?,
        None => proposed,
    };
    let compiled = gateway.compile(&spec)?;
    let spec_json =
        serde_json::to_string(compiled.spec()).map_err(|e| Error::Internal(format!("serialising a spec: {e}")))?;
    let spec_hash = compiled.spec_hash().to_string();
    let now = now_ms();
    let request_id = new_id("req")?;
    let permit_id = match &base {
        Some(permit) => permit.id.clone(),
        None => new_id("prm")?,
    };
    let draft =
        provenance.as_ref().map(serde_json::to_string).transpose().map_err(|e| Error::Internal(e.to_string()))?;
    // For the notice; read before storing, so a failure here stores nothing.
    let agent_name = tenants::name(&gateway.db, &agent.id).await?.unwrap_or_default();
    permits::insert_request(
        &gateway.db,
        &NewRequest {
            id: &request_id,
            permit_id: &permit_id,
            new_permit: base.is_none(),
            agent_id: &agent.id,
            description,
            intent: intent.map(|i| serde_json::to_string(&i).unwrap_or_default()),
            spec: &spec_json,
            spec_hash: &spec_hash,
            base_spec_hash: base.as_ref().and_then(|p| p.spec_hash.as_deref()),
            drafter: provenance.as_ref().map(|p| p.drafter.as_str()),
            draft,
            created_at: now,
            expires_at: now + (gateway.config.request_ttl_secs as i64) * 1000,
        },
    )
    .await?;
    tracing::info!(request = %request_id, permit = %permit_id, agent = %agent.id, %spec_hash, "permit requested");

    let urls = request_urls(&gateway, &request_id);
    gateway.notifier.request_waiting(ApprovalNotice {
        event: "permit_request.pending",
        request_id: request_id.clone(),
        permit_id: permit_id.clone(),
        agent: AgentRef { id: agent.id.clone(), name: agent_name },
        description: description.to_owned(),
        approval_url: urls.approval.clone(),
        expires_at: rfc3339(now + (gateway.config.request_ttl_secs as i64) * 1000),
    });
    Ok((
        StatusCode::CREATED,
        Json(RequestCreated {
            request_id,
            permit_id,
            status: RequestStatus::Pending,
            approval_url: urls.approval,
            status_url: urls.status,
            spec_hash,
            capabilities: CapabilityView::all(&compiled.describe()),
            draft: provenance,
        }),
    ))
}

fn request_urls(gateway: &Gateway, request_id: &str) -> RequestUrls {
    RequestUrls {
        approval: gateway.url(&format!("/approve/{request_id}")),
        status: gateway.url(&format!("/permit/{request_id}")),
    }
}

async fn extendable_permit(gateway: &Gateway, agent: &Caller, id: &str) -> Result<PermitRow> {
    let permit = permit_of(gateway, id, Party::Agent(&agent.id)).await?;
    if permit.status != PermitStatus::Active {
        return Err(Error::conflict(
            "permit_not_active",
            format!("permit {id} is {}; only an active permit can be extended", permit.status),
        ));
    }
    Ok(permit)
}

/// The approved spec with `proposed`'s integrations added; an integration of
/// the same name is replaced (the owner approves the combined spec).
fn combine(permit: &PermitRow, proposed: PermitSpec) -> Result<PermitSpec> {
    let mut spec = PermitSpec::from_json(permit.spec.as_deref().unwrap_or("{\"version\":1,\"integrations\":[]}"))?;
    for integration in proposed.integrations {
        match spec.integrations.iter_mut().find(|i| i.name == integration.name) {
            Some(existing) => *existing = integration,
            None => spec.integrations.push(integration),
        }
    }
    Ok(spec)
}

/// `GET /permit/{request_id}` (the requesting agent, or an owner who may
/// decide it) and `GET /approve/{request_id}` (owners: what they are asked
/// to approve), as `R` requires.
pub async fn show_request<R: Requirement + Send + Sync>(
    State(gateway): State<Arc<Gateway>>,
    caller: Auth<R>,
    Path(id): Path<String>,
) -> Result<Json<RequestView>> {
    let row = visible_request(&gateway, &caller, &id).await?;
    let compiled = gateway.compiled(&row.spec_hash, &row.spec)?;
    let mut view = RequestView::of(&row, now_ms(), SpecView::of(&compiled), &request_urls(&gateway, &row.id));
    view.approval_receipt = approval_receipt(&gateway, &row)?;
    Ok(Json(view))
}

/// The signed receipt of `row`'s approval, once approved.
fn approval_receipt(gateway: &Gateway, row: &RequestRow) -> Result<Option<Receipt>> {
    let (RequestStatus::Approved, Some(spec_hash), Some(owner_id), Some(approved_at)) =
        (row.status, &row.approved_spec_hash, &row.decided_by, row.decided_at)
    else {
        return Ok(None);
    };
    let facts = ApprovalFacts {
        request_id: &row.id,
        permit_id: &row.permit_id,
        spec_hash,
        owner_id,
        approved_at,
        expires_at: row.permit_expires_at,
    };
    receipts::approval(&gateway.tee.signing, &facts).map(Some)
}

async fn visible_request(gateway: &Gateway, caller: &Caller, id: &str) -> Result<RequestRow> {
    match caller.role {
        Role::Agent => {
            let row = permits::request(&gateway.db, id).await?.filter(|r| r.agent_id == caller.id);
            row.ok_or_else(|| Error::NotFound(format!("no permit request {id} visible to you")))
        }
        Role::Owner => visible_request_of_owner(gateway, &caller.id, id).await,
    }
}

/// The request `id` if the owner `owner` may see it: a request for one of
/// their permits, one they decided, or one for a new permit, which any owner
/// may decide.
pub(crate) async fn visible_request_of_owner(gateway: &Gateway, owner: &str, id: &str) -> Result<RequestRow> {
    let row = permits::request(&gateway.db, id).await?;
    let visible = row.as_ref().is_some_and(|r| {
        r.permit_owner.as_deref() == Some(owner)
            || r.decided_by.as_deref() == Some(owner)
            // An expired request stays visible, so retrying says so (409).
            || (r.permit_owner.is_none() && matches!(r.status, RequestStatus::Pending | RequestStatus::Expired))
    });
    match row {
        Some(row) if visible => Ok(row),
        _ => Err(Error::NotFound(format!("no permit request {id} visible to you"))),
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// `approve` or `deny`.
    action: String,
    /// The owner's token, when no Authorization header is sent.
    #[serde(default)]
    owner_token: Option<String>,
    /// Seconds until the permit expires (default: never, or an extended permit's expiry).
    #[serde(default)]
    expires_in: Option<u64>,
    /// What to take away before approving.
    #[serde(default)]
    narrow: Option<NarrowBody>,
    /// The spec hash the owner was shown: the decision is refused (409
    /// `spec_changed`) if the request now holds another.
    #[serde(default)]
    spec_hash: Option<String>,
}

/// What the owner takes away before approving (see [`Narrowing`]).
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NarrowBody {
    /// Rules to leave out.
    #[serde(default)]
    drop_rules: Vec<RuleRef>,
    /// Lower rate limits, per integration.
    #[serde(default)]
    rate_limits: BTreeMap<String, RateLimit>,
    /// Rules marked `confirm` whose calls should no longer each wait for
    /// the owner ("don't ask for each call"): a new spec, so a new hash.
    #[serde(default)]
    no_confirm: Vec<RuleRef>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RuleRef {
    /// The integration's name.
    integration: String,
    /// The rule's index in it, from 0.
    rule: usize,
}

impl From<NarrowBody> for Narrowing {
    fn from(body: NarrowBody) -> Narrowing {
        Narrowing {
            drop_rules: body.drop_rules.into_iter().map(|r| (r.integration, r.rule)).collect(),
            rate_limits: body.rate_limits,
            no_confirm: body.no_confirm.into_iter().map(|r| (r.integration, r.rule)).collect(),
        }
    }
}

/// `POST /approve/{request_id}` (JSON): an owner approves or denies the
/// exact spec, or approves a narrower one built from it.
pub async fn approve(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Approval>,
) -> Result<Json<DecisionView>> {
    // The Authorization header wins; `owner_token` in the body is the
    // quickstart's form.
    let token = match (headers.get(AUTHORIZATION), &body.owner_token) {
        (Some(value), _) => auth::bearer(Some(value.to_str().unwrap_or("")))?,
        (None, Some(token)) => token.as_str(),
        (None, None) => auth::bearer(None)?,
    };
    let caller = auth::authenticate(&gateway, token).await?;
    let owner = Owner::check(caller)?;
    let approve = match body.action.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(Error::bad_request("invalid_request", "action: must be \"approve\" or \"deny\"")),
    };
    let choice = Choice {
        approve,
        expiry: body.expires_in.map_or(Expiry::Keep, Expiry::In),
        narrowing: body.narrow.map(Narrowing::from).unwrap_or_default(),
        seen_spec_hash: body.spec_hash,
    };
    decide(&gateway, &owner.id, &id, choice).await.map(Json)
}

/// An owner's decision on a request, from the JSON API or the web form.
pub(crate) struct Choice {
    /// Approve, or deny.
    pub approve: bool,
    /// The permit's expiry after an approval.
    pub expiry: Expiry,
    /// What the owner takes away before approving.
    pub narrowing: Narrowing,
    /// The request's spec hash as the owner saw it; refused when it is not
    /// the request's (the form carries it).
    pub seen_spec_hash: Option<String>,
}

/// A permit's expiry, as an approval sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// A new permit never expires; an extension keeps its permit's expiry.
    Keep,
    /// Never: until revoked.
    Never,
    /// This many seconds from the decision.
    In(u64),
}

/// Decides the request `id` as the owner `owner` chose: the one path from a
/// choice to a stored decision. Approving with a narrowing approves the
/// narrower spec the server builds from the stored one, never a spec from
/// the client.
pub(crate) async fn decide(gateway: &Arc<Gateway>, owner: &str, id: &str, choice: Choice) -> Result<DecisionView> {
    if let Expiry::In(secs) = choice.expiry
        && (secs == 0 || secs > MAX_EXPIRES_IN_SECS)
    {
        return Err(Error::bad_request("invalid_request", "expires_in: seconds, from 1 to ten years"));
    }
    let row = visible_request_of_owner(gateway, owner, id).await?;
    if row.permit_owner.as_deref().is_some_and(|o| o != owner) {
        return Err(Error::Forbidden("this permit belongs to another owner".into()));
    }
    if choice.seen_spec_hash.as_ref().is_some_and(|seen| *seen != row.spec_hash) {
        return Err(Error::conflict("spec_changed", "this is not the spec you were shown; reload and decide again"));
    }
    let wanted = if choice.approve { RequestStatus::Approved } else { RequestStatus::Denied };
    let expired = || Error::conflict("request_expired", "this request expired; the agent must request again");
    match row.status {
        RequestStatus::Pending if row.expires_at <= now_ms() => {
            permits::expire_request(&gateway.db, &row.id).await?;
            return Err(expired());
        }
        RequestStatus::Pending => {}
        status if status == wanted && row.decided_by.as_deref() == Some(owner) => {
            let bound = row.approved_spec_hash.clone();
            let mut view = decision_view(gateway, &row, row.status, row.permit_expires_at, bound);
            view.approval_receipt = approval_receipt(gateway, &row)?;
            return Ok(view);
        }
        RequestStatus::Expired => return Err(expired()),
        status => return Err(Error::conflict("already_decided", format!("this request was already {status}"))),
    }

    let now = now_ms();
    let permit_expires_at = match choice.expiry {
        Expiry::In(secs) => Some(now + (secs as i64) * 1000),
        Expiry::Never => None,
        Expiry::Keep => row.permit_current_expires_at,
    };
    let decision = Decision { owner, at: now, permit_expires_at };
    if !choice.approve {
        permits::deny(&gateway.db, &row, &decision).await?;
        tracing::info!(request = %row.id, permit = %row.permit_id, owner, decision = %wanted, "permit request decided");
        return Ok(decision_view(gateway, &row, wanted, permit_expires_at, None));
    }
    // The spec to bind: the stored one, or the narrower one built from it.
    let (spec, spec_hash) = if choice.narrowing.is_empty() {
        (row.spec.clone(), row.spec_hash.clone())
    } else {
        let narrowed = gateway.compile(&PermitSpec::from_json(&row.spec)?.narrow(&choice.narrowing)?)?;
        let json =
            serde_json::to_string(narrowed.spec()).map_err(|e| Error::Internal(format!("serialising a spec: {e}")))?;
        (json, narrowed.spec_hash().to_string())
    };
    // Still valid under the operator's current settings.
    let still_valid = || gateway.compile(&PermitSpec::from_json(&spec)?).map(drop);
    let approved = ApprovedSpec { spec: &spec, spec_hash: &spec_hash };
    permits::approve(&gateway.db, &row, &decision, &approved, still_valid).await?;
    prepare_component(gateway, &spec_hash, &spec);
    tracing::info!(
        request = %row.id, permit = %row.permit_id, owner, decision = %wanted, %spec_hash,
        narrowed = spec_hash != row.spec_hash, "permit request decided"
    );
    let facts = ApprovalFacts {
        request_id: &row.id,
        permit_id: &row.permit_id,
        spec_hash: &spec_hash,
        owner_id: owner,
        approved_at: now,
        expires_at: permit_expires_at,
    };
    let receipt = receipts::approval(&gateway.tee.signing, &facts)?;
    let mut view = decision_view(gateway, &row, wanted, permit_expires_at, Some(spec_hash));
    view.approval_receipt = Some(receipt);
    view.missing_secrets = Some(missing_secrets(gateway, owner, &spec).await?);
    Ok(view)
}

/// Builds the permit's JavaScript component in the background, so that the
/// first execution does not wait for it.
fn prepare_component(gateway: &Arc<Gateway>, spec_hash: &str, spec: &str) {
    let Ok(permit) = gateway.compiled(spec_hash, spec) else { return };
    let gateway = Arc::clone(gateway);
    tokio::spawn(async move {
        if let Err(error) = gateway.runtime.permit_component(&permit).await {
            tracing::warn!(error = %Error::from(error).chain(), "could not prepare a permit's component");
        }
    });
}

/// `GET /permits/{permit_id}/component`: the exact component the host runs
/// for the permit's JavaScript (`application/wasm`): it imports only the
/// permit's world and inert WASI.
pub async fn permit_component(
    State(gateway): State<Arc<Gateway>>,
    caller: Auth,
    Path(id): Path<String>,
) -> Result<([(header::HeaderName, &'static str); 1], Vec<u8>)> {
    let permit = permit_of(&gateway, &id, Party::AgentOrOwner(&caller.id)).await?;
    let (Some(spec), Some(hash)) = (&permit.spec, &permit.spec_hash) else {
        return Err(Error::conflict("permit_not_active", "the permit has no approved spec yet"));
    };
    let bytes = gateway.runtime.permit_component(&*gateway.compiled(hash, spec)?).await?;
    Ok(([(header::CONTENT_TYPE, "application/wasm")], bytes.to_vec()))
}

fn decision_view(
    gateway: &Gateway,
    row: &RequestRow,
    status: RequestStatus,
    expires_at: Option<i64>,
    approved_spec_hash: Option<String>,
) -> DecisionView {
    DecisionView {
        request_id: row.id.clone(),
        permit_id: row.permit_id.clone(),
        status,
        narrowed: approved_spec_hash.as_ref().is_some_and(|h| *h != row.spec_hash),
        spec_hash: approved_spec_hash.unwrap_or_else(|| row.spec_hash.clone()),
        requested_spec_hash: row.spec_hash.clone(),
        expires_at: rfc3339_opt(expires_at),
        status_url: request_urls(gateway, &row.id).status,
        approval_receipt: None,
        missing_secrets: None,
    }
}

/// Secrets the spec injects that the owner has not stored yet.
pub(crate) async fn missing_secrets(gateway: &Gateway, owner: &str, spec: &str) -> Result<Vec<String>> {
    let spec = PermitSpec::from_json(spec)?;
    let mut missing = Vec::new();
    for name in spec.integrations.iter().flat_map(|i| i.secrets.iter()) {
        if !missing.contains(name) && !secrets::exists(&gateway.db, owner, name).await? {
            missing.push(name.clone());
        }
    }
    Ok(missing)
}

/// `GET /permits/{permit_id}`: its agent or its owner.
pub async fn show_permit(
    State(gateway): State<Arc<Gateway>>,
    caller: Auth,
    Path(id): Path<String>,
) -> Result<Json<PermitView>> {
    let permit = permit_of(&gateway, &id, Party::AgentOrOwner(&caller.id)).await?;
    let pending = permits::pending_request(&gateway.db, &permit.id).await?;
    let spec = match (&permit.spec, &permit.spec_hash) {
        (Some(spec), Some(hash)) => Some(SpecView::of(&*gateway.compiled(hash, spec)?)),
        _ => None,
    };
    Ok(Json(PermitView::of(&permit, now_ms(), pending, spec)))
}

/// `GET /permits/{permit_id}/wit`: the approved spec's WIT world as one
/// self-contained document (`text/plain`), for component toolchains.
pub async fn permit_wit(
    State(gateway): State<Arc<Gateway>>,
    caller: Auth,
    Path(id): Path<String>,
) -> Result<([(header::HeaderName, &'static str); 1], String)> {
    let permit = permit_of(&gateway, &id, Party::AgentOrOwner(&caller.id)).await?;
    let (Some(spec), Some(hash)) = (&permit.spec, &permit.spec_hash) else {
        return Err(Error::conflict("permit_not_active", "the permit has no approved spec yet"));
    };
    let wit = gateway.compiled(hash, spec)?.wit();
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], wit))
}

/// `GET /permits`: the caller's permits (issued to an agent, or owned by an owner).
pub async fn list(State(gateway): State<Arc<Gateway>>, caller: Auth) -> Result<Json<PermitList>> {
    let rows = permits::permits_of(&gateway.db, caller.role, &caller.id).await?;
    let now = now_ms();
    Ok(Json(PermitList { permits: rows.iter().map(|p| PermitListItem::of(p, now)).collect() }))
}

/// `POST /permits/{permit_id}/revoke`: its owner. Idempotent.
pub async fn revoke(
    State(gateway): State<Arc<Gateway>>,
    owner: Owner,
    Path(id): Path<String>,
) -> Result<Json<PermitRevoked>> {
    let permit = permit_of(&gateway, &id, Party::Owner(&owner.id)).await?;
    let now = now_ms();
    permits::revoke(&gateway.db, &permit.id, &owner.id, now).await?;
    tracing::info!(permit = %permit.id, owner = %owner.id, "permit revoked");
    let revoked_at = permit.revoked_at.unwrap_or(now);
    Ok(Json(PermitRevoked { permit_id: permit.id, status: PermitStatus::Revoked, revoked_at: rfc3339(revoked_at) }))
}

/// The permit `id` if it is `party`'s, else 404 (whether or not it exists).
async fn permit_of(gateway: &Gateway, id: &str, party: Party<'_>) -> Result<PermitRow> {
    permits::permit_of(&gateway.db, id, party)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no permit {id} {}", party.relation())))
}
