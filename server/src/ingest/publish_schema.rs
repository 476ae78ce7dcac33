//! The publish body as the OpenAPI document describes it ([`PublishBody`]), written from the same
//! limits [`super::publish_body`] and [`super::item_rules`] check, so that a client generated from the document sends only
//! bodies the server takes. Written by hand rather than derived: the parser reads one struct of
//! four optional fields and then demands exactly one, and counts, lengths and characters are
//! checked by code, none of which a derive can see.

use super::item_rules::{
    MAX_BODY_CHARS, MAX_DATA_BYTES, MAX_DOC_BYTES, MAX_ID_LEN, MAX_KEY_LEN, MAX_TITLE_CHARS, MAX_TYPE_LEN,
};
use super::publish_body::{MAX_CHANGES, MAX_EVENTS, MAX_METRICS, MAX_POINTS};
use serde_json::{Value, json};
use utoipa::openapi::{RefOr, schema::Schema};

/// The body of `POST /api/v1/publish/{topic}` (documentation only: [`super::publish_body::parse`]
/// reads it).
pub struct PublishBody;

/// Keys, ids and types: `A-Z a-z 0-9 - _ . :`.
fn token(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": format!("^[A-Za-z0-9._:-]{{1,{max}}}$")})
}

/// No control characters, and not blank: at least one character that is neither white space nor a
/// control (JSON Schema's `\u` escapes, read alike by every regex dialect).
const NOT_BLANK: &str =
    r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";
/// Newlines and tabs allowed.
const MULTILINE: &str = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$";

fn time() -> Value {
    json!({"type": "integer", "format": "int64", "description": "ms since the Unix epoch; the server's clock when absent"})
}

fn one_of_kinds() -> Value {
    let point = json!({
        "type": "object", "additionalProperties": false, "required": ["value"],
        "properties": {"ts": time(), "value": {"type": "number"}},
    });
    let event = json!({
        "type": "object", "additionalProperties": false, "required": ["type", "title"],
        "properties": {
            "id": {"description": "unique within the topic; the server makes one when absent", "allOf": [token(MAX_ID_LEN)]},
            "ts": time(),
            "type": {"description": "`notification`, `system:error`, `maintenance`, `job`, `activity`, …", "allOf": [token(MAX_TYPE_LEN)]},
            "level": {"type": "string", "enum": ["info", "success", "warning", "error"], "default": "info"},
            "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE_CHARS, "pattern": NOT_BLANK},
            "body": {"type": "string", "maxLength": MAX_BODY_CHARS, "pattern": MULTILINE},
            "severity": {"type": "string", "enum": ["low", "medium", "high"]},
            "scheduledAt": time(),
            "data": {"type": "object", "description": format!("anything else, at most {MAX_DATA_BYTES} bytes as JSON")},
        },
    });
    let id = token(MAX_ID_LEN);
    let document = json!({"type": "object", "description": format!("at most {MAX_DOC_BYTES} bytes as JSON")});
    let upsert = json!({
        "type": "object", "additionalProperties": false, "required": ["op", "id", "doc"],
        "properties": {"op": {"type": "string", "enum": ["upsert"]}, "id": id, "doc": document},
    });
    let delete = json!({
        "type": "object", "additionalProperties": false, "required": ["op", "id"],
        "properties": {"op": {"type": "string", "enum": ["delete"]}, "id": id},
    });
    let kind = |name: &str, description: &str, value: Value| {
        json!({
            "title": name, "description": description,
            "type": "object", "additionalProperties": false, "required": [name], "properties": {name: value},
        })
    };
    json!({
        "description": "Exactly one of `points` (series), `values` (metrics), `events` or `changes` (collection).",
        "oneOf": [
            kind("points", "Points of a `series` topic", json!({"type": "array", "minItems": 1, "maxItems": MAX_POINTS, "items": point})),
            kind("values", "The latest values of a `metrics` topic, by key", json!({
                "type": "object", "minProperties": 1, "maxProperties": MAX_METRICS,
                "propertyNames": token(MAX_KEY_LEN), "additionalProperties": {"type": "number"},
            })),
            kind("events", "Events of an `events` topic", json!({"type": "array", "minItems": 1, "maxItems": MAX_EVENTS, "items": event})),
            kind("changes", "Changes to the documents of a `collection` topic", json!({
                "type": "array", "minItems": 1, "maxItems": MAX_CHANGES, "items": {"oneOf": [upsert, delete]},
            })),
        ],
        "example": {"points": [{"ts": 1763760001000_i64, "value": 43.1}]},
    })
}

impl utoipa::PartialSchema for PublishBody {
    fn schema() -> RefOr<Schema> {
        RefOr::T(serde_json::from_value(one_of_kinds()).expect("the publish body's schema is a schema"))
    }
}

impl utoipa::ToSchema for PublishBody {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document carries the schema exactly as written here: nothing utoipa does not model is
    /// dropped on the way.
    #[test]
    fn the_schema_keeps_every_limit() {
        let written = serde_json::to_value(<PublishBody as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(written, one_of_kinds());
        let kinds = written["oneOf"].as_array().unwrap();
        assert_eq!(kinds.len(), 4);
        assert_eq!(kinds[0]["properties"]["points"]["maxItems"], MAX_POINTS);
        assert_eq!(kinds[1]["properties"]["values"]["propertyNames"]["maxLength"], MAX_KEY_LEN);
        assert_eq!(kinds[2]["properties"]["events"]["items"]["properties"]["title"]["maxLength"], MAX_TITLE_CHARS);
        assert_eq!(kinds[3]["properties"]["changes"]["items"]["oneOf"].as_array().unwrap().len(), 2);
    }
}
