//! The rules every item's fields meet, whoever publishes it: the HTTP publish API checks an item as
//! it reads a body ([`super::publish_body`]), the Kafka bridge checks what it made of a message
//! (`bridge::normalise`). One place for each limit, so nothing the API refuses (a 5,000-character
//! title, an id with a slash, a 1 MB document) comes in through Kafka instead.
//!
//! Strings are stored and sent as data; the browser renders them as text, never as markup. The
//! limits keep what every viewer of a topic receives, and what the server keeps of it, small.

use protocol::{Change, ChangeOp, Event, Item};
use serde_json::{Map, Value};

pub const MAX_KEY_LEN: usize = 64;
pub const MAX_ID_LEN: usize = 128;
pub const MAX_TYPE_LEN: usize = 64;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 4000;
pub const MAX_DATA_BYTES: usize = 4 * 1024;
pub const MAX_DOC_BYTES: usize = 16 * 1024;

/// What is wrong, and where: the field's path (`events[2].title`), so a publisher can fix its
/// payload without guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidField {
    pub field: String,
    pub message: String,
}

impl InvalidField {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), message: message.into() }
    }
}

/// Checks one item; `at` is where it sits in what was published (`events[2]`, `event`).
pub fn check(at: &str, item: &Item) -> Result<(), InvalidField> {
    match item {
        // A number is a number: JSON has no NaN or infinity to send.
        Item::Point(_) => Ok(()),
        Item::Metric(metric) => metric_key(&format!("{at}.key"), &metric.key),
        Item::Event(event) => check_event(at, event),
        Item::Change(change) => check_change(at, change),
    }
}

/// A metric's key, named by `field` (`values.orders`).
pub fn metric_key(field: &str, key: &str) -> Result<(), InvalidField> {
    token(field, key, MAX_KEY_LEN)
}

/// An event's type, named by `field`.
pub fn event_type(field: &str, kind: &str) -> Result<(), InvalidField> {
    token(field, kind, MAX_TYPE_LEN)
}

pub fn check_event(at: &str, e: &Event) -> Result<(), InvalidField> {
    token(&format!("{at}.id"), &e.id, MAX_ID_LEN)?;
    event_type(&format!("{at}.type"), &e.event_type)?;
    text(&format!("{at}.title"), &e.title, MAX_TITLE_CHARS, false)?;
    if e.title.trim().is_empty() {
        return Err(InvalidField::new(&format!("{at}.title"), "must not be blank"));
    }
    if let Some(body) = &e.body {
        text(&format!("{at}.body"), body, MAX_BODY_CHARS, true)?;
    }
    if let Some(data) = &e.data {
        json_size(&format!("{at}.data"), data, MAX_DATA_BYTES)?;
    }
    Ok(())
}

pub fn check_change(at: &str, c: &Change) -> Result<(), InvalidField> {
    token(&format!("{at}.id"), &c.id, MAX_ID_LEN)?;
    match (c.op, &c.doc) {
        (ChangeOp::Upsert, None) => Err(InvalidField::new(&format!("{at}.doc"), "an upsert needs the document")),
        (ChangeOp::Delete, Some(_)) => Err(InvalidField::new(&format!("{at}.doc"), "a delete takes no document")),
        (ChangeOp::Upsert, Some(doc)) => json_size(&format!("{at}.doc"), doc, MAX_DOC_BYTES),
        (ChangeOp::Delete, None) => Ok(()),
    }
}

/// Keys, ids and types: 1..=max bytes of `A-Z a-z 0-9 - _ . :`.
fn token(field: &str, s: &str, max: usize) -> Result<(), InvalidField> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(InvalidField::new(field, format!("must be 1 to {max} characters of A-Z a-z 0-9 - _ . :")))
    }
}

/// Human text: at most `max` characters, no control characters (but newlines and tabs if
/// `multiline`).
fn text(field: &str, s: &str, max: usize, multiline: bool) -> Result<(), InvalidField> {
    if s.chars().count() > max {
        return Err(InvalidField::new(field, format!("must be at most {max} characters")));
    }
    if s.chars().any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\t'))) {
        return Err(InvalidField::new(field, "must not contain control characters"));
    }
    Ok(())
}

fn json_size(field: &str, value: &Map<String, Value>, max: usize) -> Result<(), InvalidField> {
    let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
    if size > max {
        Err(InvalidField::new(field, format!("must encode to at most {max} bytes, not {size}")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Level, Metric, Point};
    use serde_json::json;

    fn event(id: &str, title: &str) -> Event {
        Event {
            id: id.into(),
            ts: 0,
            event_type: "notification".into(),
            level: Level::Info,
            title: title.into(),
            body: None,
            severity: None,
            scheduled_at: None,
            data: None,
        }
    }

    fn field_of(item: Item) -> String {
        check("it", &item).unwrap_err().field
    }

    #[test]
    fn each_kind_of_item_is_held_to_its_fields_limits() {
        assert!(check("it", &Item::Point(Point { ts: 0, value: 1.0 })).is_ok());
        assert!(check("it", &Item::Metric(Metric { key: "orders.eu".into(), value: 1.0 })).is_ok());
        assert_eq!(field_of(Item::Metric(Metric { key: "k".repeat(MAX_KEY_LEN + 1), value: 1.0 })), "it.key");
        assert!(check("it", &Item::Event(event("k2-41", "Disk full"))).is_ok());
        assert_eq!(field_of(Item::Event(event("orders/7", "Disk full"))), "it.id", "a slash is not a token");
        assert_eq!(field_of(Item::Event(event("a", &"x".repeat(MAX_TITLE_CHARS + 1)))), "it.title");
        assert_eq!(field_of(Item::Event(event("a", "  "))), "it.title", "blank");
        assert_eq!(field_of(Item::Event(event("a", "bell\u{7}"))), "it.title", "a control character");
        let long_body = Event { body: Some("x".repeat(MAX_BODY_CHARS + 1)), ..event("a", "t") };
        assert_eq!(field_of(Item::Event(long_body)), "it.body");
        let lines = Event { body: Some("line 1\nline 2\tend".into()), ..event("a", "t") };
        assert!(check("it", &Item::Event(lines)).is_ok(), "a body may hold newlines and tabs");
        let blob = json!({"blob": "x".repeat(MAX_DATA_BYTES)}).as_object().cloned();
        assert_eq!(field_of(Item::Event(Event { data: blob, ..event("a", "t") })), "it.data");
    }

    #[test]
    fn a_document_is_bounded_and_matches_its_operation() {
        let doc = |bytes: usize| json!({"note": "x".repeat(bytes)}).as_object().cloned();
        let change = |op, doc| Item::Change(Change { op, id: "o-1".into(), doc });
        assert!(check("it", &change(ChangeOp::Upsert, doc(100))).is_ok());
        assert!(check("it", &change(ChangeOp::Delete, None)).is_ok());
        assert_eq!(field_of(change(ChangeOp::Upsert, doc(MAX_DOC_BYTES))), "it.doc");
        assert_eq!(field_of(change(ChangeOp::Upsert, None)), "it.doc");
        assert_eq!(field_of(change(ChangeOp::Delete, doc(1))), "it.doc");
        let bad_id = Item::Change(Change { op: ChangeOp::Delete, id: String::new(), doc: None });
        assert_eq!(field_of(bad_id), "it.id");
    }
}
