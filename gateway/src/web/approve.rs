//! `/approve/{request_id}` in a browser: the page an owner decides on, and
//! its form. The form sends choices only (rules to keep, lower rate limits,
//! an expiry); the server builds the narrower spec from the stored one.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use oauth3_drafting::{Intent, Provenance};
use oauth3_policy::{Narrowing, PermitSpec, RateLimit, Summary};

use super::form::Form;
use super::pages::{
    ApprovePage, Chrome, Diff, Doc, Goal, IntegrationView, Notes, Quoted, RateView, RuleView, SecretNeed, SignedIn,
    when,
};
use super::session::Session;
use super::{WebError, render};
use crate::api::permits::{Choice, Expiry, decide as decide_request, visible_request_of_owner};
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::state::Gateway;
use crate::store::{RequestRow, RequestStatus, permits, secrets};

/// `GET /approve/{id}` for a browser: everything the owner decides on.
pub async fn page(
    State(gateway): State<Arc<Gateway>>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let row = visible_request_of_owner(&gateway, &session.owner_id, &id).await?;
    let compiled = gateway.compiled(&row.spec_hash, &row.spec)?;
    let summary = compiled.describe();
    let now = now_ms();
    let status = row.shown_status(now);
    let mine = row.permit_owner.as_deref().is_none_or(|o| o == session.owner_id);
    // An extension of a spec the permit no longer has cannot be approved (409).
    let stale = status == RequestStatus::Pending && row.base_spec_hash != row.permit_spec_hash;
    let pending = status == RequestStatus::Pending && mine && !stale;

    let stored: HashSet<String> =
        secrets::of_owner(&gateway.db, &session.owner_id).await?.into_iter().map(|s| s.name).collect();
    let mut needs: Vec<SecretNeed> = Vec::new();
    for name in compiled.spec().integrations.iter().flat_map(|i| &i.secrets) {
        if !needs.iter().any(|n| n.name == *name) {
            needs.push(SecretNeed { name: name.clone(), stored: stored.contains(name) });
        }
    }

    let intents: Vec<Intent> = row.intent.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
    let draft: Option<Provenance> = row.draft.as_deref().and_then(|t| serde_json::from_str(t).ok());
    let csrf = session.csrf(&gateway);
    let page = ApprovePage {
        chrome: Chrome {
            title: format!("Approve {}", Quoted::new(&row.agent_name).text),
            owner: Some(SignedIn { name: session.owner_name.clone(), csrf: csrf.clone() }),
        },
        id: row.id.clone(),
        status: status.to_string(),
        status_text: status_text(&row, status, now),
        pending,
        is_extension: row.base_spec_hash.is_some(),
        decided: match stale {
            true => Some(
                "The permit changed since this request was made, so it can no longer be approved: the \
                          agent must request again."
                    .into(),
            ),
            false => decided_text(&row, status, &session.owner_id),
        },
        agent: Quoted::new(&row.agent_name),
        agent_id: row.agent_id.clone(),
        created_at: when(row.created_at),
        description: Quoted::new(&row.description),
        goals: intents.iter().map(|i| Goal { integration: i.name.clone(), text: Quoted::new(&i.goal) }).collect(),
        drafter: draft.as_ref().map(|d| match &d.model {
            Some(model) => format!("{} ({model})", d.drafter),
            None => d.drafter.clone(),
        }),
        docs: draft
            .iter()
            .flat_map(|d| &d.integrations)
            .flat_map(|i| &i.docs)
            .map(|doc| Doc {
                url: Quoted::new(&doc.url),
                sha256: doc.sha256.clone(),
                bytes: doc.bytes,
                kind: format!("{:?}", doc.kind).to_lowercase(),
            })
            .collect(),
        cited: match &draft {
            Some(_) => Vec::new(),
            None => {
                compiled.spec().integrations.iter().flat_map(|i| i.doc_urls.iter().map(|u| Quoted::new(u))).collect()
            }
        },
        notes: draft
            .iter()
            .flat_map(|d| &d.integrations)
            .map(|n| Notes {
                name: n.name.clone(),
                rationale: n.rationale.iter().map(|l| Quoted::new(l)).collect(),
                warnings: n.warnings.iter().map(|l| Quoted::new(l)).collect(),
            })
            .collect(),
        diff: match &row.base_spec_hash {
            Some(base) => diff(&gateway, &row, base, &summary).await?,
            None => None,
        },
        secrets: needs,
        integrations: integrations(compiled.spec(), &summary),
        spec_json: json_for_people(compiled.spec()),
        spec_hash: row.spec_hash.clone(),
        csrf,
    };
    Ok(render(&page))
}

