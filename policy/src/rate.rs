//! Rate limits as a pure model: GCRA (the generic cell rate algorithm) over
//! one number of explicit state, so the host can keep it in memory or in a
//! database row shared by every execution and replica.
//!
//! A limit of `max_calls` per `window_seconds` allows a burst of `max_calls`,
//! then one call every `window_seconds / max_calls`: the sustained rate is
//! `max_calls` per window, and any span of length `t` holds at most
//! `max_calls + t / interval` calls (so up to twice `max_calls` in one window
//! right after an idle period). State is one integer, which is what makes a
//! shared, database-backed limiter a single compare-and-swap. The state is the
//! theoretical arrival time (TAT) in microseconds on the caller's clock.

use std::fmt;
use std::time::Duration;

use crate::spec::RateLimit;

/// What one rate-limit check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Allowed; store `tat` as the new state.
    Allowed {
        /// New theoretical arrival time, in microseconds.
        tat: u64,
    },
    /// Refused; the state is unchanged.
    Limited {
        /// How long until a call would be allowed.
        retry_after: Duration,
    },
}

/// A compiled GCRA limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Emission interval T, in microseconds.
    interval: u64,
    /// Burst tolerance τ = window − T, in microseconds.
    tolerance: u64,
}

impl Gcra {
    /// Compiles a limit. `max_calls` and `window_seconds` of 0 are treated as 1.
    pub fn new(limit: RateLimit) -> Gcra {
        let window = u64::from(limit.window_seconds.max(1)) * 1_000_000;
        let interval = window / u64::from(limit.max_calls.max(1));
        Gcra { interval, tolerance: window - interval }
    }

    /// Microseconds each call adds to the state (the emission interval).
    /// With [`Gcra::tolerance_micros`] this lets a store apply [`Gcra::check`]
    /// as one atomic update: allowed iff `max(tat, now) - tolerance <= now`,
    /// then `tat = max(tat, now) + interval`.
    pub fn interval_micros(&self) -> u64 {
        self.interval
    }

    /// How far ahead of `now` the state may run (the burst tolerance), in microseconds.
    pub fn tolerance_micros(&self) -> u64 {
        self.tolerance
    }

    /// Decides one call at time `now` (microseconds on a clock every replica
    /// shares, e.g. Unix time) given the stored state (`None` when unseen).
    pub fn check(&self, state: Option<u64>, now: u64) -> RateDecision {
        let tat = state.unwrap_or(now).max(now);
        let allow_at = tat.saturating_sub(self.tolerance);
        if now < allow_at {
            RateDecision::Limited { retry_after: Duration::from_micros(allow_at - now) }
        } else {
            RateDecision::Allowed { tat: tat.saturating_add(self.interval) }
        }
    }
}

/// The key a rate-limit state is stored under: one per (permit, integration),
/// shared by all executions of the permit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RateKey {
    /// Permit id.
    pub permit_id: String,
    /// Integration name.
    pub integration: String,
}

impl fmt::Display for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.permit_id, self.integration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    fn run(gcra: &Gcra, state: &mut Option<u64>, now: u64) -> bool {
        match gcra.check(*state, now) {
            RateDecision::Allowed { tat } => {
                *state = Some(tat);
                true
            }
            RateDecision::Limited { .. } => false,
        }
    }

    #[test]
    fn allows_a_burst_of_max_calls_then_limits() {
        let gcra = Gcra::new(RateLimit { max_calls: 3, window_seconds: 60 });
        let mut state = None;
        assert!((0..3).all(|_| run(&gcra, &mut state, 100 * S)));
        assert_eq!(gcra.check(state, 100 * S), RateDecision::Limited { retry_after: Duration::from_secs(20) });
    }

    #[test]
    fn refills_one_call_per_interval() {
        let gcra = Gcra::new(RateLimit { max_calls: 2, window_seconds: 10 });
        let mut state = None;
        assert!(run(&gcra, &mut state, 0) && run(&gcra, &mut state, 0));
        assert!(!run(&gcra, &mut state, 4 * S));
        assert!(run(&gcra, &mut state, 5 * S));
        assert!(!run(&gcra, &mut state, 5 * S));
    }

    #[test]
    fn sustains_max_calls_per_window_after_the_first_burst() {
        // GCRA's bound: in any span t, at most max_calls + t / interval calls.
        let gcra = Gcra::new(RateLimit { max_calls: 5, window_seconds: 1 });
        let mut state = None;
        let allowed: Vec<u64> = (0..10_000u64).map(|t| t * 1_000).filter(|&now| run(&gcra, &mut state, now)).collect();
        assert_eq!(allowed.len(), 5 + 49, "a burst of 5, then one every 200 ms for 9.8 s");
        for (i, &start) in allowed.iter().enumerate() {
            let in_span = allowed[i..].iter().take_while(|&&t| t < start + S).count() as u64;
            assert!(in_span <= 5 + S / gcra.interval, "{in_span} calls in one second from {start}");
        }
    }
}
