//! JavaScript as a per-permit component: the snapshotted guest runtime (a
//! Javy plugin) composed with a small generated adapter that implements the
//! runtime's private `oauth3:js/dispatch` by calling the permit's own
//! `oauth3:permit/<name>.fetch`. The composition imports exactly the
//! permit's interfaces, the shared types and inert WASI; it depends on the
//! integrations' names (in order) only, so permits naming the same
//! integrations share it.

use std::sync::Arc;

use oauth3_policy::IntegrationName;
use wasmparser::{Validator, WasmFeatures};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

use crate::error::BoxedError;
use crate::sandbox::State;

#[allow(missing_docs, clippy::all)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "oauth3:js/runtime",
        path: ["../wit", "../guest-runtime/wit"],
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "oauth3:scoped-fetch/types": crate::scoped_fetch::bindings::oauth3::scoped_fetch::types,
        },
        imports: { default: trappable },
        exports: { default: async },
        require_store_data_send: true,
    });
}

use bindings::oauth3::js::dispatch;

/// Links the runtime's `dispatch` to [`dispatch::Host`] for `State`: for
/// the runtime alone, which makes no calls.
pub(crate) fn add_dispatch_stub(linker: &mut wasmtime::component::Linker<State>) -> wasmtime::Result<()> {
    dispatch::add_to_linker::<State, wasmtime::component::HasSelf<State>>(linker, |s| s)
}

/// The runtime's private interface, as its WIT names it.
const DISPATCH: &str = "oauth3:js/dispatch@0.1.0";

/// The guest runtime's WIT (its package uses `oauth3:scoped-fetch`).
const RUNTIME_WIT: &str = include_str!("../../guest-runtime/wit/world.wit");

/// `dispatch` where no permit is wired in (compiling scripts, snapshotting):
/// a call traps.
impl dispatch::Host for State {
    fn fetch(
        &mut self,
        _integration: u32,
        _method: String,
        _path: String,
        _options: crate::scoped_fetch::bindings::oauth3::scoped_fetch::types::RequestOptions,
    ) -> wasmtime::Result<wasmtime::component::Resource<crate::scoped_fetch::FutureResponse>> {
        wasmtime::bail!("no calls can be made here")
    }
}

/// The guest runtime composed for `names`: the bytes of the component the
/// host runs for a permit with those integrations.
pub(crate) fn compose(runtime: &[u8], names: &[IntegrationName]) -> Result<Vec<u8>, BoxedError> {
    use wasm_compose::graph::{Component, CompositionGraph, EncodeOptions};
    let adapter = adapter(names)?;
    let mut graph = CompositionGraph::new();
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let runtime = graph.add_component(Component::from_bytes(&mut validator, "runtime", runtime)?)?;
    let adapter = graph.add_component(Component::from_bytes(&mut validator, "adapter", adapter)?)?;
    let runtime_instance = graph.instantiate(runtime)?;
    let adapter_instance = graph.instantiate(adapter)?;
    let missing = || format!("{DISPATCH} is missing from the runtime or the adapter");
    let export = graph.get_component(adapter).and_then(|c| c.export_by_name(DISPATCH)).ok_or_else(missing)?.0;
    let import = graph.get_component(runtime).and_then(|c| c.import_by_name(DISPATCH)).ok_or_else(missing)?.0;
    graph.connect(adapter_instance, Some(export), runtime_instance, import)?;
    let options = EncodeOptions { define_components: true, export: Some(runtime_instance), validate: true };
    Ok(graph.encode(options)?)
}

/// The adapter: exports `dispatch.fetch(i, ...)`, which calls integration
/// `i`'s `fetch` with the same arguments. It imports each integration's
/// `call` too (unused), so the composition imports the whole interface.
fn adapter(names: &[IntegrationName]) -> Result<Vec<u8>, BoxedError> {
    let mut resolve = Resolve::new();
    resolve.push_str("permit.wit", &oauth3_policy::interfaces_wit(names))?;
    resolve.push_str("runtime.wit", RUNTIME_WIT)?;
    let mut world = String::from("package oauth3:adapter;\nworld adapter {\n");
    for name in names {
        world.push_str(&format!("    import oauth3:permit/{};\n", name.wit_identifier()));
    }
    world.push_str(&format!("    export {DISPATCH};\n}}\n"));
    let package = resolve.push_str("adapter.wit", &world)?;
    let world = resolve.select_world(&[package], Some("adapter"))?;
    let mut module = wat::parse_str(adapter_module(names))?;
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)?;
    Ok(ComponentEncoder::default().module(&module)?.validate(true).encode()?)
}

/// The adapter's core module (canonical ABI: `fetch` takes 11 flat i32s and
/// returns a handle; `call` takes 11 and a return pointer). Arguments are
/// lifted into its memory by a bump allocator that is reset after each call.
fn adapter_module(names: &[IntegrationName]) -> String {
    let args = "(param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)";
    let forward: String = (1..=11).map(|i| format!(" (local.get {i})")).collect();
    let mut imports = String::new();
    for (i, name) in names.iter().enumerate() {
        let module = name.wit_import();
        imports.push_str(&format!(
            "  (import \"{module}\" \"fetch\" (func $fetch{i} {args} (result i32)))\n  \
             (import \"{module}\" \"call\" (func $call{i} {args} (param i32)))\n"
        ));
    }
    // br_table to case i, one block per integration, past them a trap.
    let labels: String = (0..names.len()).map(|i| format!(" $case{i}")).collect();
    let mut cases = format!("(br_table{labels} $bad (local.get 0))");
    for i in 0..names.len() {
        cases = format!("(block $case{i} {cases})\n      (local.set $r (call $fetch{i}{forward}))\n      (br $done)");
    }
    format!(
        r#"(module
{imports}  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (local.set $end (i32.add (local.get $p) (local.get 3)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16)) (i32.const 1)))
                    (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))
  (func (export "{DISPATCH}#fetch") (param i32) {args} (result i32)
    (local $r i32)
    (block $done
      (block $bad
      {cases})
      unreachable)
    (global.set $heap (i32.const 8))
    (local.get $r))
)"#
    )
}

/// A composed runtime ready to instantiate: its bytes and its linked form.
pub(crate) struct JsComponent {
    pub(crate) bytes: Arc<[u8]>,
    pub(crate) pre: bindings::RuntimePre<State>,
}
