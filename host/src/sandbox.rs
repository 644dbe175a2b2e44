//! One guest instance's host side: the store data, the `calls` imports the
//! guest runtime uses to leave the sandbox, bounded stdout/stderr pipes and
//! the memory limiter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::call::{CallError, CallRecord, GuestCall, GuestResponse, Outbound};

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
    /// Calls run as detached tasks: if the run ends first (timeout, trap),
    /// a call already on its way still completes and reaches the audit sink.
    done_tx: mpsc::UnboundedSender<Completed>,
    done_rx: mpsc::UnboundedReceiver<Completed>,
    in_flight: u32,
    concurrency: Arc<Semaphore>,
    next_id: u32,
    started: u32,
    max_calls: u32,
    records: Vec<CallRecord>,
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
        let (done_tx, done_rx) = mpsc::unbounded_channel();
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
                done_tx,
                done_rx,
                in_flight: 0,
                concurrency: Arc::new(Semaphore::new(limits.max_concurrent_calls.max(1) as usize)),
                next_id: 0,
                started: 0,
                max_calls: limits.max_calls,
                records: Vec::new(),
            },
            stop: None,
        }
    }

    /// The records of the calls that completed, in completion order.
    pub(crate) fn take_records(&mut self) -> Vec<CallRecord> {
        std::mem::take(&mut self.calls.records)
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
        let calls = &mut self.calls;
        if calls.started >= calls.max_calls {
            calls.records.push(CallRecord {
                integration: request.integration,
                method: request.method,
                url: request.path,
                decision: "deny",
                reason: Some("call_limit"),
                status: None,
                request_bytes: request.body.as_ref().map_or(0, |b| b.len() as u64),
                response_bytes: 0,
                started_at: SystemTime::now(),
                duration: Duration::ZERO,
            });
            self.stop = Some(Stop::Calls);
            wasmtime::bail!("call limit of {} calls exceeded", calls.max_calls);
        }
        calls.started += 1;
        let id = calls.next_id;
        calls.next_id = calls.next_id.wrapping_add(1);
        let call = GuestCall {
            integration: request.integration,
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: request.body,
        };
        let outbound = calls.outbound.clone();
        let concurrency = calls.concurrency.clone();
        let done = calls.done_tx.clone();
        calls.in_flight += 1;
        tokio::spawn(async move {
            // The semaphore is never closed.
            let _permit = concurrency.acquire_owned().await.ok();
            let (result, record) = outbound.call(call).await;
            // The run may be over; the audit sink has the record regardless.
            let _ = done.send((id, result, record));
        });
        Ok(id)
    }

    async fn wait_call(&mut self) -> wasmtime::Result<(u32, Result<CallResponse, CallFailure>)> {
        if self.calls.in_flight == 0 {
            wasmtime::bail!("wait-call with no call in flight");
        }
        // The sender half lives in `self`, so the channel never closes here.
        let Some((id, result, record)) = self.calls.done_rx.recv().await else {
            wasmtime::bail!("the call channel closed");
        };
        self.calls.in_flight -= 1;
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
    async fn call(&self, call: GuestCall) -> (Result<GuestResponse, CallError>, CallRecord) {
        let record = CallRecord {
            integration: call.integration,
            method: call.method,
            url: call.path,
            decision: "deny",
            reason: Some("call_limit"),
            status: None,
            request_bytes: 0,
            response_bytes: 0,
            started_at: SystemTime::now(),
            duration: Duration::ZERO,
        };
        (Err(CallError::CallLimit("no calls are allowed here".into())), record)
    }
}
