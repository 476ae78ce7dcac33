//! Reconnect delays: exponential, capped, with jitter.
//!
//! Jitter matters more than the curve: when a node restarts, every browser it served loses its socket
//! in the same millisecond, and without jitter they would all come back in the same millisecond too.
//! The random input is a parameter so this stays a pure function the host tests can drive.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Upper bound for any single delay, jitter included.
    pub max: Duration,
    /// Growth per failed attempt.
    pub factor: f64,
    /// Fraction of the delay that is randomised (0.0: none, 0.5: ±50 %).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_secs(1), max: Duration::from_secs(30), factor: 2.0, jitter: 0.2 }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1-based); `random` is uniform in `[0, 1)`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let base = self.initial.as_secs_f64() * self.factor.powi(exponent);
        let spread = base * self.jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((base + spread).clamp(0.0, self.max.as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> Backoff {
        Backoff { jitter: 0.0, ..Backoff::default() }
    }

    #[test]
    fn doubles_from_one_second_and_caps_at_thirty() {
        let secs: Vec<u64> = (1..=8).map(|a| no_jitter().delay(a, 0.5).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn jitter_stays_within_its_band_and_under_the_cap() {
        let b = Backoff::default();
        for attempt in 1..=12 {
            let low = b.delay(attempt, 0.0).as_secs_f64();
            let high = b.delay(attempt, 0.999_999).as_secs_f64();
            let base = 2f64.powi(attempt as i32 - 1); // 1 s, doubling
            let cap = b.max.as_secs_f64();
            assert!((low - (base * 0.8).min(cap)).abs() < 1e-6, "attempt {attempt}: 20 % below at the least");
            assert!((high - (base * 1.2).min(cap)).abs() < 1e-3, "attempt {attempt}: 20 % above, under the cap");
            assert!(low <= high && high <= cap, "attempt {attempt}");
        }
        assert_ne!(b.delay(3, 0.1), b.delay(3, 0.9), "jitter spreads clients apart");
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        assert_eq!(no_jitter().delay(u32::MAX, 0.5), Duration::from_secs(30));
    }
}
