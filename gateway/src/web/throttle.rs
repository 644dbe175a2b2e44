//! Sign-in throttling: failed attempts are counted per client address and
//! per account in fixed windows (past the limit they get 429; successes are
//! never limited), in this process's memory (a replica counts
//! its own; an attacker spread over replicas gets each one's allowance).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys tracked at once. Past it, expired entries are dropped; if none
/// have expired, a new key is refused rather than an old one forgotten, so a
/// flood of addresses cannot reset anyone's count.
const MAX_KEYS: usize = 100_000;

/// Failed attempts per key per window.
pub struct Throttle {
    limit: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    /// At most `limit` failures per key in each `window`.
    pub fn new(limit: u32, window: Duration) -> Throttle {
        Throttle { limit, window, failures: Mutex::new(HashMap::new()) }
    }

    /// Counts a failure for `key`: `Err(seconds to wait)` once `key` has more
    /// than its `limit` failures in the current window (or the table is full).
    pub fn fail(&self, key: &str) -> Result<(), u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if !failures.contains_key(key) && failures.len() >= MAX_KEYS {
            failures.retain(|_, (since, _)| now.duration_since(*since) < self.window);
            if failures.len() >= MAX_KEYS {
                return Err(self.window.as_secs());
            }
        }
        let entry = failures.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 > self.limit {
            return Err((self.window.saturating_sub(now.duration_since(entry.0))).as_secs().max(1));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_past_its_failures_and_others_are_not() {
        let throttle = Throttle::new(3, Duration::from_secs(600));
        for _ in 0..3 {
            throttle.fail("ip:1").unwrap();
        }
        let wait = throttle.fail("ip:1").unwrap_err();
        assert!((1..=600).contains(&wait), "{wait}");
        assert!(throttle.fail("ip:2").is_ok());
    }

    #[test]
    fn a_window_passing_clears_the_count() {
        let throttle = Throttle::new(1, Duration::from_millis(1));
        throttle.fail("k").unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(throttle.fail("k").is_ok());
    }
}