/// `value` as pretty JSON with every invisible or control character inside
/// its strings written as a `\uXXXX` escape: the same JSON, with nothing
/// hidden from the owner reading it.
fn json_for_people(value: &impl serde::Serialize) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if crate::visible::hides(c) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                shown.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            shown.push(c);
        }
    }
    shown
}

fn status_text(row: &RequestRow, status: RequestStatus, now: i64) -> String {
    match status {
        RequestStatus::Pending => {
            let minutes = (row.expires_at - now).max(0) / 60_000;
            format!(
                "waiting for a decision until {} ({} h {} min left)",
                when(row.expires_at),
                minutes / 60,
                minutes % 60
            )
        }
        other => other.to_string(),
    }
}

fn decided_text(row: &RequestRow, status: RequestStatus, owner: &str) -> Option<String> {
    let by = match row.decided_by.as_deref() {
        Some(by) if by == owner => "you".to_owned(),
        Some(by) => by.to_owned(),
        None => "an owner".to_owned(),
    };
    let at = row.decided_at.map(when).unwrap_or_default();
    match status {
        RequestStatus::Approved => {
            let bound = row.approved_spec_hash.as_deref().unwrap_or(&row.spec_hash);
            let narrowed = if bound != row.spec_hash { ", narrowed from the spec below" } else { "" };
            let until = row.permit_expires_at.map_or("until revoked".to_owned(), |at| format!("until {}", when(at)));
            Some(format!("Approved by {by} on {at}, {until}. Permit {} runs spec {bound}{narrowed}.", row.permit_id))
        }
        RequestStatus::Denied => Some(format!("Denied by {by} on {at}.")),
        RequestStatus::Expired => Some("This request expired before anyone decided it.".into()),
        RequestStatus::Pending if row.permit_owner.as_deref().is_some_and(|o| o != owner) => {
            Some("This permit belongs to another owner.".into())
        }
        RequestStatus::Pending => None,
    }
}

/// The spec's integrations as the form shows them: one checkbox per rule.
fn integrations(spec: &PermitSpec, summary: &Summary) -> Vec<IntegrationView> {
    spec.integrations
        .iter()
        .zip(&summary.integrations)
        .map(|(integration, described)| IntegrationView {
            name: integration.name.clone(),
            signature: described.signature.clone(),
            risks: described.risks.iter().map(|r| r.message()).collect(),
            rules: described
                .rules
                .iter()
                .enumerate()
                .map(|(index, rule)| RuleView {
                    id: format!("{}/{index}", integration.name),
                    text: Quoted::new(&rule.text),
                    risks: rule.risks.iter().map(|r| r.message()).collect(),
                    confirm: integration.rules.get(index).is_some_and(|r| r.confirm),
                })
                .collect(),
            rate: integration
                .rate_limit
                .map(|limit| RateView { max_calls: limit.max_calls, window: window_text(limit.window_seconds) }),
        })
        .collect()
}

fn window_text(seconds: u32) -> String {
    match seconds {
        1 => "second".into(),
        60 => "minute".into(),
        3600 => "hour".into(),
        86_400 => "day".into(),
        s => format!("{s} seconds"),
    }
}

