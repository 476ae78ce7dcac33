//! How updates reach browsers: the WebSocket first, SSE and polling for networks that break it. All
//! three admit clients the same way (`admission`); the WebSocket and both SSE streams live the same
//! life (`live_connection`: seat, subscriptions, endings, audit) and drain the same bounded outbox
//! (`crate::outbox`, which the broker fills). What the transports keep about every open connection
//! (the registry, cursor keys, job-stream counts) is in `crate::connections`, which knows nothing of
//! requests.

pub mod admission;
pub mod dashboard_feeds;
pub mod endings;
pub mod job_stream;
pub mod live_connection;
pub mod poll;
pub mod sse;
pub mod sse_format;
pub mod sse_stream;
pub mod subscription_log;
pub mod ws;
