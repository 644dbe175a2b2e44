//! The oauth3 guest runtime: a Javy plugin (a `wasm32-wasip2` component) that
//! runs an agent's JavaScript. Its only way out is the private `dispatch`
//! import, which each permit's component wires to the permit's own
//! `oauth3:permit/<name>.fetch`; the host checks and performs every call.
//!
//! Exports Javy's plugin ABI (`compile-src`, `initialize-runtime`, `invoke`)
//! plus `script.compile` (typed syntax errors) and `script.run`, which
//! installs the run's integration functions and `args`, evaluates the module
//! and drives QuickJS's job queue itself: run every pending job; while calls
//! are outstanding, wait on their pollables (wasi:io/poll) and settle the
//! earliest ready call's promise; repeat. Calls started in the same turn
//! therefore run concurrently on the host.

use std::cell::{OnceCell, RefCell};
use std::io::Write as _;

use base64::Engine as _;
use javy::quickjs::{
    Array, Ctx, Error as QError, Function, Module, Object, Persistent, Promise, String as JsString, TypedArray, Value,
    WriteOptions, function::Func, promise::PromiseState,
};
use javy::{BytecodeStripping, Runtime};

#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({ world: "oauth3:js/runtime", path: ["../wit", "wit"], generate_all });

    use super::Component;
    export!(Component);
}

use bindings::Guest;
use bindings::exports::oauth3::js::script::{Guest as Script, JsError};
use bindings::oauth3::js::dispatch;
use bindings::oauth3::scoped_fetch::types::{CallError, FutureResponse, RequestOptions, Response};
use bindings::wasi::io::poll::{Pollable, poll};

/// The module name agent scripts are compiled under (shows up in stacks).
const SCRIPT_NAME: &str = "script.js";

thread_local! {
    static RUNTIME: OnceCell<Runtime> = const { OnceCell::new() };
    static INTERNALS: OnceCell<Persistent<Object<'static>>> = const { OnceCell::new() };
    /// The run's integration names; a function's position here is its number for `dispatch`.
    static INTEGRATIONS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Calls started and not yet settled, in start order.
    static CALLS: RefCell<Vec<Call>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A call under way. The pollable is the future's child: dropped first.
struct Call {
    id: u32,
    pollable: Pollable,
    future: FutureResponse,
}

struct Component;

impl Guest for Component {
    fn compile_src(src: Vec<u8>) -> Result<Vec<u8>, String> {
        compile_module(&String::from_utf8_lossy(&src)).map_err(|e| format!("{}: {}", e.name, e.message))
    }

    fn initialize_runtime() {
        initialize();
    }

    fn invoke(bytecode: Vec<u8>, function: Option<String>) {
        if function.is_some() {
            eprintln!("invoke: exported functions are not supported by this plugin");
            std::process::abort();
        }
        if let Err(e) = run_bytecode(&bytecode, Vec::new(), "null") {
            eprintln!("{}: {}\n{}", e.name, e.message, e.stack);
            std::process::abort();
        }
    }
}

impl Script for Component {
    fn compile(src: String) -> Result<Vec<u8>, JsError> {
        compile_module(&src)
    }

    fn run(bytecode: Vec<u8>, integrations: Vec<String>, args_json: String) -> Result<(), JsError> {
        run_bytecode(&bytecode, integrations, &args_json)
    }
}

fn initialize() {
    RUNTIME.with(|cell| {
        if cell.get().is_some() {
            return;
        }
        let mut config = javy::Config::default();
        config.text_encoding(true).javy_stream_io(false).bytecode_stripping(BytecodeStripping::Source);
        let runtime = Runtime::new(config).expect("the QuickJS runtime to start");
        runtime.context().runtime().set_host_promise_rejection_tracker(Some(Box::new(track_rejection)));
        let internals = runtime.context().with(|ctx| {
            let write = Func::from(|fd: u32, text: JsString| native_write(fd, text));
            let start = Func::from(native_start);
            let factory: Function = ctx.eval(include_str!("prelude.js")).expect("the prelude to compile");
            let internals: Object = factory.call((start, write)).expect("the prelude to run");
            Persistent::save(&ctx, internals)
        });
        INTERNALS.with(|i| {
            let _ = i.set(internals);
        });
        let _ = cell.set(runtime);
    });
}

fn with_ctx<R>(f: impl for<'js> FnOnce(Ctx<'js>, Object<'js>) -> R) -> R {
    initialize();
    RUNTIME.with(|rt| {
        let rt = rt.get().expect("initialised above");
        rt.context().with(|ctx| {
            let internals = INTERNALS
                .with(|i| i.get().cloned())
                .expect("initialised above")
                .restore(&ctx)
                .expect("internals belong to this runtime");
            f(ctx, internals)
        })
    })
}

fn track_rejection<'js>(ctx: Ctx<'js>, promise: Value<'js>, reason: Value<'js>, handled: bool) {
    let Some(internals) = INTERNALS.with(|i| i.get().cloned()) else { return };
    let Ok(internals) = internals.restore(&ctx) else { return };
    if let Ok(track) = internals.get::<_, Function>("track") {
        let _: Result<(), _> = track.call((promise, reason, handled));
    }
}

