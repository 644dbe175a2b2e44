//! `Egress`: the one enforcement point. Every request a sandbox makes goes
//! through [`Egress::call`], in this order: decide (pure, `oauth3-policy`) →
//! confirm (a call a `confirm` rule allows is sent only with an approval of
//! that exact request, used up by it) → rate limit → resolve secrets →
//! audit ahead (the sink's `sending`) → build the request (injected headers
//! win, `Authorization: Basic` built here from `inject.basic`; agent ones
//! were already refused by the decision) → send with no automatic
//! redirects, each hop decided again → refuse non-public addresses after
//! DNS → read at most the response limit → scrub every secret value →
//! record.

mod scrub;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use oauth3_netguard::{AddressRefused, GuardedResolver, tls_config};
use oauth3_policy::{
    CompiledIntegration, CompiledPermit, Decision, DenyCode, HostPort, RateKey, Redirect, Scheme, Verdict,
};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use crate::call::{CallError, CallGate, CallRecord, GuestCall, GuestResponse, Outbound};
use crate::capabilities::{AuditSink, RateLimiter, Secret, SecretResolver};
use crate::confirm::{Confirmation, ConfirmationRequest, Confirmations, request_hash};
use crate::error::HostError;
pub use scrub::Scrubber;

/// Bodies this large and more are scrubbed on a blocking thread.
const SCRUB_IN_PLACE_BELOW: usize = 128 << 10;

