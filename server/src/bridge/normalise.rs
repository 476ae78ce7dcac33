//! One Kafka message into dashboard items, by its route's rules. Pure: no I/O, so every rule and
//! every way a message can be bad is tested here.

use super::mapping::{CheckedRoute, Kind, TimeUnit, level};
use crate::ingest::item_rules::{self, InvalidField};
use crate::topic_name::TopicName;
use protocol::{Change, ChangeOp, Event, Item, Level, Metric, Point};
use serde_json::Value;

/// What a message became: the items for one livedash topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalised {
    pub topic: TopicName,
    pub items: Vec<Item>,
    /// The message's own identity (`dedupe_key`), when the route names one.
    pub dedupe: Option<String>,
}

/// Where a message sits in Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaPosition {
    pub partition: i32,
    pub offset: i64,
}

/// Why a message was not taken. `reason()` labels the metric and the dead-letter header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("{0} bytes, over the limit of {1}")]
    Oversize(usize, usize),
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("no field {0:?}")]
    MissingField(String),
    #[error("field {0:?} {1}")]
    WrongType(String, &'static str),
    #[error("{0}")]
    BadTopic(String),
    #[error("field {0:?}: {1}")]
    BadTime(String, String),
    /// An item the publish API would refuse too (a title over 200 characters, an id with a slash,
    /// a document over 16 KB): named by the livedash field (`event.title`).
    #[error(transparent)]
    Invalid(#[from] InvalidField),
}

impl Rejection {
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Oversize(..) => "oversize",
            Rejection::NotJson(_) => "not_json",
            Rejection::MissingField(_) => "missing_field",
            Rejection::WrongType(..) => "wrong_type",
            Rejection::BadTopic(_) => "bad_topic",
            Rejection::BadTime(..) => "bad_time",
            Rejection::Invalid(_) => "invalid_field",
        }
    }
}

/// Applies `route` to a message's `payload`; `now` (ms) is its time when the route names none.
pub fn normalise(
    route: &CheckedRoute,
    payload: &[u8],
    max_bytes: usize,
    at: KafkaPosition,
    now: i64,
) -> Result<Normalised, Rejection> {
    if payload.len() > max_bytes {
        return Err(Rejection::Oversize(payload.len(), max_bytes));
    }
    let message: Value = serde_json::from_slice(payload).map_err(|e| Rejection::NotJson(e.to_string()))?;
    if !message.is_object() {
        return Err(Rejection::NotJson("the message is not an object".into()));
    }
    let rules = &route.route;
    let topic = route.template.fill(|field| word(&message, field)).map_err(Rejection::BadTopic)?;
    let ts = match &rules.timestamp {
        Some(stamp) => time_of(&message, &stamp.field, stamp.unit)?,
        None => now,
    };
    let items = match rules.kind {
        Kind::Series => {
            let value = number(&message, rules.value.as_deref().unwrap_or_default())?;
            vec![Item::Point(Point { ts, value })]
        }
        Kind::Metrics => {
            // A message may carry only some of the KPIs; it must carry one.
            let mut metrics = Vec::new();
            for (key, field) in &rules.metrics {
                if lookup(&message, field).is_some() {
                    metrics.push(Item::Metric(Metric { key: key.clone(), value: number(&message, field)? }));
                }
            }
            if metrics.is_empty() {
                let fields = rules.metrics.values().cloned().collect::<Vec<_>>().join(", ");
                return Err(Rejection::MissingField(fields));
            }
            metrics
        }
        Kind::Events => {
            let fields = rules.event.as_ref().expect("checked: an events route has `event`");
            // Optional parts a message leaves out take their defaults; present, they must be text.
            let optional = |field: &Option<String>| match field.as_deref() {
                Some(f) if lookup(&message, f).is_some_and(|v| !v.is_null()) => text(&message, f).map(Some),
                _ => Ok(None),
            };
            let level = match optional(&fields.level)? {
                Some(name) => level(&name).ok_or(Rejection::WrongType(
                    fields.level.clone().unwrap_or_default(),
                    "is not a level (info, success, warning, error)",
                ))?,
                None => Level::Info,
            };
            let id = match &fields.id {
                Some(field) => word_or_text(&message, field)?,
                None => format!("k{}-{}", at.partition, at.offset),
            };
            vec![Item::Event(Event {
                id,
                ts,
                event_type: optional(&fields.r#type)?.unwrap_or_else(|| fields.type_default.clone()),
                level,
                title: text(&message, &fields.title)?,
                body: optional(&fields.body)?,
                severity: None,
                scheduled_at: None,
                data: None,
            })]
        }
        Kind::Collection => {
            let id = word_or_text(&message, rules.id.as_deref().unwrap_or_default())?;
            let deleted = match rules.deleted.as_deref().and_then(|f| lookup(&message, f).map(|v| (f, v))) {
                Some((_, Value::Bool(deleted))) => *deleted,
                Some((field, _)) => return Err(Rejection::WrongType(field.to_owned(), "is not true or false")),
                None => false,
            };
            let change = if deleted {
                Change { op: ChangeOp::Delete, id, doc: None }
            } else {
                Change { op: ChangeOp::Upsert, id, doc: message.as_object().cloned() }
            };
            vec![Item::Change(change)]
        }
    };
    let at = match rules.kind {
        Kind::Series => "point",
        Kind::Metrics => "metric",
        Kind::Events => "event",
        Kind::Collection => "change",
    };
    for item in &items {
        item_rules::check(at, item)?;
    }
    let dedupe = rules.dedupe_key.as_deref().map(|field| word_or_text(&message, field)).transpose()?;
    Ok(Normalised { topic, items, dedupe })
}

/// The value at a dotted path (`order.total`).
fn lookup<'a>(message: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(message, |value, key| value.get(key))
}

