//! One guest instance's host side: the store data, the run's calls (each
//! in a [`CallSlot`] the run settles), bounded stdout/stderr pipes and the
//! memory limiter.

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

use oauth3_policy::CompiledPermit;
use tokio::task::JoinHandle;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::call::{CallError, CallGate, CallRecord, GuestCall, GuestResponse, Outbound};
use crate::wasi_http::HttpHooks;

/// Why the host stopped a run (set where the trap is raised).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Timeout,
    Calls,
}

/// The data of one store: WASI, the memory limiter and the run's calls.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    pub(crate) http_hooks: HttpHooks,
    pub(crate) limiter: Limiter,
    calls: Calls,
    pub(crate) stop: Option<Stop>,
}

struct Calls {
    sender: Sender,
    /// Where a run dropped before it settled sends its calls to finish
    /// (see `Drop`), with the gate closed first.
    handle: Option<Handle>,
    started: u32,
    max_calls: u32,
    records: Vec<CallRecord>,
    /// Calls the sandbox refused itself, not yet reported to `outbound`.
    refused: Vec<CallRecord>,
    /// Calls whose result the guest has not taken, in start order. The
    /// guest drives them (by waiting on them) on the run's own task: handing
    /// each to another task would cost thread wake-ups worth several times a
    /// local call. Whatever is left when the run ends is settled before its
    /// outcome ([`Settling`]).
    slots: InFlight,
    /// wasi:http requests, each on a task of its own (the guest may drop
    /// its handle; the call still finishes and is recorded).
    http: HttpCalls,
}

/// What sends a run's calls: its [`Outbound`], behind the run's gate and
/// its concurrency bound.
#[derive(Clone)]
pub(crate) struct Sender {
    pub(crate) outbound: Arc<dyn Outbound>,
    /// Open while the run lasts; closed when it ends, so that calls not yet
    /// sent are not sent.
    pub(crate) gate: CallGate,
    concurrency: Arc<Semaphore>,
}

impl Sender {
    /// Waits for a concurrency slot, then goes out through the [`Outbound`].
    pub(crate) async fn send(self, call: GuestCall) -> CallDone {
        let _slot = self.slot().await;
        self.outbound.call(call, &self.gate).await
    }

    /// One of the run's concurrency slots, held while a call is made;
    /// `None` once the run has ended (then the closed gate refuses the call).
    pub(crate) async fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        // The semaphore is never closed.
        tokio::select! {
            biased;
            permit = Arc::clone(&self.concurrency).acquire_owned() => permit.ok(),
            () = self.gate.closed() => None,
        }
    }
}

/// The run's wasi:http calls, each a task that ends with the call's record.
pub(crate) type HttpCalls = Arc<Mutex<Vec<JoinHandle<CallRecord>>>>;

/// The bounds [`State::new`] needs.
pub(crate) struct StateLimits {
    pub memory_bytes: usize,
    pub max_calls: u32,
    pub max_concurrent_calls: u32,
}

impl State {
    /// `permit` routes wasi:http requests to its integrations; without it
    /// every such request is refused.
    pub(crate) fn new(
        outbound: Arc<dyn Outbound>,
        permit: Option<Arc<CompiledPermit>>,
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
        // Handles (calls, pollables, streams, wasi:http requests and their
        // buffered bodies) a guest may hold at once: a few per call it may
        // make, far below what would weigh on the host.
        let mut table = ResourceTable::new();
        table.set_max_capacity((256 + 16 * limits.max_calls as usize).min(MAX_HANDLES));
        let concurrency = limits.max_concurrent_calls.max(1) as usize;
        let sender = Sender { outbound, gate: CallGate::new(), concurrency: Arc::new(Semaphore::new(concurrency)) };
        // wasi:http requests wait for slots of their own: a `fetch` queued
        // for a shared slot is driven only while the guest waits on a
        // `future-response`, so a slot handed to it could sit unused while
        // the guest waits on a wasi:http response instead.
        let http_sender = Sender { concurrency: Arc::new(Semaphore::new(concurrency)), ..sender.clone() };
        let http_calls = HttpCalls::default();
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(crate::wasi_http::FIELDS_BYTES);
        State {
            wasi,
            table,
            http,
            http_hooks: HttpHooks::new(permit, http_sender, Arc::clone(&http_calls)),
            limiter: Limiter { memory_bytes: limits.memory_bytes, used: 0, exceeded: false },
            calls: Calls {
                sender,
                handle: None,
                started: 0,
                max_calls: limits.max_calls,
                records: Vec::new(),
                refused: Vec::new(),
                slots: InFlight::default(),
                http: http_calls,
            },
            stop: None,
        }
    }

