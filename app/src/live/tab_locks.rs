//! Which tabs of a shared connection are gone, judged by the Web Locks they hold. Pure: `shared.rs`
//! reads the locks (`navigator.locks.query()`) and does what this decides.
//!
//! Every tab holds a lock named after it for as long as it lives; the browser lets go of it when the
//! tab closes or crashes, which is how the hub learns of tabs that left without saying so. Two races
//! make a live tab look gone, and both would cut a tab off its updates:
//! - a tab that joins while the locks are being read holds no lock yet in that reading: only tabs
//!   the hub knew before it asked can be judged;
//! - a tab's lock request can still be waiting to be granted (`pending`): asked for is alive.

use super::tab_id::TabId;
use std::collections::BTreeSet;

/// The name of the lock a tab holds while it lives.
pub fn lock_name(user: &str, tab: &str) -> String {
    format!("livedash-tab:{user}:{tab}")
}

/// The tabs to drop: known before the locks were read (`known_before`), still subscribed now
/// (`now`), and holding no lock and asking for none (`locks`: names held or pending).
pub fn gone(user: &str, known_before: BTreeSet<TabId>, now: &BTreeSet<TabId>, locks: &BTreeSet<String>) -> Vec<TabId> {
    known_before.into_iter().filter(|tab| now.contains(tab) && !locks.contains(&lock_name(user, tab))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "acme/ops@acme.test";

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_tab_without_its_lock_is_gone() {
        let tabs = set(&["a", "b"]);
        let locks = set(&[&lock_name(USER, "a")]);
        assert_eq!(gone(USER, tabs.clone(), &tabs, &locks), vec!["b".to_string()]);
    }

    #[test]
    fn a_tab_that_joined_while_the_locks_were_read_is_not_judged() {
        // The reading began with only `a` subscribed; `c` joined before it came back, its lock not
        // granted yet (or not even asked for).
        let known = set(&["a"]);
        let now = set(&["a", "c"]);
        let locks = set(&[&lock_name(USER, "a")]);
        assert!(gone(USER, known, &now, &locks).is_empty());
    }

    #[test]
    fn a_tab_that_left_meanwhile_is_not_dropped_twice() {
        let known = set(&["a", "b"]);
        let now = set(&["a"]);
        let locks = set(&[&lock_name(USER, "a")]);
        assert!(gone(USER, known, &now, &locks).is_empty(), "b already left: nothing to do");
    }

    #[test]
    fn locks_are_per_user() {
        let tabs = set(&["a"]);
        let locks = set(&[&lock_name("globex/bob@globex.test", "a")]);
        assert_eq!(gone(USER, tabs.clone(), &tabs, &locks), vec!["a".to_string()]);
    }
}
