#![allow(dead_code)] // shared by several test files; each uses part of it
//! Components for tests, built the way toolchains build them: a core module
//! (WAT, written against the canonical ABI) plus a WIT world, encoded by
//! wit-component. The world is usually the permit's own `wit()` document.

use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

/// Encodes `core` (WAT) as a component of `world` in the WIT document `wit`.
pub fn component(wit: &str, world: &str, core: &str) -> Vec<u8> {
    let mut resolve = Resolve::new();
    let package = resolve.push_str("world.wit", wit).unwrap_or_else(|e| panic!("{e:?}\n{wit}"));
    let world = resolve.select_world(&[package], Some(world)).unwrap();
    let mut module = wat::parse_str(core).unwrap_or_else(|e| panic!("{e}\n{core}"));
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).unwrap();
    ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
}

/// The allocator and memory every core module here shares: a bump
/// allocator from 64 KiB, growing memory as needed. `run` and any helpers
/// go in `body`; static data below 4 KiB.
pub fn core_module(imports: &str, body: &str) -> String {
    format!(
        r#"(module
  {imports}
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func $alloc (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
    (local.set $end (i32.add (local.get $p) (local.get 3)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))))))
    (global.set $heap (local.get $end))
    (local.get $p))
  {body}
)"#
    )
}

/// A module whose `run` returns `ok(text)`.
pub fn returns(text: &str) -> String {
    core_module("", &run_returning(text))
}

/// The `run` function (and its data) returning `ok(text)`.
pub fn run_returning(text: &str) -> String {
    format!(
        r#"(data (i32.const 16) "{text}")
  (func (export "run") (param i32 i32) (result i32)
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 16))
    (i32.store (i32.const 1032) (i32.const {len}))
    (i32.const 1024))"#,
        len = text.len()
    )
}

/// The import of `integration`'s blocking `call` (11 flat parameters and a
/// return pointer).
pub fn call_import(integration: &str) -> String {
    format!(
        r#"(import "oauth3:permit/{integration}" "call" (func $call_{integration} (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))"#
    )
}

/// `run` that calls `integration` once with `method` and `path` (no
/// options) and returns `ok(body)` or `err(code)`.
pub fn calls_once(integration: &str, method: &str, path: &str) -> String {
    core_module(
        &call_import(integration),
        &format!(
            r#"(data (i32.const 16) "{method}")
  (data (i32.const 64) "{path}")
  (func (export "run") (param i32 i32) (result i32)
    (call $call_{integration} (i32.const 16) (i32.const {mlen}) (i32.const 64) (i32.const {plen})
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 1024))
    (call $result_body_or_code (i32.const 1024)))
  {result_body_or_code}"#,
            mlen = method.len(),
            plen = path.len(),
            result_body_or_code = RESULT_BODY_OR_CODE,
        ),
    )
}

/// Turns a `result<response, call-error>` at `$at` into a
/// `result<string, string>` at 2048: the body, or the error's code.
pub const RESULT_BODY_OR_CODE: &str = r#"(func $result_body_or_code (param $at i32) (result i32)
    (if (i32.eqz (i32.load8_u (local.get $at)))
      (then
        (i32.store8 (i32.const 2048) (i32.const 0))
        (i32.store (i32.const 2052) (i32.load offset=16 (local.get $at)))
        (i32.store (i32.const 2056) (i32.load offset=20 (local.get $at))))
      (else
        (i32.store8 (i32.const 2048) (i32.const 1))
        (i32.store (i32.const 2052) (i32.load offset=8 (local.get $at)))
        (i32.store (i32.const 2056) (i32.load offset=12 (local.get $at)))))
    (i32.const 2048))"#;
