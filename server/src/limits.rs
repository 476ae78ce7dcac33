//! Rate limits: a token bucket, and a set of them keyed by IP address or API key.
//!
//! Pure apart from taking the current time as an argument, so the tests drive the clock.

use std::{collections::HashMap, hash::Hash, sync::Mutex, time::Instant};

/// Allows `burst` events at once and `per_second` events per second on average.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(per_second: f64, burst: f64, now: Instant) -> Self {
        Self { per_second, burst, tokens: burst, last: now }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Seconds until a token is available (0 if one is).
    pub fn wait_secs(&self) -> f64 {
        if self.tokens >= 1.0 { 0.0 } else { (1.0 - self.tokens) / self.per_second }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.last = now;
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// One bucket per key. Keys whose bucket has refilled completely are forgotten when the map grows,
/// so a flood of distinct keys cannot grow it without bound.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, TokenBucket>>,
}

/// Buckets kept before idle ones are pruned.
const PRUNE_AT: usize = 10_000;

impl<K: Eq + Hash + Clone> KeyedLimiter<K> {
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self { per_second, burst, buckets: Mutex::default() }
    }

    /// `Ok` if `key` may go ahead now; otherwise `Err` with the seconds to wait.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), f64> {
        let mut buckets = self.buckets.lock().expect("limiter lock");
        if buckets.len() >= PRUNE_AT && !buckets.contains_key(key) {
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        let bucket = buckets.entry(key.clone()).or_insert_with(|| TokenBucket::new(self.per_second, self.burst, now));
        if bucket.try_take(now) { Ok(()) } else { Err(bucket.wait_secs()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3.0, t0);
        assert_eq!((0..5).filter(|_| bucket.try_take(t0)).count(), 3, "the burst");
        assert!((bucket.wait_secs() - 0.5).abs() < 1e-9);
        assert!(bucket.try_take(t0 + Duration::from_millis(500)), "one more after half a second");
        assert!(!bucket.try_take(t0 + Duration::from_millis(600)));
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..5).filter(|_| bucket.try_take(later)).count(), 3, "refills only up to the burst");
    }

    #[test]
    fn keys_are_limited_independently() {
        let t0 = Instant::now();
        let limiter = KeyedLimiter::new(1.0, 2.0);
        assert!(limiter.check(&"a", t0).is_ok());
        assert!(limiter.check(&"a", t0).is_ok());
        assert!(limiter.check(&"a", t0).is_err());
        assert!(limiter.check(&"b", t0).is_ok());
    }

    #[test]
    fn idle_keys_are_pruned_when_the_map_is_large() {
        let t0 = Instant::now();
        let limiter = KeyedLimiter::new(1.0, 1.0);
        for i in 0..PRUNE_AT {
            limiter.check(&i, t0).unwrap();
        }
        let later = t0 + Duration::from_secs(5);
        limiter.check(&usize::MAX, later).unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1, "every refilled bucket went");
    }
}
