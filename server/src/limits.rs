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
/// and past a hard cap (a flood of distinct keys faster than buckets refill) arbitrary ones are
/// too, so the map stays bounded whatever the keys; a forgotten key merely starts with a full
/// bucket again.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<Buckets<K>>,
}

#[derive(Debug)]
struct Buckets<K> {
    map: HashMap<K, TokenBucket>,
    /// Size at which the next prune happens: it doubles with what a prune could not remove, so
    /// pruning costs O(1) per new key however the keys come.
    prune_at: usize,
}

/// Buckets kept before idle ones are pruned.
const PRUNE_AT: usize = 10_000;
/// Buckets kept at most; past it, arbitrary ones go until half are left.
const HARD_CAP: usize = 4 * PRUNE_AT;

impl<K: Eq + Hash + Clone> KeyedLimiter<K> {
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self { per_second, burst, buckets: Mutex::new(Buckets { map: HashMap::new(), prune_at: PRUNE_AT }) }
    }

    /// `Ok` if `key` may go ahead now; otherwise `Err` with the seconds to wait.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), f64> {
        let mut buckets = self.buckets.lock().expect("limiter lock");
        if buckets.map.len() >= buckets.prune_at && !buckets.map.contains_key(key) {
            buckets.prune(now);
        }
        let bucket =
            buckets.map.entry(key.clone()).or_insert_with(|| TokenBucket::new(self.per_second, self.burst, now));
        if bucket.try_take(now) { Ok(()) } else { Err(bucket.wait_secs()) }
    }

    /// `Some(seconds to wait)` if `key` has no token left now; takes nothing.
    pub fn blocked(&self, key: &K, now: Instant) -> Option<f64> {
        let mut buckets = self.buckets.lock().expect("limiter lock");
        let bucket = buckets.map.get_mut(key)?;
        bucket.refill(now);
        (bucket.tokens < 1.0).then(|| bucket.wait_secs())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().expect("limiter lock").map.len()
    }
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    fn prune(&mut self, now: Instant) {
        self.map.retain(|_, bucket| !bucket.is_full(now));
        if self.map.len() >= HARD_CAP {
            let excess: Vec<K> = self.map.keys().take(self.map.len() - HARD_CAP / 2).cloned().collect();
            for key in excess {
                self.map.remove(&key);
            }
        }
        self.prune_at = (2 * self.map.len()).clamp(PRUNE_AT, HARD_CAP);
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
        assert_eq!(limiter.len(), 1, "every refilled bucket went");
    }

    #[test]
    fn a_flood_of_distinct_keys_cannot_grow_the_map_past_its_cap() {
        let t0 = Instant::now();
        let limiter = KeyedLimiter::new(0.001, 1.0); // nothing refills during the test
        for i in 0..3 * HARD_CAP {
            limiter.check(&i, t0).unwrap();
        }
        assert!(limiter.len() <= HARD_CAP, "{}", limiter.len());
    }

    #[test]
    fn blocked_tells_without_taking() {
        let t0 = Instant::now();
        let limiter = KeyedLimiter::new(1.0, 1.0);
        assert_eq!(limiter.blocked(&"a", t0), None, "unknown keys are not blocked");
        limiter.check(&"a", t0).unwrap();
        assert!(limiter.blocked(&"a", t0).is_some_and(|wait| wait > 0.9));
        assert_eq!(limiter.blocked(&"a", t0 + Duration::from_secs(1)), None);
        assert!(limiter.check(&"a", t0 + Duration::from_secs(1)).is_ok(), "blocked() took nothing");
    }
}
