//! What one run may use. Every bound of a run is here, with sane defaults.

use std::time::Duration;

/// Bounds for one run of agent code: `Limits::default()` or a builder chain
/// such as `Limits::default().fuel(2_000_000_000).wall_time(Duration::from_secs(5))`.
///
/// Exceeding `fuel`, `memory_bytes`, `wall_time`, `stdout_bytes`/`stderr_bytes`
/// or `max_calls` ends the run with the matching [`crate::RunError`];
/// `max_concurrent_calls` only queues calls beyond it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wasm fuel (roughly one unit per wasm instruction).
    pub fuel: u64,
    /// Linear memory of the guest, in bytes (capped by
    /// [`crate::RuntimeConfig::max_memory_bytes`]).
    pub memory_bytes: usize,
    /// Wall-clock time for the whole run, including time spent waiting on calls.
    pub wall_time: Duration,
    /// Bytes the guest may write to stdout (`console.log`, `console.info`).
    pub stdout_bytes: usize,
    /// Bytes the guest may write to stderr (`console.warn`, `console.error`).
    pub stderr_bytes: usize,
    /// Calls out of the sandbox per run.
    pub max_calls: u32,
    /// Calls in flight at once (at least 1); further calls wait for one to finish.
    pub max_concurrent_calls: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            fuel: 5_000_000_000,
            memory_bytes: 64 << 20,
            wall_time: Duration::from_secs(30),
            stdout_bytes: 1 << 20,
            stderr_bytes: 1 << 20,
            max_calls: 100,
            max_concurrent_calls: 8,
        }
    }
}

/// Builder setters: `field(value) -> Self` for each named field, setting it
/// to the value (or to the expression given after `=`).
macro_rules! setters {
    ($ty:ident { $($field:ident($arg:ident: $t:ty) $(= $value:expr)?;)+ }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets [`", stringify!($ty), "::", stringify!($field), "`].")]
                pub fn $field(mut self, $arg: $t) -> $ty {
                    self.$field = setters!(@value $arg $(, $value)?);
                    self
                }
            )+
        }
    };
    (@value $arg:ident) => { $arg };
    (@value $arg:ident, $value:expr) => { $value };
}
pub(crate) use setters;

setters!(Limits {
    fuel(fuel: u64);
    memory_bytes(bytes: usize);
    wall_time(wall_time: Duration);
    stdout_bytes(bytes: usize);
    stderr_bytes(bytes: usize);
    max_calls(calls: u32);
    max_concurrent_calls(calls: u32) = calls.max(1);
});
