//! The bridge's mapping file: which Kafka topics feed which livedash topics, and how a message's
//! JSON becomes dashboard items. Parsed strictly (an unknown key is an error, as in livedash.toml)
//! and checked whole before the bridge starts, so a mistake shows at start, with its place.

use crate::ingest::item_rules;
use crate::topic_name::{TenantId, TopicName};
use protocol::{Level, TopicKind};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeFile {
    pub kafka: KafkaSettings,
    #[serde(rename = "route", default)]
    pub routes: Vec<Route>,
}

/// How to reach the cluster, and how hard to push.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// `bootstrap.servers`: `host:port,host:port`.
    pub brokers: String,
    /// The consumer group every bridge instance of this deployment joins; they share the
    /// partitions between them.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Where bad messages are copied, with the reason in a header; none by default.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Messages held between the consumer and the broker; when full, the consumer pauses.
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
    /// The largest message taken, in bytes; larger ones are bad messages.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Passed to librdkafka as they are (`security.protocol`, `sasl.mechanisms`, `ssl.ca.location`, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_group() -> String {
    "livedash-bridge".into()
}

fn default_channel_capacity() -> usize {
    1024
}

fn default_max_message_bytes() -> usize {
    64 * 1024
}

/// One Kafka topic into one tenant's topics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The Kafka topic consumed.
    pub kafka_topic: String,
    /// The tenant it belongs to: a literal, never taken from a message.
    pub tenant: String,
    /// The livedash topic, a template over the message's fields: `orders/{region}`.
    pub topic: String,
    pub kind: Kind,
    /// Where the message's time is; the time it was consumed when absent.
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    /// `series`: the field holding the point's value.
    #[serde(default)]
    pub value: Option<String>,
    /// `metrics`: metric key → the field holding its value.
    #[serde(default)]
    pub metrics: BTreeMap<String, String>,
    /// `events`: where the event's parts are.
    #[serde(default)]
    pub event: Option<EventFields>,
    /// `collection`: the field holding the document's id (the document is the whole message).
    #[serde(default)]
    pub id: Option<String>,
    /// `collection`: a field that, when `true`, deletes the document instead.
    #[serde(default)]
    pub deleted: Option<String>,
    /// A field whose value identifies a message, to drop one Kafka delivers twice; by default the
    /// Kafka offset does (per partition).
    #[serde(default)]
    pub dedupe_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Series,
    Metrics,
    Events,
    Collection,
}

