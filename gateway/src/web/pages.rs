//! The pages, as askama templates (`gateway/templates/`, checked at compile
//! time, HTML-escaped), and the view models they show. Handlers build
//! these from the store's rows and the same views the JSON API serialises.

use askama::Template;

/// What every page's frame shows.
pub struct Chrome {
    /// The page's title.
    pub title: String,
    /// The signed-in owner, for the header's sign-out form.
    pub owner: Option<SignedIn>,
}

/// The signed-in owner in the header.
pub struct SignedIn {
    /// Their name.
    pub name: String,
    /// The session's CSRF token, for the sign-out form.
    pub csrf: String,
}

/// Text an agent wrote, as shown to an owner: invisible, bidirectional,
/// line-breaking, private-use and blank characters made visible
/// (`⟨U+202E⟩`), and a flag when it has characters outside ASCII, which can
/// imitate others (`раураl`, `∕`).
pub struct Quoted {
    /// The text, safe to escape and show.
    pub text: String,
    /// Letters outside ASCII.
    pub lookalike: bool,
}

impl Quoted {
    /// `text` as an owner should see it.
    pub fn new(text: &str) -> Quoted {
        Quoted { text: crate::visible::shown(text), lookalike: !text.is_ascii() }
    }
}

/// A time for people: `2026-12-04 17:05 UTC`.
pub fn when(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    // `2026-12-04T17:05:09Z` → `2026-12-04 17:05 UTC`
    format!("{} {} UTC", &text[..10], &text[11..16])
}

/// An error, in a page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub heading: String,
    pub message: String,
    pub back: String,
}

/// `GET /login`.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub csrf: String,
    pub next: String,
    pub error: Option<String>,
    pub signup_open: bool,
}

/// `GET /signup`, and the token shown once after `POST /signup`.
#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage {
    pub chrome: Chrome,
    pub csrf: String,
    pub next: String,
    pub error: Option<String>,
    pub needs_invite: bool,
    pub name: String,
    pub token: Option<String>,
}

/// A same-site hop back to `to`, so that the Strict session cookie a link
/// from another site did not carry is sent.
#[derive(Template)]
#[template(path = "bounce.html")]
pub struct BouncePage {
    pub to: String,
}

/// `GET /approve/{id}` in a browser.
#[derive(Template)]
#[template(path = "approve.html")]
pub struct ApprovePage {
    pub chrome: Chrome,
    pub id: String,
    pub status: String,
    pub status_text: String,
    pub pending: bool,
    pub is_extension: bool,
    pub decided: Option<String>,
    pub agent: Quoted,
    pub agent_id: String,
    pub created_at: String,
    pub description: Quoted,
    pub goals: Vec<Goal>,
    pub drafter: Option<String>,
    pub docs: Vec<Doc>,
    /// Doc URLs in a spec the agent wrote itself: not fetched, agent text.
    pub cited: Vec<Quoted>,
    pub notes: Vec<Notes>,
    pub diff: Option<Diff>,
    pub secrets: Vec<SecretNeed>,
    pub integrations: Vec<IntegrationView>,
    pub spec_json: String,
    pub spec_hash: String,
    pub csrf: String,
}

/// One intent's goal.
pub struct Goal {
    pub integration: String,
    pub text: Quoted,
}

/// A document the drafter read (its URL is the agent's).
pub struct Doc {
    pub url: Quoted,
    pub sha256: String,
    pub bytes: usize,
    pub kind: String,
}

/// The drafter's notes on one integration (an LLM's words, which the docs
/// it read may have steered).
pub struct Notes {
    pub name: String,
    pub rationale: Vec<Quoted>,
    pub warnings: Vec<Quoted>,
}

/// An extension against the current permit, line by line (rules, and each
/// integration's limits).
pub struct Diff {
    pub base_hash: String,
    pub added: Vec<Quoted>,
    pub removed: Vec<Quoted>,
}

