//! Components agents submit, checked before anything runs: a component (not
//! a core module), within the size limit, exporting the world's `run`, and
//! importing only its permit's world plus inert WASI (io, clocks, random,
//! cli stdio, and filesystem with nothing opened), and wasi:http's client
//! interfaces unless the operator turned them off. Sockets, other permits'
//! interfaces and anything else are refused by name.

use std::fmt;
use std::sync::Arc;

use oauth3_policy::{CompiledPermit, SCOPED_FETCH_TYPES};
use wasmparser::{Encoding, Parser, Payload};
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;

use wasmtime::component::{Component, Type};

/// A checked and compiled component, ready to run under any permit whose
/// world covers its imports ([`AgentComponent::check_imports`]).
#[derive(Clone)]
pub struct AgentComponent {
    pub(crate) hash: [u8; 32],
    pub(crate) component: Component,
    imports: Arc<[String]>,
    size: usize,
}

impl fmt::Debug for AgentComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentComponent")
            .field("hash", &self.hash_hex())
            .field("size", &self.size)
            .field("imports", &self.imports)
            .finish_non_exhaustive()
    }
}

impl AgentComponent {
    /// SHA-256 of the component's bytes.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// [`AgentComponent::hash`] in lower-case hex.
    pub fn hash_hex(&self) -> String {
        crate::runtime::hex(&self.hash)
    }

    /// The names the component imports, as in its binary.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the component may run under `permit`: each import is one of
    /// the permit's integrations, the shared types, inert WASI, or (when
    /// `wasi_http`) wasi:http's `types` and `outgoing-handler`.
    pub fn check_imports(&self, permit: &CompiledPermit, wasi_http: bool) -> Result<(), ComponentRejected> {
        check_imports(&self.imports, permit, wasi_http)
    }
}

pub(crate) fn check_imports(
    imports: &[String],
    permit: &CompiledPermit,
    wasi_http: bool,
) -> Result<(), ComponentRejected> {
    let refusals: Vec<Refusal> = imports
        .iter()
        .filter_map(|name| refuse_import(name, permit, wasi_http).map(|r| Refusal::new(name, r)))
        .collect();
    if refusals.is_empty() { Ok(()) } else { Err(ComponentRejected { refusals }) }
}

/// Why a component may not run. Nothing of it ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ComponentRejected {
    /// What is wrong, one entry per offending import or export.
    pub refusals: Vec<Refusal>,
}

impl fmt::Display for ComponentRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the component may not run: ")?;
        for (i, refusal) in self.refusals.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", refusal.item, refusal.reason)?;
        }
        Ok(())
    }
}

impl ComponentRejected {
    pub(crate) fn one(item: &str, reason: impl Into<String>) -> ComponentRejected {
        ComponentRejected { refusals: vec![Refusal::new(item, reason)] }
    }
}

/// One reason a component was rejected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// The import or export at fault (`wasi:sockets/tcp@0.2.0`, `run`), or
    /// `component` for the whole.
    pub item: String,
    /// Why, safe to show the agent.
    pub reason: String,
}

impl Refusal {
    fn new(item: &str, reason: impl Into<String>) -> Refusal {
        Refusal { item: item.to_owned(), reason: reason.into() }
    }
}

/// WASI interfaces that reach nothing outside the sandbox: the host gives
/// them no preopened directory, no environment, no stdin and no network.
const INERT_WASI: &[(&str, &[&str])] = &[
    ("wasi:io", &["error", "poll", "streams"]),
    ("wasi:clocks", &["monotonic-clock", "wall-clock"]),
    ("wasi:random", &["random", "insecure", "insecure-seed"]),
    (
        "wasi:cli",
        &[
            "environment",
            "exit",
            "stdin",
            "stdout",
            "stderr",
            "terminal-input",
            "terminal-output",
            "terminal-stdin",
            "terminal-stdout",
            "terminal-stderr",
        ],
    ),
    ("wasi:filesystem", &["types", "preopens"]),
];

/// wasi:http interfaces a component may import when wasi:http is on: its
/// requests go to the permit's integrations (see `wasi_http.rs`).
const WASI_HTTP: &[&str] = &["types", "outgoing-handler"];