fn number(message: &Value, field: &str) -> Result<f64, Rejection> {
    match lookup(message, field) {
        None | Some(Value::Null) => Err(Rejection::MissingField(field.to_owned())),
        Some(value) => value.as_f64().ok_or(Rejection::WrongType(field.to_owned(), "is not a number")),
    }
}

fn text(message: &Value, field: &str) -> Result<String, Rejection> {
    match lookup(message, field) {
        None | Some(Value::Null) => Err(Rejection::MissingField(field.to_owned())),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Rejection::WrongType(field.to_owned(), "is not text")),
    }
}

/// Text, or a whole number written as text (ids are often numbers).
fn word_or_text(message: &Value, field: &str) -> Result<String, Rejection> {
    match lookup(message, field) {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        _ => text(message, field),
    }
}

/// What a template placeholder reads: text or a whole number.
fn word(message: &Value, field: &str) -> Option<String> {
    word_or_text(message, field).ok()
}

fn time_of(message: &Value, field: &str, unit: TimeUnit) -> Result<i64, Rejection> {
    let bad = |why: &str| Rejection::BadTime(field.to_owned(), why.to_owned());
    match unit {
        TimeUnit::Ms => Ok(number(message, field)?.round() as i64),
        TimeUnit::S => Ok((number(message, field)? * 1000.0).round() as i64),
        TimeUnit::Rfc3339 => {
            let stamp = text(message, field)?;
            let parsed = time::OffsetDateTime::parse(&stamp, &time::format_description::well_known::Rfc3339)
                .map_err(|e| bad(&format!("{stamp:?} is not an RFC 3339 time ({e})")))?;
            Ok((parsed.unix_timestamp_nanos() / 1_000_000) as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::mapping::parse;

    const AT: KafkaPosition = KafkaPosition { partition: 2, offset: 41 };

    fn route(rules: &str) -> CheckedRoute {
        let file =
            format!("[kafka]\nbrokers = \"k:9092\"\n[[route]]\nkafka_topic = \"in\"\ntenant = \"acme\"\n{rules}");
        parse(&file).unwrap().1.remove(0)
    }

    fn apply(route: &CheckedRoute, message: &str) -> Result<Normalised, Rejection> {
        normalise(route, message.as_bytes(), 4096, AT, 1_000)
    }

    #[test]
    fn a_series_message_becomes_a_point_at_its_own_time() {
        let orders = route(
            "topic = \"orders/{region}\"\nkind = \"series\"\nvalue = \"order.total\"\n\
             timestamp = { field = \"at\", unit = \"rfc3339\" }",
        );
        let got = apply(&orders, r#"{"region":"eu","at":"2026-12-01T08:30:00.250Z","order":{"total":42.5}}"#).unwrap();
        assert_eq!(got.topic.as_str(), "orders/eu");
        assert_eq!(got.items, vec![Item::Point(Point { ts: 1_796_113_800_250, value: 42.5 })]);
        let seconds =
            route("topic = \"t\"\nkind = \"series\"\nvalue = \"v\"\ntimestamp = { field = \"at\", unit = \"s\" }");
        assert_eq!(apply(&seconds, r#"{"at":1.5,"v":1}"#).unwrap().items[0].as_point().unwrap().ts, 1_500);
        let untimed = route("topic = \"t\"\nkind = \"series\"\nvalue = \"v\"");
        assert_eq!(apply(&untimed, r#"{"v":1}"#).unwrap().items[0].as_point().unwrap().ts, 1_000, "consumed at");
    }

    #[test]
    fn metrics_events_and_documents_follow_their_rules() {
        let kpis = route("topic = \"kpis\"\nkind = \"metrics\"\nmetrics = { orders = \"n\", revenue = \"sum\" }");
        let got = apply(&kpis, r#"{"n":3}"#).unwrap();
        assert_eq!(got.items, vec![Item::Metric(Metric { key: "orders".into(), value: 3.0 })], "only what it carries");

        let alerts = route(
            "topic = \"alerts\"\nkind = \"events\"\nevent = { title = \"msg\", level = \"sev\", type = \"kind\" }",
        );
        let Item::Event(event) = &apply(&alerts, r#"{"msg":"disk full","sev":"ERROR"}"#).unwrap().items[0] else {
            panic!("an event")
        };
        assert_eq!(
            (event.title.as_str(), event.level, event.event_type.as_str()),
            ("disk full", Level::Error, "notification")
        );
        assert_eq!(event.id, "k2-41", "made from the Kafka position");

        let orders = route("topic = \"open\"\nkind = \"collection\"\nid = \"order_id\"\ndeleted = \"closed\"");
        let Item::Change(upsert) = &apply(&orders, r#"{"order_id":7,"customer":"Ada"}"#).unwrap().items[0] else {
            panic!("a change")
        };
        assert_eq!((upsert.op, upsert.id.as_str()), (ChangeOp::Upsert, "7"));
        assert_eq!(upsert.doc.as_ref().unwrap()["customer"], "Ada");
        let Item::Change(delete) = &apply(&orders, r#"{"order_id":"7","closed":true}"#).unwrap().items[0] else {
            panic!("a change")
        };
        assert_eq!(delete.op, ChangeOp::Delete);
    }

    #[test]
    fn bad_messages_are_refused_with_a_reason() {
        let orders = route("topic = \"orders/{region}\"\nkind = \"series\"\nvalue = \"v\"\ndedupe_key = \"id\"");
        let reason = |message: &str| apply(&orders, message).unwrap_err().reason();
        assert_eq!(reason("not json"), "not_json");
        assert_eq!(reason("[1,2]"), "not_json");
        assert_eq!(reason(r#"{"region":"eu","id":"a"}"#), "missing_field");
        assert_eq!(reason(r#"{"region":"eu","v":"12","id":"a"}"#), "wrong_type");
        assert_eq!(reason(r#"{"region":"../globex","v":1,"id":"a"}"#), "bad_topic");
        assert_eq!(reason(r#"{"v":1,"id":"a"}"#), "bad_topic");
        let big = format!(r#"{{"region":"eu","v":1,"pad":"{}"}}"#, "x".repeat(5000));
        assert_eq!(reason(&big), "oversize");
        assert_eq!(apply(&orders, r#"{"region":"eu","v":1,"id":"a-1"}"#).unwrap().dedupe.as_deref(), Some("a-1"));
        let timed = route(
            "topic = \"t\"\nkind = \"series\"\nvalue = \"v\"\ntimestamp = { field = \"at\", unit = \"rfc3339\" }",
        );
        assert_eq!(apply(&timed, r#"{"v":1,"at":"yesterday"}"#).unwrap_err().reason(), "bad_time");
    }

    #[test]
    fn items_the_publish_api_would_refuse_are_refused_here_too() {
        let alerts = route("topic = \"alerts\"\nkind = \"events\"\nevent = { title = \"msg\", id = \"ref\" }");
        let refused = |message: String| match apply(&alerts, &message).unwrap_err() {
            Rejection::Invalid(invalid) => invalid.field,
            other => panic!("{other:?}"),
        };
        let long = "x".repeat(item_rules::MAX_TITLE_CHARS + 1);
        assert_eq!(refused(format!(r#"{{"msg":"{long}","ref":"a1"}}"#)), "event.title");
        assert_eq!(refused(r#"{"msg":"disk full","ref":"orders/7"}"#.into()), "event.id");
        assert_eq!(refused(r#"{"msg":"   ","ref":"a1"}"#.into()), "event.title");
        assert_eq!(apply(&alerts, r#"{"msg":"disk full","ref":"a1"}"#).map(|n| n.items.len()), Ok(1));
        let docs = route("topic = \"open\"\nkind = \"collection\"\nid = \"order_id\"");
        let big = format!(r#"{{"order_id":"o1","pad":"{}"}}"#, "x".repeat(item_rules::MAX_DOC_BYTES));
        let refused = normalise(&docs, big.as_bytes(), 64 * 1024, AT, 1_000).unwrap_err();
        assert_eq!((refused.reason(), refused.to_string().starts_with("change.doc:")), ("invalid_field", true));
    }
}
