//! `/confirmations` in a browser: the calls waiting for the owner's
//! confirmation, each shown exactly (method, URL, query, headers, body) as
//! the JSON API's [`ConfirmationView`] has it, with Approve and Deny forms.
//! Everything about a call is the agent's text: shown quoted and escaped.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::Form;
use super::pages::{Chrome, ConfirmationItem, ConfirmationsPage, Quoted, SignedIn, when};
use super::session::Session;
use super::{WebError, render};
use crate::api::Query;
use crate::api::confirmations::{decide_as, list_of};
use crate::error::Error;
use crate::state::Gateway;
use crate::store::ConfirmationStatus;
use crate::store::confirmations::Filter;
use crate::views::ConfirmationView;

#[derive(Deserialize, Default)]
pub struct ConfirmationsQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /confirmations` for a browser: the pending ones, newest first.
pub async fn page(
    State(gateway): State<Arc<Gateway>>,
    session: Session,
    Query(query): Query<ConfirmationsQuery>,
) -> Result<Response, WebError> {
    let list = list_of(&gateway, &session.owner_id, Filter::Shown(ConfirmationStatus::Pending)).await?;
    let csrf = session.csrf(&gateway);
    let page = ConfirmationsPage {
        chrome: Chrome {
            title: "Confirmations".into(),
            owner: Some(SignedIn { name: session.owner_name.clone(), csrf: csrf.clone() }),
        },
        notice: query.done.as_deref().and_then(notice).map(str::to_owned),
        csrf,
        items: list.confirmations.into_iter().map(item).collect(),
    };
    Ok(render(&page))
}

fn item(view: ConfirmationView) -> ConfirmationItem {
    let pairs = |pairs: &[(String, String)]| pairs.iter().map(|(n, v)| (Quoted::new(n), Quoted::new(v))).collect();
    ConfirmationItem {
        goal: view.goal.as_deref().map(Quoted::new),
        integration: view.request.integration.clone(),
        method: Quoted::new(&view.request.method),
        url: Quoted::new(&view.request.url),
        query: pairs(&view.request.query),
        headers: pairs(&view.request.headers),
        body: view.request.body.as_deref().map(Quoted::new),
        created_at: shown_time(&view.created_at),
        expires_at: shown_time(&view.expires_at),
        id: view.id,
        permit_id: view.permit_id,
    }
}

/// An RFC 3339 time of a view, as the other pages show times.
fn shown_time(rfc3339: &str) -> String {
    match humantime::parse_rfc3339_weak(rfc3339) {
        Ok(time) => {
            let ms = time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            when(ms)
        }
        Err(_) => rfc3339.to_owned(),
    }
}

/// What a decision did, by a fixed code: the page never echoes text from the URL.
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "approved" => "Approved: the agent's identical call goes through once, within 15 minutes.",
        "denied" => "Denied: the call stays refused.",
        "not_pending" => "That confirmation is no longer pending: it was already decided, used, or has expired.",
        _ => return None,
    })
}

/// `POST /confirmations/{id}` with the page's form: approve or deny.
pub async fn decide(
    State(gateway): State<Arc<Gateway>>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    session.check_form(&gateway, &headers, form.csrf())?;
    let approve = form.approves()?;
    let done = match decide_as(&gateway, &session.owner_id, &id, approve).await {
        Ok(_) if approve => "approved",
        Ok(_) => "denied",
        // Decided elsewhere, used or expired: a notice, not an error page.
        Err(Error::Conflict { .. }) => "not_pending",
        Err(error) => return Err(error.into()),
    };
    Ok(Redirect::to(&format!("/confirmations?done={done}")).into_response())
}
