//! Small pieces of page chrome shared by every page.

mod status_pill;

pub use status_pill::StatusPill;
