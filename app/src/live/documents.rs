//! What a document table (and the active-users list) shows: the documents of a `collection` topic
//! by id, and which ones the last update touched (they flash).

use super::{session::Delivery, topic_view::TopicView};
use protocol::{ChangeOp, Item};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Documents {
    docs: BTreeMap<String, Map<String, Value>>,
    /// Ids the last update created or changed; not kept across reloads.
    #[serde(skip)]
    pub changed: Vec<String>,
}

impl TopicView for Documents {
    fn apply(&mut self, delivery: &Delivery) {
        match delivery {
            Delivery::Snapshot { series, .. } => {
                self.docs.clear();
                self.changed.clear();
                self.change(series);
            }
            Delivery::Update { series, .. } => self.changed = self.change(series),
            Delivery::Gap | Delivery::Error { .. } => {}
        }
    }
}

impl Documents {
    fn change(&mut self, items: &[Item]) -> Vec<String> {
        let mut changed = Vec::new();
        for item in items {
            let Item::Change(change) = item else { continue };
            match (change.op, &change.doc) {
                (ChangeOp::Upsert, Some(doc)) => {
                    self.docs.insert(change.id.clone(), doc.clone());
                    changed.push(change.id.clone());
                }
                (ChangeOp::Delete, _) | (ChangeOp::Upsert, None) => {
                    self.docs.remove(&change.id);
                }
            }
        }
        changed
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Documents in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Map<String, Value>)> {
        self.docs.iter()
    }

    /// The table's columns: every field any document has, in first-seen order.
    pub fn columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = Vec::new();
        for doc in self.docs.values() {
            for key in doc.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
        columns
    }
}

/// A cell as text: strings bare, numbers as numbers, times (fields ending in `At` or named `since`,
/// in ms since the epoch) as local clock time, anything else as JSON.
pub fn cell_text(field: &str, value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if field.ends_with("At") || field == "since" => {
            n.as_i64().map(clock_time).unwrap_or_else(|| n.to_string())
        }
        Value::Number(n) => match n.as_f64() {
            Some(f) => super::kpi_values::format_value(f),
            None => n.to_string(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `HH:MM:SS` of a time in ms since the epoch (UTC on the host; local time in the browser).
pub fn clock_time(ms: i64) -> String {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
        format!("{:02}:{:02}:{:02}", date.get_hours(), date.get_minutes(), date.get_seconds())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let secs = ms.div_euclid(1000).rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Change, Meta, TopicKind};
    use serde_json::json;

    fn meta() -> Meta {
        Meta {
            topic: "t".into(),
            kind: TopicKind::Collection,
            epoch: "e".into(),
            offset: 1,
            resume_token: "e.1".into(),
        }
    }

    fn upsert(id: &str, doc: Value) -> Item {
        Item::Change(Change { op: ChangeOp::Upsert, id: id.into(), doc: doc.as_object().cloned() })
    }

    #[test]
    fn rows_appear_change_and_disappear() {
        let mut docs = Documents::default();
        docs.apply(&Delivery::Snapshot { series: vec![upsert("a", json!({"total": 1}))], meta: meta() });
        docs.apply(&Delivery::Update {
            series: vec![
                upsert("b", json!({"total": 2, "customer": "Ada"})),
                upsert("a", json!({"total": 5})),
                Item::Change(Change { op: ChangeOp::Delete, id: "zz".into(), doc: None }),
            ],
            meta: meta(),
            ts: 0,
        });
        assert_eq!(docs.changed, ["b", "a"]);
        assert_eq!(docs.columns(), ["total", "customer"]);
        docs.apply(&Delivery::Update {
            series: vec![Item::Change(Change { op: ChangeOp::Delete, id: "a".into(), doc: None })],
            meta: meta(),
            ts: 0,
        });
        assert_eq!(docs.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(docs.changed.is_empty());
    }

    #[test]
    fn cells_read_naturally() {
        assert_eq!(cell_text("customer", &json!("Ada")), "Ada");
        assert_eq!(cell_text("total", &json!(1234.0)), "1,234");
        assert_eq!(cell_text("createdAt", &json!(3_723_000)), "01:02:03");
        assert_eq!(cell_text("tags", &json!(["a"])), r#"["a"]"#);
    }
}
