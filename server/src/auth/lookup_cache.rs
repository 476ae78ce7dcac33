//! A short-lived memory of what the store said about sessions and tenants, so that a reconnect
//! storm (thousands of sockets of the same sessions within seconds) does not queue thousands of
//! identical queries in front of everyone else's (a sign-in waits behind them in the pool).
//!
//! Every change this node makes (a logout, a live flag turned off) forgets the entry at once; an
//! answer read from the store is only remembered if nothing changed while it was being read (a
//! generation counter), so a lookup that raced with a logout can never put the old answer back.
//! Entries live `ttl`, which bounds how stale a change made elsewhere can be; the map is bounded.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Entries kept at most; past it the map is emptied (what was dropped is merely read again).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct LookupCache<K, V> {
    ttl: Duration,
    generation: AtomicU64,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

/// Where a lookup began, for [`LookupCache::put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Began(u64);

impl<K: Eq + Hash + Clone, V: Clone> LookupCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, generation: AtomicU64::new(0), entries: Mutex::default() }
    }

    /// The remembered answer, if fresh; otherwise where the lookup that will replace it began.
    pub fn get(&self, key: &K, now: Instant) -> Result<V, Began> {
        let began = Began(self.generation.load(Ordering::SeqCst));
        let entries = self.entries.lock().expect("cache lock");
        match entries.get(key) {
            Some((at, value)) if now.duration_since(*at) < self.ttl => Ok(value.clone()),
            _ => Err(began),
        }
    }

    /// Remembers what the store answered, unless anything changed since the lookup `began`.
    pub fn put(&self, key: K, value: V, began: Began, now: Instant) {
        let mut entries = self.entries.lock().expect("cache lock");
        if self.generation.load(Ordering::SeqCst) != began.0 {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (now, value));
    }

    /// Something about `key` changed: forget it, and keep lookups already under way from
    /// remembering what they read.
    pub fn changed(&self, key: &K) {
        let mut entries = self.entries.lock().expect("cache lock");
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(key);
    }

    /// Anything may have changed: forget everything, as [`LookupCache::changed`] does one key.
    pub fn clear(&self) {
        let mut entries = self.entries.lock().expect("cache lock");
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_remembered_for_the_ttl() {
        let cache = LookupCache::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let began = cache.get(&"s", t0).unwrap_err();
        cache.put("s", 7, began, t0);
        assert_eq!(cache.get(&"s", t0 + Duration::from_millis(999)), Ok(7));
        assert!(cache.get(&"s", t0 + Duration::from_secs(1)).is_err(), "stale");
    }

    #[test]
    fn a_change_forgets_and_a_lookup_that_raced_with_it_is_not_remembered() {
        let cache = LookupCache::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let began = cache.get(&"s", t0).unwrap_err();
        cache.put("s", "valid", began, t0);
        cache.changed(&"s");
        assert!(cache.get(&"s", t0).is_err(), "forgotten at once");
        let raced = cache.get(&"t", t0).unwrap_err(); // read from the store before the logout ...
        cache.changed(&"t"); // ... which happened meanwhile
        cache.put("t", "valid", raced, t0);
        assert!(cache.get(&"t", t0).is_err(), "the old answer was not put back");
    }
}
