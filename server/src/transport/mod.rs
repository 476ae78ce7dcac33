//! How updates reach browsers: the WebSocket first, SSE and polling for networks that break it. All
//! three admit clients the same way (`admission`), end the same ways (`endings`) and drain the same
//! bounded outbox (`crate::outbox`, which the broker fills).

pub mod admission;
pub mod cursor;
pub mod dashboard_feeds;
pub mod endings;
pub mod job_stream;
pub mod poll;
pub mod registry;
pub mod sse;
pub mod sse_format;
pub mod sse_stream;
pub mod subscription_log;
pub mod write_pacer;
pub mod ws;
