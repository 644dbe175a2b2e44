//! One guest instance's host side: the store data, the `calls` imports the
//! guest runtime uses to leave the sandbox, bounded stdout/stderr pipes and
//! the memory limiter.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::call::{CallError, CallGate, CallRecord, GuestCall, GuestResponse, Outbound};

#[allow(missing_docs, clippy::all)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "sandbox",
        path: "../guest-runtime/wit",
        imports: {
            "oauth3:sandbox/calls.wait-call": async | trappable,
            "oauth3:sandbox/calls.start-call": trappable,
        },
        exports: { default: async },
    });
}

use bindings::oauth3::sandbox::calls;
use bindings::oauth3::sandbox::types::{CallFailure, CallRequest, CallResponse};

/// Why the host stopped a run (set where the trap is raised).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Timeout,
    Calls,
}

type Completed = (u32, Result<GuestResponse, CallError>, CallRecord);
type CallFuture = Pin<Box<dyn Future<Output = Completed> + Send>>;

/// The data of one store: WASI, the memory limiter and the run's calls.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    calls: Calls,
    pub(crate) stop: Option<Stop>,
}

struct Calls {
    outbound: Arc<dyn Outbound>,
    /// Open while the run lasts; closed when it ends, so that calls not yet
    /// sent are not sent.
    gate: CallGate,
    /// The calls started and not yet completed, in start order. `wait-call`
    /// drives them on the run's own task (handing each to another task would
    /// cost thread wake-ups worth several times a local call). Whatever is
    /// left when the run ends is settled before its outcome ([`Settling`]),
    /// or, if the run itself is dropped, becomes a detached task on `handle`
    /// (see `Drop`); either way with the gate closed first.
    pending: Vec<CallFuture>,
    /// Calls that finished when first polled, in start order, not yet
    /// handed to the guest.
    completed: Vec<Completed>,
    handle: Option<Handle>,
    concurrency: Arc<Semaphore>,
    next_id: u32,
    started: u32,
    max_calls: u32,
    records: Vec<CallRecord>,
    /// Calls the sandbox refused itself, not yet reported to `outbound`.
    refused: Vec<CallRecord>,
    /// `fetch`ed calls whose result the guest has not taken.
    slots: Vec<Arc<CallSlot>>,
}

/// The bounds [`State::new`] needs.
pub(crate) struct StateLimits {
    pub memory_bytes: usize,
    pub max_calls: u32,
    pub max_concurrent_calls: u32,
}

impl State {
    pub(crate) fn new(
        outbound: Arc<dyn Outbound>,
        stdout: BoundedPipe,
        stderr: BoundedPipe,
        limits: StateLimits,
    ) -> State {
        // No preopens, environment, arguments, stdin or network.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        State {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter { memory_bytes: limits.memory_bytes, exceeded: false },
            calls: Calls {
                outbound,
                gate: CallGate::new(),
                pending: Vec::new(),
                completed: Vec::new(),
                handle: None,
                concurrency: Arc::new(Semaphore::new(limits.max_concurrent_calls.max(1) as usize)),
                next_id: 0,
                started: 0,
                max_calls: limits.max_calls,
                records: Vec::new(),
                refused: Vec::new(),
                slots: Vec::new(),
            },
            stop: None,
        }
    }

    /// Ends the run's calls: closes the gate, so nothing not yet sent is
    /// sent, and hands over what is still in flight to be settled.
    pub(crate) fn end_calls(&mut self) -> Settling {
        let calls = &mut self.calls;
        calls.gate.close();
        let mut records = std::mem::take(&mut calls.records);
        records.extend(calls.completed.drain(..).map(|(_, _, record)| record));
        let mut pending: Vec<CallInFlight> = Vec::new();
        for call in calls.pending.drain(..) {
            pending.push(Box::pin(async move {
                let (_, result, record) = call.await;
                (result, record)
            }));
        }
        for slot in calls.slots.drain(..) {
            match slot.leftover() {
                Some(Ok(call)) => pending.push(call),
                Some(Err(record)) => records.push(record),
                None => {}
            }
        }
        Settling {
            outbound: Arc::clone(&calls.outbound),
            pending,
            records,
            refused: std::mem::take(&mut calls.refused),
        }
    }
}

/// A run's calls after the run ended: those in flight finish (the ones not
/// yet sent are refused at the closed gate, the ones on the wire complete),
/// and calls the sandbox refused are reported, so the outcome's list and
/// the audit log agree.
pub(crate) struct Settling {
    outbound: Arc<dyn Outbound>,
    pending: Vec<CallInFlight>,
    records: Vec<CallRecord>,
    refused: Vec<CallRecord>,
}

