//! wasi:http components. A component importing `wasi:http/outgoing-handler`
//! sends ordinary HTTP requests; each is matched to exactly one of the
//! permit's integrations ([`CompiledPermit::route`]: scheme, host, port and
//! base path) and goes out through the run's [`crate::Outbound`] like a
//! scoped-fetch call: counted against the call limit, decided by the
//! policy, credential injected, response scrubbed, audited. The crate's own
//! sender is compiled out (no `default-send-request` feature): nothing here
//! opens a connection.
//!
//! A request that is refused, or that fails, gets a response the host
//! writes ([`problem_response`]): a status by cause, `oauth3-error: <code>`
//! and the gateway API's `{"error": {"code", "message"}}` body. A request
//! no integration matches is refused with the policy's `unknown_integration`.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use oauth3_policy::{CompiledPermit, DenyCode, Scheme};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi_http::p2::bindings::http::{outgoing_handler, types as wasi_types};
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};
use wasmtime_wasi_http::p2::{HttpError, HttpResult};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttp, WasiHttpHooks, WasiHttpView};

use crate::call::{CallError, CallRecord, GuestCall, GuestResponse};
use crate::sandbox::{CallDone, HttpCalls, Sender, State, lock};

/// The header naming the code of a response the host wrote itself (never
/// passed on from an upstream).
pub const ERROR_HEADER: &str = "oauth3-error";

/// Bytes of headers one `fields` may hold (HTTP servers commonly take 8 KiB).
pub(crate) const FIELDS_BYTES: usize = 16 << 10;

/// Bytes the host buffers per outgoing body before the guest must wait:
/// with the handle cap, what bounds a guest's request bodies in host memory.
const BODY_CHUNK_BYTES: usize = 32 << 10;

/// The outgoing-handler interface linked here (the version wasmtime-wasi-http
/// implements; components importing any 0.2.x link to it).
const OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";

/// Links `wasi:http/types` and `wasi:http/outgoing-handler` (0.2), whose
/// requests go out as described above.
pub(crate) fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    let options = wasmtime_wasi_http::p2::bindings::LinkOptions::default();
    wasi_types::add_to_linker::<State, WasiHttp>(linker, &options.into(), State::http)?;
    linker.instance(OUTGOING_HANDLER)?.func_wrap(
        "handle",
        |mut store: StoreContextMut<'_, State>,
         (request, options): (Resource<HostOutgoingRequest>, Option<Resource<RequestOptions>>)| {
            match store.data_mut().handle(request, options) {
                Ok(future) => Ok((Ok(future),)),
                Err(error) => error.downcast().map(|code| (Err(code),)),
            }
        },
    )
}

impl State {
    /// `outgoing-handler.handle`: counts the request against the call limit
    /// first (past it the run traps, as with `call` and `fetch`), then lets
    /// the crate build it and hand it to [`HttpHooks::send_request`].
    fn handle(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        options: Option<Resource<RequestOptions>>,
    ) -> HttpResult<Resource<HostFutureIncomingResponse>> {
        let (method, uri) = {
            let request = self.table().get(&request)?;
            (method_name(&request.method), request_uri(request))
        };
        // Routed only to describe a refusal: `send_request` routes the rest.
        let permit = self.http_hooks.permit.clone();
        let refused = move || match uri {
            Some(uri) => target(permit.as_deref(), &uri, method).call,
            None => GuestCall { method, ..GuestCall::default() },
        };
        self.count_call(|| CallRecord::refused(&refused(), "call_limit")).map_err(HttpError::trap)?;
        let handled = outgoing_handler::Host::handle(&mut self.http(), request, options);
        if handled.is_err() {
            // Malformed (the crate's error code says how): no call was made.
            self.uncount_call();
        }
        handled
    }
}

/// The request's URI as the crate will build it (https when the guest
/// gives no scheme), if it is one.
fn request_uri(request: &HostOutgoingRequest) -> Option<Uri> {
    let scheme = match &request.scheme {
        None | Some(wasi_types::Scheme::Https) => "https",
        Some(wasi_types::Scheme::Http) => "http",
        Some(wasi_types::Scheme::Other(other)) => other.as_str(),
    };
    let path = request.path_with_query.as_deref().unwrap_or("/");
    Uri::builder().scheme(scheme).authority(request.authority.as_deref()?).path_and_query(path).build().ok()
}

fn method_name(method: &wasi_types::Method) -> String {
    use wasi_types::Method;
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other.as_str(),
    }
    .to_owned()
}

