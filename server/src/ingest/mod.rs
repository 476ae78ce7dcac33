//! Where data comes from: the built-in demo feed, and the validation every publish goes through
//! (the rules on each item's fields, whatever brought it, in [`item_rules`]).

pub mod demo_feed;
pub mod idempotency;
pub mod item_rules;
pub mod publish_body;
pub mod publish_schema;
