//! Validation of publish bodies: what the HTTP publish API accepts. (The Kafka bridge builds its
//! items in `bridge::normalise`; both hold each item to [`super::item_rules`].)
//!
//! A body names its kind by the one field it carries — `points` (series), `values` (metrics),
//! `events` (events) or `changes` (collection) — and everything in it is checked for type, count,
//! length and characters before the broker sees it. Errors name the offending field
//! (`events[2].title`, or `body` for the body as a whole), so a publisher can fix its payload
//! without guessing.

use super::item_rules::{self, InvalidField};
use protocol::{Change, ChangeOp, Event, Item, Level, Metric, Point, Severity, TopicKind};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const MAX_POINTS: usize = 1000;
pub const MAX_METRICS: usize = 256;
pub const MAX_EVENTS: usize = 100;
pub const MAX_CHANGES: usize = 500;

/// A validated publish: its kind and its items, ready for the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub kind: TopicKind,
    pub items: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    points: Option<Vec<PointIn>>,
    values: Option<BTreeMap<String, f64>>,
    events: Option<Vec<EventIn>>,
    changes: Option<Vec<ChangeIn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointIn {
    ts: Option<i64>,
    value: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EventIn {
    id: Option<String>,
    ts: Option<i64>,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    level: Level,
    title: String,
    body: Option<String>,
    severity: Option<Severity>,
    scheduled_at: Option<i64>,
    data: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeIn {
    op: ChangeOp,
    id: String,
    doc: Option<Map<String, Value>>,
}

/// Parses and checks a publish body. `now` stamps points and events that carry no `ts`;
/// `new_id` names events that carry no `id`.
pub fn parse(bytes: &[u8], now: i64, mut new_id: impl FnMut() -> String) -> Result<Publish, InvalidField> {
    // serde would happily read a struct from an array; a publish body is an object, full stop.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(InvalidField::new("body", "must be a JSON object"));
    }
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let body: Body = serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        // The body itself, or an unknown key that is empty: either way the field is the body.
        let field = if path == "." || path.is_empty() { "body".to_owned() } else { path };
        InvalidField { field, message: e.inner().to_string() }
    })?;
    // One object and nothing after it: a second body or trailing bytes would otherwise be dropped
    // without a word.
    json.end().map_err(|e| InvalidField::new("body", format!("nothing may follow the object: {e}")))?;
    let present = [body.points.is_some(), body.values.is_some(), body.events.is_some(), body.changes.is_some()];
    if present.iter().filter(|p| **p).count() != 1 {
        return Err(InvalidField::new("body", "give exactly one of points, values, events, changes"));
    }
    if let Some(points) = body.points {
        count("points", points.len(), MAX_POINTS)?;
        let items = points.into_iter().map(|p| Item::Point(Point { ts: p.ts.unwrap_or(now), value: p.value }));
        return Ok(Publish { kind: TopicKind::Series, items: items.collect() });
    }
    if let Some(values) = body.values {
        count("values", values.len(), MAX_METRICS)?;
        let mut items = Vec::with_capacity(values.len());
        for (key, value) in values {
            item_rules::metric_key(&format!("values.{key}"), &key)?;
            items.push(Item::Metric(Metric { key, value }));
        }
        return Ok(Publish { kind: TopicKind::Metrics, items });
    }
    if let Some(events) = body.events {
        count("events", events.len(), MAX_EVENTS)?;
        let items = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| event(&format!("events[{i}]"), e, now, &mut new_id).map(Item::Event))
            .collect::<Result<_, _>>()?;
        return Ok(Publish { kind: TopicKind::Events, items });
    }
    let changes = body.changes.unwrap_or_default();
    count("changes", changes.len(), MAX_CHANGES)?;
    let items = changes
        .into_iter()
        .enumerate()
        .map(|(i, c)| change(&format!("changes[{i}]"), c).map(Item::Change))
        .collect::<Result<_, _>>()?;
    Ok(Publish { kind: TopicKind::Collection, items })
}

fn event(at: &str, e: EventIn, now: i64, new_id: &mut impl FnMut() -> String) -> Result<Event, InvalidField> {
    let event = Event {
        id: e.id.unwrap_or_else(new_id),
        ts: e.ts.unwrap_or(now),
        event_type: e.event_type,
        level: e.level,
        title: e.title,
        body: e.body,
        severity: e.severity,
        scheduled_at: e.scheduled_at,
        data: e.data,
    };
    item_rules::check_event(at, &event)?;
    Ok(event)
}

fn change(at: &str, c: ChangeIn) -> Result<Change, InvalidField> {
    let change = Change { op: c.op, id: c.id, doc: c.doc };
    item_rules::check_change(at, &change)?;
    Ok(change)
}

