//! The `openapi` feature's schemas say what serde writes and reads: field names and required
//! fields, the hand-written schemas, every reference resolving, and examples the server accepts.

use crate::dashboard::*;
use crate::display::*;
use crate::thresholds::Threshold;
use crate::topic_rules::TopicRules;
use crate::{ErrorBody, PollAnswer, collection_notify::CollectionNotify};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `T`'s schema and those it refers to, by name, as JSON.
fn components<T: ToSchema>() -> BTreeMap<String, Value> {
    let mut schemas = vec![(T::name().into_owned(), T::schema())];
    T::schemas(&mut schemas);
    schemas.into_iter().map(|(name, schema)| (name, serde_json::to_value(schema).unwrap())).collect()
}

fn schema<T: ToSchema>() -> Value {
    components::<T>().remove(&*T::name()).unwrap()
}

/// The `oneOf` branch of a tagged enum's schema whose `type` is `tag`.
fn branch<'a>(schema: &'a Value, tag: &str) -> &'a Value {
    let branches = schema["oneOf"].as_array().unwrap();
    branches.iter().find(|b| b["properties"]["type"]["enum"] == json!([tag])).unwrap()
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                out.push(target.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Every `$ref` in `T`'s schemas names one of them, so a document that lists `T` is complete.
fn complete<T: ToSchema>() {
    let all = components::<T>();
    let mut targets = Vec::new();
    all.values().for_each(|schema| refs(schema, &mut targets));
    for target in targets {
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(all.contains_key(name), "{} refers to {target}, which it does not bring", T::name());
    }
}

/// The example of `T`'s schema, read as serde reads a request body.
fn example<T: ToSchema + DeserializeOwned>() -> T {
    let example = schema::<T>()["example"].clone();
    serde_json::from_value(example).unwrap_or_else(|e| panic!("{}'s example: {e}", T::name()))
}

#[test]
fn schemas_name_the_fields_serde_writes() {
    let mode = schema::<WidgetMode>();
    assert_eq!(mode["enum"], json!(["live", "5s", "15s", "30s", "1min", "manual"]));

    let error = schema::<ErrorBody>();
    assert_eq!(error["required"], json!(["error", "message"]));
    assert_eq!(error["properties"]["error"]["$ref"], "#/components/schemas/ErrorCode");

    let widget = schema::<NewWidget>();
    assert_eq!(widget["required"], json!(["title", "kind", "topic"]));
    assert_eq!(widget["additionalProperties"], false, "deny_unknown_fields");

    // serde's `rename_all_fields`, which utoipa does not read, repeated per variant.
    let control = schema::<crate::ControlMessage>();
    let welcome = branch(&control, "welcome");
    assert!(welcome["properties"].get("heartbeatIntervalMs").is_some(), "{welcome}");
    assert!(branch(&control, "error")["required"].as_array().unwrap().contains(&json!("code")));

    // A widget id is a JSON key, so a string.
    let view = schema::<DashboardView>();
    assert_eq!(view["properties"]["modes"]["propertyNames"]["type"], "string");

    // Overlapping variants: anyOf, not oneOf.
    let message = schema::<crate::ServerMessage>();
    assert_eq!(message["anyOf"].as_array().map(Vec::len), Some(2), "{message}");

    // Flattened settings and the display's own fields in one object that allows them all.
    let info = schema::<DisplayInfo>();
    let settings = NewDisplay { name: "Wall".into(), dashboards: vec![1], rotate_secs: 30, theme: DisplayTheme::Dark };
    let written = serde_json::to_value(DisplayInfo {
        id: 1,
        settings,
        created_at: 2,
        last_seen_at: Some(3),
        last_seen_addr: Some("10.0.0.1".into()),
        revoked_at: Some(4),
    })
    .unwrap();
    let properties = info["properties"].as_object().unwrap();
    let keys: Vec<&String> = written.as_object().unwrap().keys().collect();
    assert!(keys.iter().all(|key| properties.contains_key(*key)), "{keys:?} vs {info}");
    assert!(info["required"].as_array().unwrap().iter().all(|r| written.get(r.as_str().unwrap()).is_some()));
    assert!(info.get("additionalProperties").is_none() && info.get("allOf").is_none(), "{info}");

    complete::<PollAnswer>();
    complete::<DisplayInfo>();
    complete::<CreatedDisplay>();
    complete::<DashboardView>();
    complete::<NewWidget>();
    complete::<TopicRules>();
}

#[test]
fn examples_are_bodies_the_server_accepts() {
    assert!(clean_title(&example::<NewDashboard>().title).is_ok());
    let widget = example::<NewWidget>();
    assert!(clean_title(&widget.title).is_ok());
    assert_eq!(check_thresholds(widget.kind, &widget.thresholds), Ok(()));
    assert!(example::<WidgetOrder>().widget_ids.len() <= MAX_WIDGETS);
    example::<ModeChoice>();
    example::<RecoveryReport>();
    example::<Preferences>();
    assert_eq!(example::<NewDisplay>().check(), Ok(()));
    let edit = example::<DisplayEdit>();
    assert_eq!(example::<NewDisplay>().edited(edit).check(), Ok(()));
    let claim = example::<DisplayClaim>();
    assert!(claim.secret.len() == 32 && claim.secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(example::<TopicRules>().check(), Ok(()));
    assert_eq!(example::<Threshold>().validate(), Ok(()));
    assert_eq!(example::<CollectionNotify>().validate(), Ok(()));
}

#[test]
fn a_displays_bounds_are_the_ones_it_is_checked_against() {
    use crate::display::{MAX_DASHBOARDS, MAX_ROTATE_SECS, MIN_ROTATE_SECS, NewDisplay};
    let new = schema::<NewDisplay>();
    let properties = &new["properties"];
    assert_eq!(properties["dashboards"]["maxItems"], MAX_DASHBOARDS);
    assert_eq!(properties["rotateSecs"]["minimum"], MIN_ROTATE_SECS);
    assert_eq!(properties["rotateSecs"]["maximum"], MAX_ROTATE_SECS);
}
