//! A topic's current state, per kind: what a snapshot is made of and how a message changes it.
//!
//! Kept apart from the history log on purpose: the log is for replaying recent messages to clients
//! that resume, and is trimmed by count and age; the state is what a new subscriber sees, and a quiet
//! topic must not lose it just because its last message is old.

use protocol::{Change, ChangeOp, Event, Item, Metric, Point, TopicKind};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

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
    /// Bytes (as JSON) the state may hold: `events` forget their oldest to stay under it, `metrics`
    /// and `collection` refuse what would go over it.
    pub max_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("a {0} topic takes {0} items only")]
    WrongItem(&'static str),
    #[error("the topic would exceed {limit} {what}")]
    Full { what: &'static str, limit: usize },
}

/// The state, and its size as JSON: what it costs the server, whatever the publisher sent.
#[derive(Debug, Clone)]
pub struct TopicState {
    data: Data,
    bytes: usize,
}

#[derive(Debug, Clone)]
enum Data {
    Series(VecDeque<Point>),
    Metrics(BTreeMap<String, f64>),
    /// Each event with its size.
    Events(VecDeque<(Event, usize)>),
    /// Each document with its size.
    Collection(BTreeMap<String, (Map<String, Value>, usize)>),
}

/// What one point or one metric costs, roughly: `{"ts":…,"value":…}` / `"key":value`.
pub(crate) const POINT_BYTES: usize = 40;
const METRIC_BYTES: usize = 24;

impl TopicState {
    pub fn new(kind: TopicKind) -> Self {
        let data = match kind {
            TopicKind::Series => Data::Series(VecDeque::new()),
            TopicKind::Metrics => Data::Metrics(BTreeMap::new()),
            TopicKind::Events => Data::Events(VecDeque::new()),
            TopicKind::Collection => Data::Collection(BTreeMap::new()),
        };
        Self { data, bytes: 0 }
    }

    pub fn kind(&self) -> TopicKind {
        match self.data {
            Data::Series(_) => TopicKind::Series,
            Data::Metrics(_) => TopicKind::Metrics,
            Data::Events(_) => TopicKind::Events,
            Data::Collection(_) => TopicKind::Collection,
        }
    }

    /// The state's size as JSON, about.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `items` may be applied: the right shape for this kind, within the limits. Checked
    /// before a message is logged, so a refused publish leaves no trace. Returns the most the state
    /// can weigh once they are applied.
    pub fn check(&self, items: &[Item], limits: &StateLimits) -> Result<usize, StateError> {
        let kind = self.kind().as_str();
        let shape_ok = items.iter().all(|item| {
            matches!(
                (&self.data, item),
                (Data::Series(_), Item::Point(_))
                    | (Data::Metrics(_), Item::Metric(_))
                    | (Data::Events(_), Item::Event(_))
                    | (Data::Collection(_), Item::Change(_))
            )
        });
        if !shape_ok {
            return Err(StateError::WrongItem(kind));
        }
        let too_big = || StateError::Full { what: "bytes", limit: limits.max_bytes };
        match &self.data {
            Data::Series(points) => Ok((points.len() + items.len()).min(limits.series_points.max(1)) * POINT_BYTES),
            Data::Events(events) => {
                // What `apply` will keep: the oldest events go while there are too many or they
                // are too large together, so a message that only rotates the state does not grow it.
                let mut kept: VecDeque<usize> = events.iter().map(|(_, size)| *size).collect();
                let mut bytes = self.bytes;
                for item in items {
                    let size = json_bytes(item);
                    if size > limits.max_bytes {
                        return Err(too_big());
                    }
                    kept.push_back(size);
                    bytes += size;
                    while kept.len() > limits.events.max(1) || bytes > limits.max_bytes {
                        let Some(gone) = kept.pop_front() else { break };
                        bytes -= gone;
                    }
                }
                Ok(bytes)
            }
            Data::Metrics(values) => {
                let new_keys: HashSet<&str> = items
                    .iter()
                    .filter_map(|i| match i {
                        Item::Metric(m) if !values.contains_key(&m.key) => Some(m.key.as_str()),
                        _ => None,
                    })
                    .collect();
                if values.len() + new_keys.len() > limits.metric_keys {
                    return Err(StateError::Full { what: "metric keys", limit: limits.metric_keys });
                }
                let bytes = self.bytes + new_keys.iter().map(|k| metric_bytes(k)).sum::<usize>();
                if bytes > limits.max_bytes { Err(too_big()) } else { Ok(bytes) }
            }
            Data::Collection(docs) => {
                // A batch is judged by its net effect: only the last change of each id counts.
                let mut last: HashMap<&str, &Change> = HashMap::new();
                for item in items {
                    if let Item::Change(change) = item {
                        last.insert(change.id.as_str(), change);
                    }
                }
                let (mut count, mut bytes) = (docs.len(), self.bytes);
                for (id, change) in last {
                    if let Some((_, size)) = docs.get(id) {
                        count -= 1;
                        bytes -= size;
                    }
                    if let (ChangeOp::Upsert, Some(doc)) = (change.op, &change.doc) {
                        count += 1;
                        bytes += doc_bytes(id, doc);
                    }
                }
                if count > limits.documents {
                    return Err(StateError::Full { what: "documents", limit: limits.documents });
                }
                if bytes > limits.max_bytes { Err(too_big()) } else { Ok(bytes) }
            }
        }
    }

    /// The documents `items` would add to a collection: ids whose last change in the message is an
    /// upsert and that the collection does not hold now, in the order they first appear. Empty for
    /// other kinds.
    pub fn created_by(&self, items: &[Item]) -> Vec<String> {
        let Data::Collection(docs) = &self.data else { return Vec::new() };
        let mut last: Vec<(&str, bool)> = Vec::new();
        for item in items {
            let Item::Change(change) = item else { continue };
            let upsert = change.op == ChangeOp::Upsert && change.doc.is_some();
            match last.iter_mut().find(|(id, _)| *id == change.id) {
                Some(seen) => seen.1 = upsert,
                None => last.push((change.id.as_str(), upsert)),
            }
        }
        last.into_iter()
            .filter(|(id, upsert)| *upsert && !docs.contains_key(*id))
            .map(|(id, _)| id.to_owned())
            .collect()
    }

    /// Applies a message that passed [`TopicState::check`].
    pub fn apply(&mut self, items: &[Item], limits: &StateLimits) {
        for item in items {
            match (&mut self.data, item) {
                (Data::Series(points), Item::Point(p)) => push_bounded(points, *p, limits.series_points),
                (Data::Metrics(values), Item::Metric(m)) => {
                    if values.insert(m.key.clone(), m.value).is_none() {
                        self.bytes += metric_bytes(&m.key);
                    }
                }
                (Data::Events(events), Item::Event(e)) => {
                    let size = json_bytes(item);
                    events.push_back((e.clone(), size));
                    self.bytes += size;
                    while events.len() > limits.events.max(1) || self.bytes > limits.max_bytes {
                        let Some((_, gone)) = events.pop_front() else { break };
                        self.bytes -= gone;
                    }
                }
                (Data::Collection(docs), Item::Change(c)) => {
                    let replaced = match (c.op, &c.doc) {
                        (ChangeOp::Upsert, Some(doc)) => {
                            let size = doc_bytes(&c.id, doc);
                            self.bytes += size;
                            docs.insert(c.id.clone(), (doc.clone(), size))
                        }
                        _ => docs.remove(&c.id),
                    };
                    if let Some((_, size)) = replaced {
                        self.bytes -= size;
                    }
                }
                _ => debug_assert!(false, "apply() after a failed check()"),
            }
        }
        if let Data::Series(points) = &self.data {
            self.bytes = points.len() * POINT_BYTES;
        }
    }

    /// Everything a new subscriber needs, as `series` items.
    pub fn snapshot(&self) -> Vec<Item> {
        match &self.data {
            Data::Series(points) => points.iter().copied().map(Item::Point).collect(),
            Data::Metrics(values) => {
                values.iter().map(|(key, &value)| Item::Metric(Metric { key: key.clone(), value })).collect()
            }
            Data::Events(events) => events.iter().map(|(e, _)| Item::Event(e.clone())).collect(),
            Data::Collection(docs) => docs
                .iter()
                .map(|(id, (doc, _))| {
                    Item::Change(Change { op: ChangeOp::Upsert, id: id.clone(), doc: Some(doc.clone()) })
                })
                .collect(),
        }
    }
}

pub(crate) fn metric_bytes(key: &str) -> usize {
    key.len() + METRIC_BYTES
}

pub(crate) fn doc_bytes(id: &str, doc: &Map<String, Value>) -> usize {
    id.len() + json_bytes(doc)
}

/// The length of `value` as JSON, counted without building the string.
fn json_bytes(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).map_or(usize::MAX, |()| count.0)
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
    use protocol::Level;
    use serde_json::json;

    const LIMITS: StateLimits =
        StateLimits { series_points: 3, events: 2, metric_keys: 2, documents: 2, max_bytes: 4096 };

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
    fn a_message_creates_the_ids_it_leaves_upserted_that_were_not_held() {
        let state = applied(TopicKind::Collection, &[vec![upsert("a", 1)]]);
        let message = [upsert("a", 2), upsert("b", 1), upsert("c", 1), delete("c"), delete("d"), upsert("b", 2)];
        assert_eq!(state.created_by(&message), ["b"]);
        assert_eq!(state.created_by(&[delete("a"), upsert("a", 3)]), Vec::<String>::new(), "held before");
        assert!(TopicState::new(TopicKind::Events).created_by(&[event("e")]).is_empty());
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

    #[test]
    fn a_batch_counts_by_its_net_effect() {
        let docs = applied(TopicKind::Collection, &[vec![upsert("a", 1), upsert("b", 1)]]);
        let sneaky = [delete("a"), upsert("a", 2), upsert("c", 1)];
        assert!(
            matches!(docs.check(&sneaky, &LIMITS), Err(StateError::Full { what: "documents", .. })),
            "deleting and re-adding `a` makes no room for `c`"
        );
        assert!(docs.check(&[upsert("a", 2), delete("a"), upsert("c", 1)], &LIMITS).is_ok(), "`a` ends deleted");
        assert!(docs.check(&[upsert("c", 1), delete("c")], &LIMITS).is_ok(), "`c` ends deleted");
    }

    #[test]
    fn the_state_is_bounded_by_bytes() {
        let big = |id: &str| {
            let doc = json!({ "blob": "x".repeat(1500) }).as_object().unwrap().clone();
            Item::Change(Change { op: ChangeOp::Upsert, id: id.into(), doc: Some(doc) })
        };
        let docs = applied(TopicKind::Collection, &[vec![big("a"), big("b")]]);
        assert!(docs.bytes() > 3000 && docs.bytes() < 3100, "{}", docs.bytes());
        let limits = StateLimits { documents: 10, ..LIMITS };
        assert!(matches!(docs.check(&[big("c")], &limits), Err(StateError::Full { what: "bytes", .. })));
        assert!(docs.check(&[delete("a"), big("c")], &limits).is_ok(), "a delete frees its bytes");

        let many = StateLimits { events: 100, ..LIMITS };
        let mut events = TopicState::new(TopicKind::Events);
        for i in 0..100 {
            let e = event(&format!("{i}{}", "y".repeat(300)));
            events.check(std::slice::from_ref(&e), &many).unwrap();
            events.apply(&[e], &many);
        }
        assert!(events.bytes() <= many.max_bytes, "the oldest events went: {}", events.bytes());
        assert!(events.snapshot().len() < 100);
        let huge = event(&"z".repeat(5000));
        assert!(events.check(&[huge], &many).is_err(), "one event over the whole budget is refused");
    }
}
