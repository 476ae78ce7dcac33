//! The WebSocket wire protocol, shared by the server and the browser client.
//!
//! Both sides compile this one module, so a message the server encodes is by construction a message
//! the client can decode. Frames are JSON text; field names are camelCase because the contract the
//! project started from (and any JavaScript consumer) speaks camelCase. `docs/protocol.md` is the
//! human-readable version of this file and must change with it.

use serde::{Deserialize, Serialize};

/// A message from the browser to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
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
    /// Application-level heartbeat; the server answers `pong`.
    Ping,
}

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
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ControlMessage {
    /// First message on every connection.
    Welcome {
        connection_id: String,
        /// How often the client should send `ping`, in milliseconds.
        heartbeat_interval_ms: u64,
        /// Silence after which the server closes the connection, in milliseconds.
        idle_timeout_ms: u64,
    },
    /// The topic's current state for one subscription; later updates continue from `meta.offset`.
    Snapshot {
        widget_id: String,
        ts: i64,
        series: Vec<Point>,
        meta: Meta,
    },
    /// Updates were lost for this subscription; a `snapshot` follows and replaces the client's state.
    Gap {
        widget_id: String,
        reason: String,
    },
    /// A request was refused or could not be understood. The connection stays open.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        widget_id: Option<String>,
    },
    Pong,
}

/// New data for one subscription, in order, exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    pub widget_id: String,
    /// When the server accepted the message, in milliseconds since the Unix epoch.
    pub ts: i64,
    /// The points this message appends.
    pub series: Vec<Point>,
    pub meta: Meta,
}

/// One point of a `series` topic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    pub value: f64,
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

/// How a topic's payloads behave (see DESIGN.md, "Topics and payload kinds").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicKind {
    /// Chart points: the snapshot is the last N points, a delta appends points.
    Series,
}

/// Machine-readable reason carried by an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not JSON or not a known message.
    BadMessage,
    /// No such topic.
    UnknownTopic,
    /// The widget id is already subscribed on this connection.
    DuplicateSubscription,
    /// The widget id is not subscribed on this connection.
    NotSubscribed,
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

impl ClientMessage {
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
        assert!(matches!(
            without_token,
            ClientMessage::Subscribe {
                resume_token: None,
                ..
            }
        ));
    }

    #[test]
    fn an_update_has_no_type_field_and_round_trips() {
        let update = ServerMessage::Update(Update {
            widget_id: "w1".into(),
            ts: 1000,
            series: vec![Point {
                ts: 1000,
                value: 2.5,
            }],
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
        assert_eq!(
            serde_json::from_str::<ServerMessage>(&json).unwrap(),
            snapshot
        );

        let pong: ServerMessage = serde_json::from_str(r#"{"type":"pong"}"#).unwrap();
        assert_eq!(pong, ServerMessage::Control(ControlMessage::Pong));
    }

    #[test]
    fn unknown_client_message_types_are_rejected() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"shutdown"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"widgetId":"w"}"#).is_err());
    }
}
