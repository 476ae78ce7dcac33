//! The WebSocket messages: what a browser sends ([`ClientMessage`]) and what the server answers
//! ([`ServerMessage`]), and the polling transport's answer, which carries the same messages.
//!
//! Frames are JSON text; field names are camelCase because the contract the project started from
//! (and any JavaScript consumer) speaks camelCase.

use crate::data::{Item, Meta};
use crate::error_code::ErrorCode;
use crate::live_mode::LiveMode;
use serde::{Deserialize, Serialize};
use std::time::Duration;

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

/// Longest `widgetId`, in bytes (the shortest is 1).
pub const MAX_WIDGET_ID_LEN: usize = 128;

/// Longest `detail` of an `activity` message.
pub const MAX_ACTIVITY_DETAIL: usize = 120;

/// A message from the server to the browser.
///
/// Updates carry no `type` field (`{widgetId, ts, series, meta}`, as in the original contract), so
/// the enum is untagged: every other message has a `type` and is tried first.
///
/// Its schema is written by hand (see the `openapi` impl below), as `anyOf`: a `snapshot` has every
/// field an update requires, so it matches both variants and would fail the derived `oneOf`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerMessage {
    Control(ControlMessage),
    Update(Update),
}

/// Every server message that has a `type` field.
// utoipa ignores serde's `rename_all_fields`: each variant repeats it as `schema(rename_all)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum ControlMessage {
    /// First message on every connection.
    #[cfg_attr(feature = "openapi", schema(rename_all = "camelCase"))]
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
    #[cfg_attr(feature = "openapi", schema(rename_all = "camelCase"))]
    Snapshot { widget_id: String, ts: i64, series: Vec<Item>, meta: Meta },
    /// Updates were lost for this subscription; a `snapshot` follows and replaces the client's state.
    #[cfg_attr(feature = "openapi", schema(rename_all = "camelCase"))]
    Gap { widget_id: String, reason: String },
    /// A request was refused or could not be understood. The connection stays open.
    #[cfg_attr(feature = "openapi", schema(rename_all = "camelCase"))]
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        widget_id: Option<String>,
    },
    /// Answer to `ping`, with a fresh connection resume token (current subscriptions and positions).
    #[cfg_attr(feature = "openapi", schema(rename_all = "camelCase"))]
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_token: Option<String>,
    },
}

/// The limits a connection works under, announced in `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub max_subscriptions: usize,
    pub max_messages_per_sec: usize,
    pub max_frame_bytes: usize,
}

/// How often a client pings until the server's `welcome` says otherwise (the server's default too).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(25);

/// How late an expected sign of life (the answer to a `ping`, an SSE `heartbeat`) may be before a
/// client counts the path as dead: a half-open path closes nothing, and the pill must not say Live
/// while nothing can arrive.
pub const SILENCE_SLACK: Duration = Duration::from_secs(10);

/// New data for one subscription, in order, exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Update {
    pub widget_id: String,
    /// When the server accepted the message, in milliseconds since the Unix epoch.
    pub ts: i64,
    /// What this message changes; the items' shape follows `meta.kind`.
    pub series: Vec<Item>,
    pub meta: Meta,
}

/// The answer of `GET /api/v1/dashboards/{id}/updates` (the polling transport): what changed for
/// each widget since the request's position, and the cursor to ask from next time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PollAnswer {
    /// Opaque: send it back as `since` to get what comes after this answer.
    pub cursor: String,
    /// Only the widgets that have something new.
    pub widgets: Vec<PollWidget>,
    /// The tenant's live mode: `polling` tells a page that polling is the operator's choice (so it
    /// does not probe faster transports), `live` that it may climb back. Absent from an older server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_mode: Option<LiveMode>,
}

/// One widget's part of a [`PollAnswer`]: the messages a WebSocket would have carried, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PollWidget {
    /// The feed's id on the page (`w12`, `w12-activity`, `notification-center`, …).
    pub widget_id: String,
    pub messages: Vec<ServerMessage>,
}

impl ControlMessage {
    /// Every `type` the server sends (updates have none).
    pub const TYPES: [&str; 5] = ["welcome", "snapshot", "gap", "error", "pong"];

    /// The message's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ControlMessage::Welcome { .. } => "welcome",
            ControlMessage::Snapshot { .. } => "snapshot",
            ControlMessage::Gap { .. } => "gap",
            ControlMessage::Error { .. } => "error",
            ControlMessage::Pong { .. } => "pong",
        }
    }
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

/// `anyOf` where the derive would write `oneOf`: a `snapshot` also has every field an update
/// requires, so it matches both variants and `oneOf` would refuse it.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ServerMessage {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::ToSchema;
        use utoipa::openapi::{Ref, schema::AnyOfBuilder};

        AnyOfBuilder::new()
            .item(Ref::from_schema_name(ControlMessage::name()))
            .item(Ref::from_schema_name(Update::name()))
            .description(Some(
                "A message from the server: one with a `type` (`ControlMessage`), or an update, which has none.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ServerMessage {
    fn name() -> std::borrow::Cow<'static, str> {
        "ServerMessage".into()
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;

        schemas.push((ControlMessage::name().into(), ControlMessage::schema()));
        ControlMessage::schemas(schemas);
        schemas.push((Update::name().into(), Update::schema()));
        Update::schemas(schemas);
    }
}

impl ClientMessage {
    /// Every `type` a client may send.
    pub const TYPES: [&str; 6] = ["subscribe", "unsubscribe", "request_update", "resume", "ping", "activity"];

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
    use crate::data::*;
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
    fn every_type_is_listed_and_written_as_serde_writes_it() {
        let limits = Limits { max_subscriptions: 1, max_messages_per_sec: 1, max_frame_bytes: 1 };
        let client = [
            ClientMessage::Subscribe { widget_id: "w".into(), topic: "t".into(), resume_token: None },
            ClientMessage::Unsubscribe { widget_id: "w".into() },
            ClientMessage::RequestUpdate { widget_id: "w".into() },
            ClientMessage::Resume { token: "r".into() },
            ClientMessage::Ping,
            ClientMessage::Activity { action: ActivityAction::ChangeMode, detail: "d".into() },
        ];
        let control = [
            ControlMessage::Welcome {
                connection_id: "1".into(),
                resume_token: "r".into(),
                heartbeat_interval_ms: 1,
                idle_timeout_ms: 1,
                limits,
            },
            ControlMessage::Snapshot { widget_id: "w".into(), ts: 0, series: vec![], meta: meta() },
            ControlMessage::Gap { widget_id: "w".into(), reason: "r".into() },
            ControlMessage::Error { code: ErrorCode::BadMessage, message: "m".into(), widget_id: None },
            ControlMessage::Pong { resume_token: None },
        ];
        let client_types: Vec<_> = client.iter().map(ClientMessage::kind).collect();
        let control_types: Vec<_> = control.iter().map(ControlMessage::kind).collect();
        assert_eq!(client_types, ClientMessage::TYPES);
        assert_eq!(control_types, ControlMessage::TYPES);
        for message in &client {
            assert_eq!(serde_json::to_value(message).unwrap()["type"], message.kind());
        }
        for message in &control {
            assert_eq!(serde_json::to_value(message).unwrap()["type"], message.kind());
        }
    }

    #[test]
    fn unknown_client_message_types_are_rejected() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"shutdown"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"widgetId":"w"}"#).is_err());
    }
}
