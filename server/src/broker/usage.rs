//! What one tenant's topics cost the server: how many there are, and the bytes of their history and
//! state. Kept as counters the topics update as they change, so the broker can hold a tenant to its
//! budget without walking its topics.

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct TenantUsage {
    topics: AtomicUsize,
    history_bytes: AtomicUsize,
    state_bytes: AtomicUsize,
}

/// A tenant's usage at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub topics: usize,
    pub history_bytes: usize,
    pub state_bytes: usize,
    pub waiting: usize,
}

impl TenantUsage {
    pub fn topics(&self) -> usize {
        self.topics.load(Ordering::Relaxed)
    }

    pub fn history_bytes(&self) -> usize {
        self.history_bytes.load(Ordering::Relaxed)
    }

    pub fn state_bytes(&self) -> usize {
        self.state_bytes.load(Ordering::Relaxed)
    }

    pub fn topic_added(&self) {
        self.topics.fetch_add(1, Ordering::Relaxed);
    }

    /// A topic went, with what it held.
    pub fn topic_removed(&self, history_bytes: usize, state_bytes: usize) {
        self.topics.fetch_sub(1, Ordering::Relaxed);
        self.history_bytes.fetch_sub(history_bytes, Ordering::Relaxed);
        self.state_bytes.fetch_sub(state_bytes, Ordering::Relaxed);
    }

    /// One topic's history went from `before` to `after` bytes.
    pub fn history_resized(&self, before: usize, after: usize) {
        resize(&self.history_bytes, before, after);
    }

    /// One topic's state went from `before` to `after` bytes.
    pub fn state_resized(&self, before: usize, after: usize) {
        resize(&self.state_bytes, before, after);
    }

    pub fn snapshot(&self, waiting: usize) -> Usage {
        Usage { topics: self.topics(), history_bytes: self.history_bytes(), state_bytes: self.state_bytes(), waiting }
    }
}

fn resize(counter: &AtomicUsize, before: usize, after: usize) {
    if after >= before {
        counter.fetch_add(after - before, Ordering::Relaxed);
    } else {
        counter.fetch_sub(before - after, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizes_add_up_and_a_removed_topic_gives_everything_back() {
        let usage = TenantUsage::default();
        usage.topic_added();
        usage.history_resized(0, 500);
        usage.history_resized(500, 300);
        usage.state_resized(0, 70);
        assert_eq!(usage.snapshot(2), Usage { topics: 1, history_bytes: 300, state_bytes: 70, waiting: 2 });
        usage.topic_removed(300, 70);
        assert_eq!(usage.snapshot(0), Usage::default());
    }
}