/// A secret the spec injects.
pub struct SecretNeed {
    pub name: String,
    pub stored: bool,
}

/// One integration of the spec, with its rules to keep or untick.
pub struct IntegrationView {
    pub name: String,
    pub signature: String,
    pub risks: Vec<&'static str>,
    pub rules: Vec<RuleView>,
    pub rate: Option<RateView>,
}

/// One rule: `id` is `integration/index`, what the form sends to keep it.
/// Its text may carry a description the agent wrote.
pub struct RuleView {
    pub id: String,
    pub text: Quoted,
    pub risks: Vec<&'static str>,
    /// The rule asks the owner to confirm each call; the form may drop that.
    pub confirm: bool,
}

/// A rate limit the owner may lower.
pub struct RateView {
    pub max_calls: u32,
    pub window: String,
}

/// `GET /` in a browser.
#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub chrome: Chrome,
    pub notice: Option<String>,
    pub csrf: String,
    pub pending: Page<PendingItem>,
    pub permits: Page<PermitItem>,
    pub secrets: Vec<SecretItem>,
    pub audit: AuditList,
}

/// One page of a list, with links to its neighbours.
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub range: String,
    pub previous: Option<String>,
    pub next: Option<String>,
}

/// A request waiting for the owner.
pub struct PendingItem {
    pub id: String,
    pub agent: Quoted,
    pub description: Quoted,
    pub extension: bool,
    pub created_at: String,
    pub expires_at: String,
}

/// A permit in the dashboard.
pub struct PermitItem {
    pub id: String,
    pub agent_id: String,
    pub status: String,
    pub active: bool,
    pub narrowed: bool,
    pub approved_at: String,
    pub expires_at: String,
    pub calls: i64,
    pub denials: i64,
    pub last_used: String,
}

/// A secret's name and when it last changed.
pub struct SecretItem {
    pub name: String,
    pub updated_at: String,
}

/// Recent calls, newest first.
pub struct AuditList {
    pub permit: String,
    pub items: Vec<AuditItem>,
    pub older: Option<String>,
}

/// One audited call (its method and URL are what the agent's code sent).
pub struct AuditItem {
    pub permit_id: String,
    pub decision: String,
    pub method: Quoted,
    pub url: Quoted,
    pub outcome: String,
    pub started_at: String,
}

/// `GET /confirmations` in a browser: calls waiting for the owner.
#[derive(Template)]
#[template(path = "confirmations.html")]
pub struct ConfirmationsPage {
    pub chrome: Chrome,
    pub notice: Option<String>,
    pub csrf: String,
    pub items: Vec<ConfirmationItem>,
}

/// One call waiting for confirmation, as its JSON view shows it. Everything
/// about the request (and the goal) is the agent's.
pub struct ConfirmationItem {
    pub id: String,
    pub permit_id: String,
    pub goal: Option<Quoted>,
    pub integration: String,
    pub method: Quoted,
    pub url: Quoted,
    pub query: Vec<(Quoted, Quoted)>,
    pub headers: Vec<(Quoted, Quoted)>,
    pub body: Option<Quoted>,
    pub created_at: String,
    pub expires_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_text_shows_hidden_characters_and_flags_lookalikes() {
        let q = Quoted::new("pay\u{202E}lapyap");
        assert_eq!(q.text, "pay⟨U+202E⟩lapyap");
        assert!(q.lookalike, "flagged too");
        assert!(Quoted::new("раураl").lookalike, "Cyrillic letters that read as Latin");
        assert!(Quoted::new("docs.github.com∕evil").lookalike, "a slash look-alike");
        assert!(!Quoted::new("plain text, 100% ASCII").lookalike);
        assert_eq!(Quoted::new("a\u{2028}b\u{E000}c\u{2800}").text, "a⟨U+2028⟩b⟨U+E000⟩c⟨U+2800⟩");
    }
}
