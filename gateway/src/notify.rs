//! Telling owners something waits for them (a permit request, or a call to
//! confirm): [`Notifier`] is the capability; the real one, [`Webhook`],
//! POSTs JSON to `OAUTH3_APPROVAL_WEBHOOK` (a chat bot pings the owner). Delivery runs in the background with retries and
//! backoff; it never blocks or fails the request, and failures are logged
//! without the URL (webhook URLs often embed a credential).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use oauth3_netguard::{GuardedResolver, check_url, tls_config};
use oauth3_policy::HostPort;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// A permit request waiting for an owner: what the webhook receives.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalNotice {
    /// Always `permit_request.pending`.
    pub event: &'static str,
    /// `req_…`.
    pub request_id: String,
    /// The permit it creates or extends.
    pub permit_id: String,
    /// The requesting agent.
    pub agent: AgentRef,
    /// What for, in the agent's words (agent-written: escape it).
    pub description: String,
    /// Where the owner decides.
    pub approval_url: String,
    /// When the request expires, RFC 3339.
    pub expires_at: String,
}

/// An agent, by id and name.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRef {
    /// `agent_…`.
    pub id: String,
    /// Its name, as it signed up (agent-written).
    pub name: String,
}

/// A call waiting for the owner's confirmation: what the webhook receives.
/// Never a secret: the request is the agent's (injected values redacted in
/// the URL, injected headers left out).
#[derive(Debug, Clone, Serialize)]
pub struct ConfirmationNotice {
    /// Always `confirmation.pending`.
    pub event: &'static str,
    /// `cfm_…`.
    pub confirmation_id: String,
    /// The permit the call is made under.
    pub permit_id: String,
    /// The execution that made it.
    pub execution_id: String,
    /// What the permit is for: its approved request's description
    /// (agent-written: escape it).
    pub goal: Option<String>,
    /// The exact call.
    pub request: crate::views::ShownRequest,
    /// Where the owner decides.
    pub confirm_url: String,
    /// When it expires unanswered, RFC 3339.
    pub expires_at: String,
}

/// Announces what waits for an owner. Implementations return at once.
pub trait Notifier: Send + Sync {
    /// Queues `notice` (a permit request) for delivery.
    fn request_waiting(&self, notice: ApprovalNotice);

    /// Queues `notice` (a call to confirm) for delivery.
    fn confirmation_waiting(&self, notice: ConfirmationNotice);
}

/// No notifications (no webhook configured).
pub struct Silent;

impl Notifier for Silent {
    fn request_waiting(&self, _: ApprovalNotice) {}

    fn confirmation_waiting(&self, _: ConfirmationNotice) {}
}

/// Deliveries attempted per notice, and the wait before each retry.
const BACKOFF: [Duration; 4] =
    [Duration::from_secs(1), Duration::from_secs(4), Duration::from_secs(16), Duration::from_secs(60)];
/// Deliveries in flight at once; past it, a notice is dropped (and logged)
/// rather than piling up tasks behind a webhook that is down.
const MAX_IN_FLIGHT: usize = 64;

/// POSTs each notice as JSON to one URL.
pub struct Webhook {
    url: reqwest::Url,
    client: reqwest::Client,
    in_flight: Arc<Semaphore>,
    backoff: Vec<Duration>,
}

impl Webhook {
    /// A webhook to `url`, which must pass the outbound guard: https, or
    /// plain http to an `insecure_upstreams` host:port; public addresses
    /// only unless allow-listed. Redirects are not followed.
    pub fn new(url: &str, insecure_upstreams: &BTreeSet<HostPort>) -> Result<Webhook> {
        let bad = |why: String| Error::Config(format!("OAUTH3_APPROVAL_WEBHOOK: {why}"));
        let url = reqwest::Url::parse(url.trim()).map_err(|e| bad(e.to_string()))?;
        let allow_listed = check_url(&url, insecure_upstreams).map_err(bad)?;
        let hosts: HashSet<String> = if allow_listed {
            url.host_str().map(|h| h.to_ascii_lowercase()).into_iter().collect()
        } else {
            HashSet::new()
        };
        let tls = tls_config(&[]).map_err(|e| Error::Internal(format!("webhook TLS: {e}")))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(Arc::new(GuardedResolver::new(hosts)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("oauth3-webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal(format!("webhook client: {e}")))?;
        Ok(Webhook { url, client, in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)), backoff: BACKOFF.to_vec() })
    }

    /// The same webhook with other waits between attempts (tests).
    pub fn with_backoff(mut self, backoff: Vec<Duration>) -> Webhook {
        self.backoff = backoff;
        self
    }
}

impl Notifier for Webhook {
    fn request_waiting(&self, notice: ApprovalNotice) {
        let id = notice.request_id.clone();
        self.queue(id, serde_json::to_vec(&notice).unwrap_or_default());
    }

    fn confirmation_waiting(&self, notice: ConfirmationNotice) {
        let id = notice.confirmation_id.clone();
        self.queue(id, serde_json::to_vec(&notice).unwrap_or_default());
    }
}

impl Webhook {
    /// Delivers `body` (about `id`, for the log) in the background.
    fn queue(&self, id: String, body: Vec<u8>) {
        let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            tracing::warn!(request = %id, "approval webhook: too many deliveries in flight; dropped");
            return;
        };
        let (client, url, backoff) = (self.client.clone(), self.url.clone(), self.backoff.clone());
        tokio::spawn(async move {
            let _permit = permit;
            deliver(&client, url, &id, body, &backoff).await;
        });
    }
}

/// Posts `body` (a notice about `request`) until a 2xx, an answer that
/// retrying will not change (a 3xx, or a 4xx other than 408 and 429), or
/// the last attempt.
async fn deliver(client: &reqwest::Client, url: reqwest::Url, request: &str, body: Vec<u8>, backoff: &[Duration]) {
    for attempt in 0..=backoff.len() {
        let sent = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => {
                tracing::info!(request, attempt, "approval webhook delivered");
                return;
            }
            Ok(response) => {
                let status = response.status();
                // A refusal (or a redirect, which is not followed) will not change on retry.
                let permanent = status.is_redirection()
                    || (status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429);
                if permanent {
                    tracing::warn!(
                        request,
                        status = status.as_u16(),
                        "approval webhook refused the notice; not retrying"
                    );
                    return;
                }
                format!("HTTP {}", status.as_u16())
            }
            // Without the URL: it may embed a credential.
            Err(error) => describe(&error).to_owned(),
        };
        match backoff.get(attempt) {
            Some(wait) => {
                tracing::warn!(request, attempt, %failure, retry_in_ms = wait.as_millis() as u64, "approval webhook failed");
                tokio::time::sleep(*wait).await;
            }
            None => tracing::warn!(request, attempts = attempt + 1, %failure, "approval webhook failed; giving up"),
        }
    }
}

fn describe(error: &reqwest::Error) -> &'static str {
    if oauth3_netguard::AddressRefused::in_chain(error).is_some() {
        "the host resolves only to non-public addresses"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    }
}
