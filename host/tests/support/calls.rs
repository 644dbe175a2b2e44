//! Assertions about the calls an outcome lists.

use oauth3_host::CallRecord;

/// Every call that got no response was refused when the run ended, or for
/// being past the run's call limit: none is missing its reason.
#[track_caller]
pub fn unsent_calls_were_refused_at_the_end(calls: &[CallRecord]) {
    assert!(
        calls.iter().filter(|c| c.status.is_none()).all(|c| matches!(c.reason, Some("run_ended" | "call_limit"))),
        "{calls:?}"
    );
}
