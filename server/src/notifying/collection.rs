//! What a published collection message raises: pure, so every case is a unit test.

use super::notifiers::Notifier;
use crate::permissions::mask::Hidden;
use protocol::collection_notify::DocumentOp;
use protocol::{ChangeOp, Event, Item};
use serde_json::{Map, Value, json};

/// Notifications one message raises at most; past it, one more says how many were left out. A
/// bulk import of ten thousand documents is one line in the centre, not ten thousand toasts.
pub const MAX_PER_MESSAGE: usize = 10;

/// One message as published: where, at which offset, its items and the ids it created.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub topic: &'a str,
    pub offset: u64,
    pub items: &'a [Item],
    pub created: &'a [String],
}

/// The notifications `message` raises through `notifiers` (those of its topic), at `now` (ms since
/// the Unix epoch), leaving out the `hidden` fields. Each document counts once per message, with
/// its last change (as the topic's state takes it); a delete is told as such whether or not the
/// collection held the document (the engine reports what it added, not what it removed). Ids are stable (topic, offset, document,
/// widget), so the same message told twice is one notification to whoever keeps them.
pub fn raise(notifiers: &[Notifier], message: Message<'_>, hidden: Option<&Hidden>, now: i64) -> Vec<Event> {
    let changes = last_changes(message);
    let mut raised = Vec::new();
    let mut left_out = 0usize;
    for notifier in notifiers {
        let Some(notify) = &notifier.widget.notify else { continue };
        for (id, op, doc) in &changes {
            if !notify.raises(*op) {
                continue;
            }
            if raised.len() == MAX_PER_MESSAGE {
                left_out += 1;
                continue;
            }
            let is_hidden = |field: &str| hidden.is_some_and(|h| h.fields().iter().any(|f| f == field));
            let title = notify.render(*op, id, *doc, is_hidden);
            let data = json!({
                "topic": message.topic,
                "op": op.as_str(),
                "id": id,
                "widget": notifier.widget.id,
            });
            raised.push(Event {
                id: format!("{}@{}/{id}/w{}", message.topic, message.offset, notifier.widget.id),
                ts: now,
                event_type: op.event_type().to_owned(),
                level: notify.level,
                title,
                body: Some(format!("{} · {}", notifier.widget.title, notifier.dashboard)),
                severity: None,
                scheduled_at: None,
                data: data.as_object().cloned(),
            });
        }
    }
    if left_out > 0 {
        let mut more = Event::titled(
            format!("{}@{}/more", message.topic, message.offset),
            now,
            "collection:more",
            protocol::Level::Info,
            format!("…and {left_out} more changes in {}", message.topic),
        );
        more.data = json!({"topic": message.topic, "count": left_out}).as_object().cloned();
        raised.push(more);
    }
    raised
}

type DocChange<'a> = (&'a str, DocumentOp, Option<&'a Map<String, Value>>);

/// Each document's last change in the message, in the order the documents first appear.
fn last_changes<'a>(message: Message<'a>) -> Vec<DocChange<'a>> {
    let mut changes: Vec<DocChange<'a>> = Vec::new();
    for item in message.items {
        let Item::Change(change) = item else { continue };
        let (op, doc) = match (change.op, &change.doc) {
            (ChangeOp::Upsert, Some(doc)) if message.created.contains(&change.id) => (DocumentOp::Created, Some(doc)),
            (ChangeOp::Upsert, Some(doc)) => (DocumentOp::Updated, Some(doc)),
            _ => (DocumentOp::Deleted, None),
        };
        match changes.iter_mut().find(|(id, ..)| *id == change.id) {
            Some(seen) => *seen = (change.id.as_str(), op, doc),
            None => changes.push((change.id.as_str(), op, doc)),
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::collection_notify::CollectionNotify;
    use protocol::dashboard::{WidgetDef, WidgetKind, WidgetMode};
    use protocol::{Change, Level};

    fn notifier(id: i64, ops: &[DocumentOp], title: &str) -> Notifier {
        Notifier {
            dashboard: "Sales".into(),
            widget: WidgetDef {
                id,
                title: "Orders".into(),
                kind: WidgetKind::DocumentTable,
                topic: "sales/orders".into(),
                default_mode: WidgetMode::Live,
                notify: Some(CollectionNotify { ops: ops.to_vec(), title: title.into(), level: Level::Warning }),
                thresholds: vec![],
            },
        }
    }

    fn upsert(id: &str, customer: &str) -> Item {
        let doc = json!({"customer": customer, "margin": 0.3}).as_object().cloned();
        Item::Change(Change { op: ChangeOp::Upsert, id: id.into(), doc })
    }

    fn delete(id: &str) -> Item {
        Item::Change(Change { op: ChangeOp::Delete, id: id.into(), doc: None })
    }

    fn message<'a>(items: &'a [Item], created: &'a [String]) -> Message<'a> {
        Message { topic: "sales/orders", offset: 7, items, created }
    }

    #[test]
    fn each_chosen_change_raises_one_titled_notification() {
        let all = [DocumentOp::Created, DocumentOp::Updated, DocumentOp::Deleted];
        let items = [upsert("o1", "Initech"), upsert("o2", "Globex"), delete("o3")];
        let created = ["o1".to_owned()];
        let raised = raise(&[notifier(4, &all, "Order {id} {op} for {customer}")], message(&items, &created), None, 99);
        let titles: Vec<&str> = raised.iter().map(|e| e.title.as_str()).collect();
        assert_eq!(titles, ["Order o1 created for Initech", "Order o2 updated for Globex", "Order o3 deleted for —"]);
        let first = &raised[0];
        assert_eq!(first.id, "sales/orders@7/o1/w4");
        assert_eq!(first.event_type, "collection:created");
        assert_eq!((first.level, first.ts), (Level::Warning, 99));
        assert_eq!(first.body.as_deref(), Some("Orders · Sales"));
        assert_eq!(first.data.as_ref().unwrap()["op"], "created");
    }

    #[test]
    fn only_the_chosen_operations_raise_and_a_document_counts_once() {
        let items = [upsert("o1", "A"), upsert("o1", "B"), upsert("o2", "C"), delete("o2")];
        let created = ["o1".to_owned()];
        let raised = raise(&[notifier(1, &[DocumentOp::Created], "{customer}")], message(&items, &created), None, 0);
        assert_eq!(raised.iter().map(|e| e.title.as_str()).collect::<Vec<_>>(), ["B"]);
        let none = raise(&[notifier(1, &[DocumentOp::Updated], "{customer}")], message(&items, &created), None, 0);
        assert!(none.is_empty());
    }

    #[test]
    fn hidden_fields_never_reach_the_title() {
        let items = [upsert("o1", "Initech")];
        let hidden = Hidden::of(vec!["customer".into()]);
        let raised = raise(
            &[notifier(1, &[DocumentOp::Updated], "{customer} {margin}")],
            message(&items, &[]),
            hidden.as_ref(),
            0,
        );
        assert_eq!(raised[0].title, "— 0.3");
    }

    #[test]
    fn a_bulk_change_raises_a_bounded_number_and_says_how_many_more() {
        let items: Vec<Item> = (0..25).map(|i| upsert(&format!("o{i}"), "X")).collect();
        let raised = raise(&[notifier(1, &[DocumentOp::Updated], "{id}")], message(&items, &[]), None, 0);
        assert_eq!(raised.len(), MAX_PER_MESSAGE + 1);
        assert_eq!(raised.last().unwrap().title, "…and 15 more changes in sales/orders");
        assert_eq!(raised.last().unwrap().event_type, "collection:more");
    }
}