impl Settling {
    /// Every call's record, in completion order, once none is in flight.
    pub(crate) async fn settle(mut self) -> Vec<CallRecord> {
        let mut pending = std::mem::take(&mut self.pending);
        let records = &mut self.records;
        std::future::poll_fn(|cx| {
            pending.retain_mut(|call| match call.as_mut().poll(cx) {
                Poll::Ready((_, record)) => {
                    records.push(record);
                    false
                }
                Poll::Pending => true,
            });
            if pending.is_empty() { Poll::Ready(()) } else { Poll::Pending }
        })
        .await;
        for record in &self.refused {
            self.outbound.refused(record).await;
        }
        self.records
    }
}

impl Drop for Calls {
    fn drop(&mut self) {
        // Only when the run itself was dropped before it settled.
        self.gate.close();
        let Some(handle) = &self.handle else { return };
        // Refused at the closed gate, or finishing on the wire; the audit
        // sink has the record either way.
        for call in self.pending.drain(..) {
            drop(handle.spawn(call));
        }
        for slot in self.slots.drain(..) {
            if let Some(Ok(call)) = slot.leftover() {
                drop(handle.spawn(call));
            }
        }
        let outbound = Arc::clone(&self.outbound);
        let refused = std::mem::take(&mut self.refused);
        if !refused.is_empty() {
            drop(handle.spawn(async move {
                for record in &refused {
                    outbound.refused(record).await;
                }
            }));
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bindings::oauth3::sandbox::types::Host for State {}

impl calls::Host for State {
    fn start_call(&mut self, request: CallRequest) -> wasmtime::Result<u32> {
        let call = GuestCall {
            integration: request.integration,
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: request.body,
        };
        let calls = &mut self.calls;
        let id = calls.next_id;
        calls.next_id = calls.next_id.wrapping_add(1);
        let call = self.begin_call(call)?;
        let mut future: CallFuture = Box::pin(async move {
            let (result, record) = call.await;
            (id, result, record)
        });
        // Take the call as far as it goes now (decision, rate limit, secrets,
        // sending), so it is under way while the script keeps computing;
        // `wait-call` polls it again with a real waker.
        let calls = &mut self.calls;
        match future.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(completed) => calls.completed.push(completed),
            Poll::Pending => calls.pending.push(future),
        }
        Ok(id)
    }

    async fn wait_call(&mut self) -> wasmtime::Result<(u32, Result<CallResponse, CallFailure>)> {
        let completed = (!self.calls.completed.is_empty()).then(|| self.calls.completed.remove(0));
        let pending = &mut self.calls.pending;
        if completed.is_none() && pending.is_empty() {
            wasmtime::bail!("wait-call with no call in flight");
        }
        // Every call is polled on each wake-up (at most `max_calls` of them),
        // earliest first; a completed one is removed before it could be
        // polled again.
        let (id, result, record) = match completed {
            Some(done) => done,
            None => {
                std::future::poll_fn(|cx| {
                    for i in 0..pending.len() {
                        if let Poll::Ready(completed) = pending[i].as_mut().poll(cx) {
                            drop(pending.remove(i));
                            return Poll::Ready(completed);
                        }
                    }
                    Poll::Pending
                })
                .await
            }
        };
        self.calls.records.push(record);
        let result = match result {
            Ok(response) => {
                Ok(CallResponse { status: response.status, headers: response.headers, body: response.body })
            }
            Err(error) => Err(CallFailure { code: error.code().to_owned(), message: error.to_string() }),
        };
        Ok((id, result))
    }
}

impl State {
    /// Starts one call of the run: counted against the call limit (past it
    /// the run traps), then, as a future, waiting for a concurrency slot and
    /// going out through the run's [`Outbound`] behind its gate. Nothing
    /// happens until the future is polled.
    pub(crate) fn begin_call(&mut self, call: GuestCall) -> wasmtime::Result<CallInFlight> {
        let calls = &mut self.calls;
        if calls.started >= calls.max_calls {
            let request_bytes = call.body.as_ref().map_or(0, |b| b.len() as u64);
            let record = CallRecord { request_bytes, ..CallRecord::refused(&call, "call_limit") };
            calls.refused.push(record.clone());
            calls.records.push(record);
            self.stop = Some(Stop::Calls);
            wasmtime::bail!("call limit of {} calls exceeded", calls.max_calls);
        }
        if calls.handle.is_none() {
            calls.handle = Some(Handle::try_current().map_err(|e| wasmtime::format_err!("no tokio runtime: {e}"))?);
        }
        calls.started += 1;
        let outbound = calls.outbound.clone();
        let concurrency = calls.concurrency.clone();
        let gate = calls.gate.clone();
        Ok(Box::pin(async move {
            // The semaphore is never closed. A run that ends while the call
            // waits for a slot does not wait on: the closed gate refuses it.
            let _permit = tokio::select! {
                biased;
                permit = concurrency.acquire_owned() => permit.ok(),
                () = gate.closed() => None,
            };
            outbound.call(call, &gate).await
        }))
    }

    /// Keeps a `fetch`ed call's slot until its result is taken, so that a
    /// run ending first still settles and records it.
    pub(crate) fn track(&mut self, slot: Arc<CallSlot>) {
        self.calls.slots.push(slot);
    }

    /// Records a call whose result the guest has taken.
    pub(crate) fn taken(&mut self, slot: &Arc<CallSlot>, record: CallRecord) {
        self.calls.slots.retain(|s| !Arc::ptr_eq(s, slot));
        self.calls.records.push(record);
    }

    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

/// A call's result and record, once it is done.
pub(crate) type CallDone = (Result<GuestResponse, CallError>, CallRecord);

/// A call on its way, driven by whoever polls it (the run's own task).
pub(crate) type CallInFlight = Pin<Box<dyn Future<Output = CallDone> + Send>>;

/// A `fetch`ed call, shared by its `future-response` resource and the run,
/// which settles it if the guest never takes the result.
pub(crate) struct CallSlot(Mutex<SlotState>);

enum SlotState {
    Pending(CallInFlight),
    Done(CallDone),
    Taken,
}

impl CallSlot {
    pub(crate) fn new(call: CallInFlight) -> Arc<CallSlot> {
        Arc::new(CallSlot(Mutex::new(SlotState::Pending(call))))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drives the call; ready once it is done (or its result was taken).
    pub(crate) fn poll_done(&self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let mut state = self.state();
        if let SlotState::Pending(call) = &mut *state {
            match call.as_mut().poll(cx) {
                Poll::Ready(done) => *state = SlotState::Done(done),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }

    /// The result, once: `None` while pending, `Some(Err(()))` after it was taken.
    pub(crate) fn take(&self) -> Option<Result<CallDone, ()>> {
        let _ = self.poll_done(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        let mut state = self.state();
        match std::mem::replace(&mut *state, SlotState::Taken) {
            SlotState::Done(done) => Some(Ok(done)),
            SlotState::Taken => Some(Err(())),
            pending @ SlotState::Pending(_) => {
                *state = pending;
                None
            }
        }
    }

    /// The call's future if it has not finished (for settling or detaching),
    /// or its record if its result was never taken.
    fn leftover(&self) -> Option<Result<CallInFlight, CallRecord>> {
        match std::mem::replace(&mut *self.state(), SlotState::Taken) {
            SlotState::Pending(call) => Some(Ok(call)),
            SlotState::Done((_, record)) => Some(Err(record)),
            SlotState::Taken => None,
        }
    }
}

/// Caps each linear memory of the guest; growing past the cap traps.
pub(crate) struct Limiter {
    memory_bytes: usize,
    pub(crate) exceeded: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.exceeded = true;
            wasmtime::bail!("memory limit of {} bytes exceeded", self.memory_bytes);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// A stdout or stderr that keeps at most `limit` bytes; a write past it
/// keeps what fits and traps the guest.
#[derive(Clone)]
pub(crate) struct BoundedPipe {
    buffer: Arc<Mutex<Vec<u8>>>,
    limit: usize,
    overflowed: Arc<AtomicBool>,
}

impl BoundedPipe {
    pub(crate) fn new(limit: usize) -> BoundedPipe {
        BoundedPipe { buffer: Arc::default(), limit, overflowed: Arc::default() }
    }

    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    pub(crate) fn contents(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    fn push(&self, bytes: &[u8]) -> Result<(), String> {
        let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.limit.saturating_sub(buffer.len());
        if bytes.len() > room {
            buffer.extend_from_slice(&bytes[..room]);
            self.overflowed.store(true, Ordering::Relaxed);
            return Err(format!("output limit of {} bytes exceeded", self.limit));
        }
        buffer.extend_from_slice(bytes);
        Ok(())
    }
}

impl IsTerminal for BoundedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for BoundedPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for BoundedPipe {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for BoundedPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes).map_err(|e| StreamError::Trap(wasmtime::format_err!(e)))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always accept a chunk so that a write past the limit traps.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for BoundedPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(self.push(buf).map(|()| buf.len()).map_err(std::io::Error::other))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// An [`Outbound`] for stores that must not call out (compiling, snapshotting).
pub(crate) struct NoOutbound;

#[async_trait::async_trait]
impl Outbound for NoOutbound {
    async fn call(&self, call: GuestCall, _gate: &CallGate) -> (Result<GuestResponse, CallError>, CallRecord) {
        let record = CallRecord::refused(&call, "call_limit");
        (Err(CallError::CallLimit("no calls are allowed here".into())), record)
    }
}
