//! Where data comes from: the built-in demo feed, and the validation every publish goes through.

pub mod demo_feed;
pub mod idempotency;
pub mod publish_body;
pub mod publish_schema;