/// Operator settings for egress.
#[derive(Debug, Clone)]
pub struct EgressConfig {
    /// Upstreams that may use plain http and resolve to non-public addresses
    /// (development and tests; `OAUTH3_INSECURE_UPSTREAMS`). Use the same list
    /// the permits were compiled with.
    pub insecure_upstreams: BTreeSet<HostPort>,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Most redirect hops followed per call.
    pub max_redirects: usize,
    /// Extra trusted root certificates (DER), beside the Mozilla roots.
    pub extra_roots: Vec<Vec<u8>>,
    /// `User-Agent` sent upstream unless the agent sets one.
    pub user_agent: String,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            insecure_upstreams: BTreeSet::new(),
            connect_timeout: Duration::from_secs(10),
            max_redirects: 5,
            extra_roots: Vec::new(),
            user_agent: concat!("oauth3/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The enforcement point, shared by every run. Cheap to clone via `Arc`.
pub struct Egress {
    client: reqwest::Client,
    rate: Arc<dyn RateLimiter>,
    audit: Arc<dyn AuditSink>,
    confirmations: Arc<dyn Confirmations>,
    config: EgressConfig,
}

/// Who a call is made for: one execution of one permit, with its owner's secrets.
#[derive(Clone)]
pub struct CallContext {
    /// Permit id (rate limits and audit are keyed by it).
    pub permit_id: String,
    /// Execution id (audit).
    pub execution_id: String,
    /// The approved, compiled permit.
    pub permit: Arc<CompiledPermit>,
    /// The approving owner's secrets.
    pub secrets: Arc<dyn SecretResolver>,
}

/// [`Egress`] bound to one run's [`CallContext`]: the sandbox's [`Outbound`].
pub struct BoundEgress {
    egress: Arc<Egress>,
    context: CallContext,
}

impl Egress {
    /// Builds the HTTP client (rustls with ring, Mozilla roots plus
    /// `extra_roots`, no proxy, no automatic redirects, guarded DNS).
    /// `confirmations` answers for calls that rules marked `confirm` allow.
    pub fn new(
        config: EgressConfig,
        rate: Arc<dyn RateLimiter>,
        audit: Arc<dyn AuditSink>,
        confirmations: Arc<dyn Confirmations>,
    ) -> Result<Egress, HostError> {
        let tls = tls_config(&config.extra_roots).map_err(HostError::Client)?;
        let insecure_hosts = config.insecure_upstreams.iter().map(|hp| hp.host().to_owned()).collect();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(Arc::new(GuardedResolver::new(insecure_hosts)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(HostError::HttpClient)?;
        Ok(Egress { client, rate, audit, confirmations, config })
    }

    /// Binds this egress to one run.
    pub fn bind(self: &Arc<Self>, context: CallContext) -> BoundEgress {
        BoundEgress { egress: Arc::clone(self), context }
    }

    /// Performs one call end to end and records it (also in the audit
    /// sink). Never panics; every failure is a [`CallError`] safe for the guest.
    pub async fn call(&self, ctx: &CallContext, call: &GuestCall) -> (Result<GuestResponse, CallError>, CallRecord) {
        self.call_within(ctx, call, &CallGate::new()).await
    }

    /// [`Egress::call`] for a call of a run: once `gate` closes, the call is
    /// not sent (nor is a redirect hop of it); work before sending (rate
    /// limit, secrets) is abandoned at once, and the call answers
    /// [`CallError::RunEnded`]. A request already sent finishes.
    pub async fn call_within(
        &self,
        ctx: &CallContext,
        call: &GuestCall,
        gate: &CallGate,
    ) -> (Result<GuestResponse, CallError>, CallRecord) {
        let clock = Instant::now();
        let mut record = CallRecord::started(call);
        let result = self.perform(ctx, call, &mut record, gate).await;
        if let Err(e) = &result {
            let refused_before_sending = match e {
                CallError::Denied { .. }
                | CallError::RateLimited { .. }
                | CallError::SecretMissing(_)
                | CallError::ConfirmationRequired { .. }
                | CallError::ConfirmationUnavailable => true,
                CallError::RunEnded => record.status.is_none(),
                _ => false,
            };
            if refused_before_sending {
                record.decision = Verdict::Deny;
            }
            record.reason = Some(e.code());
        }
        record.duration = clock.elapsed();
        tracing::debug!(
            integration = %record.integration,
            method = %record.method,
            url = %record.url,
            decision = record.decision.as_str(),
            reason = record.reason,
            status = record.status,
            "egress call"
        );
        self.audit.record(&ctx.permit_id, &ctx.execution_id, &record).await;
        (result, record)
    }

    async fn perform(
        &self,
        ctx: &CallContext,
        call: &GuestCall,
        record: &mut CallRecord,
        gate: &CallGate,
    ) -> Result<GuestResponse, CallError> {
        let allow = match ctx.permit.decide(&call.as_request()) {
            Decision::Allow(allow) => allow,
            Decision::Deny(d) => return Err(CallError::Denied { code: d.code, message: d.message }),
        };
        let integration = &ctx.permit.integrations()[allow.integration];
        record.url = redacted_url(integration, &call.path, &call.query);

        // Before the rate limit: a call waiting for the owner costs no budget.
        // Not cut short by the run's end: the answer may have used an
        // approval up, and the gate is checked again before sending.
        if allow.confirm {
            match self.confirm(ctx, call, &record.url).await {
                Confirmation::Granted => {}
                Confirmation::Required { id } => {
                    record.confirmation_id = Some(id.clone());
                    return Err(CallError::ConfirmationRequired { id });
                }
                Confirmation::Unavailable => return Err(CallError::ConfirmationUnavailable),
            }
        }

        // The rate limit and the secrets may wait on a database; a run that
        // ends meanwhile stops the call here, before anything is sent.
        let (injected, scrubber) = tokio::select! {
            biased;
            () = gate.closed() => return Err(CallError::RunEnded),
            prepared = self.prepare(ctx, call, integration) => prepared?,
        };

        // Written ahead: a call cut short by a crash is still in the log.
        record.audit_entry = self.audit.sending(&ctx.permit_id, &ctx.execution_id, record).await;

        let timeout = Duration::from_millis(integration.limits().timeout_ms);
        let sent = tokio::time::timeout(
            timeout,
            self.send_following_redirects(ctx, integration, call, &injected, record, gate),
        );
        let mut response = match sent.await {
            Ok(result) => result.map_err(|e| scrub_error(e, &scrubber))?,
            Err(_) => return Err(CallError::Timeout(timeout)),
        };
        record.response_bytes = response.body.len() as u64;
        if response.body.len() < SCRUB_IN_PLACE_BELOW {
            scrubber.scrub_response(&mut response);
            return Ok(response);
        }
        // Scrubbing runs at ~50 MiB/s on escape-dense text: off the async
        // workers for a large body.
        let scrubbed = tokio::task::spawn_blocking(move || {
            scrubber.scrub_response(&mut response);
            response
        });
        scrubbed.await.map_err(|_| CallError::Upstream("the response could not be scrubbed".into()))
    }

    /// Asks the owner's confirmations about this exact request.
    async fn confirm(&self, ctx: &CallContext, call: &GuestCall, url: &str) -> Confirmation {
        let body = call.body.as_deref();
        let hash = request_hash(&call.integration, &call.method, &call.path, &call.query, &call.headers, body);
        let request =
            ConfirmationRequest { permit_id: &ctx.permit_id, execution_id: &ctx.execution_id, call, url, hash: &hash };
        self.confirmations.check(&request).await
    }

    /// Charges the rate limit and fills in the secrets: everything a call
    /// needs before it can be sent.
    async fn prepare(
        &self,
        ctx: &CallContext,
        call: &GuestCall,
        integration: &CompiledIntegration,
    ) -> Result<(Injected, Scrubber), CallError> {
        if let Some(limit) = integration.rate_limit() {
            let key = RateKey { permit_id: ctx.permit_id.clone(), integration: call.integration.clone() };
            self.rate.acquire(&key, limit).await.map_err(|retry_after| CallError::RateLimited { retry_after })?;
        }
        let mut secrets: HashMap<&str, Secret> = HashMap::new();
        for name in integration.secrets() {
            let value = ctx.secrets.resolve(name).await.ok_or_else(|| CallError::SecretMissing(name.to_owned()))?;
            secrets.insert(name, value);
        }
        let injected = Injected::render(integration, &secrets)?;
        let scrubber = Scrubber::new(secrets.values().map(Secret::expose).chain(injected.values()));
        Ok((injected, scrubber))
    }

    /// Sends, then follows redirects the permit allows, up to `max_redirects`.
    async fn send_following_redirects(
        &self,
        ctx: &CallContext,
        integration: &CompiledIntegration,
        call: &GuestCall,
        injected: &Injected,
        record: &mut CallRecord,
        gate: &CallGate,
    ) -> Result<GuestResponse, CallError> {
        let mut hop = call.clone();
        for _ in 0..=self.config.max_redirects {
            // The last moment a run's end can stop the request (or hop).
            gate.check()?;
            let response = self.send_once(integration, &hop, injected, record).await?;
            let location = response.header("location").filter(|_| (300..400).contains(&response.status));
            let Some(location) = location else { return Ok(response) };
            match ctx.permit.redirect(&hop.as_request(), response.status, location) {
                Redirect::Follow { method, path, query, keep_body, .. } => {
                    hop =
                        GuestCall { method, path, query, body: if keep_body { hop.body.take() } else { None }, ..hop };
                    // The owner confirmed the request made, not where an
                    // upstream sends it: a hop a `confirm` rule allows is not followed.
                    if let Decision::Allow(allow) = ctx.permit.decide(&hop.as_request())
                        && allow.confirm
                    {
                        return Err(CallError::Denied {
                            code: DenyCode::RedirectNotAllowed,
                            message: "the redirect leads to a call that needs the owner's confirmation".into(),
                        });
                    }
                }
                Redirect::Deny(d) => return Err(CallError::Denied { code: d.code, message: d.message }),
            }
        }
        Err(CallError::Denied {
            code: DenyCode::RedirectNotAllowed,
            message: format!("more than {} redirects", self.config.max_redirects),
        })
    }

    async fn send_once(
        &self,
        integration: &CompiledIntegration,
        call: &GuestCall,
        injected: &Injected,
        record: &mut CallRecord,
    ) -> Result<GuestResponse, CallError> {
        let origin = integration.origin();
        let literal_ip = match &origin.host {
            url::Host::Ipv4(ip) => Some(std::net::IpAddr::V4(*ip)),
            url::Host::Ipv6(ip) => Some(std::net::IpAddr::V6(*ip)),
            url::Host::Domain(_) => None,
        };
        // Egress's own allow-list is authoritative, whatever the permit was
        // compiled with. IP literals skip DNS, so the address guard is here.
        let allow_listed = self.config.insecure_upstreams.contains(&origin.host_port());
        if origin.scheme == Scheme::Http && !allow_listed {
            return Err(CallError::AddressNotAllowed(format!("plain http to {origin} is not allowed")));
        }
        if let Some(ip) = literal_ip
            && !allow_listed
            && !oauth3_policy::is_public_ip(ip)
        {
            return Err(CallError::AddressNotAllowed(format!("{ip} is not a public address")));
        }
        let mut url = url::Url::parse(&format!("{origin}{}", integration.upstream_path(&call.path)))
            .map_err(|e| CallError::Upstream(format!("cannot build the URL: {e}")))?;
        if !call.query.is_empty() || !injected.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            pairs.extend_pairs(call.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            pairs.extend_pairs(injected.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let method = reqwest::Method::from_bytes(call.method.as_bytes())
            .map_err(|_| CallError::Upstream("invalid method".into()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &call.headers {
            let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
            else {
                return Err(CallError::Upstream("invalid header".into()));
            };
            headers.append(name, value);
        }
        // Injected headers are set last and replace anything of the same name;
        // the decision already refused agent headers naming them.
        for (name, value) in &injected.headers {
            headers.insert(name.clone(), value.clone());
        }
        let mut builder = self.client.request(method, url).headers(headers);
        if let Some(body) = &call.body {
            record.request_bytes += body.len() as u64;
            builder = builder.body(body.clone());
        }
        let mut response = builder.send().await.map_err(classify)?;
        let limit = integration.limits().max_response_bytes;
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(CallError::ResponseTooLarge { limit });
        }
        let status = response.status().as_u16();
        record.status = Some(status);
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| !is_hop_by_hop(name.as_str()))
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(CallError::ResponseTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(GuestResponse { status, headers, body })
    }
}

#[async_trait::async_trait]
impl Outbound for BoundEgress {
    async fn call(&self, call: GuestCall, gate: &CallGate) -> (Result<GuestResponse, CallError>, CallRecord) {
        self.egress.call_within(&self.context, &call, gate).await
    }

    async fn refused(&self, record: &CallRecord) {
        self.egress.audit.record(&self.context.permit_id, &self.context.execution_id, record).await;
    }
}

/// Injected headers and query parameters with secrets filled in.
struct Injected {
    headers: Vec<(HeaderName, HeaderValue)>,
    query: Vec<(String, String)>,
    /// HTTP Basic `username:password`, as encoded into `Authorization`.
    basic: Option<String>,
}

impl Injected {
    /// Every injected value, for the scrubber. The Basic pair is a value of
    /// its own: an upstream may echo it decoded, or its base64 without the
    /// `Basic ` prefix (the scrubber searches each value's base64 too).
    fn values(&self) -> impl Iterator<Item = &str> {
        let headers = self.headers.iter().filter_map(|(_, v)| v.to_str().ok());
        headers.chain(self.query.iter().map(|(_, v)| v.as_str())).chain(self.basic.as_deref())
    }

    fn render(integration: &CompiledIntegration, secrets: &HashMap<&str, Secret>) -> Result<Injected, CallError> {
        let fill = |t: &oauth3_policy::Template| {
            t.render(|name| secrets.get(name).map(Secret::expose))
                .map_err(|missing| CallError::SecretMissing(missing.0))
        };
        let mut headers = Vec::new();
        for (name, template) in integration.inject_headers() {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| CallError::Upstream("invalid header".into()))?;
            let mut value = HeaderValue::from_str(&fill(template)?).map_err(|_| {
                CallError::Upstream(format!("the value injected as {name} is not a valid header value"))
            })?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        let mut basic = None;
        if let Some((username, password)) = integration.inject_basic() {
            let username = fill(username)?;
            // Compile refused a literal ':'; one from a secret's value would
            // make the upstream read a different user-id (RFC 7617).
            if username.contains(':') {
                return Err(CallError::Upstream(
                    "the HTTP Basic username's secret contains ':', which RFC 7617 forbids; nothing was sent".into(),
                ));
            }
            let pair = format!("{username}:{}", fill(password)?);
            let mut value = HeaderValue::from_str(&format!("Basic {}", BASE64.encode(&pair)))
                .map_err(|_| CallError::Upstream("the HTTP Basic credentials are not a valid header value".into()))?;
            value.set_sensitive(true);
            headers.push((AUTHORIZATION, value));
            basic = Some(pair);
        }
        let query = integration
            .inject_query()
            .iter()
            .map(|(name, template)| Ok((name.clone(), fill(template)?)))
            .collect::<Result<_, CallError>>()?;
        Ok(Injected { headers, query, basic })
    }
}

/// The URL for the audit log: injected query parameters by name only.
fn redacted_url(integration: &CompiledIntegration, path: &str, query: &[(String, String)]) -> String {
    let mut url = format!("{}{}", integration.origin(), integration.upstream_path(path));
    let injected = integration.inject_query().iter().map(|(name, _)| (name.as_str(), "[redacted]"));
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(injected).collect();
    if !pairs.is_empty() {
        let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        url = format!("{url}?{}", encoded.replace("%5Bredacted%5D", "[redacted]"));
    }
    url
}

fn classify(error: reqwest::Error) -> CallError {
    if let Some(refused) = AddressRefused::in_chain(&error) {
        return CallError::AddressNotAllowed(refused.to_string());
    }
    if error.is_timeout() {
        return CallError::Upstream("timed out".into());
    }
    // Without the URL: it may carry injected query values.
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        message = format!("{message}: {e}");
        source = e.source();
    }
    CallError::Upstream(message)
}

fn scrub_error(error: CallError, scrubber: &Scrubber) -> CallError {
    match error {
        CallError::Upstream(message) => CallError::Upstream(scrubber.scrub_text(&message)),
        CallError::AddressNotAllowed(message) => CallError::AddressNotAllowed(scrubber.scrub_text(&message)),
        other => other,
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade" | "proxy-authenticate"
    )
}
