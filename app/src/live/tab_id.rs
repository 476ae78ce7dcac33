//! A tab's name on the channel the tabs of a browser share (`relay`, `election`, `tab_locks`):
//! random, new with every page, so a reloaded tab is a new one.

pub type TabId = String;

/// A new tab's name, from the time and a random number (pure: the browser gives both).
pub fn new_tab_id(now_ms: f64, random: f64) -> TabId {
    format!("{:x}{:x}", now_ms as u64, (random * 1e12) as u64)
}
