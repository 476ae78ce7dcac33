//! A topic's current state, per kind: what a snapshot is made of and how a message changes it.
//!
//! Kept apart from the history log on purpose: the log is for replaying recent messages to clients
//! that resume, and is trimmed by count and age; the state is what a new subscriber sees, and a quiet
//! topic must not lose it just because its last message is old.

use app::protocol::{ChangeOp, Event, Item, Metric, Point, TopicKind};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// Points a `series` snapshot keeps.
    pub series_points: usize,
    /// Events an `events` snapshot keeps.
    pub events: usize,
    /// Keys a `metrics` topic may have.
    pub metric_keys: usize,
    /// Documents a `collection` topic may hold.
    pub documents: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("a {0} topic takes {0} items only")]
    WrongItem(&'static str),
    #[error("the topic would exceed {limit} {what}")]
    Full { what: &'static str, limit: usize },
}

#[derive(Debug, Clone)]
pub enum TopicState {
    Series(VecDeque<Point>),
    Metrics(BTreeMap<String, f64>),
    Events(VecDeque<Event>),
    Collection(BTreeMap<String, Map<String, Value>>),
}

impl TopicState {
    pub fn new(kind: TopicKind) -> Self {
        match kind {
            TopicKind::Series => Self::Series(VecDeque::new()),
            TopicKind::Metrics => Self::Metrics(BTreeMap::new()),
            TopicKind::Events => Self::Events(VecDeque::new()),
            TopicKind::Collection => Self::Collection(BTreeMap::new()),
        }
    }

    pub fn kind(&self) -> TopicKind {
        match self {
            Self::Series(_) => TopicKind::Series,
            Self::Metrics(_) => TopicKind::Metrics,
            Self::Events(_) => TopicKind::Events,
            Self::Collection(_) => TopicKind::Collection,
        }
    }

    /// Whether `items` may be applied: the right shape for this kind, within the limits. Checked
    /// before a message is logged, so a refused publish leaves no trace.
    pub fn check(&self, items: &[Item], limits: &StateLimits) -> Result<(), StateError> {
        let kind = self.kind().as_str();
        let shape_ok = items.iter().all(|item| {
            matches!(
                (self, item),
                (Self::Series(_), Item::Point(_))
                    | (Self::Metrics(_), Item::Metric(_))
                    | (Self::Events(_), Item::Event(_))
                    | (Self::Collection(_), Item::Change(_))
            )
        });
        if !shape_ok {
            return Err(StateError::WrongItem(kind));
        }
        match self {
            Self::Metrics(values) => {
                let new_keys = items.iter().filter(|i| matches!(i, Item::Metric(m) if !values.contains_key(&m.key)));
                if values.len() + new_keys.count() > limits.metric_keys {
                    return Err(StateError::Full { what: "metric keys", limit: limits.metric_keys });
                }
            }
            Self::Collection(docs) => {
                let mut count = docs.len() as i64;
                let mut seen = std::collections::HashSet::new();
                for item in items {
                    let Item::Change(change) = item else { continue };
                    let exists = docs.contains_key(&change.id);
                    // Counting each id once keeps repeated upserts of one new document from
                    // being counted twice.
                    if seen.insert(change.id.as_str()) {
                        match (change.op, exists) {
                            (ChangeOp::Upsert, false) => count += 1,
                            (ChangeOp::Delete, true) => count -= 1,
                            _ => {}
                        }
                    }
                }
                if count > limits.documents as i64 {
                    return Err(StateError::Full { what: "documents", limit: limits.documents });
                }
            }
            Self::Series(_) | Self::Events(_) => {}
        }
        Ok(())
    }

    /// Applies a message that passed [`TopicState::check`].
    pub fn apply(&mut self, items: &[Item], limits: &StateLimits) {
        for item in items {
            match (&mut *self, item) {
                (Self::Series(points), Item::Point(p)) => push_bounded(points, *p, limits.series_points),
                (Self::Metrics(values), Item::Metric(m)) => {
                    values.insert(m.key.clone(), m.value);
                }
                (Self::Events(events), Item::Event(e)) => push_bounded(events, e.clone(), limits.events),
                (Self::Collection(docs), Item::Change(c)) => match (c.op, &c.doc) {
                    (ChangeOp::Upsert, Some(doc)) => {
                        docs.insert(c.id.clone(), doc.clone());
                    }
                    _ => {
                        docs.remove(&c.id);
                    }
                },
                _ => debug_assert!(false, "apply() after a failed check()"),
            }
        }
    }

    /// Everything a new subscriber needs, as `series` items.
    pub fn snapshot(&self) -> Vec<Item> {
        match self {
            Self::Series(points) => points.iter().copied().map(Item::Point).collect(),
            Self::Metrics(values) => {
                values.iter().map(|(key, &value)| Item::Metric(Metric { key: key.clone(), value })).collect()
            }
            Self::Events(events) => events.iter().cloned().map(Item::Event).collect(),
            Self::Collection(docs) => docs
                .iter()
                .map(|(id, doc)| {
                    Item::Change(app::protocol::Change { op: ChangeOp::Upsert, id: id.clone(), doc: Some(doc.clone()) })
                })
                .collect(),
        }
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, keep: usize) {
    if queue.len() >= keep.max(1) {
        queue.pop_front();
    }
    queue.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::protocol::{Change, Level};
    use serde_json::json;

    const LIMITS: StateLimits = StateLimits { series_points: 3, events: 2, metric_keys: 2, documents: 2 };

    fn metric(key: &str, value: f64) -> Item {
        Item::Metric(Metric { key: key.into(), value })
    }

    fn event(id: &str) -> Item {
        Item::Event(Event {
            id: id.into(),
            ts: 1,
            event_type: "notification".into(),
            level: Level::Info,
            title: id.into(),
            body: None,
            severity: None,
            scheduled_at: None,
            data: None,
        })
    }

    fn upsert(id: &str, n: i64) -> Item {
        let doc = json!({ "n": n }).as_object().unwrap().clone();
        Item::Change(Change { op: ChangeOp::Upsert, id: id.into(), doc: Some(doc) })
    }

    fn delete(id: &str) -> Item {
        Item::Change(Change { op: ChangeOp::Delete, id: id.into(), doc: None })
    }

    fn applied(kind: TopicKind, messages: &[Vec<Item>]) -> TopicState {
        let mut state = TopicState::new(kind);
        for items in messages {
            state.check(items, &LIMITS).unwrap();
            state.apply(items, &LIMITS);
        }
        state
    }

    #[test]
    fn series_keeps_the_newest_points() {
        let points: Vec<Item> = (1..=5).map(|v| Item::Point(Point { ts: v, value: v as f64 })).collect();
        let state = applied(TopicKind::Series, &[points]);
        let ts: Vec<i64> = state.snapshot().iter().map(|i| i.as_point().unwrap().ts).collect();
        assert_eq!(ts, vec![3, 4, 5]);
    }

    #[test]
    fn metrics_keep_the_latest_value_per_key() {
        let state = applied(TopicKind::Metrics, &[vec![metric("a", 1.0), metric("b", 2.0)], vec![metric("a", 3.0)]]);
        assert_eq!(state.snapshot(), vec![metric("a", 3.0), metric("b", 2.0)]);
    }

    #[test]
    fn events_keep_the_newest() {
        let state = applied(TopicKind::Events, &[vec![event("1"), event("2")], vec![event("3")]]);
        assert_eq!(state.snapshot(), vec![event("2"), event("3")]);
    }

    #[test]
    fn collections_upsert_and_delete_documents() {
        let state = applied(
            TopicKind::Collection,
            &[vec![upsert("a", 1), upsert("b", 1)], vec![upsert("a", 2), delete("b")], vec![delete("zz")]],
        );
        assert_eq!(state.snapshot(), vec![upsert("a", 2)]);
    }

    #[test]
    fn items_of_another_kind_are_refused() {
        let state = TopicState::new(TopicKind::Series);
        assert_eq!(state.check(&[metric("a", 1.0)], &LIMITS), Err(StateError::WrongItem("series")));
    }

    #[test]
    fn metric_keys_and_documents_are_bounded() {
        let metrics = applied(TopicKind::Metrics, &[vec![metric("a", 1.0), metric("b", 1.0)]]);
        assert!(metrics.check(&[metric("a", 5.0)], &LIMITS).is_ok(), "updating a key is fine");
        assert!(matches!(metrics.check(&[metric("c", 1.0)], &LIMITS), Err(StateError::Full { .. })));

        let docs = applied(TopicKind::Collection, &[vec![upsert("a", 1), upsert("b", 1)]]);
        assert!(matches!(docs.check(&[upsert("c", 1)], &LIMITS), Err(StateError::Full { .. })));
        assert!(docs.check(&[delete("a"), upsert("c", 1)], &LIMITS).is_ok(), "a delete makes room");
        assert!(docs.check(&[upsert("a", 3), upsert("a", 4)], &LIMITS).is_ok());
    }
}
