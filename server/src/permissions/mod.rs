//! Topic permissions inside a tenant: which of its users may read which topics, and which fields
//! each may see (the rules are [`protocol::topic_rules`]; an admin edits them).
//!
//! The rules are checked in one place, [`check`], which every transport reaches through
//! [`LiveConnection::follow`](crate::transport::live_connection::LiveConnection::follow) (the
//! WebSocket, the dashboard and job SSE streams) or the polling handler: when a subscription starts
//! and when the rules change. A change is saved, then announced to every node
//! ([`Notice::TopicRules`](crate::broker::cluster::Notice::TopicRules)); each node reads the new
//! rules and flags the tenant's open connections, which check their subscriptions again before
//! they write anything more. A subscription that lost its topic ends with a `forbidden` error
//! naming it; one whose hidden fields changed starts again from a snapshot filtered the new way.
//!
//! Each node keeps the rules of the tenants it serves in memory ([`Permissions`]), so checking a
//! subscription costs no query; the version decides between two reads that cross.

pub mod mask;

use crate::auth::Session;
use crate::connections::registry::Registry;
use crate::outbox::Frame;
use crate::store::{Store, StoreError};
use crate::topic_name::{TenantId, TopicName};
use mask::Hidden;
use protocol::topic_rules::{Access, TopicRules};
use protocol::{ControlMessage, ErrorCode, Role, ServerMessage};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

/// How long a node keeps asking a store that does not answer for rules it heard changed.
const REREAD_FOR: Duration = Duration::from_secs(300);

/// A subscription the rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {role} may not read topic {topic}")]
pub struct Forbidden {
    pub topic: String,
    pub role: Role,
}

impl Forbidden {
    /// The `forbidden` error a client gets for `widget`, as the frame that carries it.
    pub fn frame(&self, widget: &Arc<str>) -> Frame {
        let message = ControlMessage::Error {
            code: ErrorCode::Forbidden,
            message: self.to_string(),
            widget_id: Some(widget.to_string()),
        };
        Frame::Refused { widget: widget.clone(), text: ServerMessage::Control(message).to_json() }
    }
}

/// What a subscription may have: the fields hidden from it (`None`: none), or a refusal.
pub type Checked = Result<Option<Arc<Hidden>>, Forbidden>;

/// What `session` may have of `topic`: a display session only the topics its dashboards follow,
/// then what its role may have under `rules`. The one check every transport goes through.
pub fn check_session(rules: &TopicRules, session: &Session, topic: &TopicName) -> Checked {
    let role = session.user.role;
    if let Some(display) = &session.display
        && (!display.topics.contains(topic.as_str()) || FOR_PEOPLE_ONLY.contains(&topic.as_str()))
    {
        return Err(Forbidden { topic: topic.to_string(), role });
    }
    check(rules, role, topic)
}

/// Topics no display reads, whatever its dashboards show: the notification centre's, where what
/// happens on other topics is told ([`retold`]) to the people who read it. A screen on a wall is
/// read by whoever walks by, so it shows its dashboards' own topics only; and topic rules written
/// before displays existed (which name only people's roles) keep meaning what they meant for what
/// the centre may tell.
pub const FOR_PEOPLE_ONLY: [&str; 1] = [protocol::topics::NOTIFICATIONS_TOPIC];

/// What `role` may have of `topic` under `rules`.
pub fn check(rules: &TopicRules, role: Role, topic: &TopicName) -> Checked {
    match rules.access(role, topic.as_str()) {
        Access::Denied => Err(Forbidden { topic: topic.to_string(), role }),
        Access::Read { hidden } => Ok(Hidden::of(hidden).map(Arc::new)),
    }
}

/// Why what happens on one topic may not be told on another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("every {role} reads {target}, but a {role} may not read topic {source_topic}")]
pub struct Overheard {
    pub role: Role,
    pub source_topic: String,
    pub target: String,
}

/// What may be told on `target` of what happens on `source` (a collection notification, told on
/// the tenant's notifications topic): the fields of `source` hidden from some role that reads
/// `target` (the telling must leave them out), or a refusal when a role that reads `target` may
/// not read `source` at all. What is told on `target` reaches all its readers alike, so it may
/// hold only what each of them may see.
pub fn retold(rules: &TopicRules, source: &TopicName, target: &TopicName) -> Result<Option<Hidden>, Overheard> {
    let mut hidden = Vec::new();
    for role in Role::ALL {
        let displays_never_read = role == Role::Display && FOR_PEOPLE_ONLY.contains(&target.as_str());
        if displays_never_read || check(rules, role, target).is_err() {
            continue;
        }
        match check(rules, role, source) {
            Err(_) => {
                return Err(Overheard { role, source_topic: source.to_string(), target: target.to_string() });
            }
            Ok(Some(fields)) => hidden.extend(fields.fields().iter().cloned()),
            Ok(None) => {}
        }
    }
    Ok(Hidden::of(hidden))
}

/// The rules of the tenants this node serves, read from the store once and then when they change.
#[derive(Debug)]
pub struct Permissions {
    store: Store,
    held: Mutex<HashMap<TenantId, Arc<TopicRules>>>,
}

