//! The Server-Sent Events streams' event names and control payloads: a dashboard's stream
//! (`GET /api/stream/dashboard/{id}`) and one job's (`GET /api/v1/realtime/jobs/{jobId}`, whose data
//! events are in [`jobs`](crate::jobs)). Data events carry the WebSocket's messages.

use crate::data::TopicKind;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The names of a stream's events.
pub mod event {
    pub const SNAPSHOT: &str = "snapshot";
    pub const SERIES_UPDATE: &str = "series_update";
    pub const METRIC_UPDATE: &str = "metric_update";
    pub const EVENTS_UPDATE: &str = "events_update";
    pub const COLLECTION_UPDATE: &str = "collection_update";
    pub const GAP: &str = "gap";
    /// A widget's feed ended with an error (the WebSocket's `error` message, with its `widgetId`):
    /// the tenant's topic rules no longer let the user read its topic.
    pub const WIDGET_ERROR: &str = "widget_error";
    /// [`Heartbeat`](super::Heartbeat): the stream is alive, and how often it says so.
    pub const HEARTBEAT: &str = "heartbeat";
    /// [`Disconnect`](crate::close::Disconnect): the stream ends, and why.
    pub const CLOSE: &str = "close";
}

/// A dashboard stream's data events: each carries a WebSocket message; all but `widget_error`
/// move a position.
pub const DATA_EVENTS: [&str; 7] = [
    event::SNAPSHOT,
    event::SERIES_UPDATE,
    event::METRIC_UPDATE,
    event::EVENTS_UPDATE,
    event::COLLECTION_UPDATE,
    event::GAP,
    event::WIDGET_ERROR,
];

/// The events that say how the stream is, on both streams.
pub const CONTROL_EVENTS: [&str; 2] = [event::HEARTBEAT, event::CLOSE];

/// The event an update of a topic of `kind` travels as. A `metric_update` holds only the keys whose
/// value changed since the stream's previous event for that widget
/// ([`metric_changed`](crate::metric_changed)).
pub fn update_event(kind: TopicKind) -> &'static str {
    match kind {
        TopicKind::Series => event::SERIES_UPDATE,
        TopicKind::Metrics => event::METRIC_UPDATE,
        TopicKind::Events => event::EVENTS_UPDATE,
        TopicKind::Collection => event::COLLECTION_UPDATE,
    }
}

/// The data of a `heartbeat` event: sent as the stream opens, then every `every_ms`. A client
/// counts the stream as dead after `every_ms` plus [`SILENCE_SLACK`](crate::SILENCE_SLACK) without
/// any event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// The server's clock, in milliseconds since the Unix epoch.
    pub ts: i64,
    /// How often heartbeats come, in milliseconds.
    pub every_ms: u64,
}

/// How often a stream sends `heartbeat` unless the server is configured otherwise.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// The `retry:` a stream opens with: how long an `EventSource` waits before reconnecting by itself,
/// in milliseconds.
pub const RETRY_MS: u64 = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_reads_as_documented() {
        let beat: Heartbeat = serde_json::from_str(r#"{"ts":7,"everyMs":30000}"#).unwrap();
        assert_eq!(beat, Heartbeat { ts: 7, every_ms: 30_000 });
    }

    #[test]
    fn every_kind_has_its_own_update_event() {
        let kinds = [TopicKind::Series, TopicKind::Metrics, TopicKind::Events, TopicKind::Collection];
        let names: std::collections::BTreeSet<_> = kinds.into_iter().map(update_event).collect();
        assert_eq!(names.len(), 4);
        assert!(names.iter().all(|name| DATA_EVENTS.contains(name)));
    }
}
