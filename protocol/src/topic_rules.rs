//! A tenant's topic rules: which roles may read which topics, and which fields of a topic's
//! documents and events only some roles see.
//!
//! The server checks them on every transport when a subscription starts and again when they
//! change; the admin page edits them. Both sides share this one definition, so the editor
//! validates exactly as the server does before it saves.
//!
//! A rule's `topics` is a pattern of `/`-separated segments: a literal segment matches itself, `*`
//! matches any one segment, and a final `**` matches any number of further segments, none
//! included (`finance/**` matches `finance`, `finance/q3` and `finance/q3/eu`). When several rules
//! match a topic, each one applies: a role reads the topic only if every matching rule lets it, and
//! a field is hidden from a role if any matching rule hides it. No rule, no restriction: a tenant
//! without rules reads as it always did.

use crate::Role;
use serde::{Deserialize, Serialize};

/// Most rules a tenant may have.
pub const MAX_RULES: usize = 100;
/// Most field rules in one rule.
pub const MAX_FIELDS: usize = 32;
/// Longest field name, in bytes.
pub const MAX_FIELD_LEN: usize = 64;
/// Longest pattern, in bytes (the longest topic name).
pub const MAX_PATTERN_LEN: usize = 128;

/// What `GET /api/admin/topic-rules` answers and `PUT` takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"rules": [
        {"topics": "finance/**", "read": ["admin"]},
        {"topics": "ops/people", "read": ["viewer", "admin"], "fields": [{"field": "salary", "roles": ["admin"]}]}
    ]}))
)]
#[serde(deny_unknown_fields)]
pub struct TopicRules {
    /// Grows by one with each change; 0 before the first. Ignored in a `PUT`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub version: u64,
    /// At most 100. Every rule whose `topics` matches a topic applies to it.
    pub rules: Vec<TopicRule>,
}

/// Who may read some topics, and which of their fields only some roles see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TopicRule {
    /// The topics it is about: `/`-separated segments, where `*` matches any one segment and a final
    /// `**` any number of them, none included (`finance/**` matches `finance` and `finance/q3/eu`).
    pub topics: String,
    /// The roles that may read them.
    pub read: Vec<Role>,
    /// Fields of their documents (a collection's) and events (an event's `data`), and keys of a
    /// metrics topic, that only some roles see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldRule>,
}

/// A field that only some roles see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The field's name (1 to 64 bytes), once per rule.
    pub field: String,
    /// The roles that see it; the others get the item without it.
    pub roles: Vec<Role>,
}

/// What one role may have of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Nothing: the topic is not the role's to read.
    Denied,
    /// The topic, without these fields (sorted, each once; often none).
    Read { hidden: Vec<String> },
}

/// Where a set of rules is wrong, and how: `at` names the place (`rules[2].topics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

impl std::error::Error for RuleError {}

impl TopicRules {
    /// Whether the rules can be saved: bounded in number and size, every pattern well formed,
    /// every field named once per rule.
    pub fn check(&self) -> Result<(), RuleError> {
        let error = |at: String, message: String| Err(RuleError { at, message });
        if self.rules.len() > MAX_RULES {
            return error("rules".into(), format!("at most {MAX_RULES} rules"));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if let Err(message) = check_pattern(&rule.topics) {
                return error(format!("rules[{i}].topics"), message);
            }
            if rule.fields.len() > MAX_FIELDS {
                return error(format!("rules[{i}].fields"), format!("at most {MAX_FIELDS} fields per rule"));
            }
            for (j, field) in rule.fields.iter().enumerate() {
                let at = format!("rules[{i}].fields[{j}].field");
                if field.field.is_empty() || field.field.len() > MAX_FIELD_LEN {
                    return error(at, format!("a field name is 1 to {MAX_FIELD_LEN} bytes"));
                }
                if field.field.chars().any(char::is_control) {
                    return error(at, "a field name has no control characters".into());
                }
                if rule.fields[..j].iter().any(|earlier| earlier.field == field.field) {
                    return error(at, format!("field {:?} is named twice in this rule", field.field));
                }
            }
        }
        Ok(())
    }

    /// What `role` may have of `topic` (a name relative to the tenant).
    pub fn access(&self, role: Role, topic: &str) -> Access {
        let mut hidden = Vec::new();
        for rule in self.rules.iter().filter(|rule| pattern_matches(&rule.topics, topic)) {
            if !rule.read.contains(&role) {
                return Access::Denied;
            }
            hidden.extend(rule.fields.iter().filter(|f| !f.roles.contains(&role)).map(|f| f.field.clone()));
        }
        hidden.sort();
        hidden.dedup();
        Access::Read { hidden }
    }
}

/// Why `pattern` is not a topic pattern, if it is not one.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
        return Err(format!("a pattern is 1 to {MAX_PATTERN_LEN} bytes"));
    }
    let segments: Vec<&str> = pattern.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "" => return Err("a pattern has no empty segment (leading, trailing or double '/')".into()),
            "**" if i + 1 < segments.len() => return Err("'**' may only be the last segment".into()),
            "*" | "**" => {}
            "." | ".." => return Err("a pattern has no '.' or '..' segment".into()),
            literal => {
                let ok = literal.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if !ok {
                    return Err(format!("segment {literal:?}: a segment is '*', a final '**', or A-Z a-z 0-9 - _ ."));
                }
            }
        }
    }
    Ok(())
}