/// For an extension: lines added and removed against the permit's current
/// spec (each rule as described, and each integration's size and time
/// limits, which rule lines do not show), when the permit still has the spec
/// the request extends.
async fn diff(gateway: &Gateway, row: &RequestRow, base: &str, summary: &Summary) -> Result<Option<Diff>> {
    let Some((spec, hash)) = permits::approved_spec(&gateway.db, &row.permit_id).await? else { return Ok(None) };
    if hash != base {
        return Ok(None);
    }
    let current = gateway.compiled(&hash, &spec)?;
    let requested = gateway.compiled(&row.spec_hash, &row.spec)?;
    let lines = |spec: &PermitSpec, summary: &Summary| -> BTreeSet<String> {
        let rules =
            summary.integrations.iter().flat_map(|i| i.rules.iter().map(move |r| format!("{}: {}", i.name, r.text)));
        let limits = spec.integrations.iter().filter(|i| !i.limits.is_empty()).map(|i| {
            let limits = serde_json::to_string(&i.limits).unwrap_or_default();
            format!("{}: limits {limits}", i.name)
        });
        rules.chain(limits).collect()
    };
    let before = lines(current.spec(), &current.describe());
    let after = lines(requested.spec(), summary);
    Ok(Some(Diff {
        base_hash: hash,
        added: after.difference(&before).map(|l| Quoted::new(l)).collect(),
        removed: before.difference(&after).map(|l| Quoted::new(l)).collect(),
    }))
}

/// `POST /approve/{id}` with the page's form: approve (maybe narrowed) or deny.
pub async fn decide(
    State(gateway): State<Arc<Gateway>>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    session.check_form(&gateway, &headers, form.csrf())?;
    let approve = form.approves()?;
    let seen =
        form.get("spec_hash").ok_or_else(|| Error::bad_request("invalid_request", "the form lacks spec_hash"))?;
    let expiry = match form.get("expires").unwrap_or("keep") {
        "keep" => Expiry::Keep,
        "never" => Expiry::Never,
        seconds => Expiry::In(
            seconds.parse().map_err(|_| Error::bad_request("invalid_request", "expires: a number of seconds"))?,
        ),
    };
    let narrowing = if approve {
        let row = visible_request_of_owner(&gateway, &session.owner_id, &id).await?;
        narrowing(&PermitSpec::from_json(&row.spec).map_err(Error::from)?, &form)?
    } else {
        Narrowing::default()
    };
    let choice = Choice { approve, expiry, narrowing, seen_spec_hash: Some(seen.to_owned()) };
    decide_request(&gateway, &session.owner_id, &id, choice).await?;
    Ok(Redirect::to(&format!("/approve/{id}")).into_response())
}

