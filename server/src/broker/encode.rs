//! Encoding updates once for every subscriber.
//!
//! An update is `{widgetId, ts, series, meta}`, and only `widgetId` differs between subscribers. The
//! rest (`body`) is serialised once per message; each subscription keeps its `{"widgetId":"…",`
//! prefix, and a frame is the two glued together.

use super::position::Position;
use crate::permissions::mask::Hidden;
use protocol::{Item, Meta, TopicKind};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Body<'a> {
    ts: i64,
    series: &'a [Item],
    meta: &'a Meta,
}

#[derive(Deserialize)]
struct OwnedBody {
    ts: i64,
    series: Vec<Item>,
    meta: Meta,
}

pub fn meta(topic: &str, kind: TopicKind, position: &Position) -> Meta {
    Meta {
        topic: topic.to_owned(),
        kind,
        epoch: position.epoch.clone(),
        offset: position.offset,
        resume_token: position.token(),
    }
}

/// The update minus its opening brace and `widgetId`: `"ts":…,"series":…,"meta":…}`.
pub fn update_body(topic: &str, kind: TopicKind, position: &Position, ts: i64, items: &[Item]) -> String {
    let meta = meta(topic, kind, position);
    let mut json =
        serde_json::to_string(&Body { ts, series: items, meta: &meta }).expect("update bodies always serialise");
    json.remove(0);
    json
}

/// `body` (from [`update_body`]) without the `hidden` fields, for a subscriber that may not see
/// them. Decoded again rather than kept as items: only such subscribers pay for it, once per
/// message and set of hidden fields.
pub fn masked_body(body: &str, hidden: &Hidden) -> String {
    let whole = format!("{{{body}");
    let OwnedBody { ts, series, meta } = serde_json::from_str(&whole).expect("bodies are the broker's own encoding");
    let series = hidden.without(&series);
    let mut json =
        serde_json::to_string(&Body { ts, series: &series, meta: &meta }).expect("update bodies always serialise");
    json.remove(0);
    json
}

/// `{"widgetId":"…",` — what turns a body into one subscriber's frame.
pub fn widget_prefix(widget_id: &str) -> String {
    let id = serde_json::to_string(widget_id).expect("strings always serialise");
    format!("{{\"widgetId\":{id},")
}

/// `{"type":"snapshot","widgetId":"…",` — what turns a body of the topic's state into one
/// subscriber's snapshot.
pub fn snapshot_prefix(widget_id: &str) -> String {
    let id = serde_json::to_string(widget_id).expect("strings always serialise");
    format!("{{\"type\":\"snapshot\",\"widgetId\":{id},")
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{ControlMessage, Point, ServerMessage, Update};

    #[test]
    fn prefix_plus_body_is_exactly_the_update_message() {
        let position = Position { epoch: "ab".into(), offset: 3 };
        let points = [Item::Point(Point { ts: 9, value: 1.5 })];
        let widget = "w \"quoted\" ✓";
        let frame = widget_prefix(widget) + &update_body("sales/orders", TopicKind::Series, &position, 9, &points);
        let decoded: ServerMessage = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            decoded,
            ServerMessage::Update(Update {
                widget_id: widget.into(),
                ts: 9,
                series: points.to_vec(),
                meta: meta("sales/orders", TopicKind::Series, &position),
            })
        );
    }

    #[test]
    fn snapshot_prefix_plus_body_is_exactly_the_snapshot_message() {
        let position = Position { epoch: "ab".into(), offset: 3 };
        let points = [Item::Point(Point { ts: 9, value: 1.5 })];
        let frame = snapshot_prefix("w\n") + &update_body("t", TopicKind::Series, &position, 7, &points);
        let decoded: ServerMessage = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            decoded,
            ServerMessage::Control(ControlMessage::Snapshot {
                widget_id: "w\n".into(),
                ts: 7,
                series: points.to_vec(),
                meta: meta("t", TopicKind::Series, &position),
            })
        );
    }
}