impl Kind {
    pub fn topic_kind(self) -> TopicKind {
        match self {
            Kind::Series => TopicKind::Series,
            Kind::Metrics => TopicKind::Metrics,
            Kind::Events => TopicKind::Events,
            Kind::Collection => TopicKind::Collection,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timestamp {
    pub field: String,
    pub unit: TimeUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Milliseconds since the Unix epoch.
    Ms,
    /// Seconds since the Unix epoch (a fraction allowed).
    S,
    /// Text such as `2026-12-01T08:30:00Z`.
    Rfc3339,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFields {
    /// The field with the event's title.
    pub title: String,
    /// The field with its type; `type_default` when absent.
    #[serde(default)]
    pub r#type: Option<String>,
    #[serde(default = "default_event_type")]
    pub type_default: String,
    /// The field with its level (`info`, `success`, `warning`, `error`); `info` when absent.
    #[serde(default)]
    pub level: Option<String>,
    /// The field with its body text.
    #[serde(default)]
    pub body: Option<String>,
    /// The field with its id; one is made from the Kafka position when absent.
    #[serde(default)]
    pub id: Option<String>,
}

fn default_event_type() -> String {
    "notification".into()
}

/// A mapping file that cannot be used, and where.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MappingError {
    #[error("{0}")]
    Syntax(String),
    #[error("route {route} ({kafka_topic}): {problem}")]
    Route { route: usize, kafka_topic: String, problem: String },
}

/// A route checked and ready to use.
#[derive(Debug, Clone)]
pub struct CheckedRoute {
    pub route: Route,
    pub tenant: TenantId,
    pub template: Template,
}

/// Reads and checks a mapping file's text.
pub fn parse(text: &str) -> Result<(KafkaSettings, Vec<CheckedRoute>), MappingError> {
    let file: BridgeFile = serde_path_to_error::deserialize(toml::Deserializer::parse(text).map_err(syntax)?)
        .map_err(|e| MappingError::Syntax(format!("{}: {}", e.path(), e.inner())))?;
    if file.kafka.channel_capacity == 0 {
        return Err(MappingError::Syntax("kafka.channel_capacity must be at least 1".into()));
    }
    if file.routes.is_empty() {
        return Err(MappingError::Syntax("no [[route]]: the bridge would consume nothing".into()));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, route) in file.routes.iter().enumerate() {
        if !seen.insert(route.kafka_topic.as_str()) {
            return Err(MappingError::Route {
                route: i + 1,
                kafka_topic: route.kafka_topic.clone(),
                problem: "another route reads this Kafka topic already: one route per topic".into(),
            });
        }
    }
    let routes = file.routes.into_iter().enumerate().map(|(i, route)| check(i + 1, route)).collect::<Result<_, _>>()?;
    Ok((file.kafka, routes))
}

fn syntax(e: impl std::fmt::Display) -> MappingError {
    MappingError::Syntax(e.to_string())
}

fn check(number: usize, route: Route) -> Result<CheckedRoute, MappingError> {
    let fail = |problem: String| MappingError::Route { route: number, kafka_topic: route.kafka_topic.clone(), problem };
    if route.tenant.contains('{') {
        return Err(fail("the tenant must be written out: it is never taken from a message".into()));
    }
    let tenant = TenantId::parse(&route.tenant).map_err(|e| fail(format!("tenant {:?}: {e}", route.tenant)))?;
    let template = Template::parse(&route.topic).map_err(fail)?;
    match route.kind {
        Kind::Series if route.value.is_none() => return Err(fail("a series route needs `value`".into())),
        Kind::Metrics if route.metrics.is_empty() => return Err(fail("a metrics route needs `metrics`".into())),
        Kind::Events if route.event.is_none() => return Err(fail("an events route needs `event`".into())),
        Kind::Collection if route.id.is_none() => return Err(fail("a collection route needs `id`".into())),
        _ => {}
    }
    // What the file itself names is held to the publish API's rules here, once, rather than
    // refusing every message of a route that could never pass.
    for key in route.metrics.keys() {
        item_rules::metric_key(&format!("metrics.{key}"), key).map_err(|e| fail(e.to_string()))?;
    }
    if let Some(event) = &route.event {
        item_rules::event_type("event.type_default", &event.type_default).map_err(|e| fail(e.to_string()))?;
    }
    Ok(CheckedRoute { route, tenant, template })
}

/// A livedash topic name with `{field}` placeholders filled from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

impl Template {
    /// Refuses a template that is not a valid topic name with its placeholders filled in by a
    /// plain word, or that writes under the server's own `presence/` topics.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or_else(|| format!("topic {text:?}: a `{{` is not closed"))?;
            let field = &rest[open + 1..open + close];
            if field.is_empty() || field.contains('{') {
                return Err(format!("topic {text:?}: an empty or nested placeholder"));
            }
            parts.push(Part::Field(field.to_owned()));
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("topic {text:?}: a `}}` without its `{{`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        let template = Self { parts };
        let sample = template.fill(|_| Some("x".to_owned())).map_err(|e| format!("topic {text:?}: {e}"))?;
        if sample.is_server_owned() {
            return Err(format!("topic {text:?}: `presence/` and `dashboards/` topics are the server's own"));
        }
        Ok(template)
    }

    /// The fields the template reads.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The topic name for one message; `value_of` gives each field's text. A value must be one
    /// plain word (letters, digits, `-`, `_`, `.`), so no message can add path segments, climb
    /// out with `..` or reach a reserved topic.
    pub fn fill(&self, value_of: impl Fn(&str) -> Option<String>) -> Result<TopicName, String> {
        let mut name = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => name.push_str(text),
                Part::Field(field) => {
                    let value = value_of(field).ok_or_else(|| format!("no field {field:?} for the topic"))?;
                    let word = !value.is_empty()
                        && value != "."
                        && value != ".."
                        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                    if !word {
                        return Err(format!("field {field:?} is {value:?}, not a word a topic can hold"));
                    }
                    name.push_str(&value);
                }
            }
        }
        let topic = TopicName::parse(&name).map_err(|e| format!("{name:?} is not a topic name: {e}"))?;
        if topic.is_server_owned() {
            return Err(format!("{name:?} is one of the server's own topics"));
        }
        Ok(topic)
    }
}

/// The level a message's text names.
pub fn level(text: &str) -> Option<Level> {
    Level::ALL.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDERS: &str = r#"
        [kafka]
        brokers = "127.0.0.1:9092"
        dead_letter_topic = "livedash-dead"

        [kafka.properties]
        "security.protocol" = "plaintext"

        [[route]]
        kafka_topic = "orders"
        tenant = "acme"
        topic = "orders/{region}"
        kind = "series"
        value = "amount"
        timestamp = { field = "created_at", unit = "rfc3339" }
    "#;

    #[test]
    fn a_typical_orders_route_reads_with_defaults() {
        let (kafka, routes) = parse(ORDERS).unwrap();
        assert_eq!((kafka.group_id.as_str(), kafka.channel_capacity), ("livedash-bridge", 1024));
        assert_eq!(kafka.properties["security.protocol"], "plaintext");
        let route = &routes[0];
        assert_eq!(route.tenant.as_str(), "acme");
        assert_eq!(route.template.fields().collect::<Vec<_>>(), ["region"]);
        let topic = route.template.fill(|f| (f == "region").then(|| "eu-west".into())).unwrap();
        assert_eq!(topic.as_str(), "orders/eu-west");
    }

    #[test]
    fn unknown_keys_and_missing_parts_are_errors_with_their_place() {
        let typo = ORDERS.replace("value = \"amount\"", "valeu = \"amount\"");
        let e = parse(&typo).unwrap_err().to_string();
        assert!(e.contains("route") && e.contains("valeu"), "{e}");
        let no_value = ORDERS.replace("value = \"amount\"", "");
        assert!(parse(&no_value).unwrap_err().to_string().contains("needs `value`"));
    }

    #[test]
    fn a_template_can_never_name_another_tenant_or_the_servers_topics() {
        let from_message = ORDERS.replace("tenant = \"acme\"", "tenant = \"{customer}\"");
        assert!(parse(&from_message).unwrap_err().to_string().contains("never taken from a message"));
        assert!(Template::parse("presence/{x}").is_err());
        assert!(Template::parse("orders/{").is_err());
        assert!(Template::parse("orders//{x}").is_err());
        let template = Template::parse("orders/{region}").unwrap();
        for hostile in ["../globex", "a/b", "..", "", "eu west"] {
            assert!(template.fill(|_| Some(hostile.into())).is_err(), "{hostile:?} must not fill a topic");
        }
        assert!(template.fill(|_| None).is_err(), "a missing field");
    }

    #[test]
    fn a_kafka_topic_has_one_route_and_a_file_has_at_least_one() {
        let route = &ORDERS[ORDERS.find("[[route]]").unwrap()..];
        let twice = format!("{ORDERS}\n{}", route.replace("orders/{region}", "again"));
        assert!(parse(&twice).unwrap_err().to_string().contains("one route per topic"));
        assert!(parse("[kafka]\nbrokers = \"k:9092\"\n").unwrap_err().to_string().contains("no [[route]]"));
    }

    #[test]
    fn metric_keys_and_a_default_event_type_meet_the_publish_apis_rules() {
        let kpis = "[kafka]\nbrokers = \"k:9092\"\n[[route]]\nkafka_topic = \"in\"\ntenant = \"acme\"\n\
                    topic = \"kpis\"\nkind = \"metrics\"\nmetrics = { \"open orders\" = \"n\" }";
        let e = parse(kpis).unwrap_err().to_string();
        assert!(e.contains("metrics.open orders") && e.contains("A-Z a-z 0-9"), "{e}");
        assert!(parse(&kpis.replace("open orders", "open_orders")).is_ok());
        let alerts = "[kafka]\nbrokers = \"k:9092\"\n[[route]]\nkafka_topic = \"in\"\ntenant = \"acme\"\n\
                      topic = \"alerts\"\nkind = \"events\"\nevent = { title = \"t\", type_default = \"<b>\" }";
        assert!(parse(alerts).unwrap_err().to_string().contains("event.type_default"));
    }

    #[test]
    fn levels_read_in_any_case() {
        assert_eq!(level("WARNING"), Some(Level::Warning));
        assert_eq!(level("loud"), None);
    }
}
