//! The WebSocket wire protocol, shared by the server and the browser client.
//!
//! Both sides compile this one module, so a message the server encodes is by construction a message
//! the client can decode. Frames are JSON text; field names are camelCase because the contract the
//! project started from (and any JavaScript consumer) speaks camelCase. `docs/protocol.md` is the
//! human-readable version of this file and must change with it.

use serde::{Deserialize, Serialize};

/// A message from the browser to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum ClientMessage {
    /// Start receiving `topic` for `widget_id`: a snapshot first, then every later update in order.
    Subscribe {
        widget_id: String,
        topic: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_token: Option<String>,
    },
    /// Stop receiving updates for `widget_id`.
    Unsubscribe { widget_id: String },
    /// Manual refresh: send a fresh snapshot for `widget_id`.
    RequestUpdate { widget_id: String },
    /// Restore every subscription of an earlier connection, from its connection resume token.
    Resume { token: String },
    /// Application-level heartbeat; the server answers `pong`.
    Ping,
    /// What the user is doing, for the tenant's active-users view (`presence/online`).
    Activity { action: ActivityAction, detail: String },
}

/// What a user did, reported by the client in `activity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityAction {
    /// Opened a dashboard; `detail` is its title.
    OpenDashboard,
    /// Changed a widget's mode; `detail` says which and to what.
    ChangeMode,
}

impl ActivityAction {
    /// How the active-users view words it, before the detail.
    pub fn verb(self) -> &'static str {
        match self {
            ActivityAction::OpenDashboard => "opened",
            ActivityAction::ChangeMode => "set",
        }
    }
}

/// The server-owned topics of every tenant that say who is online (a collection) and what users do
/// (events); see docs/protocol.md. Publishers cannot write under `presence/`.
pub const PRESENCE_ONLINE_TOPIC: &str = "presence/online";
pub const PRESENCE_ACTIVITY_TOPIC: &str = "presence/activity";

/// The server-owned topic of every tenant that announces dashboard edits (a collection: one
/// [`DashboardOutline`](crate::dashboard::DashboardOutline) per dashboard, id = the dashboard's
/// id); see docs/protocol.md.
pub const DASHBOARD_EDITS_TOPIC: &str = "dashboards/edits";

/// Where the server alone publishes: publishers and the Kafka bridge are refused here.
pub const SERVER_OWNED_PREFIXES: [&str; 2] = ["presence/", "dashboards/"];

/// Longest `detail` of an `activity` message.
pub const MAX_ACTIVITY_DETAIL: usize = 120;

/// A message from the server to the browser.
///
/// Updates carry no `type` field (`{widgetId, ts, series, meta}`, as in the original contract), so
/// the enum is untagged: every other message has a `type` and is tried first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerMessage {
    Control(ControlMessage),
    Update(Update),
}

/// Every server message that has a `type` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum ControlMessage {
    /// First message on every connection.
    Welcome {
        connection_id: String,
        /// Send it back in `resume` on a later connection to restore this one's subscriptions.
        resume_token: String,
        /// How often the client should send `ping`, in milliseconds.
        heartbeat_interval_ms: u64,
        /// Silence after which the server closes the connection, in milliseconds.
        idle_timeout_ms: u64,
        limits: Limits,
    },
    /// The topic's current state for one subscription; later updates continue from `meta.offset`.
    Snapshot { widget_id: String, ts: i64, series: Vec<Item>, meta: Meta },
    /// Updates were lost for this subscription; a `snapshot` follows and replaces the client's state.
    Gap { widget_id: String, reason: String },
    /// A request was refused or could not be understood. The connection stays open.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        widget_id: Option<String>,
    },
    /// Answer to `ping`, with a fresh connection resume token (current subscriptions and positions).
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_token: Option<String>,
    },
}

/// The limits a connection works under, announced in `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub max_subscriptions: usize,
    pub max_messages_per_sec: usize,
    pub max_frame_bytes: usize,
}

/// New data for one subscription, in order, exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    pub widget_id: String,
    /// When the server accepted the message, in milliseconds since the Unix epoch.
    pub ts: i64,
    /// What this message changes; the items' shape follows `meta.kind`.
    pub series: Vec<Item>,
    pub meta: Meta,
}

/// One element of a snapshot's or update's `series` array. Every kind keeps the contract's
/// `series` field; what its items look like follows `meta.kind`. The shapes are told apart by their
/// required fields, tried in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
pub struct Point {
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    pub value: f64,
}

/// One KPI of a `metrics` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
}

/// One entry of an `events` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique within the topic; the server assigns one when the publisher does not.
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    /// What happened, e.g. `notification`, `system:error`, `maintenance`, `job`, `activity`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub level: Level,
    pub title: String,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// One change of a `collection` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub op: ChangeOp,
    /// The document's id, unique within the topic.
    pub id: String,
    /// The whole document after an upsert; absent for a delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Upsert,
    Delete,
}

/// Where a snapshot or update sits in its topic's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub topic: String,
    pub kind: TopicKind,
    /// Identifies one life of the topic's log; a new epoch means older offsets mean nothing.
    pub epoch: String,
    /// Position of this message in the log (for a snapshot: of the last message it includes).
    pub offset: u64,
    /// Opaque; the client stores it and sends it back to resume after this message.
    pub resume_token: String,
}

#[cfg(test)]
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

