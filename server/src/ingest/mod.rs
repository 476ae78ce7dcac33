//! Where data comes from. Today: the built-in demo feed.

pub mod demo_feed;
