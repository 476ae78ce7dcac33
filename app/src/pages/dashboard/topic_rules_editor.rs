//! The tenant's topic rules, edited by an admin beside the dashboard editor: one row per rule (the
//! topics, who may read them, the fields viewers do not see), saved as a whole to
//! `/api/admin/topic-rules`, checked here with the server's own check before it is sent.
//!
//! A field rule the form cannot show (one that hides a field from admins too, made through the API)
//! is kept as it was: the form never drops what it does not show.

use leptos::prelude::*;
use protocol::Role;
use protocol::topic_rules::{FieldRule, TopicRule, TopicRules};

/// One rule as the form shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleRow {
    pub topics: String,
    pub viewers_read: bool,
    pub admins_read: bool,
    /// Wall displays (a role of their own: a screen anyone in the room reads).
    pub displays_read: bool,
    /// Fields only admins see, comma-separated.
    pub admin_only_fields: String,
    /// Field rules the form does not show, kept as they were.
    pub kept: Vec<FieldRule>,
}

impl RuleRow {
    pub fn new() -> Self {
        Self { viewers_read: true, admins_read: true, displays_read: true, ..Self::default() }
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code, reason = "the page reads the rules in the browser"))]
    pub fn of(rule: &TopicRule) -> Self {
        let admin_only = |f: &FieldRule| f.roles == [Role::Admin];
        Self {
            topics: rule.topics.clone(),
            viewers_read: rule.read.contains(&Role::Viewer),
            admins_read: rule.read.contains(&Role::Admin),
            displays_read: rule.read.contains(&Role::Display),
            admin_only_fields: rule
                .fields
                .iter()
                .filter(|f| admin_only(f))
                .map(|f| f.field.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            kept: rule.fields.iter().filter(|f| !admin_only(f)).cloned().collect(),
        }
    }

    pub fn to_rule(&self) -> TopicRule {
        let read =
            [(self.viewers_read, Role::Viewer), (self.admins_read, Role::Admin), (self.displays_read, Role::Display)];
        let shown = self
            .admin_only_fields
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| FieldRule { field: f.to_owned(), roles: vec![Role::Admin] });
        TopicRule {
            topics: self.topics.trim().to_owned(),
            read: read.into_iter().filter(|(on, _)| *on).map(|(_, role)| role).collect(),
            fields: shown.chain(self.kept.iter().cloned()).collect(),
        }
    }
}

/// The rules the rows say, checked as the server checks them; the error names the row.
pub fn rules_of(rows: &[RuleRow]) -> Result<TopicRules, String> {
    let rules = TopicRules { version: 0, rules: rows.iter().map(RuleRow::to_rule).collect() };
    rules.check().map_err(|e| row_message(&e.at, &e.message))?;
    Ok(rules)
}

/// `rules[2].topics: …` as a person reads it: `Rule 3: …`.
fn row_message(at: &str, message: &str) -> String {
    let row = at.strip_prefix("rules[").and_then(|rest| rest.split(']').next()).and_then(|n| n.parse::<usize>().ok());
    match row {
        Some(row) => format!("Rule {}: {message}", row + 1),
        None => message.to_owned(),
    }
}

#[component]
pub fn TopicRulesEditor() -> AnyView {
    let rows = RwSignal::new(Vec::<RuleRow>::new());
    let version = RwSignal::new(None::<u64>);
    let message = RwSignal::new(String::new());

    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move {
        match load().await {
            Ok(rules) => {
                rows.set(rules.rules.iter().map(RuleRow::of).collect());
                version.set(Some(rules.version));
            }
            Err(error) => message.set(error),
        }
    });

    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let rules = match rules_of(&rows.get_untracked()) {
            Ok(rules) => rules,
            Err(error) => return message.set(error),
        };
        message.set("Saving…".into());
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match crate::http::send_json("PUT", "/api/admin/topic-rules", Some(&rules)).await {
                Ok(body) => match serde_json::from_str::<TopicRules>(&body) {
                    Ok(saved) => {
                        version.set(Some(saved.version));
                        message.set(format!("Saved (version {}). Open pages follow the new rules now.", saved.version));
                    }
                    Err(e) => message.set(e.to_string()),
                },
                Err(error) => message.set(format!("Not saved: {error}")),
            }
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = rules;
    };
    let row_view = move |i: usize| {
        let topics = move || rows.with(|rows| rows.get(i).map(|r| r.topics.clone()).unwrap_or_default());
        view! {
            <li class="topic-rule" data-rule=i>
                {text_field(rows, i, "Topics", "e.g. finance/**", |r| &r.topics, |r, v| r.topics = v)}
                {check_field(rows, i, "Viewers read", |r| r.viewers_read, |r, on| r.viewers_read = on)}
                {check_field(rows, i, "Admins read", |r| r.admins_read, |r, on| r.admins_read = on)}
                {check_field(rows, i, "Displays read", |r| r.displays_read, |r, on| r.displays_read = on)}
                {text_field(
                    rows,
                    i,
                    "Fields only admins see",
                    "e.g. salary, margin",
                    |r| &r.admin_only_fields,
                    |r, v| r.admin_only_fields = v,
                )}
                <button
                    class="button-quiet danger"
                    type="button"
                    aria-label=move || format!("Remove the rule for {}", topics())
                    on:click=move |_| {
                        rows.update(|rows| {
                            if i < rows.len() {
                                rows.remove(i);
                            }
                        })
                    }
                >
                    "Remove"
                </button>
            </li>
        }
    };
    view! {
        <form class="topic-rules" on:submit=save aria-label="Topic permissions">
            <h2>"Topic permissions"</h2>
            <p class="form-note">
                "Who may read which topics, and which fields viewers do not see. "
                "`*` matches one segment, a final `**` any number. Without a rule, everyone reads a topic."
            </p>
            <ul class="topic-rule-list">
                {move || (0..rows.with(Vec::len)).map(row_view).collect_view()}
            </ul>
            <button class="button-quiet" type="button" on:click=move |_| rows.update(|rows| rows.push(RuleRow::new()))>
                "Add a rule"
            </button>
            <button type="submit" disabled=move || version.get().is_none()>"Save permissions"</button>
            <span class="form-message" aria-live="polite">{move || message.get()}</span>
        </form>
    }
    .into_any()
}

