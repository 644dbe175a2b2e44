#![allow(dead_code)] // shared by the host's and the end-to-end tests
//! Builds a guest crate (its own workspace and lock file) for
//! wasm32-wasip2, as its README says, into the target dir's `examples/`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the crate at `dir` (release, `--locked`); returns its component.
pub fn build_component(dir: &Path) -> Vec<u8> {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => PathBuf::from(target),
        // <target>/<profile>/deps/<test>
        None => std::env::current_exe().unwrap().ancestors().nth(3).unwrap().to_owned(),
    }
    .join("examples");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--release", "--locked", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target)
        .current_dir(dir)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building {} failed", dir.display());
    let name = dir.file_name().unwrap().to_str().unwrap().replace('-', "_");
    std::fs::read(target.join("wasm32-wasip2/release").join(name + ".wasm")).unwrap()
}
