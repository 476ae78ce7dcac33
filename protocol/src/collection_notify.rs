//! Collection notifications: what an admin asks of a widget that shows a collection ("tell me when
//! an order is created") and how its title is written from the document.
//!
//! The server raises them (see `server/src/collection_notifications`); the browser's editor uses
//! the same [`CollectionNotify::validate`] and [`CollectionNotify::render`] to check a template and
//! show what it will read like, so the two cannot disagree.

use crate::Level;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest title template.
pub const MAX_TEMPLATE_LEN: usize = 120;
/// Longest rendered title (a document's long text field is cut).
pub const MAX_TITLE_LEN: usize = 200;
/// Longest field name a placeholder may name.
const MAX_FIELD_LEN: usize = 64;
/// What a placeholder reads when its field is absent, not a plain value, or hidden from someone
/// the notification reaches (the same for all three, so a title does not tell them apart).
pub const MISSING: &str = "—";

/// What happened to a document, as a notification names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DocumentOp {
    /// An upsert of an id the collection did not hold.
    Created,
    /// An upsert of an id it held.
    Updated,
    Deleted,
}

impl DocumentOp {
    pub const ALL: [DocumentOp; 3] = [DocumentOp::Created, DocumentOp::Updated, DocumentOp::Deleted];

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentOp::Created => "created",
            DocumentOp::Updated => "updated",
            DocumentOp::Deleted => "deleted",
        }
    }

    /// The notification's event type: `collection:created`, ….
    pub fn event_type(self) -> &'static str {
        match self {
            DocumentOp::Created => "collection:created",
            DocumentOp::Updated => "collection:updated",
            DocumentOp::Deleted => "collection:deleted",
        }
    }
}

/// A widget's collection notifications, as an admin chose them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"ops": ["created"], "title": "Order {id} {op}: {customer}", "level": "warning"}))
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollectionNotify {
    /// Which changes raise one; never empty.
    pub ops: Vec<DocumentOp>,
    /// The title, with `{field}` for a field of the document, `{id}` for its id and `{op}` for
    /// `created`, `updated` or `deleted`; at most 120 characters.
    pub title: String,
    /// The level it is shown at (which decides whether it toasts, by each user's choice).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = Level::default))]
    pub level: Level,
}

/// Why a [`CollectionNotify`] cannot be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyError {
    NoOps,
    EmptyTitle,
    LongTitle,
    Unclosed,
    BadField(String),
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyError::NoOps => f.write_str("choose at least one of created, updated or deleted"),
            NotifyError::EmptyTitle => f.write_str("the title is empty"),
            NotifyError::LongTitle => write!(f, "the title is longer than {MAX_TEMPLATE_LEN} characters"),
            NotifyError::Unclosed => f.write_str("the title has a { without its }"),
            NotifyError::BadField(name) => {
                write!(f, "{{{name}}} is not a field name (letters, digits, _ . -, at most {MAX_FIELD_LEN})")
            }
        }
    }
}

impl std::error::Error for NotifyError {}

/// One piece of a title template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

fn pieces(template: &str) -> Result<Vec<Piece<'_>>, NotifyError> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or(NotifyError::Unclosed)?;
        let name = &after[..close];
        let valid = !name.is_empty()
            && name.len() <= MAX_FIELD_LEN
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(NotifyError::BadField(name.to_owned()));
        }
        out.push(Piece::Field(name));
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

impl CollectionNotify {
    pub fn validate(&self) -> Result<(), NotifyError> {
        if self.ops.is_empty() {
            return Err(NotifyError::NoOps);
        }
        if self.title.trim().is_empty() {
            return Err(NotifyError::EmptyTitle);
        }
        if self.title.chars().count() > MAX_TEMPLATE_LEN {
            return Err(NotifyError::LongTitle);
        }
        pieces(&self.title).map(drop)
    }

    /// Whether `op` raises a notification.
    pub fn raises(&self, op: DocumentOp) -> bool {
        self.ops.contains(&op)
    }

