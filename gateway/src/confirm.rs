//! The owner's confirmations of single calls, as egress asks for them
//! ([`DbConfirmations`]: the database-backed `Confirmations` capability),
//! and how a call is shown to the owner (its body made readable without
//! changing a byte of what it says).

use std::sync::Arc;

use oauth3_host::{Confirmation, ConfirmationRequest, Confirmations};

use crate::db::{Db, now_ms};
use crate::error::Result;
use crate::keys::new_id;
use crate::notify::{ConfirmationNotice, Notifier};
use crate::store::NewConfirmation;
use crate::store::confirmations::{self, Waiting};
use crate::views::ConfirmationView;

/// How long a confirmation waits for the owner before it expires.
pub const PENDING_FOR_MS: i64 = 24 * 3600 * 1000;
/// How long an approval may be used, from the moment it is given.
pub const APPROVED_FOR_MS: i64 = 15 * 60 * 1000;
/// The most body text shown; the rest is counted, not shown.
const SHOWN_BODY_BYTES: usize = 64 << 10;

/// Confirmations in the `confirmations` table, shared by every replica:
/// using an approval is one conditional update, and a retried call finds
/// the confirmation already pending instead of adding one. A new one is
/// announced through the notifier (the approval webhook).
pub struct DbConfirmations {
    db: Db,
    notifier: Arc<dyn Notifier>,
    public_url: String,
}

impl DbConfirmations {
    /// Confirmations over `db`; links in notices start with `public_url`.
    pub fn new(db: Db, notifier: Arc<dyn Notifier>, public_url: &str) -> DbConfirmations {
        DbConfirmations { db, notifier, public_url: public_url.trim_end_matches('/').to_owned() }
    }

    async fn try_check(&self, request: &ConfirmationRequest<'_>) -> Result<Confirmation> {
        let (permit_id, hash) = (request.permit_id, request.hash);
        // An approval given between our use and our insert is used on the next turn.
        for _ in 0..3 {
            let now = now_ms();
            if let Some(id) = confirmations::use_approval(&self.db, permit_id, hash, now).await? {
                tracing::info!(confirmation = %id, permit = %permit_id, "confirmed call sent");
                return Ok(Confirmation::Granted);
            }
            let id = new_id("cfm")?;
            let new = NewConfirmation {
                id: &id,
                permit_id,
                execution_id: request.execution_id,
                integration: &request.call.integration,
                method: &request.call.method,
                url: request.url,
                request_hash: hash,
                query: serde_json::to_string(&request.call.query).unwrap_or_else(|_| "[]".into()),
                headers: serde_json::to_string(&request.call.headers).unwrap_or_else(|_| "[]".into()),
                body: shown_body(request.call.body.as_deref()),
                created_at: now,
                expires_at: now + PENDING_FOR_MS,
            };
            match confirmations::wait(&self.db, &new).await? {
                Waiting::Created(id) => {
                    tracing::info!(confirmation = %id, permit = %permit_id, "call waits for the owner's confirmation");
                    self.announce(&id).await;
                    return Ok(Confirmation::Required { id });
                }
                Waiting::Pending(id) => return Ok(Confirmation::Required { id }),
                Waiting::Approved => {}
            }
        }
        Ok(Confirmation::Unavailable)
    }

    /// Tells the owner (the webhook) of the new confirmation `id`; a
    /// failure is logged, the confirmation stays listed.
    async fn announce(&self, id: &str) {
        let row = match confirmations::by_id(&self.db, id).await {
            Ok(Some(row)) => row,
            Ok(None) => return,
            Err(error) => return tracing::warn!(error = %error.chain(), "could not read a new confirmation"),
        };
        let view = ConfirmationView::of(row, now_ms());
        self.notifier.confirmation_waiting(ConfirmationNotice {
            event: "confirmation.pending",
            confirm_url: format!("{}/confirmations/{}", self.public_url, view.id),
            confirmation_id: view.id,
            permit_id: view.permit_id,
            execution_id: view.execution_id,
            goal: view.goal,
            request: view.request,
            expires_at: view.expires_at,
        });
    }
}

#[async_trait::async_trait]
impl Confirmations for DbConfirmations {
    async fn check(&self, request: &ConfirmationRequest<'_>) -> Confirmation {
        match self.try_check(request).await {
            Ok(answer) => answer,
            Err(error) => {
                // Deny on error: no confirmed call without a recorded approval.
                tracing::error!(error = %error.chain(), "confirmations unavailable; refusing the call");
                Confirmation::Unavailable
            }
        }
    }
}

/// A body as the owner reads it: JSON re-indented token for token (never
/// parsed into values, so duplicate keys, long numbers and escapes show
/// exactly as sent), other UTF-8 as text, anything else as a note; at most
/// [`SHOWN_BODY_BYTES`] of it. None for no body.
pub fn shown_body(body: Option<&[u8]>) -> Option<String> {
    let body = body.filter(|b| !b.is_empty())?;
    let Ok(text) = std::str::from_utf8(body) else {
        return Some(format!("({} bytes of binary data, not shown)", body.len()));
    };
    let text =
        if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() { indent_json(text) } else { text.into() };
    if text.len() <= SHOWN_BODY_BYTES {
        return Some(text);
    }
    let mut end = SHOWN_BODY_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!("{}\n… ({} more bytes not shown)", &text[..end], text.len() - end))
}

/// Valid JSON `text` laid out two spaces per level; the tokens are copied
/// as they are.
fn indent_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // An empty object or array stays on one line.
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|&next| next == '}' || next == ']') {
                    continue;
                }
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                if !out.ends_with(['{', '[']) {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shown_body;

    #[test]
    fn json_bodies_are_laid_out_without_changing_a_token() {
        let body = br#"{"to":"a@x","to":"b@y","amount":10000000000000000001,"note":"\u202e \" ,:{","list":[],"o":{}}"#;
        let shown = shown_body(Some(body)).unwrap();
        assert_eq!(
            shown,
            "{\n  \"to\": \"a@x\",\n  \"to\": \"b@y\",\n  \"amount\": 10000000000000000001,\n  \
             \"note\": \"\\u202e \\\" ,:{\",\n  \"list\": [],\n  \"o\": {}\n}"
        );
        let squeezed: String = shown.lines().map(str::trim_start).collect::<String>().replace("\": ", "\":");
        assert_eq!(squeezed, String::from_utf8_lossy(body), "only layout was added");
    }

    #[test]
    fn text_binary_large_and_empty_bodies_are_shown_as_such() {
        assert_eq!(shown_body(Some(b"a=1&b=2")).as_deref(), Some("a=1&b=2"));
        assert_eq!(shown_body(Some(&[0xff, 0xfe, 0])).as_deref(), Some("(3 bytes of binary data, not shown)"));
        assert_eq!(shown_body(Some(b"")), None);
        assert_eq!(shown_body(None), None);
        let long = "é".repeat(40_000);
        let shown = shown_body(Some(long.as_bytes())).unwrap();
        assert!(shown.ends_with("(14464 more bytes not shown)"), "{}", &shown[shown.len() - 40..]);
    }
}
