//! Pure pieces of the SSE streams: the event framing, and which metric keys changed.
//!
//! The framing is written by hand rather than with axum's `Sse` because a stream writes every
//! event of an outbox batch as one chunk (one write, one flush), the way the WebSocket writes a
//! batch; `Sse` yields one body chunk per event.

use protocol::sse::{Heartbeat, event};
use protocol::{Item, Metric};
use std::{collections::HashMap, fmt::Write, sync::Arc};

/// Appends one event. `data` is compact JSON, which never holds a line break, so one `data:` line
/// carries it.
pub fn push_event(out: &mut String, name: &str, id: Option<&str>, data: &str) {
    debug_assert!(!data.contains('\n'), "SSE data must be one line");
    let _ = writeln!(out, "event: {name}");
    if let Some(id) = id {
        let _ = writeln!(out, "id: {id}");
    }
    let _ = write!(out, "data: {data}\n\n");
}

/// A `heartbeat` event: the time, and how often heartbeats come, so that a client knows how long a
/// silence may last before the stream counts as dead (docs/protocol.md).
pub fn heartbeat(out: &mut String, now_ms: i64, every: std::time::Duration) {
    let beat = Heartbeat { ts: now_ms, every_ms: every.as_millis() as u64 };
    let data = serde_json::to_string(&beat).expect("a heartbeat always serialises");
    push_event(out, event::HEARTBEAT, None, &data);
}

/// `retry:` asks an `EventSource` to wait this long before reconnecting on its own.
pub fn retry(out: &mut String, millis: u64) {
    let _ = write!(out, "retry: {millis}\n\n");
}

/// The latest value of every metric key each widget of a stream was sent, so that a
/// `metric_update` carries only the keys whose value changed. Bounded by the widgets of one
/// dashboard times the keys one metrics topic may hold.
#[derive(Debug, Default)]
pub struct MetricChanges {
    sent: HashMap<Arc<str>, HashMap<String, f64>>,
}

impl MetricChanges {
    /// A snapshot was sent: it is what the widget now holds.
    pub fn reset(&mut self, widget: &Arc<str>, items: &[Item]) {
        let values = items.iter().filter_map(metric).map(|m| (m.key.clone(), m.value)).collect();
        self.sent.insert(widget.clone(), values);
    }

    /// The items of an update that change what the widget holds (possibly none).
    pub fn changed(&mut self, widget: &Arc<str>, items: Vec<Item>) -> Vec<Item> {
        let sent = self.sent.entry(widget.clone()).or_default();
        items
            .into_iter()
            .filter(|item| match metric(item) {
                Some(m) => protocol::metric_changed(sent.insert(m.key.clone(), m.value), m.value),
                None => true,
            })
            .collect()
    }

    pub fn forget(&mut self, widget: &Arc<str>) {
        self.sent.remove(widget);
    }
}

fn metric(item: &Item) -> Option<&Metric> {
    match item {
        Item::Metric(m) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(key: &str, value: f64) -> Item {
        Item::Metric(Metric { key: key.into(), value })
    }

    #[test]
    fn events_are_framed_as_the_spec_says() {
        let mut out = String::new();
        retry(&mut out, 1000);
        push_event(&mut out, "snapshot", Some("abc"), r#"{"a":1}"#);
        heartbeat(&mut out, 7, std::time::Duration::from_secs(30));
        assert_eq!(
            out,
            "retry: 1000\n\nevent: snapshot\nid: abc\ndata: {\"a\":1}\n\nevent: heartbeat\ndata: {\"ts\":7,\"everyMs\":30000}\n\n"
        );
    }

    #[test]
    fn only_keys_whose_value_changed_pass() {
        let mut changes = MetricChanges::default();
        let w: Arc<str> = "kpi".into();
        changes.reset(&w, &[m("orders", 1.0), m("revenue", 10.0)]);
        assert_eq!(changes.changed(&w, vec![m("orders", 1.0), m("revenue", 11.0)]), vec![m("revenue", 11.0)]);
        assert_eq!(changes.changed(&w, vec![m("revenue", 11.0)]), vec![], "nothing changed");
        assert_eq!(changes.changed(&w, vec![m("new", 0.0)]), vec![m("new", 0.0)], "a new key is a change");
        let other: Arc<str> = "kpi2".into();
        assert_eq!(changes.changed(&other, vec![m("orders", 1.0)]), vec![m("orders", 1.0)], "per widget");
        changes.reset(&w, &[]);
        assert_eq!(changes.changed(&w, vec![m("orders", 1.0)]), vec![m("orders", 1.0)], "after a new snapshot");
    }
}
