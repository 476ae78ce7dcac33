//! The Kafka bridge: consumes the Kafka topics a mapping file names and publishes what their
//! messages say to livedash topics, through the engine like any publisher.
//!
//! - [`mapping`]: the mapping file, parsed strictly and checked whole before anything starts.
//! - [`normalise`]: one message into dashboard items, or the reason it is refused (pure).
//! - [`consumer`]: the consumer group, the bounded channel with its pauses, and the publisher.
//! - [`recent`]: the message keys seen lately, for routes that name a `dedupe_key`.
//!
//! It runs inside the server (`LIVEDASH_KAFKA_BRIDGE=bridge.toml`), so it publishes through the
//! node's engine: alone in memory, or over Redis on several nodes, where the bridges of every node
//! share the partitions through their consumer group.

pub mod consumer;
pub mod mapping;
pub mod normalise;
pub mod recent;
