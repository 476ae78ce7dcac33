//! What the server keeps about every open live connection, apart from the requests that opened them:
//! the registry a logout or a change of live mode closes them by (and the rule of what each mode lets
//! in), the keys that sign SSE and polling
//! cursors, and the count of job streams per user.
//!
//! Kept out of `transport` so that the application state can hold these without importing the
//! request handlers that read the state: `state` → `connections`, `transport` → `state` and
//! `connections`, never back.

pub mod cursor;
pub mod job_streams;
pub mod live_mode_gate;
pub mod registry;