/// The owner's choices as a [`Narrowing`] of `spec`: every rule not in a
/// `keep` field is dropped; a kept rule in a `no_confirm` field no longer
/// asks for each call ("don't ask for each call"); `rate.<integration>`
/// lowers (or, with `window.<integration>`, sets) a rate limit. A `keep` or
/// `no_confirm` naming no rule is refused, so a stale form cannot silently
/// change what it did not show (the policy refuses a `no_confirm` on a rule
/// without `confirm`).
fn narrowing(spec: &PermitSpec, form: &Form) -> Result<Narrowing> {
    let kept: HashSet<&str> = form.all("keep").collect();
    let unconfirmed: HashSet<&str> = form.all("no_confirm").collect();
    let mut narrowing = Narrowing::default();
    let mut known = HashSet::new();
    for integration in &spec.integrations {
        for index in 0..integration.rules.len() {
            let id = format!("{}/{index}", integration.name);
            if !kept.contains(id.as_str()) {
                narrowing.drop_rules.insert((integration.name.clone(), index));
            } else if unconfirmed.contains(id.as_str()) {
                narrowing.no_confirm.insert((integration.name.clone(), index));
            }
            known.insert(id);
        }
    }
    if let Some(unknown) = kept.iter().find(|k| !known.contains(**k)) {
        return Err(Error::bad_request("invalid_request", format!("keep: the spec has no rule {unknown:?}")));
    }
    if let Some(unknown) = unconfirmed.iter().find(|k| !known.contains(**k)) {
        return Err(Error::bad_request("invalid_request", format!("no_confirm: the spec has no rule {unknown:?}")));
    }
    for (name, value) in form.prefixed("rate.") {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let Some(integration) = spec.integrations.iter().find(|i| i.name == name) else {
            return Err(Error::bad_request("invalid_request", format!("rate: the spec has no integration {name:?}")));
        };
        let max_calls: u32 = value
            .parse()
            .map_err(|_| Error::bad_request("invalid_request", format!("rate.{name}: a whole number of calls")))?;
        let limit = match integration.rate_limit {
            Some(current) if current.max_calls == max_calls => continue,
            Some(current) => RateLimit { max_calls, window_seconds: current.window_seconds },
            None => {
                let window = form.get(&format!("window.{name}")).unwrap_or("60");
                let window_seconds = window
                    .parse()
                    .map_err(|_| Error::bad_request("invalid_request", format!("window.{name}: seconds")))?;
                RateLimit { max_calls, window_seconds }
            }
        };
        narrowing.rate_limits.insert(name.to_owned(), limit);
    }
    Ok(narrowing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PermitSpec {
        PermitSpec::from_json(
            r#"{"version": 1, "integrations": [{"name": "github", "base_url": "https://api.github.com",
                "rules": [{"method": "GET", "path": "/a"}, {"method": "POST", "path": "/a"}],
                "rate_limit": {"max_calls": 30, "window_seconds": 60}},
              {"name": "weather", "base_url": "https://api.weather.example", "rules": [{"method": "GET", "path": "/"}]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_raw_spec_escapes_what_would_hide_text() {
        let shown = json_for_people(&serde_json::json!({"d": "a\u{202E}b\u{E0041}c"}));
        assert!(shown.contains(r"a\u202eb\udb40\udc41c"), "{shown}");
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back["d"], "a\u{202E}b\u{E0041}c", "still the same JSON");
    }

    #[test]
    fn unticked_rules_are_dropped_and_rates_lowered() {
        let form = Form::parse(b"keep=github%2F0&keep=weather%2F0&rate.github=5&rate.weather=10&window.weather=3600");
        let narrowing = narrowing(&spec(), &form).unwrap();
        assert_eq!(narrowing.drop_rules, BTreeSet::from([("github".to_owned(), 1)]));
        assert_eq!(narrowing.rate_limits["github"], RateLimit { max_calls: 5, window_seconds: 60 });
        assert_eq!(narrowing.rate_limits["weather"], RateLimit { max_calls: 10, window_seconds: 3600 });
    }

    #[test]
    fn an_unchanged_form_narrows_nothing() {
        let form = Form::parse(b"keep=github%2F0&keep=github%2F1&keep=weather%2F0&rate.github=30&rate.weather=");
        assert!(narrowing(&spec(), &form).unwrap().is_empty());
    }

    #[test]
    fn a_ticked_dont_ask_drops_confirm_from_a_kept_rule_only() {
        let form = Form::parse(b"keep=github%2F0&keep=weather%2F0&no_confirm=github%2F0&no_confirm=github%2F1");
        let chosen = narrowing(&spec(), &form).unwrap();
        assert_eq!(chosen.no_confirm, BTreeSet::from([("github".to_owned(), 0)]), "github/1 is dropped anyway");
        assert_eq!(chosen.drop_rules, BTreeSet::from([("github".to_owned(), 1)]));
        let form = Form::parse(b"keep=github%2F0&no_confirm=github%2F7");
        assert!(narrowing(&spec(), &form).is_err(), "a rule the spec lacks");
    }

    #[test]
    fn a_form_keeping_a_rule_the_spec_lacks_is_refused() {
        let form = Form::parse(b"keep=github%2F0&keep=github%2F7");
        assert!(narrowing(&spec(), &form).is_err());
        let form = Form::parse(b"keep=github%2F0&rate.gitlab=1");
        assert!(narrowing(&spec(), &form).is_err());
    }
}