    /// The document fields the title reads (not `id` or `op`).
    pub fn fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = pieces(&self.title)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|piece| match piece {
                Piece::Field(name) if name != "id" && name != "op" => Some(name),
                _ => None,
            })
            .collect();
        fields.sort_unstable();
        fields.dedup();
        fields
    }

    /// The title for `op` on document `id` (its fields in `doc`; none for a delete), where
    /// `hidden` says which fields must not be shown. An invalid template renders as written.
    pub fn render(
        &self,
        op: DocumentOp,
        id: &str,
        doc: Option<&Map<String, Value>>,
        hidden: impl Fn(&str) -> bool,
    ) -> String {
        let Ok(pieces) = pieces(&self.title) else { return cut(self.title.clone()) };
        let mut title = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(text) => title.push_str(text),
                Piece::Field("id") => title.push_str(id),
                Piece::Field("op") => title.push_str(op.as_str()),
                Piece::Field(field) if hidden(field) => title.push_str(MISSING),
                Piece::Field(field) => match doc.and_then(|doc| doc.get(field)) {
                    Some(Value::String(text)) => title.push_str(text),
                    Some(value @ (Value::Number(_) | Value::Bool(_))) => title.push_str(&value.to_string()),
                    _ => title.push_str(MISSING),
                },
            }
        }
        cut(title)
    }
}

fn cut(mut title: String) -> String {
    if let Some((at, _)) = title.char_indices().nth(MAX_TITLE_LEN) {
        title.truncate(at);
        title.push('…');
    }
    title
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notify(title: &str) -> CollectionNotify {
        CollectionNotify { ops: vec![DocumentOp::Created], title: title.into(), level: Level::Info }
    }

    #[test]
    fn titles_read_the_document_its_id_and_the_change() {
        let doc = json!({"customer": "Initech", "total": 120.5, "paid": false, "lines": [1, 2]});
        let doc = doc.as_object();
        let n = notify("Order {id} {op}: {customer} ({total}, paid {paid}) {lines} {missing}");
        assert_eq!(n.validate(), Ok(()));
        assert_eq!(n.fields(), ["customer", "lines", "missing", "paid", "total"]);
        assert_eq!(
            n.render(DocumentOp::Created, "o-7", doc, |_| false),
            "Order o-7 created: Initech (120.5, paid false) — —"
        );
        assert_eq!(n.render(DocumentOp::Deleted, "o-7", None, |_| false), "Order o-7 deleted: — (—, paid —) — —");
    }

    #[test]
    fn hidden_fields_read_like_missing_ones() {
        let doc = json!({"customer": "Initech", "margin": 0.4});
        let n = notify("{customer} at {margin}");
        assert_eq!(n.render(DocumentOp::Updated, "1", doc.as_object(), |f| f == "margin"), "Initech at —");
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        assert_eq!(notify("Order {id").validate(), Err(NotifyError::Unclosed));
        assert_eq!(notify("Order {a b}").validate(), Err(NotifyError::BadField("a b".into())));
        assert_eq!(notify("{}").validate(), Err(NotifyError::BadField(String::new())));
        assert_eq!(notify("  ").validate(), Err(NotifyError::EmptyTitle));
        assert_eq!(notify(&"x".repeat(MAX_TEMPLATE_LEN + 1)).validate(), Err(NotifyError::LongTitle));
        let none = CollectionNotify { ops: vec![], ..notify("x") };
        assert_eq!(none.validate(), Err(NotifyError::NoOps));
        assert_eq!(
            NotifyError::BadField("a b".into()).to_string(),
            "{a b} is not a field name (letters, digits, _ . -, at most 64)"
        );
    }

    #[test]
    fn long_values_are_cut() {
        let doc = json!({"note": "y".repeat(500)});
        let title = notify("{note}").render(DocumentOp::Created, "1", doc.as_object(), |_| false);
        assert_eq!(title.chars().count(), MAX_TITLE_LEN + 1);
        assert!(title.ends_with('…'));
    }

    #[test]
    fn the_wire_shape_is_camel_case_with_a_default_level() {
        let n: CollectionNotify = serde_json::from_str(r#"{"ops":["created","deleted"],"title":"{id}"}"#).unwrap();
        assert_eq!(n.level, Level::Info);
        assert_eq!(n.ops, [DocumentOp::Created, DocumentOp::Deleted]);
        assert!(serde_json::from_str::<CollectionNotify>(r#"{"ops":[],"title":"x","colour":1}"#).is_err());
    }
}