    /// Ends the run's calls: closes the gate, so nothing not yet sent is
    /// sent, and hands over what is still in flight to be settled.
    pub(crate) fn end_calls(&mut self) -> Settling {
        let calls = &mut self.calls;
        calls.sender.gate.close();
        let mut records = std::mem::take(&mut calls.records);
        let mut pending: Vec<CallInFlight> = Vec::new();
        for slot in calls.slots.drain() {
            match slot.leftover() {
                Some(Ok(call)) => pending.push(call),
                Some(Err(record)) => records.push(record),
                None => {}
            }
        }
        Settling {
            outbound: Arc::clone(&calls.sender.outbound),
            pending,
            http: std::mem::take(&mut *lock(&calls.http)),
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
    http: Vec<JoinHandle<CallRecord>>,
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
        for task in std::mem::take(&mut self.http) {
            // A task that panicked has no record to give.
            if let Ok(record) = task.await {
                records.push(record);
            }
        }
        for record in &self.refused {
            self.outbound.refused(record).await;
        }
        self.records
    }
}

impl Drop for Calls {
    fn drop(&mut self) {
        // Only when the run itself was dropped before it settled. wasi:http
        // calls are tasks already; they finish on their own.
        self.sender.gate.close();
        let Some(handle) = &self.handle else { return };
        // Refused at the closed gate, or finishing on the wire; the audit
        // sink has the record either way.
        for slot in self.slots.drain() {
            if let Some(Ok(call)) = slot.leftover() {
                drop(handle.spawn(call));
            }
        }
        let outbound = Arc::clone(&self.sender.outbound);
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

impl Drop for State {
    fn drop(&mut self) {
        // Before the resource table goes: dropping it ends the guest's
        // unfinished request bodies, which must not read as complete and
        // be sent.
        self.calls.sender.gate.close();
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}

impl State {
    /// Starts one call of the run: counted against the call limit (past it
    /// the run traps), then, as a future, waiting for a concurrency slot and
    /// going out through the run's [`Outbound`] behind its gate. Nothing
    /// happens until the future is polled.
    pub(crate) fn begin_call(&mut self, call: GuestCall) -> wasmtime::Result<CallInFlight> {
        self.count_call(|| {
            let request_bytes = call.body.as_ref().map_or(0, |b| b.len() as u64);
            CallRecord { request_bytes, ..CallRecord::refused(&call, "call_limit") }
        })?;
        Ok(Box::pin(self.calls.sender.clone().send(call)))
    }

    /// Counts one call against the run's limit. Past it, the call (as
    /// `refused` describes it) is recorded as refused and the run traps.
    pub(crate) fn count_call(&mut self, refused: impl FnOnce() -> CallRecord) -> wasmtime::Result<()> {
        let calls = &mut self.calls;
        if calls.started >= calls.max_calls {
            let record = refused();
            calls.refused.push(record.clone());
            calls.records.push(record);
            self.stop = Some(Stop::Calls);
            wasmtime::bail!("call limit of {} calls exceeded", calls.max_calls);
        }
        if calls.handle.is_none() {
            calls.handle = Some(Handle::try_current().map_err(|e| wasmtime::format_err!("no tokio runtime: {e}"))?);
        }
        calls.started += 1;
        Ok(())
    }

    /// Takes back a [`State::count_call`] for a call that was never made.
    pub(crate) fn uncount_call(&mut self) {
        self.calls.started = self.calls.started.saturating_sub(1);
    }

    /// Keeps a `fetch`ed call's slot until its result is taken, so that a
    /// run ending first still settles and records it.
    pub(crate) fn track(&mut self, slot: Arc<CallSlot>) {
        self.calls.slots.push(slot);
    }

    /// The run's calls in flight, shared.
    pub(crate) fn in_flight(&self) -> InFlight {
        self.calls.slots.clone()
    }

    /// Records a call whose result the guest has taken.
    pub(crate) fn taken(&mut self, slot: &Arc<CallSlot>, record: CallRecord) {
        self.calls.slots.remove(slot);
        self.calls.records.push(record);
    }

    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

/// The run's calls whose result the guest has not taken, in start order,
/// shared with each `future-response`: waiting on any call drives them all,
/// so calls run at once whichever one the guest waits on, and one waiting
/// for a concurrency slot gets it when an earlier call finishes.
#[derive(Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<Vec<Arc<CallSlot>>>>);

impl InFlight {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Arc<CallSlot>>> {
        lock(&self.0)
    }

    fn push(&self, slot: Arc<CallSlot>) {
        self.list().push(slot);
    }

    fn remove(&self, slot: &Arc<CallSlot>) {
        self.list().retain(|s| !Arc::ptr_eq(s, slot));
    }

    fn drain(&self) -> Vec<Arc<CallSlot>> {
        std::mem::take(&mut *self.list())
    }

    /// Drives every call in flight until `slot` is done.
    pub(crate) async fn until_done(&self, slot: &CallSlot) {
        std::future::poll_fn(|cx| {
            for other in self.list().iter() {
                let _ = other.poll_done(cx);
            }
            slot.poll_done(cx)
        })
        .await;
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
    /// Boxed: a result and its record are ten times a pending call's size.
    Done(Box<CallDone>),
    Taken,
}

impl CallSlot {
    pub(crate) fn new(call: CallInFlight) -> Arc<CallSlot> {
        Arc::new(CallSlot(Mutex::new(SlotState::Pending(call))))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        lock(&self.0)
    }

    /// Drives the call; ready once it is done (or its result was taken).
    pub(crate) fn poll_done(&self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let mut state = self.state();
        if let SlotState::Pending(call) = &mut *state {
            match call.as_mut().poll(cx) {
                Poll::Ready(done) => *state = SlotState::Done(Box::new(done)),
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
            SlotState::Done(done) => Some(Ok(*done)),
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
            SlotState::Done(done) => Some(Err(done.1)),
            SlotState::Taken => None,
        }
    }
}

/// A lock that outlives a panic while it was held (the data stays usable).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Core instances, memories and tables one run may create (the pooling
/// allocator reserves as many per run).
pub(crate) const MAX_CORE_INSTANCES: usize = 16;
pub(crate) const MAX_MEMORIES: usize = 4;
pub(crate) const MAX_TABLES: usize = 8;

/// Resource handles one run may hold at once, whatever its call limit.
const MAX_HANDLES: usize = 10_000;

/// Caps the guest's linear memories together (a component may have
/// several); growing past the cap traps. Also bounds how many instances,
/// memories and tables a component may create.
pub(crate) struct Limiter {
    memory_bytes: usize,
    used: usize,
    pub(crate) exceeded: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Also called when a memory is created (current 0).
        let total = self.used.saturating_add(desired.saturating_sub(current));
        if total > self.memory_bytes {
            self.exceeded = true;
            wasmtime::bail!("memory limit of {} bytes exceeded", self.memory_bytes);
        }
        self.used = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
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

    /// A pipe whose contents `tap` reads while the run goes on.
    pub(crate) fn tapped(limit: usize, tap: Option<&StdoutTap>) -> BoundedPipe {
        let buffer = tap.map(|t| Arc::clone(&t.0)).unwrap_or_default();
        BoundedPipe { buffer, limit, overflowed: Arc::default() }
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

/// What a run has printed to stdout so far, readable while it runs (for
/// showing output as it arrives). Give one to a run, then read it from
/// another task; a fresh tap per run.
#[derive(Debug, Clone, Default)]
pub struct StdoutTap(Arc<Mutex<Vec<u8>>>);

impl StdoutTap {
    /// A tap for one run.
    pub fn new() -> StdoutTap {
        StdoutTap::default()
    }

    /// The complete lines printed so far (through the last newline), as
    /// [`crate::Outcome::stdout`] will begin: it is always a prefix of it.
    pub fn lines(&self) -> String {
        let buffer = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let end = buffer.iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1);
        String::from_utf8_lossy(&buffer[..end]).into_owned()
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