impl Permissions {
    pub fn new(store: Store) -> Self {
        Self { store, held: Mutex::default() }
    }

    /// The tenant's rules: as held, or read from the store the first time.
    pub async fn of(&self, tenant: &TenantId) -> Result<Arc<TopicRules>, StoreError> {
        match self.held(tenant) {
            Some(rules) => Ok(rules),
            None => Ok(self.keep(tenant, self.store.topic_rules(tenant).await?)),
        }
    }

    /// The tenant's rules if this node holds them (every tenant with a connection open here).
    pub fn held(&self, tenant: &TenantId) -> Option<Arc<TopicRules>> {
        self.held.lock().expect("rules lock").get(tenant).cloned()
    }

    /// Keeps `rules` unless newer ones are held already (two reads that crossed); returns what
    /// is held.
    fn keep(&self, tenant: &TenantId, rules: TopicRules) -> Arc<TopicRules> {
        let mut held = self.held.lock().expect("rules lock");
        match held.get(tenant) {
            Some(current) if current.version >= rules.version => current.clone(),
            _ => {
                let rules = Arc::new(rules);
                held.insert(tenant.clone(), rules.clone());
                rules
            }
        }
    }

    /// Reads the tenant's rules again (they changed, here or on another node) and has its open
    /// connections here check their subscriptions against them; returns how many it flagged.
    pub async fn reread(&self, tenant: &TenantId, sockets: &Registry) -> Result<usize, StoreError> {
        let rules = self.store.topic_rules(tenant).await?;
        self.keep(tenant, rules);
        Ok(sockets.rules_changed(tenant))
    }

    /// [`reread`](Self::reread), asked again with backoff while the store does not answer (it may
    /// be coming back too), for up to [`REREAD_FOR`].
    pub async fn reread_until_read(&self, tenant: &TenantId, sockets: &Registry) {
        let mut pause = Duration::from_millis(250);
        let give_up = tokio::time::Instant::now() + REREAD_FOR;
        loop {
            match self.reread(tenant, sockets).await {
                Ok(flagged) => return tracing::info!(%tenant, flagged, "topic rules read again"),
                Err(e) if tokio::time::Instant::now() >= give_up => {
                    return tracing::error!(%tenant, error = %e, "could not read the changed topic rules");
                }
                Err(e) => tracing::warn!(%tenant, error = %e, "could not read the changed topic rules yet"),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(10));
        }
    }

    /// The tenants whose rules this node holds (to read again after notices may have been missed).
    pub fn tenants(&self) -> Vec<TenantId> {
        self.held.lock().expect("rules lock").keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::topic_rules::{FieldRule, TopicRule};

    #[test]
    fn the_check_names_the_topic_and_the_role() {
        let rules = TopicRules {
            version: 1,
            rules: vec![TopicRule {
                topics: "finance/**".into(),
                read: vec![Role::Admin],
                fields: vec![FieldRule { field: "margin".into(), roles: vec![] }],
            }],
        };
        let topic = TopicName::parse("finance/q3").unwrap();
        let refused = check(&rules, Role::Viewer, &topic).unwrap_err();
        assert_eq!(refused.to_string(), "a viewer may not read topic finance/q3");
        let hidden = check(&rules, Role::Admin, &topic).unwrap().unwrap();
        assert_eq!(hidden.fields(), ["margin"]);
        assert_eq!(check(&rules, Role::Viewer, &TopicName::parse("sales").unwrap()), Ok(None));
        let Frame::Refused { text, .. } = refused.frame(&Arc::from("w1")) else { panic!() };
        let message: ServerMessage = serde_json::from_str(&text).unwrap();
        assert!(matches!(
            message,
            ServerMessage::Control(ControlMessage::Error { code: ErrorCode::Forbidden, widget_id: Some(w), .. }) if w == "w1"
        ));
    }

    #[test]
    fn what_is_retold_reaches_only_those_who_may_read_its_source() {
        let rule =
            |topics: &str, read: Vec<Role>, fields: Vec<FieldRule>| TopicRule { topics: topics.into(), read, fields };
        let margin = || vec![FieldRule { field: "margin".into(), roles: vec![Role::Admin] }];
        let name = |n: &str| TopicName::parse(n).unwrap();
        let (orders, finance, notices) = (name("sales/orders"), name("finance/q3"), name("ops/notifications"));
        let rules = TopicRules {
            version: 1,
            rules: vec![
                rule("sales/**", vec![Role::Admin, Role::Viewer], margin()),
                rule("finance/**", vec![Role::Admin], vec![]),
            ],
        };
        let hidden = retold(&rules, &orders, &notices).unwrap().unwrap();
        assert_eq!(hidden.fields(), ["margin"], "viewers read the notifications and may not see margins");
        let refused = retold(&rules, &finance, &notices).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "every viewer reads ops/notifications, but a viewer may not read topic finance/q3"
        );
        let mut admins_only = rules.clone();
        admins_only.rules.push(rule("ops/notifications", vec![Role::Admin], vec![]));
        assert_eq!(retold(&admins_only, &finance, &notices), Ok(None), "only admins hear of finance");
        assert_eq!(retold(&admins_only, &orders, &notices), Ok(None), "admins see margins");
    }
}