fn count(field: &str, n: usize, max: usize) -> Result<(), InvalidField> {
    if n == 0 || n > max {
        Err(InvalidField::new(field, format!("must hold 1 to {max} entries, not {n}")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(value: Value) -> Result<Publish, InvalidField> {
        let mut n = 0;
        parse(value.to_string().as_bytes(), 1_000, || {
            n += 1;
            format!("gen-{n}")
        })
    }

    fn field_of(value: Value) -> String {
        parse_json(value).unwrap_err().field
    }

    #[test]
    fn each_kind_is_recognised_by_its_field() {
        let series = parse_json(json!({"points": [{"value": 1.5}, {"ts": 7, "value": 2}]})).unwrap();
        assert_eq!(series.kind, TopicKind::Series);
        assert_eq!(
            series.items,
            vec![Item::Point(Point { ts: 1_000, value: 1.5 }), Item::Point(Point { ts: 7, value: 2.0 })]
        );
        let metrics = parse_json(json!({"values": {"orders": 3, "revenue.eur": 10.5}})).unwrap();
        assert_eq!(metrics.kind, TopicKind::Metrics);
        assert_eq!(metrics.items.len(), 2);
        let events = parse_json(json!({"events": [{"type": "system:error", "level": "error", "title": "Disk full",
                                                    "severity": "high"}]}))
        .unwrap();
        let Item::Event(e) = &events.items[0] else { panic!() };
        assert_eq!((e.id.as_str(), e.ts, e.severity), ("gen-1", 1_000, Some(Severity::High)));
        let docs = parse_json(json!({"changes": [{"op": "upsert", "id": "o-1", "doc": {"total": 3}},
                                                 {"op": "delete", "id": "o-2"}]}))
        .unwrap();
        assert_eq!(docs.kind, TopicKind::Collection);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(json!({"points": [{"value": 1}, {"value": "high"}]})), "points[1].value");
        assert_eq!(field_of(json!({"points": [{"value": 1, "colour": "red"}]})), "points[0].colour");
        assert_eq!(field_of(json!({"points": []})), "points");
        assert_eq!(field_of(json!({"values": {"bad key": 1}})), "values.bad key");
        assert_eq!(field_of(json!({"events": [{"type": "x", "title": ""}]})), "events[0].title");
        assert_eq!(field_of(json!({"events": [{"type": "x", "title": "a\u{7}b"}]})), "events[0].title");
        assert_eq!(field_of(json!({"events": [{"type": "<b>", "title": "t"}]})), "events[0].type");
        assert_eq!(field_of(json!({"events": [{"type": "x", "title": "t", "level": "panic"}]})), "events[0].level");
        assert_eq!(field_of(json!({"changes": [{"op": "upsert", "id": "a"}]})), "changes[0].doc");
        assert_eq!(field_of(json!({"changes": [{"op": "delete", "id": "a", "doc": {}}]})), "changes[0].doc");
        assert_eq!(field_of(json!({"points": [{"value": 1}], "values": {"a": 1}})), "body");
        assert_eq!(field_of(json!({})), "body");
        assert_eq!(field_of(json!([1, 2])), "body");
        assert_eq!(field_of(json!({"": null})), "body", "an empty unknown key");
        let trailing = parse(br#"{"points": [{"value": 1}]} {"points": [{"value": 2}]}"#, 0, || "x".into());
        assert_eq!(trailing.unwrap_err().field, "body", "a second body is refused, not dropped");
    }

    #[test]
    fn sizes_and_lengths_are_bounded() {
        let many: Vec<Value> = (0..=MAX_POINTS).map(|v| json!({"value": v})).collect();
        assert_eq!(field_of(json!({"points": many})), "points");
        let long_title = "x".repeat(item_rules::MAX_TITLE_CHARS + 1);
        assert_eq!(field_of(json!({"events": [{"type": "x", "title": long_title}]})), "events[0].title");
        let big = "x".repeat(item_rules::MAX_DATA_BYTES);
        assert_eq!(field_of(json!({"events": [{"type": "x", "title": "t", "data": {"blob": big}}]})), "events[0].data");
        let key = "k".repeat(item_rules::MAX_KEY_LEN + 1);
        assert_eq!(field_of(json!({"values": {key.clone(): 1}})), format!("values.{key}"));
    }

    #[test]
    fn markup_is_kept_as_plain_data() {
        let p = parse_json(json!({"events": [{"type": "note", "title": "<script>alert(1)</script>",
                                              "body": "line 1\nline 2"}]}))
        .unwrap();
        let Item::Event(e) = &p.items[0] else { panic!() };
        assert_eq!(e.title, "<script>alert(1)</script>", "stored verbatim; the UI renders text");
    }

    #[test]
    fn malformed_json_is_reported_on_the_body() {
        let err = parse(b"{\"points\": [", 0, String::new).unwrap_err();
        assert!(err.field == "body" || err.field.starts_with("points"), "{err:?}");
        assert!(parse(b"", 0, String::new).is_err());
    }
}