fn native_write(fd: u32, text: JsString<'_>) -> javy::quickjs::Result<()> {
    let text = text.to_string()?;
    // A failed write means the host refused more output; it traps the run.
    let _ = if fd == 2 {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush())
    };
    Ok(())
}

fn pairs(flat: Vec<String>) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

fn native_start<'js>(
    integration: String,
    method: String,
    path: String,
    query: Vec<String>,
    headers: Vec<String>,
    body: Value<'js>,
) -> javy::quickjs::Result<u32> {
    let body = if body.is_undefined() || body.is_null() {
        None
    } else if let Some(s) = body.as_string() {
        Some(s.to_string()?.into_bytes())
    } else {
        let array = TypedArray::<u8>::from_value(body)?;
        Some(array.as_bytes().map(<[u8]>::to_vec).unwrap_or_default())
    };
    let index = INTEGRATIONS.with(|names| names.borrow().iter().position(|n| *n == integration));
    let Some(index) = index else {
        return Err(javy::quickjs::Error::new_from_js_message(
            "string",
            "integration",
            "not an integration of this run",
        ));
    };
    let options = RequestOptions { query: pairs(query), headers: pairs(headers), body };
    let future = dispatch::fetch(index as u32, &method, &path, &options);
    let pollable = future.subscribe();
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    });
    CALLS.with(|calls| calls.borrow_mut().push(Call { id, pollable, future }));
    Ok(id)
}

/// Waits until a call is ready and takes the earliest started of those.
fn next_ready() -> Option<(u32, Result<Response, CallError>)> {
    CALLS.with(|calls| {
        let mut calls = calls.borrow_mut();
        if calls.is_empty() {
            return None;
        }
        let ready = {
            let pollables: Vec<&Pollable> = calls.iter().map(|c| &c.pollable).collect();
            poll(&pollables)
        };
        let first = ready.into_iter().min().expect("poll returns at least one ready pollable") as usize;
        let Call { id, pollable, future } = calls.remove(first);
        drop(pollable);
        let result = future.get().expect("a ready future-response has its result");
        Some((id, result))
    })
}

/// How a response body reaches JavaScript.
fn classify(response: &Response) -> (&'static str, String, String) {
    let content_type = response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if response.status == 204 || response.status == 205 || response.status == 304 {
        return ("null", String::new(), content_type);
    }
    let is_json = essence == "application/json" || essence.ends_with("+json");
    if is_json && response.body.iter().all(u8::is_ascii_whitespace) {
        return ("null", String::new(), content_type);
    }
    let texty = essence.starts_with("text/")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/xml" | "application/javascript" | "application/x-www-form-urlencoded" | "application/x-ndjson"
        );
    match std::str::from_utf8(&response.body) {
        Ok(text) if is_json => ("json", text.to_owned(), content_type),
        Ok(text) if texty || essence.is_empty() => ("text", text.to_owned(), content_type),
        _ if texty || is_json => ("text", String::from_utf8_lossy(&response.body).into_owned(), content_type),
        _ => ("binary", base64::engine::general_purpose::STANDARD.encode(&response.body), content_type),
    }
}

fn settle<'js>(internals: &Object<'js>, id: u32, result: Result<Response, CallError>) -> javy::quickjs::Result<()> {
    match result {
        Ok(response) => {
            let (kind, text, content_type) = classify(&response);
            let size = response.body.len() as f64;
            let headers: Vec<String> = response.headers.into_iter().flat_map(|(k, v)| [k, v]).collect();
            let f: Function = internals.get("settleOk")?;
            f.call((id, response.status, headers, kind, text, content_type, size))
        }
        Err(CallError::Denied(problem) | CallError::Failed(problem)) => {
            let f: Function = internals.get("settleErr")?;
            let message = format!("{}: {}", problem.code, problem.message);
            let confirmation_id = confirmation_id(&problem.code, &problem.message);
            f.call((id, problem.code, message, confirmation_id))
        }
    }
}

/// The id a `confirmation_required` problem carries: its message starts
/// with it and `: ` (the host's contract, `CallError::ConfirmationRequired`).
fn confirmation_id(code: &str, message: &str) -> Option<String> {
    let (id, _) = message.split_once(": ").filter(|_| code == "confirmation_required")?;
    let plain = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    plain.then(|| id.to_owned())
}

