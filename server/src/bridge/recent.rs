//! The message keys a route has seen lately (`dedupe_key`), to drop a message a producer sent
//! twice (at two Kafka offsets, so the positions cannot tell). Bounded: the oldest keys are
//! forgotten first, so a duplicate is caught within the last [`RecentKeys::new`]'s `capacity`
//! messages of its route.

use std::collections::{HashSet, VecDeque};

#[derive(Debug)]
pub struct RecentKeys {
    capacity: usize,
    order: VecDeque<String>,
    keys: HashSet<String>,
}

impl RecentKeys {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), order: VecDeque::new(), keys: HashSet::new() }
    }

    /// Remembers `key`; `false` when it was seen already.
    pub fn first_time(&mut self, key: &str) -> bool {
        if self.keys.contains(key) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.keys.remove(&oldest);
        }
        self.order.push_back(key.to_owned());
        self.keys.insert(key.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::RecentKeys;

    #[test]
    fn a_key_seen_lately_is_a_duplicate_and_old_ones_are_forgotten() {
        let mut recent = RecentKeys::new(2);
        assert!(recent.first_time("a"));
        assert!(!recent.first_time("a"));
        assert!(recent.first_time("b"));
        assert!(recent.first_time("c"), "a is forgotten now");
        assert!(recent.first_time("a"));
        assert_eq!((recent.order.len(), recent.keys.len()), (2, 2), "bounded");
    }
}