/// A text field of rule `i`, read with `get` and written with `set`.
fn text_field(
    rows: RwSignal<Vec<RuleRow>>,
    i: usize,
    label: &'static str,
    placeholder: &'static str,
    get: fn(&RuleRow) -> &String,
    set: fn(&mut RuleRow, String),
) -> impl IntoView {
    view! {
        <label>
            {label}
            <input
                type="text"
                placeholder=placeholder
                prop:value=move || rows.with(|rows| rows.get(i).map(|r| get(r).clone()).unwrap_or_default())
                on:input=move |ev| change(rows, i, set, event_target_value(&ev))
            />
        </label>
    }
}

/// A checkbox of rule `i`, read with `get` and written with `set`.
fn check_field(
    rows: RwSignal<Vec<RuleRow>>,
    i: usize,
    label: &'static str,
    get: fn(&RuleRow) -> bool,
    set: fn(&mut RuleRow, bool),
) -> impl IntoView {
    view! {
        <label class="inline">
            <input
                type="checkbox"
                prop:checked=move || rows.with(|rows| rows.get(i).is_some_and(get))
                on:change=move |ev| change(rows, i, set, event_target_checked(&ev))
            />
            {label}
        </label>
    }
}

fn change<T>(rows: RwSignal<Vec<RuleRow>>, i: usize, set: fn(&mut RuleRow, T), value: T) {
    rows.update(|rows| {
        if let Some(row) = rows.get_mut(i) {
            set(row, value)
        }
    })
}

#[cfg(feature = "hydrate")]
async fn load() -> Result<TopicRules, String> {
    let (status, text) = crate::http::call("GET", "/api/admin/topic-rules", None).await?;
    if status != 200 {
        return Err(format!("the topic permissions could not be read (the server answered {status})"));
    }
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_goes_through_the_form_unchanged() {
        let rule = TopicRule {
            topics: "ops/people".into(),
            read: vec![Role::Viewer, Role::Admin],
            fields: vec![
                FieldRule { field: "salary".into(), roles: vec![Role::Admin] },
                FieldRule { field: "bonus".into(), roles: vec![Role::Admin] },
                FieldRule { field: "secret".into(), roles: vec![] },
            ],
        };
        let row = RuleRow::of(&rule);
        assert_eq!(row.admin_only_fields, "salary, bonus");
        assert_eq!(row.kept.len(), 1, "a field hidden from everyone is kept, not shown");
        assert_eq!(row.to_rule(), rule);
    }

    #[test]
    fn the_form_checks_as_the_server_does_and_names_the_row() {
        let mut admins_only = RuleRow { topics: " finance/** ".into(), admins_read: true, ..RuleRow::default() };
        admins_only.admin_only_fields = " margin ,, ".into();
        let rules = rules_of(&[admins_only.clone()]).unwrap();
        assert_eq!(rules.rules[0].topics, "finance/**");
        assert_eq!(rules.rules[0].read, vec![Role::Admin]);
        assert_eq!(rules.rules[0].fields, vec![FieldRule { field: "margin".into(), roles: vec![Role::Admin] }]);
        let bad = RuleRow { topics: "a/**/b".into(), ..RuleRow::new() };
        let error = rules_of(&[admins_only, bad]).unwrap_err();
        assert!(error.starts_with("Rule 2: "), "{error}");
    }
}
