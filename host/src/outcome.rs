//! What a run produced.

use std::time::Duration;

use crate::call::CallRecord;

/// The result of one run: its output, how it ended, and every call it made.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What the script wrote with `console.log` / `console.info` (lossy UTF-8).
    pub stdout: String,
    /// What the script wrote with `console.warn` / `console.error`.
    pub stderr: String,
    /// Why the run failed; `None` when the script completed.
    pub error: Option<RunError>,
    /// What a component's `run` returned (`Ok`); `None` for scripts, whose
    /// output is `stdout`.
    pub output: Option<String>,
    /// Every call the script made, in the order they completed.
    pub calls: Vec<CallRecord>,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall-clock time of the run.
    pub duration: Duration,
}

impl Outcome {
    /// Whether the script completed without error.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Why a run of agent code failed. Messages are safe to show the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The script used all its fuel.
    #[error("out_of_fuel: the script used all of its {limit} units of fuel")]
    OutOfFuel {
        /// The fuel limit.
        limit: u64,
    },
    /// The script ran past its wall-clock limit.
    #[error("timeout: the script did not finish within {} ms", limit.as_millis())]
    Timeout {
        /// The wall-clock limit.
        limit: Duration,
    },
    /// The script tried to use more memory than allowed.
    #[error("memory_limit: the script tried to use more than {limit} bytes of memory")]
    MemoryLimit {
        /// The memory limit in bytes.
        limit: usize,
    },
    /// The script recursed too deeply.
    #[error("stack_overflow: maximum call stack size exceeded")]
    StackOverflow,
    /// The script wrote more than allowed to stdout or stderr.
    #[error("output_limit: the script wrote more than {limit} bytes to {stream}")]
    OutputLimit {
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// The script made more calls than allowed.
    #[error("call_limit: the script made more than {limit} calls")]
    CallLimit {
        /// Calls allowed per run.
        limit: u32,
    },
    /// An exception (or a rejected promise) nothing caught.
    #[error("uncaught: {message}")]
    Uncaught {
        /// `error.name: error.message` (or the thrown value as a string).
        message: String,
        /// The JavaScript stack (frames of `script.js`), possibly empty.
        stack: String,
        /// Line of the innermost frame in the script, when known.
        line: Option<u32>,
        /// Column of the innermost frame in the script, when known.
        column: Option<u32>,
    },
    /// The guest runtime trapped for another reason.
    #[error("trap: {0}")]
    Trap(String),
    /// A component's `run` returned an error.
    #[error("failed: {0}")]
    Failed(String),
}

impl RunError {
    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            RunError::OutOfFuel { .. } => "out_of_fuel",
            RunError::Timeout { .. } => "timeout",
            RunError::MemoryLimit { .. } => "memory_limit",
            RunError::StackOverflow => "stack_overflow",
            RunError::OutputLimit { .. } => "output_limit",
            RunError::CallLimit { .. } => "call_limit",
            RunError::Uncaught { .. } => "uncaught",
            RunError::Trap(_) => "trap",
            RunError::Failed(_) => "failed",
        }
    }
}