/// The run's side of wasi:http: where requests go and how.
pub(crate) struct HttpHooks {
    permit: Option<Arc<CompiledPermit>>,
    sender: Sender,
    calls: HttpCalls,
}

/// A request matched to an integration: the call as policy sees it, and
/// the most request body bytes the integration takes, or why no
/// integration matched.
struct Target {
    call: GuestCall,
    routed: Result<u64, String>,
}

impl HttpHooks {
    pub(crate) fn new(permit: Option<Arc<CompiledPermit>>, sender: Sender, calls: HttpCalls) -> HttpHooks {
        HttpHooks { permit, sender, calls }
    }
}

/// The integration of `permit` that `uri` goes to, with the path under its
/// base URL and the decoded query. With none, the call names the request's
/// origin instead (no integration name can equal one), so the audit log
/// shows where it was going.
fn target(permit: Option<&CompiledPermit>, uri: &Uri, method: String) -> Target {
    let query: Vec<(String, String)> =
        uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let scheme = match uri.scheme_str() {
        Some("http") => Some(Scheme::Http),
        Some("https") => Some(Scheme::Https),
        _ => None,
    };
    let routed = match (permit, scheme, uri.host()) {
        (Some(permit), Some(scheme), Some(host)) => permit.route(scheme, host, uri.port_u16(), uri.path()),
        _ => None,
    };
    let (integration, path, routed) = match routed {
        Some((integration, path)) => {
            (integration.name().to_owned(), path.to_owned(), Ok(integration.limits().max_request_bytes))
        }
        None => {
            // Scheme, host and port only: userinfo is the guest's, not
            // where the request went; the path is kept short.
            let port = uri.port().map(|p| format!(":{p}")).unwrap_or_default();
            let origin = format!("{}://{}{port}", uri.scheme_str().unwrap_or(""), uri.host().unwrap_or(""));
            let path = shorten(uri.path());
            let bases: Vec<String> = permit
                .iter()
                .flat_map(|p| p.integrations())
                .map(|i| format!("{} {}", i.name(), i.base_url()))
                .collect();
            let why = format!(
                "no single integration of this permit has a base URL containing {origin}{path} (it has: {})",
                bases.join(", ")
            );
            (origin, path, Err(why))
        }
    };
    let call = GuestCall { integration, method, path, query, headers: Vec::new(), body: None };
    Target { call, routed }
}

