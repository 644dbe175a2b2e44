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
    /// Calls in flight at once; further calls wait for one to finish.
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

impl Limits {
    /// Sets [`Limits::fuel`].
    pub fn fuel(mut self, fuel: u64) -> Limits {
        self.fuel = fuel;
        self
    }

    /// Sets [`Limits::memory_bytes`].
    pub fn memory_bytes(mut self, bytes: usize) -> Limits {
        self.memory_bytes = bytes;
        self
    }

    /// Sets [`Limits::wall_time`].
    pub fn wall_time(mut self, wall_time: Duration) -> Limits {
        self.wall_time = wall_time;
        self
    }

    /// Sets [`Limits::stdout_bytes`].
    pub fn stdout_bytes(mut self, bytes: usize) -> Limits {
        self.stdout_bytes = bytes;
        self
    }

    /// Sets [`Limits::stderr_bytes`].
    pub fn stderr_bytes(mut self, bytes: usize) -> Limits {
        self.stderr_bytes = bytes;
        self
    }

    /// Sets [`Limits::max_calls`].
    pub fn max_calls(mut self, calls: u32) -> Limits {
        self.max_calls = calls;
        self
    }

    /// Sets [`Limits::max_concurrent_calls`] (at least 1).
    pub fn max_concurrent_calls(mut self, calls: u32) -> Limits {
        self.max_concurrent_calls = calls.max(1);
        self
    }
}
