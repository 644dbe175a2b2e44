//! libFuzzer entry point. The generators and invariants live in
//! `tests/fuzz_support/mod.rs`, shared with the stable, bounded harness CI
//! runs (`tests/fuzz_replay.rs`); see that module's docs for the input
//! format and what is checked.

#![no_main]

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::run_one(data));
