//! The wall clock, in the two units the server stores: milliseconds for messages (a message's `ts`,
//! presence times) and seconds for the database's timestamp columns (sessions, keys, audit).
//! Everything that asks the time of day asks here, so a test or a future fake clock has one place
//! to look.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Seconds since the Unix epoch, the unit of every timestamp column.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}