/// Why `name` may not be imported under `permit`, or `None` if it may.
fn refuse_import(name: &str, permit: &CompiledPermit, wasi_http: bool) -> Option<String> {
    let (path, version) = name.split_once('@').map_or((name, None), |(p, v)| (p, Some(v)));
    let Some((package, interface)) = path.split_once('/') else {
        return Some("only interfaces of the permit's world may be imported, not plain functions or types".into());
    };
    let integrations = || permit.integrations().iter().map(|i| i.integration_name().wit_interface());
    match package {
        "oauth3:permit" => {
            if version.is_some() {
                return Some("oauth3:permit interfaces have no version".into());
            }
            if integrations().any(|i| i == interface) {
                return None;
            }
            let known: Vec<String> = integrations().collect();
            Some(format!("'{interface}' is not an integration of this permit (it has: {})", known.join(", ")))
        }
        "oauth3:scoped-fetch" => {
            let supported = SCOPED_FETCH_TYPES.split_once('@').map(|(p, _)| p) == Some(path)
                && version.is_some_and(|v| v.starts_with("0.1."));
            (!supported).then(|| format!("the host provides {SCOPED_FETCH_TYPES}"))
        }
        "wasi:sockets" => Some("sockets are not available: calls go through the permit's integrations".into()),
        "wasi:http" if !wasi_http => {
            Some("wasi:http is turned off on this gateway: call the permit's integrations (oauth3:permit/...)".into())
        }
        "wasi:http" if !WASI_HTTP.contains(&interface) => {
            Some("only wasi:http/types and wasi:http/outgoing-handler are provided".into())
        }
        "wasi:http" => (!is_0_2(version)).then(|| "only wasi:http 0.2.x is provided".into()),
        _ => {
            let Some((_, interfaces)) = INERT_WASI.iter().find(|(p, _)| *p == package) else {
                return Some("not part of this permit's world".into());
            };
            if !interfaces.contains(&interface) {
                return Some("not part of this permit's world".into());
            }
            if !is_0_2(version) {
                return Some("only WASI 0.2.x interfaces are provided".into());
            }
            None
        }
    }
}

/// A released 0.2.x version (not a pre-release, which would fail to link).
fn is_0_2(version: Option<&str>) -> bool {
    version
        .and_then(|v| v.strip_prefix("0.2."))
        .is_some_and(|patch| !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()))
}

/// The component's top-level import names, or why the bytes are not a component.
pub(crate) fn top_level_imports(bytes: &[u8]) -> Result<Vec<String>, ComponentRejected> {
    let invalid = |e: wasmparser::BinaryReaderError| ComponentRejected::one("component", format!("invalid: {e}"));
    let mut depth = 0usize;
    let mut imports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err(ComponentRejected::one(
                        "component",
                        "this is a core WebAssembly module; submit a component (wasm32-wasip2, or `wasm-tools component new`)",
                    ));
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    imports.push(import.map_err(invalid)?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

/// Checks that the compiled component exports `run: func(args: string) -> result<string, string>`.
pub(crate) fn check_run_export(component: &Component, engine: &Engine) -> Result<(), ComponentRejected> {
    let wrong = || {
        ComponentRejected::one("run", "the component must export `run: func(args: string) -> result<string, string>`")
    };
    let ty = component.component_type();
    let Some(ComponentItem::ComponentFunc(func)) =
        ty.exports(engine).find(|(name, _)| *name == "run").map(|(_, e)| e.ty)
    else {
        return Err(wrong());
    };
    let params: Vec<Type> = func.params().map(|(_, t)| t).collect();
    let results: Vec<Type> = func.results().collect();
    let returns_strings = match results.as_slice() {
        [Type::Result(r)] => matches!((r.ok(), r.err()), (Some(Type::String), Some(Type::String))),
        _ => false,
    };
    if matches!(params.as_slice(), [Type::String]) && returns_strings { Ok(()) } else { Err(wrong()) }
}

pub(crate) fn new(hash: [u8; 32], component: Component, imports: Vec<String>, size: usize) -> AgentComponent {
    AgentComponent { hash, component, imports: imports.into(), size }
}
