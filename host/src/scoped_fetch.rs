//! The host side of a permit's world: the shared `oauth3:scoped-fetch`
//! types (with `future-response`, a call under way) and, per permit, one
//! `oauth3:permit/<integration>` instance whose `call` and `fetch` go out
//! through the run's [`crate::Outbound`] like every other call.

use std::sync::Arc;

use oauth3_policy::IntegrationName;
use wasmtime::StoreContextMut;
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::p2::{DynPollable, Pollable};

use crate::call::{CallError, GuestCall, GuestResponse};
use crate::sandbox::{CallSlot, InFlight, State};

#[allow(missing_docs, clippy::all)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        inline: "package oauth3:host; world scoped-fetch-host { import oauth3:scoped-fetch/types@0.1.0; }",
        path: "../wit",
        with: {
            "wasi:io/poll": wasmtime_wasi::p2::bindings::io::poll,
            "oauth3:scoped-fetch/types.future-response": super::FutureResponse,
        },
        imports: { default: trappable },
        require_store_data_send: true,
    });
}

use bindings::oauth3::scoped_fetch::types::{self, Problem, RequestOptions, Response};

/// The WIT `call-error`.
type WitCallError = types::CallError;

/// A `future-response`: the guest's handle on a `fetch`ed call.
pub struct FutureResponse {
    slot: Arc<CallSlot>,
    /// Waiting on this call drives every call of the run.
    in_flight: InFlight,
}

#[wasmtime_wasi::async_trait]
impl Pollable for FutureResponse {
    async fn ready(&mut self) {
        self.in_flight.until_done(&self.slot).await;
    }
}

impl types::Host for State {}

impl types::HostFutureResponse for State {
    fn subscribe(&mut self, future: Resource<FutureResponse>) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table(), future)
    }

    fn get(&mut self, future: Resource<FutureResponse>) -> wasmtime::Result<Option<Result<Response, WitCallError>>> {
        let slot = Arc::clone(&self.table().get(&future)?.slot);
        Ok(self.take(&slot))
    }

    fn drop(&mut self, future: Resource<FutureResponse>) -> wasmtime::Result<()> {
        // The call itself goes on (driven whenever the guest waits on
        // another); the run settles and records it.
        self.table().delete(future)?;
        Ok(())
    }
}

impl State {
    /// A slot's result for the guest, recording the call when it is taken.
    fn take(&mut self, slot: &Arc<CallSlot>) -> Option<Result<Response, WitCallError>> {
        match slot.take()? {
            Ok((result, record)) => {
                self.taken(slot, record);
                Some(to_wit(result))
            }
            Err(()) => Some(Err(WitCallError::Failed(Problem {
                code: "already_taken".into(),
                message: "this future-response's result was already taken".into(),
            }))),
        }
    }

    /// Starts a call in a slot the run tracks, taken as far as it goes now
    /// (decision, rate limit, secrets, sending) so it is under way while
    /// the guest keeps computing.
    fn start(&mut self, call: GuestCall) -> wasmtime::Result<Arc<CallSlot>> {
        let slot = CallSlot::new(self.begin_call(call)?);
        let _ = slot.poll_done(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        self.track(Arc::clone(&slot));
        Ok(slot)
    }
}

/// Links the shared types interface (its `pollable` comes from wasi:io,
/// which must be linked too).
pub(crate) fn add_types(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    types::add_to_linker::<State, HasSelf<State>>(linker, |s| s)
}

/// Links `oauth3:permit/<name>` (`call` and `fetch`) for each of the
/// integrations, and nothing else.
pub(crate) fn add_integrations(linker: &mut Linker<State>, names: &[IntegrationName]) -> wasmtime::Result<()> {
    for integration in names {
        let name: Arc<str> = integration.as_ref().into();
        let mut instance = linker.instance(&integration.wit_import())?;
        let integration = Arc::clone(&name);
        instance.func_wrap_async(
            "call",
            move |mut store: StoreContextMut<'_, State>, (method, path, options): (String, String, RequestOptions)| {
                let call = guest_call(&integration, method, path, options);
                Box::new(async move {
                    let state = store.data_mut();
                    let slot = state.start(call)?;
                    state.in_flight().until_done(&slot).await;
                    let result = store.data_mut().take(&slot).unwrap_or_else(|| unreachable!("the call is done"));
                    Ok((result,))
                })
            },
        )?;
        instance.func_wrap(
            "fetch",
            move |mut store: StoreContextMut<'_, State>, (method, path, options): (String, String, RequestOptions)| {
                let state = store.data_mut();
                let slot = state.start(guest_call(&name, method, path, options))?;
                let in_flight = state.in_flight();
                Ok((state.table().push(FutureResponse { slot, in_flight })?,))
            },
        )?;
    }
    Ok(())
}

fn guest_call(integration: &str, method: String, path: String, options: RequestOptions) -> GuestCall {
    GuestCall {
        integration: integration.to_owned(),
        method,
        path,
        query: options.query,
        headers: options.headers,
        body: options.body,
    }
}

fn to_wit(result: Result<GuestResponse, CallError>) -> Result<Response, WitCallError> {
    match result {
        Ok(response) => Ok(Response { status: response.status, headers: response.headers, body: response.body }),
        Err(CallError::Denied { code, message }) => {
            Err(WitCallError::Denied(Problem { code: code.as_str().to_owned(), message }))
        }
        // Nothing was sent: a refusal, like the policy's.
        Err(error @ CallError::ConfirmationRequired { .. }) => {
            Err(WitCallError::Denied(Problem { code: error.code().to_owned(), message: error.detail() }))
        }
        Err(error) => Err(WitCallError::Failed(Problem { code: error.code().to_owned(), message: error.detail() })),
    }
}
