//! `/` for a signed-in owner: requests waiting, permits with their use and
//! a revoke button, write-only secrets, and recent calls. Every list is
//! paged in the database; a page costs the same with 1,000 permits or
//! 100,000 audit rows.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::Form;
use super::pages::{
    AuditItem, AuditList, Chrome, DashboardPage, Page, PendingItem, PermitItem, Quoted, SecretItem, SignedIn, when,
};
use super::session::Session;
use super::{WebError, local_path, render, urlencode};
use crate::api::Query;
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::state::Gateway;
use crate::store::permits::{self, Party};
use crate::store::{PermitStatus, audit, secrets};

const PENDING_PAGE: i64 = 20;
const PERMITS_PAGE: i64 = 20;
const AUDIT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 1 << 30;

#[derive(Deserialize, Default)]
pub struct DashboardQuery {
    #[serde(default)]
    pending: Option<i64>,
    #[serde(default)]
    permits: Option<i64>,
    #[serde(default)]
    audit_permit: Option<String>,
    #[serde(default)]
    audit_before: Option<i64>,
    #[serde(default)]
    done: Option<String>,
}

/// `GET /` for a browser.
pub async fn home(
    State(gateway): State<Arc<Gateway>>,
    session: Session,
    Query(query): Query<DashboardQuery>,
) -> Result<Response, WebError> {
    let owner = &session.owner_id;
    let now = now_ms();
    let link = |pending: i64, permits: i64| {
        let mut url = format!("/?pending={pending}&permits={permits}");
        if let Some(permit) = query.audit_permit.as_deref().filter(|p| !p.is_empty()) {
            url.push_str(&format!("&audit_permit={}", urlencode(permit)));
        }
        url
    };
    // Page numbers past any real list are clamped, so offsets never overflow.
    let pending_page = query.pending.unwrap_or(0).clamp(0, MAX_PAGE);
    let permits_page = query.permits.unwrap_or(0).clamp(0, MAX_PAGE);

    let (rows, total) =
        permits::pending_for(&gateway.db, owner, now, PENDING_PAGE, pending_page * PENDING_PAGE).await?;
    let pending = Page {
        range: range(pending_page, PENDING_PAGE, rows.len(), total),
        previous: (pending_page > 0).then(|| link(pending_page - 1, permits_page)),
        next: ((pending_page + 1) * PENDING_PAGE < total).then(|| link(pending_page + 1, permits_page)),
        total,
        items: rows
            .into_iter()
            .map(|r| PendingItem {
                agent: Quoted::new(&r.agent_name),
                description: Quoted::new(&shorten(&r.description, 280)),
                extension: r.base_spec_hash.is_some(),
                created_at: when(r.created_at),
                expires_at: when(r.expires_at),
                id: r.id,
            })
            .collect(),
    };

    let (rows, total) = permits::page_of_owner(&gateway.db, owner, PERMITS_PAGE, permits_page * PERMITS_PAGE).await?;
    let ids: Vec<&str> = rows.iter().map(|p| p.id.as_str()).collect();
    let uses: HashMap<String, _> =
        audit::use_of(&gateway.db, &ids).await?.into_iter().map(|u| (u.permit_id.clone(), u)).collect();
    let permits = Page {
        range: range(permits_page, PERMITS_PAGE, rows.len(), total),
        previous: (permits_page > 0).then(|| link(pending_page, permits_page - 1)),
        next: ((permits_page + 1) * PERMITS_PAGE < total).then(|| link(pending_page, permits_page + 1)),
        total,
        items: rows
            .iter()
            .map(|p| {
                let status = p.shown_status(now);
                let used = uses.get(&p.id);
                PermitItem {
                    id: p.id.clone(),
                    agent_id: p.agent_id.clone(),
                    status: status.to_string(),
                    active: status == PermitStatus::Active,
                    narrowed: p.narrowed_from.is_some(),
                    approved_at: p.approved_at.map_or("—".into(), when),
                    expires_at: p.expires_at.map_or("never (until revoked)".into(), when),
                    calls: used.map_or(0, |u| u.calls),
                    denials: used.map_or(0, |u| u.denials),
                    last_used: used.and_then(|u| u.last_used_at).map_or("never".into(), when),
                }
            })
            .collect(),
    };

    let secrets = secrets::of_owner(&gateway.db, owner)
        .await?
        .into_iter()
        .map(|s| SecretItem { updated_at: when(s.updated_at), name: s.name })
        .collect();

    let filter = query.audit_permit.clone().unwrap_or_default().trim().to_owned();
    let entries = audit::page_of_owner(
        &gateway.db,
        owner,
        Some(filter.as_str()).filter(|f| !f.is_empty()),
        query.audit_before,
        AUDIT_PAGE,
    )
    .await?;
    let older = (entries.len() as i64 == AUDIT_PAGE).then(|| {
        let last = entries.last().map_or(0, |e| e.id);
        format!("/?audit_permit={}&audit_before={last}", urlencode(&filter))
    });
    let audit = AuditList {
        permit: filter,
        older,
        items: entries
            .into_iter()
            .map(|e| AuditItem {
                outcome: match (&e.reason, e.status) {
                    (Some(reason), _) => reason.clone(),
                    (None, Some(status)) => format!("HTTP {status}"),
                    (None, None) => "no response".into(),
                },
                started_at: when(e.started_at),
                permit_id: e.permit_id,
                decision: e.decision,
                method: Quoted::new(&e.method),
                url: Quoted::new(&e.url),
            })
            .collect(),
    };

    let csrf = session.csrf(&gateway);
    let page = DashboardPage {
        chrome: Chrome {
            title: "Dashboard".into(),
            owner: Some(SignedIn { name: session.owner_name.clone(), csrf: csrf.clone() }),
        },
        notice: query.done.as_deref().and_then(notice).map(str::to_owned),
        csrf,
        pending,
        permits,
        secrets,
        audit,
    };
    Ok(render(&page))
}

