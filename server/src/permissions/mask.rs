//! Field filtering: what a role that may not see some fields gets of a message instead.
//!
//! A field is a key of a collection's documents, a key of an event's `data`, or a key of a metrics
//! topic (the metric itself goes). A series point has no fields. The fields go before the message is
//! encoded for that subscriber, so they are never sent, not even to be hidden by the page.

use protocol::{Item, TopicKind};

/// The fields one role may not see of one topic: sorted, each once, never empty (no fields hidden
/// is `None` wherever a `Hidden` is optional, so the common case costs nothing).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hidden(Vec<String>);

impl Hidden {
    /// `None` when nothing is hidden.
    pub fn of(mut fields: Vec<String>) -> Option<Self> {
        fields.sort();
        fields.dedup();
        (!fields.is_empty()).then_some(Self(fields))
    }

    pub fn fields(&self) -> &[String] {
        &self.0
    }

    fn hides(&self, field: &str) -> bool {
        self.0.binary_search_by(|hidden| hidden.as_str().cmp(field)).is_ok()
    }

    /// Whether a topic of `kind` can carry any of these fields.
    pub fn touches(&self, kind: TopicKind) -> bool {
        kind != TopicKind::Series
    }

    /// `items` without the hidden fields.
    pub fn without(&self, items: &[Item]) -> Vec<Item> {
        items
            .iter()
            .filter(|item| !matches!(item, Item::Metric(metric) if self.hides(&metric.key)))
            .map(|item| match item {
                Item::Event(event) => {
                    let mut event = event.clone();
                    if let Some(data) = &mut event.data {
                        data.retain(|key, _| !self.hides(key));
                    }
                    Item::Event(event)
                }
                Item::Change(change) => {
                    let mut change = change.clone();
                    if let Some(doc) = &mut change.doc {
                        doc.retain(|key, _| !self.hides(key));
                    }
                    Item::Change(change)
                }
                other => other.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Change, ChangeOp, Event, Metric, Point};
    use serde_json::json;

    fn hidden(fields: &[&str]) -> Hidden {
        Hidden::of(fields.iter().map(|f| f.to_string()).collect()).unwrap()
    }

    #[test]
    fn nothing_hidden_is_none() {
        assert_eq!(Hidden::of(vec![]), None);
        assert_eq!(Hidden::of(vec!["b".into(), "a".into(), "b".into()]).unwrap().fields(), ["a", "b"]);
    }

    #[test]
    fn documents_lose_hidden_keys_and_keep_the_rest() {
        let doc = json!({"name": "Ada", "salary": 100, "team": "ops"}).as_object().cloned();
        let items = [Item::Change(Change { op: ChangeOp::Upsert, id: "1".into(), doc })];
        let Item::Change(change) = &hidden(&["salary"]).without(&items)[0] else { panic!() };
        assert_eq!(change.doc.as_ref().unwrap(), json!({"name": "Ada", "team": "ops"}).as_object().unwrap());
        let deleted = [Item::Change(Change { op: ChangeOp::Delete, id: "1".into(), doc: None })];
        assert_eq!(hidden(&["salary"]).without(&deleted), deleted);
    }

    #[test]
    fn events_lose_hidden_data_keys() {
        let data = json!({"job": "7", "customer": "Initech"}).as_object().cloned();
        let event = Event {
            id: "e".into(),
            ts: 1,
            event_type: "job".into(),
            level: Default::default(),
            title: "Job done".into(),
            body: None,
            severity: None,
            scheduled_at: None,
            data,
        };
        let Item::Event(masked) = &hidden(&["customer"]).without(&[Item::Event(event)])[0] else { panic!() };
        assert_eq!(masked.data.as_ref().unwrap(), json!({"job": "7"}).as_object().unwrap());
        assert_eq!(masked.title, "Job done");
    }

    #[test]
    fn hidden_metrics_go_and_points_stay() {
        let items = [
            Item::Metric(Metric { key: "margin".into(), value: 0.3 }),
            Item::Metric(Metric { key: "orders".into(), value: 12.0 }),
        ];
        assert_eq!(hidden(&["margin"]).without(&items), items[1..]);
        let points = [Item::Point(Point { ts: 1, value: 2.0 })];
        assert_eq!(hidden(&["value"]).without(&points), points);
        assert!(!hidden(&["value"]).touches(TopicKind::Series));
    }
}
