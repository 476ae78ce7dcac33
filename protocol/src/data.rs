//! What topics carry: the items of a snapshot's or update's `series` array, by topic kind, and
//! where a message sits in its topic's log ([`Meta`]).

use serde::{Deserialize, Serialize};

/// One element of a snapshot's or update's `series` array. Every kind keeps the contract's
/// `series` field; what its items look like follows `meta.kind`. The shapes are told apart by their
/// required fields, tried in this order.
// The derived `oneOf` holds for every item serde writes: each lacks a field that every other variant
// requires (a point has no `key`, `id` or `op`; a metric no `ts` or `op`; an event no `value` or `op`;
// a change no `ts` or `value`). An object with the fields of two would match both; serde reads it as
// the first and never writes one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Item {
    /// `series`: a chart point.
    Point(Point),
    /// `metrics`: one KPI's latest value.
    Metric(Metric),
    /// `events`: a notification, job update, log line or activity.
    Event(Event),
    /// `collection`: a document created, updated or deleted.
    Change(Change),
}

impl Item {
    pub fn as_point(&self) -> Option<&Point> {
        match self {
            Item::Point(p) => Some(p),
            _ => None,
        }
    }
}

/// One point of a `series` topic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Point {
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    pub value: f64,
}

/// One KPI of a `metrics` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metric {
    /// The KPI's name, unique within the topic.
    pub key: String,
    pub value: f64,
}

/// One entry of an `events` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique within the topic; the server assigns one when the publisher does not.
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    /// What happened, e.g. `notification`, `system:error`, `maintenance`, `job`, `activity`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// How it is shown (and whether it toasts, by each user's choice).
    pub level: Level,
    pub title: String,
    /// More text, below the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// For `system:error`: how bad it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// For `maintenance`: when it is planned, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<i64>,
    /// Anything else the publisher attached (a small JSON object, e.g. a job's id and status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Event {
    /// An event that is only a title: no body, severity, schedule or data.
    pub fn titled(id: String, ts: i64, event_type: &str, level: Level, title: String) -> Self {
        Self {
            id,
            ts,
            event_type: event_type.to_owned(),
            level,
            title,
            body: None,
            severity: None,
            scheduled_at: None,
            data: None,
        }
    }
}

/// How a notification is shown: its colour, and whether it raises a toast (each user chooses which
/// levels do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    Info,
    Success,
    Warning,
    Error,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Info, Level::Success, Level::Warning, Level::Error];

    /// The level as on the wire; also its CSS class suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Success => "success",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// How bad a `system:error` event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// One change of a `collection` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    pub op: ChangeOp,
    /// The document's id, unique within the topic.
    pub id: String,
    /// The whole document after an upsert; absent for a delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What a change did to its document: `upsert` (created or replaced it) or `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Upsert,
    Delete,
}

/// Where a snapshot or update sits in its topic's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The topic's name, relative to the tenant.
    pub topic: String,
    pub kind: TopicKind,
    /// Identifies one life of the topic's log; a new epoch means older offsets mean nothing.
    pub epoch: String,
    /// Position of this message in the log (for a snapshot: of the last message it includes).
    pub offset: u64,
    /// Opaque; the client stores it and sends it back to resume after this message.
    pub resume_token: String,
}

#[cfg(any(test, feature = "testing"))]
impl Meta {
    /// A series topic `t` at `offset` of `epoch`, whose resume token is `{epoch}.{offset}` (tests).
    pub fn at(epoch: &str, offset: u64) -> Self {
        Self {
            topic: "t".into(),
            kind: TopicKind::Series,
            epoch: epoch.into(),
            offset,
            resume_token: format!("{epoch}.{offset}"),
        }
    }
}

/// How a topic's payloads behave (docs/protocol.md, "Topic kinds and their items").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TopicKind {
    /// Chart points: the snapshot is the last N points, a delta appends points.
    Series,
    /// A KPI map: the snapshot is the latest value per key, a delta the keys that changed.
    Metrics,
    /// Notifications, job logs, activity: the snapshot is the last N events, a delta appends.
    Events,
    /// Documents: the snapshot is every current document, a delta the changes.
    Collection,
}

impl TopicKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TopicKind::Series => "series",
            TopicKind::Metrics => "metrics",
            TopicKind::Events => "events",
            TopicKind::Collection => "collection",
        }
    }
}

/// Whether a metric's new value is a change from `old`, the one rule for every place that asks
/// (the SSE stream's `metric_update`, the browser's KPI tiles): bit for bit, so that a NaN that
/// stays NaN is no change, and 0.0 → −0.0 is one.
pub fn metric_changed(old: Option<f64>, new: f64) -> bool {
    old.is_none_or(|old| old.to_bits() != new.to_bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_changes_bit_for_bit() {
        assert!(metric_changed(None, 1.0), "a first value is news");
        assert!(!metric_changed(Some(1.0), 1.0));
        assert!(metric_changed(Some(1.0), 1.5));
        assert!(!metric_changed(Some(f64::NAN), f64::NAN), "NaN staying NaN is no change");
        assert!(metric_changed(Some(0.0), -0.0), "the sign of zero is shown");
    }
}
