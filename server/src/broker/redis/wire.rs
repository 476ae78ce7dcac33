//! What goes to and comes back from Redis, as plain strings: the state operations a publish asks
//! the script for, the script's answers, the messages announced to every node, and a loaded topic.
//! Pure, so the encoding is tested without a Redis.

use crate::broker::{
    BrokerError,
    replica::{Image, Logged, Remote},
    topic_state::{self, StateError, StateLimits, TopicState},
};
use protocol::{Change, ChangeOp, Event, Item, Metric, Point, TopicKind};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One state operation for the script: op, field, value, size.
pub type StateOp = [String; 4];

/// What `items` do to a topic's state, as the script applies it. Refuses here what is wrong
/// whatever the topic holds (an item of another kind, one event bigger than the whole state may
/// be); the limits that depend on the state are the script's to check.
pub fn state_ops(kind: TopicKind, items: &[Item], limits: &StateLimits) -> Result<Vec<StateOp>, BrokerError> {
    TopicState::new(kind).check(items, limits)?;
    let ops = match kind {
        TopicKind::Series => items.iter().map(|item| op("push", "", json(item), topic_state::POINT_BYTES)).collect(),
        TopicKind::Events => items
            .iter()
            .map(|item| {
                let text = json(item);
                let size = text.len();
                op("push", "", text, size)
            })
            .collect(),
        TopicKind::Metrics => {
            // Only the last value of each key counts; the script sees each key once.
            let mut last: Vec<(&str, f64)> = Vec::new();
            let mut at: HashMap<&str, usize> = HashMap::new();
            for item in items {
                if let Item::Metric(m) = item {
                    match at.get(m.key.as_str()) {
                        Some(&i) => last[i].1 = m.value,
                        None => {
                            at.insert(&m.key, last.len());
                            last.push((&m.key, m.value));
                        }
                    }
                }
            }
            last.into_iter().map(|(key, value)| op("set", key, json(&value), topic_state::metric_bytes(key))).collect()
        }
        TopicKind::Collection => {
            // A batch is judged by its net effect, as on one node: the last change of each id.
            let mut last: Vec<&Change> = Vec::new();
            let mut at: HashMap<&str, usize> = HashMap::new();
            for item in items {
                if let Item::Change(change) = item {
                    match at.get(change.id.as_str()) {
                        Some(&i) => last[i] = change,
                        None => {
                            at.insert(&change.id, last.len());
                            last.push(change);
                        }
                    }
                }
            }
            last.into_iter()
                .map(|change| match (change.op, &change.doc) {
                    (ChangeOp::Upsert, Some(doc)) => {
                        op("set", &change.id, json(doc), topic_state::doc_bytes(&change.id, doc))
                    }
                    _ => op("del", &change.id, String::new(), 0),
                })
                .collect()
        }
    };
    Ok(ops)
}

fn op(name: &str, field: &str, value: String, size: usize) -> StateOp {
    [name.to_owned(), field.to_owned(), value, size.to_string()]
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("items always serialise")
}

/// Where an accepted message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub epoch: String,
    pub offset: u64,
    pub ts: i64,
    /// The documents a collection message added.
    pub created: Vec<String>,
}

/// The publish script's answer to publishing (or declaring) `topic` as a `given` topic.
/// `Ok(None)`: a duplicate of a message from an outside stream, published before.
pub fn accepted(reply: &[String], topic: &str, given: TopicKind) -> Result<Option<Accepted>, BrokerError> {
    let field = |i: usize| reply.get(i).map(String::as_str).unwrap_or_default();
    let number = |i: usize| field(i).parse::<u64>().unwrap_or(0);
    match field(0) {
        "ok" => Ok(Some(Accepted {
            epoch: field(1).to_owned(),
            offset: number(2),
            ts: number(3) as i64,
            created: reply.iter().skip(4).cloned().collect(),
        })),
        "duplicate" => Ok(None),
        "kind" => match kind_of(field(1)) {
            Some(existing) => Err(BrokerError::KindMismatch { topic: topic.to_owned(), existing, given }),
            None => Err(BrokerError::Unavailable(format!("Redis holds {topic:?} as an unknown kind"))),
        },
        "topics" => Err(BrokerError::TooManyTopics(number(1) as usize)),
        "tenant_full" => Err(BrokerError::TenantFull(number(1) as usize)),
        "full" => Err(BrokerError::State(StateError::Full { what: full_what(field(1)), limit: number(2) as usize })),
        other => Err(BrokerError::Unavailable(format!("unexpected answer from Redis: {other:?}"))),
    }
}