/// Whether `topic` is one of the topics `pattern` names (see the module docs).
pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    let mut topic = topic.split('/');
    for segment in pattern.split('/') {
        if segment == "**" {
            return true;
        }
        match topic.next() {
            Some(name) if segment == "*" || segment == name => {}
            _ => return false,
        }
    }
    topic.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(topics: &str, read: &[Role], fields: &[(&str, &[Role])]) -> TopicRule {
        TopicRule {
            topics: topics.into(),
            read: read.to_vec(),
            fields: fields.iter().map(|(f, roles)| FieldRule { field: (*f).into(), roles: roles.to_vec() }).collect(),
        }
    }

    #[test]
    fn patterns_match_by_segment() {
        assert!(pattern_matches("finance/**", "finance"));
        assert!(pattern_matches("finance/**", "finance/q3/eu"));
        assert!(!pattern_matches("finance/**", "financed"));
        assert!(!pattern_matches("finance/**", "ops/finance"));
        assert!(pattern_matches("*/orders", "eu/orders"));
        assert!(!pattern_matches("*/orders", "orders"));
        assert!(!pattern_matches("*/orders", "eu/west/orders"));
        assert!(pattern_matches("metrics/orders", "metrics/orders"));
        assert!(!pattern_matches("metrics/orders", "metrics/orders/eu"));
        assert!(pattern_matches("**", "anything/at/all"));
    }

    #[test]
    fn bad_patterns_are_named() {
        for bad in ["", "a//b", "/a", "a/", "a/**/b", "a/../b", "a/b c", "a/%2F"] {
            assert!(check_pattern(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "a/*", "*/b/**", "**", "kpi.v2/x-y_z"] {
            assert_eq!(check_pattern(good), Ok(()), "{good:?}");
        }
        let rules = TopicRules { version: 0, rules: vec![rule("ok", &[Role::Admin], &[]), rule("a//b", &[], &[])] };
        assert_eq!(rules.check().unwrap_err().at, "rules[1].topics");
    }

    #[test]
    fn fields_are_bounded_and_named_once() {
        let twice = rule("a", &[Role::Viewer], &[("salary", &[]), ("salary", &[Role::Admin])]);
        let error = TopicRules { version: 0, rules: vec![twice] }.check().unwrap_err();
        assert_eq!(error.at, "rules[0].fields[1].field");
        let long = "x".repeat(MAX_FIELD_LEN + 1);
        let error = TopicRules { version: 0, rules: vec![rule("a", &[], &[(&long, &[])])] }.check().unwrap_err();
        assert!(error.message.contains("1 to 64 bytes"), "{error}");
        let many = TopicRules { version: 0, rules: vec![rule("a", &[], &[]); MAX_RULES + 1] };
        assert_eq!(many.check().unwrap_err().at, "rules");
    }

    #[test]
    fn every_matching_rule_applies() {
        let rules = TopicRules {
            version: 3,
            rules: vec![
                rule("finance/**", &[Role::Admin], &[]),
                rule("ops/**", &[Role::Viewer, Role::Admin], &[("cost", &[Role::Admin])]),
                rule("ops/people", &[Role::Viewer, Role::Admin], &[("salary", &[Role::Admin]), ("cost", &[])]),
            ],
        };
        assert_eq!(rules.access(Role::Viewer, "finance/q3"), Access::Denied);
        assert_eq!(rules.access(Role::Admin, "finance/q3"), Access::Read { hidden: vec![] });
        assert_eq!(rules.access(Role::Viewer, "sales/orders"), Access::Read { hidden: vec![] });
        assert_eq!(rules.access(Role::Viewer, "ops/queue"), Access::Read { hidden: vec!["cost".into()] });
        assert_eq!(
            rules.access(Role::Viewer, "ops/people"),
            Access::Read { hidden: vec!["cost".into(), "salary".into()] }
        );
        assert_eq!(rules.access(Role::Admin, "ops/people"), Access::Read { hidden: vec!["cost".into()] });
    }

    #[test]
    fn the_json_is_what_the_docs_show() {
        let json = r#"{"rules":[{"topics":"finance/**","read":["admin"]},
            {"topics":"ops/people","read":["viewer","admin"],"fields":[{"field":"salary","roles":["admin"]}]}]}"#;
        let rules: TopicRules = serde_json::from_str(json).unwrap();
        assert_eq!(rules.version, 0);
        assert_eq!(rules.rules[1].fields[0].roles, vec![Role::Admin]);
        assert!(serde_json::from_str::<TopicRules>(r#"{"rules":[],"extra":1}"#).is_err());
        assert!(serde_json::from_str::<TopicRules>(r#"{"rules":[{"topics":"a","read":["owner"]}]}"#).is_err());
    }
}