fn compile_module(src: &str) -> Result<Vec<u8>, JsError> {
    with_ctx(|ctx, _| {
        Module::declare(ctx.clone(), SCRIPT_NAME, src)
            .and_then(|m| m.write(WriteOptions { strip_source: true, ..WriteOptions::default() }))
            .map_err(|e| js_error(&ctx, e))
    })
}

fn run_bytecode(bytecode: &[u8], integrations: Vec<String>, args_json: &str) -> Result<(), JsError> {
    INTEGRATIONS.with(|names| names.borrow_mut().clone_from(&integrations));
    with_ctx(|ctx, internals| {
        let setup: Function = internals.get("setup").map_err(|e| js_error(&ctx, e))?;
        setup.call::<_, ()>((integrations, args_json)).map_err(|e| js_error(&ctx, e))?;

        // SAFETY: the bytecode comes from this plugin's own `compile` export
        // (the host compiles scripts itself and never accepts bytecode from
        // the agent), so it is well-formed QuickJS bytecode of this version.
        #[allow(unsafe_code)]
        let module = unsafe { Module::load(ctx.clone(), bytecode) }.map_err(|e| js_error(&ctx, e))?;
        let (_module, promise) = module.eval().map_err(|e| js_error(&ctx, e))?;

        loop {
            while ctx.execute_pending_job() {}
            let Some((id, result)) = next_ready() else { break };
            settle(&internals, id, result).map_err(|e| js_error(&ctx, e))?;
        }
        let _ = std::io::stdout().flush();

        finish(&ctx, &internals, &promise)
    })
}

fn finish<'js>(ctx: &Ctx<'js>, internals: &Object<'js>, promise: &Promise<'js>) -> Result<(), JsError> {
    match promise.state() {
        PromiseState::Rejected => {
            let reason = match promise.result::<Value>() {
                Some(Err(QError::Exception)) => ctx.catch(),
                Some(Err(e)) => return Err(js_error(ctx, e)),
                Some(Ok(v)) => v,
                None => Value::new_undefined(ctx.clone()),
            };
            Err(error_from_value(reason))
        }
        PromiseState::Pending => Err(JsError {
            name: "Error".into(),
            message: "the script's top-level await never settled (it awaits a promise nothing resolves)".into(),
            stack: String::new(),
            line: None,
            column: None,
        }),
        PromiseState::Resolved => {
            let first: Option<Array> = internals
                .get::<_, Function>("firstUnhandled")
                .and_then(|f| f.call(()))
                .map_err(|e| js_error(ctx, e))?;
            match first {
                Some(list) => {
                    let reason: Value = list.get(0).map_err(|e| js_error(ctx, e))?;
                    let mut error = error_from_value(reason);
                    error.message = format!("unhandled promise rejection: {}", error.message);
                    Err(error)
                }
                None => Ok(()),
            }
        }
    }
}

fn js_error(ctx: &Ctx<'_>, e: QError) -> JsError {
    match e {
        QError::Exception => error_from_value(ctx.catch()),
        other => JsError {
            name: "InternalError".into(),
            message: other.to_string(),
            stack: String::new(),
            line: None,
            column: None,
        },
    }
}

fn error_from_value(value: Value<'_>) -> JsError {
    let text = |v: Option<Value<'_>>| -> String {
        v.and_then(
            |v| if v.is_undefined() { None } else { v.get::<javy::quickjs::Coerced<String>>().ok().map(|c| c.0) },
        )
        .unwrap_or_default()
    };
    if let Some(object) = value.as_object() {
        let name = text(object.get("name").ok());
        let message = text(object.get("message").ok());
        let stack = text(object.get("stack").ok());
        if !name.is_empty() || !message.is_empty() || !stack.is_empty() {
            let (line, column) = location(&stack);
            return JsError { name, message, stack, line, column };
        }
    }
    let message = text(Some(value));
    JsError { name: String::new(), message, stack: String::new(), line: None, column: None }
}

/// The line and column of the first `script.js:LINE:COL` in a stack.
fn location(stack: &str) -> (Option<u32>, Option<u32>) {
    for (at, _) in stack.match_indices(SCRIPT_NAME) {
        let rest = &stack[at + SCRIPT_NAME.len()..];
        let mut parts = rest.strip_prefix(':').unwrap_or("").splitn(3, ':');
        let line = parts.next().and_then(|l| l.parse().ok());
        let column = parts.next().map(|c| c.chars().take_while(char::is_ascii_digit).collect::<String>());
        let column = column.and_then(|c| c.parse().ok());
        if line.is_some() {
            return (line, column);
        }
    }
    (None, None)
}