fn full_what(what: &str) -> &'static str {
    match what {
        "metric keys" => "metric keys",
        "documents" => "documents",
        _ => "bytes",
    }
}

/// A message as the script announces it: `tenant/topic`, kind, epoch, offset, ts and the items,
/// one per line (none of the first five can hold a line break; the items are the rest).
pub fn message(payload: &str) -> Option<Remote> {
    let mut parts = payload.splitn(6, '\n');
    let key = super::keys::parse_key(parts.next()?)?;
    let kind = kind_of(parts.next()?)?;
    let epoch = parts.next()?.to_owned();
    let offset = parts.next()?.parse().ok()?;
    let ts = parts.next()?.parse().ok()?;
    let items = items(kind, parts.next()?)?;
    Some(Remote { key, kind, epoch, logged: Logged { offset, ts, items } })
}

/// The load script's answer: kind, epoch, offset, last ts, the state's values, the history as
/// offset, ts, items triples.
pub type Loaded = (String, String, String, String, Vec<String>, Vec<String>);

pub fn image(loaded: Loaded) -> Option<Image> {
    let (kind, epoch, offset, last_ts, values, entries) = loaded;
    let kind = kind_of(&kind)?;
    let state: Option<Vec<Item>> = match kind {
        TopicKind::Series => values.iter().map(|v| serde_json::from_str::<Point>(v).ok().map(Item::Point)).collect(),
        TopicKind::Events => values.iter().map(|v| serde_json::from_str::<Event>(v).ok().map(Item::Event)).collect(),
        TopicKind::Metrics => values
            .chunks(2)
            .map(|pair| {
                let [key, value] = pair else { return None };
                Some(Item::Metric(Metric { key: key.clone(), value: value.parse().ok()? }))
            })
            .collect(),
        TopicKind::Collection => values
            .chunks(2)
            .map(|pair| {
                let [id, doc] = pair else { return None };
                let doc = serde_json::from_str::<Map<String, Value>>(doc).ok()?;
                Some(Item::Change(Change { op: ChangeOp::Upsert, id: id.clone(), doc: Some(doc) }))
            })
            .collect(),
    };
    let state = state?;
    let entries = entries
        .chunks(3)
        .map(|triple| {
            let [offset, ts, json] = triple else { return None };
            Some(Logged { offset: offset.parse().ok()?, ts: ts.parse().ok()?, items: items(kind, json)? })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Image { kind, epoch, offset: offset.parse().ok()?, last_ts: last_ts.parse().unwrap_or(0), state, entries })
}

/// A kind back from its name.
pub fn kind_of(name: &str) -> Option<TopicKind> {
    [TopicKind::Series, TopicKind::Metrics, TopicKind::Events, TopicKind::Collection]
        .into_iter()
        .find(|kind| kind.as_str() == name)
}

/// A message's items, read as the kind they must be (not guessed from their shape).
fn items(kind: TopicKind, json: &str) -> Option<Vec<Item>> {
    fn all<T: serde::de::DeserializeOwned>(json: &str, item: fn(T) -> Item) -> Option<Vec<Item>> {
        serde_json::from_str::<Vec<T>>(json).ok().map(|v| v.into_iter().map(item).collect())
    }
    match kind {
        TopicKind::Series => all(json, Item::Point),
        TopicKind::Metrics => all(json, Item::Metric),
        TopicKind::Events => all(json, Item::Event),
        TopicKind::Collection => all(json, Item::Change),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: StateLimits =
        StateLimits { series_points: 10, events: 10, metric_keys: 10, documents: 10, max_bytes: 1 << 16 };

    fn metric(key: &str, value: f64) -> Item {
        Item::Metric(Metric { key: key.into(), value })
    }

    fn upsert(id: &str, n: i64) -> Item {
        let doc = json!({ "n": n }).as_object().cloned();
        Item::Change(Change { op: ChangeOp::Upsert, id: id.into(), doc })
    }

    fn delete(id: &str) -> Item {
        Item::Change(Change { op: ChangeOp::Delete, id: id.into(), doc: None })
    }

    #[test]
    fn metrics_send_the_last_value_of_each_key_once() {
        let ops = state_ops(TopicKind::Metrics, &[metric("a", 1.0), metric("b", 2.0), metric("a", 3.0)], &LIMITS);
        let ops = ops.unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0][..3], ["set".to_owned(), "a".into(), "3.0".into()]);
        assert_eq!(ops[0][3], topic_state::metric_bytes("a").to_string());
    }

    #[test]
    fn collections_send_the_net_effect_per_document() {
        let ops = state_ops(TopicKind::Collection, &[upsert("a", 1), delete("a"), upsert("c", 2)], &LIMITS).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0][..2], ["del".to_owned(), "a".into()]);
        assert_eq!(ops[1][..3], ["set".to_owned(), "c".into(), "{\"n\":2}".into()]);
    }

    #[test]
    fn events_are_sized_as_the_json_the_script_keeps() {
        let event = Item::Event(Event {
            id: "e1".into(),
            ts: 1,
            event_type: "notification".into(),
            level: protocol::Level::Info,
            title: "hello".into(),
            body: None,
            severity: None,
            scheduled_at: None,
            data: None,
        });
        let ops = state_ops(TopicKind::Events, std::slice::from_ref(&event), &LIMITS).unwrap();
        assert_eq!(ops[0][3], ops[0][2].len().to_string());
    }

    #[test]
    fn items_of_another_kind_are_refused_before_redis_is_asked() {
        let refused = state_ops(TopicKind::Series, &[metric("a", 1.0)], &LIMITS);
        assert!(matches!(refused, Err(BrokerError::State(StateError::WrongItem(_)))));
    }

    #[test]
    fn a_message_round_trips() {
        let payload = "acme/sales/orders\nseries\nab12\n7\n1000\n[{\"ts\":1,\"value\":2.5}]";
        let remote = message(payload).unwrap();
        assert_eq!(remote.key.to_string(), "acme/sales/orders");
        assert_eq!(
            (remote.kind, remote.epoch.as_str(), remote.logged.offset, remote.logged.ts),
            (TopicKind::Series, "ab12", 7, 1000)
        );
        assert_eq!(remote.logged.items, vec![Item::Point(Point { ts: 1, value: 2.5 })]);
        assert_eq!(message("acme/x\nseries\nab\nseven\n1\n[]"), None);
        assert_eq!(message("acme/x\nseries\nab\n1\n1\n[{\"key\":\"a\",\"value\":1}]"), None, "items of another kind");
    }

    #[test]
    fn a_loaded_topic_becomes_an_image() {
        let loaded = (
            "metrics".to_owned(),
            "ab".to_owned(),
            "5".to_owned(),
            "900".to_owned(),
            vec!["a".to_owned(), "1.5".to_owned()],
            vec!["5".to_owned(), "900".to_owned(), "[{\"key\":\"a\",\"value\":1.5}]".to_owned()],
        );
        let image = image(loaded).unwrap();
        assert_eq!((image.offset, image.last_ts), (5, 900));
        assert_eq!(image.state, vec![metric("a", 1.5)]);
        assert_eq!(image.entries, vec![Logged { offset: 5, ts: 900, items: vec![metric("a", 1.5)] }]);
    }

    #[test]
    fn answers_map_to_broker_errors() {
        let reply = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let accepted = |r: &[String]| accepted(r, "t", TopicKind::Series);
        assert_eq!(
            accepted(&reply(&["ok", "ab", "3", "99"])).unwrap(),
            Some(Accepted { epoch: "ab".into(), offset: 3, ts: 99, created: vec![] })
        );
        assert_eq!(accepted(&reply(&["ok", "ab", "4", "99", "o-1", "o-2"])).unwrap().unwrap().created, ["o-1", "o-2"]);
        assert_eq!(accepted(&reply(&["duplicate"])), Ok(None));
        assert_eq!(accepted(&reply(&["topics", "5"])), Err(BrokerError::TooManyTopics(5)));
        assert_eq!(accepted(&reply(&["tenant_full", "9"])), Err(BrokerError::TenantFull(9)));
        assert_eq!(
            accepted(&reply(&["full", "documents", "10"])),
            Err(BrokerError::State(StateError::Full { what: "documents", limit: 10 }))
        );
    }
}