impl WasiHttpHooks for HttpHooks {
    /// Framing is the host's: the guest's `Host` is ignored (the
    /// integration's base URL decides where the request goes).
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        BODY_CHUNK_BYTES
    }

    /// Starts the call on a task of its own, which the run settles and
    /// records even if the guest drops its handle, and answers the guest
    /// from it. Per-request options (timeouts) are the integration's.
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        _options: Option<RequestOptions>,
        _response_done: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (Response<WasiBody>, Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let (parts, body) = request.into_parts();
        let Target { mut call, routed } = target(self.permit.as_deref(), &parts.uri, parts.method.as_str().to_owned());
        let headers = guest_headers(&parts.headers);
        let sender = self.sender.clone();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            // The body is read either way; kept only for a call that may go.
            let (keep, refused) = match (routed, headers) {
                (Err(message), _) => (None, Some(CallError::Denied { code: DenyCode::UnknownIntegration, message })),
                (_, Err(name)) => {
                    let message = format!("header '{name}' is not valid UTF-8");
                    (None, Some(CallError::Denied { code: DenyCode::HeaderNotAllowed, message }))
                }
                (Ok(max_body), Ok(headers)) => {
                    call.headers = headers;
                    (Some(max_body), None)
                }
            };
            // Bodies are read as the guest writes them, in any order (a
            // guest finishing its second request's body first does not wait
            // on the first's concurrency slot).
            // A request refused already says why, even if the run ends
            // while its body is read (it was never going to be sent).
            let (result, record) = match (read_body(&sender, body, keep).await, refused) {
                (_, Some(error)) | (Err(error), None) => refuse(&sender, &call, error).await,
                (Ok(body), None) => {
                    call.body = body;
                    sender.send(call).await
                }
            };
            let _ = answer.send(result);
            record
        });
        lock(&self.calls).push(task);
        Box::new(async move {
            let result = answered.await.unwrap_or_else(|_| Err(CallError::Upstream("the call was lost".into())));
            let response = match result {
                Ok(response) => upstream_response(response),
                Err(error) => problem_response(&error),
            };
            let done: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// A call refused before it reached egress, reported to the audit log.
async fn refuse(sender: &Sender, call: &GuestCall, error: CallError) -> CallDone {
    let record = CallRecord::refused(call, error.code());
    sender.outbound.refused(&record).await;
    (Err(error), record)
}

/// The guest's headers, without those the host frames itself (`host`,
/// `content-length`); the policy decides the rest. `Err` names a header
/// whose value is not UTF-8.
fn guest_headers(headers: &http::HeaderMap) -> Result<Vec<(String, String)>, String> {
    headers
        .iter()
        .filter(|(name, _)| **name != http::header::HOST && **name != http::header::CONTENT_LENGTH)
        .map(|(name, value)| match std::str::from_utf8(value.as_bytes()) {
            Ok(value) => Ok((name.as_str().to_owned(), value.to_owned())),
            Err(_) => Err(shorten(name.as_str())),
        })
        .collect()
}

/// Guest text for a message or record: at most 200 characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The whole request body, read to its end while the run lasts (so the
/// guest's writes succeed whatever the answer), keeping at most `max` bytes
/// (`None`: keep nothing, the request is refused anyway).
async fn read_body(sender: &Sender, mut body: WasiBody, max: Option<u64>) -> Result<Option<Vec<u8>>, CallError> {
    let mut kept = Vec::new();
    let mut total: u64 = 0;
    loop {
        let frame = tokio::select! {
            biased;
            () = sender.gate.closed() => return Err(CallError::RunEnded),
            frame = body.frame() => frame,
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|error| CallError::Denied {
            code: DenyCode::BodyInvalid,
            message: format!("the request body could not be read: {error}"),
        })?;
        let Ok(data) = frame.into_data() else { continue }; // trailers
        total = total.saturating_add(data.len() as u64);
        if max.is_some_and(|max| total <= max) {
            kept.extend_from_slice(&data);
        }
    }
    match max {
        Some(max) if total > max => Err(CallError::Denied {
            code: DenyCode::BodyTooLarge,
            message: format!("the request body exceeds the integration's limit of {max} bytes"),
        }),
        _ => Ok((!kept.is_empty()).then_some(kept)),
    }
}

fn upstream_response(response: GuestResponse) -> Response<WasiBody> {
    let mut builder =
        Response::builder().status(StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY));
    for (name, value) in &response.headers {
        // The body is whole (and may have been scrubbed): its length is the
        // host's to state. Only the host says a response is its own.
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case(ERROR_HEADER) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) {
            builder = builder.header(name, value);
        }
    }
    let length = response.body.len();
    builder
        .header(http::header::CONTENT_LENGTH, length)
        .body(full(response.body.into()))
        .unwrap_or_else(|_| problem_response(&CallError::Upstream("the upstream response could not be relayed".into())))
}

/// The response the host writes for a call that got no upstream response.
pub(crate) fn problem_response(error: &CallError) -> Response<WasiBody> {
    let status = match error {
        CallError::Denied { code: DenyCode::BodyTooLarge, .. } => StatusCode::PAYLOAD_TOO_LARGE,
        CallError::Denied { .. }
        | CallError::SecretMissing(_)
        | CallError::AddressNotAllowed(_)
        | CallError::ConfirmationRequired { .. } => StatusCode::FORBIDDEN,
        CallError::RateLimited { .. } | CallError::CallLimit(_) => StatusCode::TOO_MANY_REQUESTS,
        CallError::ResponseTooLarge { .. } | CallError::Upstream(_) => StatusCode::BAD_GATEWAY,
        CallError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        CallError::RunEnded | CallError::ConfirmationUnavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    let code = error.code();
    let mut problem = serde_json::json!({"code": code, "message": error.detail()});
    if let CallError::ConfirmationRequired { id } = error {
        problem["confirmation_id"] = id.as_str().into();
    }
    let body = serde_json::json!({ "error": problem }).to_string();
    let mut builder = Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(ERROR_HEADER, code)
        .header(http::header::CONTENT_LENGTH, body.len());
    if let CallError::RateLimited { retry_after } = error {
        builder = builder.header(http::header::RETRY_AFTER, retry_after.as_secs_f64().ceil() as u64);
    }
    builder.body(full(body.into())).unwrap_or_else(|_| unreachable!("static header names and values"))
}

fn full(bytes: Bytes) -> WasiBody {
    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}
