//! Builds the guest runtime (`../guest-runtime`, a Javy plugin) for
//! `wasm32-wasip2` and copies it to `$OUT_DIR/guest_runtime.wasm`, which the
//! host embeds with `include_bytes!`. The Wizer snapshot and the Cranelift
//! compilation happen at run time (cached on disk), so wasmtime is compiled
//! once, as a normal dependency.
//!
//! Prerequisites (installed by `scripts/test`): `rustup target add
//! wasm32-wasip2`, and Debian's `clang-19 llvm-19 libclang-19-dev wasi-libc`
//! for rquickjs's C code (see `guest-runtime/.cargo/config.toml`).
//!
//! `OAUTH3_GUEST_WASM=/path/to/plugin.wasm` skips the build and embeds that
//! file instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The C toolchain settings rquickjs-sys needs for wasm32-wasip2; they are
/// also in `guest-runtime/.cargo/config.toml` for building by hand.
const GUEST_ENV: &[(&str, &str)] = &[
    ("RQUICKJS_SYS_NO_WASI_SDK", "1"),
    ("CC_wasm32_wasip2", "clang-19"),
    ("AR_wasm32_wasip2", "llvm-ar-19"),
    ("CFLAGS_wasm32_wasip2", "-isystem /usr/include/wasm32-wasi"),
    ("BINDGEN_EXTRA_CLANG_ARGS_wasm32_wasip2", "-isystem /usr/include/wasm32-wasi"),
    ("LIBCLANG_PATH", "/usr/lib/llvm-19/lib"),
];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out_dir.join("guest_runtime.wasm");
    println!("cargo::rerun-if-env-changed=OAUTH3_GUEST_WASM");
    if let Some(prebuilt) = env::var_os("OAUTH3_GUEST_WASM") {
        println!("cargo::rerun-if-changed={}", Path::new(&prebuilt).display());
        std::fs::copy(&prebuilt, &dest).expect("copy OAUTH3_GUEST_WASM");
        return;
    }

    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let guest = manifest_dir.join("../guest-runtime");
    for path in ["Cargo.toml", "Cargo.lock", "src", "wit", ".cargo/config.toml"] {
        println!("cargo::rerun-if-changed={}", guest.join(path).display());
    }
    // The shared oauth3:scoped-fetch WIT the guest's bindings use.
    println!("cargo::rerun-if-changed={}", manifest_dir.join("../wit").display());
    for (name, _) in GUEST_ENV {
        println!("cargo::rerun-if-env-changed={name}");
    }

    // A target directory of its own: the outer cargo holds the lock on the
    // workspace's one. Next to it (not in OUT_DIR) so that it survives
    // `cargo clean -p` and is shared by debug and release builds.
    let target_dir = match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("guest"),
        None => out_dir.ancestors().nth(4).map_or_else(|| out_dir.join("guest"), |t| t.join("guest")),
    };
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&guest)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(guest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    if guest.join("Cargo.lock").exists() {
        cmd.arg("--locked");
    }
    // The outer build's settings are for the host, not the guest.
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_BUILD_RUSTFLAGS"]
    {
        cmd.env_remove(var);
    }
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_FEATURE_") || key.starts_with("CARGO_CFG_") || key == "RUSTC_WRAPPER" {
            cmd.env_remove(&key);
        }
    }
    for (name, value) in GUEST_ENV {
        if env::var_os(name).is_none() {
            cmd.env(name, value);
        }
    }
    let status = cmd.status().expect("run cargo to build guest-runtime");
    assert!(
        status.success(),
        "building guest-runtime for wasm32-wasip2 failed; install the prerequisites with scripts/test \
         (rustup target add wasm32-wasip2; apt-get install clang-19 llvm-19 libclang-19-dev wasi-libc)"
    );
    let built = target_dir.join("wasm32-wasip2/release/oauth3_guest_runtime.wasm");
    std::fs::copy(&built, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
}
