//! The Kafka bridge: consumes the Kafka topics a mapping file names and publishes what their
//! messages say to livedash topics, through the engine like any publisher.
//!
//! - [`mapping`]: the mapping file, parsed strictly and checked whole before anything starts.
//! - [`normalise`]: one message into dashboard items, or the reason it is refused (pure).

pub mod mapping;
pub mod normalise;