/// What a form did, by a fixed code: the page never echoes text from the URL.
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "revoked" => "The permit is revoked: its agent's next execution is refused.",
        "secret_stored" => "The secret is stored (sealed; it is never shown again).",
        "secret_deleted" => "The secret is deleted.",
        _ => return None,
    })
}

fn range(page: i64, size: i64, shown: usize, total: i64) -> String {
    if shown == 0 {
        return format!("0 of {total}");
    }
    format!("{}–{} of {total}", page * size + 1, page * size + shown as i64)
}

fn shorten(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `POST /permits/{id}/revoke` with a form.
pub async fn revoke_form(
    State(gateway): State<Arc<Gateway>>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    session.check_form(&gateway, &headers, form.csrf())?;
    let permit = permits::permit_of(&gateway.db, &id, Party::Owner(&session.owner_id))
        .await?
        .ok_or_else(|| Error::NotFound(format!("no permit {id} owned by you")))?;
    permits::revoke(&gateway.db, &permit.id, &session.owner_id, now_ms()).await?;
    tracing::info!(permit = %permit.id, owner = %session.owner_id, "permit revoked");
    Ok(Redirect::to("/?done=revoked#permits").into_response())
}

/// `POST /secrets` with a form: add or replace a secret, then back to
/// `next` (the approval page adds missing secrets inline) or the dashboard.
pub async fn secret_form(
    State(gateway): State<Arc<Gateway>>,
    session: Session,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, WebError> {
    session.check_form(&gateway, &headers, form.csrf())?;
    let name = form.get("name").unwrap_or("").trim();
    crate::api::secrets::store(&gateway, &session.owner_id, name, form.get("value").unwrap_or("")).await?;
    let to = match form.get("next") {
        Some(next) => local_path(Some(next)),
        None => "/?done=secret_stored#secrets".to_owned(),
    };
    Ok(Redirect::to(&to).into_response())
}

/// `POST /secrets/{name}/delete`.
pub async fn delete_secret(
    State(gateway): State<Arc<Gateway>>,
    session: Session,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    session.check_form(&gateway, &headers, form.csrf())?;
    if !secrets::delete(&gateway.db, &session.owner_id, &name).await? {
        return Err(Error::NotFound(format!("no secret named {name}")).into());
    }
    tracing::info!(owner = %session.owner_id, secret = %name, "secret deleted");
    Ok(Redirect::to("/?done=secret_deleted#secrets").into_response())
}
