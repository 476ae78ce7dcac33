//! livedash's wire contract, in one place.
//!
//! Everything a client and the server must agree on lives here, and nowhere else: the WebSocket
//! messages ([`messages`]), the items a topic carries ([`data`]), the error codes of both the
//! WebSocket and the HTTP API ([`error_code`]), the close codes and what each tells a client to do
//! ([`close`]), the SSE event names ([`sse`]), the job stream's payloads ([`jobs`]), a tenant's live modes ([`live_mode`]), roles ([`role`]), topic rules ([`topic_rules`]), collection notifications ([`collection_notify`]), thresholds and alert states ([`thresholds`]), the server-owned
//! topics ([`topics`]), a stored dashboard's shape ([`dashboard`]) and the reconnect curve both the
//! browser and the server's Redis link follow ([`backoff`]).
//!
//! The crate depends on serde alone, so the server, the browser bundle (wasm32) and the load
//! generator compile the very same definitions: a message one side encodes is by construction one
//! the other decodes. `docs/protocol.md` is the human-readable version; `tests/docs.rs` checks that
//! it names every message type, error code, close code and SSE event defined here.
//!
//! The `openapi` feature, which only the server turns on, adds utoipa's `ToSchema` to the types the
//! HTTP API reads and answers, for its OpenAPI document; the browser's build never has it.

pub mod backoff;
pub mod close;
pub mod collection_notify;
pub mod dashboard;
pub mod data;
pub mod display;
pub mod error_code;
pub mod jobs;
pub mod live_mode;
pub mod messages;
#[cfg(all(test, feature = "openapi"))]
mod openapi_tests;
pub mod role;
pub mod sse;
pub mod thresholds;
pub mod topic_rules;
pub mod topics;

pub use data::*;
pub use error_code::{ErrorBody, ErrorCode, LimitReached};
pub use live_mode::LiveMode;
pub use messages::*;
pub use role::Role;
