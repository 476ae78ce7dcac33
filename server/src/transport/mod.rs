//! How updates reach browsers. One WebSocket endpoint today; SSE and polling join it later.

pub mod outbox;
pub mod registry;
pub mod ws;