/// How a topic's payloads behave (see DESIGN.md, "Topics and payload kinds").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// Machine-readable reason carried by an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not JSON or not a known message.
    BadMessage,
    /// The topic name is not valid (see docs/protocol.md for the grammar).
    BadTopic,
    /// A limit was reached (subscriptions per connection, topics, documents …).
    LimitExceeded,
    /// The client sends messages faster than allowed; this one was ignored.
    RateLimited,
    /// A `resume` token that is forged, expired or another user's: subscribe afresh instead.
    BadResumeToken,
    /// The widget id is already subscribed on this connection.
    DuplicateSubscription,
    /// The widget id is not subscribed on this connection.
    NotSubscribed,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::BadTopic => "bad_topic",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::BadResumeToken => "bad_resume_token",
            ErrorCode::DuplicateSubscription => "duplicate_subscription",
            ErrorCode::NotSubscribed => "not_subscribed",
        }
    }
}

/// The answer of `GET /api/v1/dashboards/{id}/updates` (the polling transport): what changed for
/// each widget since the request's position, and the cursor to ask from next time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollAnswer {
    pub cursor: String,
    /// Only the widgets that have something new.
    pub widgets: Vec<PollWidget>,
}

/// One widget's part of a [`PollAnswer`]: the messages a WebSocket would have carried, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollWidget {
    pub widget_id: String,
    pub messages: Vec<ServerMessage>,
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

impl ClientMessage {
    /// The message's `type`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Unsubscribe { .. } => "unsubscribe",
            ClientMessage::RequestUpdate { .. } => "request_update",
            ClientMessage::Ping => "ping",
            ClientMessage::Resume { .. } => "resume",
            ClientMessage::Activity { .. } => "activity",
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> Meta {
        Meta {
            topic: "sales/orders".into(),
            kind: TopicKind::Series,
            epoch: "e1".into(),
            offset: 7,
            resume_token: "tok".into(),
        }
    }

    #[test]
    fn activity_reads_as_documented() {
        let msg: ClientMessage = serde_json::from_value(json!({
            "type": "activity", "action": "open_dashboard", "detail": "Operations"
        }))
        .unwrap();
        assert_eq!(msg, ClientMessage::Activity { action: ActivityAction::OpenDashboard, detail: "Operations".into() });
        assert_eq!(msg.kind(), "activity");
    }

    #[test]
    fn subscribe_uses_the_contract_field_names() {
        let msg: ClientMessage = serde_json::from_value(json!({
            "type": "subscribe", "widgetId": "w1", "topic": "sales/orders", "resumeToken": "t"
        }))
        .unwrap();
        assert_eq!(
            msg,
            ClientMessage::Subscribe {
                widget_id: "w1".into(),
                topic: "sales/orders".into(),
                resume_token: Some("t".into())
            }
        );
        let without_token: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","widgetId":"w1","topic":"t"}"#).unwrap();
        assert!(matches!(without_token, ClientMessage::Subscribe { resume_token: None, .. }));
    }

    #[test]
    fn an_update_has_no_type_field_and_round_trips() {
        let update = ServerMessage::Update(Update {
            widget_id: "w1".into(),
            ts: 1000,
            series: vec![Item::Point(Point { ts: 1000, value: 2.5 })],
            meta: meta(),
        });
        let value: serde_json::Value = serde_json::from_str(&update.to_json()).unwrap();
        assert_eq!(
            value,
            json!({
                "widgetId": "w1", "ts": 1000, "series": [{"ts": 1000, "value": 2.5}],
                "meta": {"topic": "sales/orders", "kind": "series", "epoch": "e1", "offset": 7,
                         "resumeToken": "tok"}
            })
        );
        let back: ServerMessage = serde_json::from_value(value).unwrap();
        assert_eq!(back, update);
    }

    #[test]
    fn typed_messages_decode_as_control_not_as_updates() {
        let snapshot = ServerMessage::Control(ControlMessage::Snapshot {
            widget_id: "w1".into(),
            ts: 5,
            series: vec![],
            meta: meta(),
        });
        let json = snapshot.to_json();
        assert!(json.contains(r#""type":"snapshot""#));
        assert_eq!(serde_json::from_str::<ServerMessage>(&json).unwrap(), snapshot);

        let pong: ServerMessage = serde_json::from_str(r#"{"type":"pong"}"#).unwrap();
        assert_eq!(pong, ServerMessage::Control(ControlMessage::Pong { resume_token: None }));
    }

    #[test]
    fn each_kind_of_item_decodes_as_itself() {
        let items: Vec<Item> = serde_json::from_value(json!([
            {"ts": 1, "value": 2.0},
            {"key": "orders", "value": 3.0},
            {"id": "e1", "ts": 5, "type": "system:error", "level": "error", "title": "Disk full",
             "severity": "high"},
            {"op": "upsert", "id": "d1", "doc": {"name": "A"}},
            {"op": "delete", "id": "d2"}
        ]))
        .unwrap();
        assert!(matches!(items[0], Item::Point(Point { ts: 1, .. })));
        assert!(matches!(&items[1], Item::Metric(m) if m.key == "orders"));
        assert!(
            matches!(&items[2], Item::Event(e) if e.severity == Some(Severity::High) && e.event_type == "system:error")
        );
        assert!(matches!(&items[3], Item::Change(c) if c.op == ChangeOp::Upsert && c.doc.is_some()));
        assert!(matches!(&items[4], Item::Change(c) if c.op == ChangeOp::Delete && c.doc.is_none()));
        let round_trip: Vec<Item> = serde_json::from_str(&serde_json::to_string(&items).unwrap()).unwrap();
        assert_eq!(round_trip, items);
    }

    #[test]
    fn unknown_client_message_types_are_rejected() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"shutdown"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"widgetId":"w"}"#).is_err());
    }
}
