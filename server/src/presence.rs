//! Who is online, kept by the server from live connections, published on two server-owned topics
//! of each tenant:
//!
//! - `presence/online` (collection): one document per user with at least one open connection, with
//!   what they last did;
//! - `presence/activity` (events): sign-ins, sign-outs, coming online and going offline, and the
//!   activity clients report (opening a dashboard, changing a widget's mode).
//!
//! Dashboards subscribe to these like any topic, so presence is live with no extra machinery.
//! Publishers cannot write under `presence/` ([`TopicName::is_server_owned`]): what these topics say
//! must come from the server. [`PresenceBook`] is the pure bookkeeping; [`Presence`] publishes what it decides.

use crate::topic_name::{TenantId, TopicKey, TopicName};
use crate::{
    broker::engine::InOrder,
    limits::KeyedLimiter,
    roster::{Roster, Standing},
    store::accounts::User,
    telemetry,
};
use protocol::{ActivityAction, Change, ChangeOp, Event, Item, Level, MAX_ACTIVITY_DETAIL, TopicKind};
use serde_json::{Map, Value, json};
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

pub use protocol::topics::{PRESENCE_ACTIVITY_TOPIC as ACTIVITY_TOPIC, PRESENCE_ONLINE_TOPIC as ONLINE_TOPIC};
/// Checks a client's activity detail: short, printable text.
pub fn check_detail(detail: &str) -> Result<&str, String> {
    let detail = detail.trim();
    if detail.is_empty() || detail.chars().count() > MAX_ACTIVITY_DETAIL {
        return Err(format!("activity detail must be 1 to {MAX_ACTIVITY_DETAIL} characters"));
    }
    if detail.chars().any(char::is_control) {
        return Err("activity detail must not contain control characters".into());
    }
    Ok(detail)
}

#[derive(Debug, Clone)]
struct Online {
    email: String,
    role: &'static str,
    /// Connections to this node.
    connections: usize,
    /// Connections in the whole deployment, as last counted.
    everywhere: usize,
    /// ms since the Unix epoch
    since: i64,
    activity: Option<(String, i64)>,
}

impl Online {
    /// Takes the deployment's word for the user's connections, since when they are online and what
    /// they last did, so every node publishes the same document. The later activity wins: this
    /// node's own may be newer than what the roster answered.
    fn learn(&mut self, standing: &Standing) {
        self.everywhere = standing.connections.max(self.connections);
        if standing.since > 0 {
            self.since = standing.since;
        }
        if let Some((what, at)) = &standing.activity
            && self.activity.as_ref().is_none_or(|(_, mine)| mine < at)
        {
            self.activity = Some((what.clone(), *at));
        }
    }

    fn doc(&self) -> Map<String, Value> {
        let mut doc = json!({
            "email": self.email,
            "role": self.role,
            "since": self.since,
            "connections": self.everywhere,
        });
        if let Some((what, at)) = &self.activity {
            doc["activity"] = json!(what);
            doc["activeAt"] = json!(at);
        }
        doc.as_object().cloned().expect("an object")
    }
}

/// What a presence change publishes: the user's document (or its removal) and an activity line.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub tenant: TenantId,
    pub online: Option<Change>,
    pub activity: Option<(Level, String)>,
}

/// Open connections per user, and what each user last did, tenant by tenant (so a change in one
/// tenant never walks another's users). No I/O. Who comes online and goes offline is decided by
/// the user's connections in the whole deployment (the roster's count, given with each change),
/// not by this node's alone.
#[derive(Debug, Default)]
pub struct PresenceBook {
    tenants: HashMap<TenantId, HashMap<i64, Online>>,
}

fn doc_id(user: &User) -> String {
    format!("u{}", user.id)
}

impl PresenceBook {
    /// A connection of `user` opened, leaving them `standing` in the deployment; their first one
    /// brings them online.
    pub fn connected(&mut self, user: &User, standing: &Standing) -> Publication {
        let users = self.tenants.entry(user.tenant.clone()).or_default();
        let entry = users.entry(user.id).or_insert_with(|| Online {
            email: user.email.clone(),
            role: user.role.as_str(),
            connections: 0,
            everywhere: 0,
            since: standing.since,
            activity: None,
        });
        entry.connections += 1;
        entry.learn(standing);
        let first = standing.connections <= 1;
        Publication {
            tenant: user.tenant.clone(),
            online: Some(Change { op: ChangeOp::Upsert, id: doc_id(user), doc: Some(entry.doc()) }),
            activity: first.then(|| (Level::Success, format!("{} came online", user.email))),
        }
    }

    /// A connection of `user` closed, leaving them `standing` in the deployment; their last one
    /// takes them offline.
    pub fn disconnected(&mut self, user: &User, standing: &Standing) -> Option<Publication> {
        let users = self.tenants.get_mut(&user.tenant)?;
        let entry = users.get_mut(&user.id)?;
        entry.connections -= 1;
        entry.learn(standing);
        let everywhere = standing.connections;
        let doc = entry.doc();
        if entry.connections == 0 {
            users.remove(&user.id);
            if users.is_empty() {
                self.tenants.remove(&user.tenant);
            }
        }
        if everywhere > 0 {
            let online = Change { op: ChangeOp::Upsert, id: doc_id(user), doc: Some(doc) };
            return Some(Publication { tenant: user.tenant.clone(), online: Some(online), activity: None });
        }
        Some(Self::offline(user))
    }

    /// `user` has no connection left anywhere (the node that held their last one died).
    pub fn gone(&mut self, user: &User) -> Publication {
        if let Some(users) = self.tenants.get_mut(&user.tenant) {
            users.remove(&user.id);
            if users.is_empty() {
                self.tenants.remove(&user.tenant);
            }
        }
        Self::offline(user)
    }

    fn offline(user: &User) -> Publication {
        Publication {
            tenant: user.tenant.clone(),
            online: Some(Change { op: ChangeOp::Delete, id: doc_id(user), doc: None }),
            activity: Some((Level::Info, format!("{} went offline", user.email))),
        }
    }

    /// Something `user` did: recorded on their document while they are online, and told as activity.
    pub fn activity(&mut self, user: &User, what: String, now: i64) -> Publication {
        let online = self.tenants.get_mut(&user.tenant).and_then(|users| users.get_mut(&user.id)).map(|entry| {
            entry.activity = Some((what.clone(), now));
            Change { op: ChangeOp::Upsert, id: doc_id(user), doc: Some(entry.doc()) }
        });
        Publication {
            tenant: user.tenant.clone(),
            online,
            activity: Some((Level::Info, format!("{} {what}", user.email))),
        }
    }

    pub fn online_count(&self, tenant: &TenantId) -> usize {
        self.tenants.get(tenant).map_or(0, HashMap::len)
    }

    /// Users online in every tenant (for tests: nothing stays behind once they leave).
    pub fn entries(&self) -> usize {
        self.tenants.values().map(HashMap::len).sum::<usize>() + self.tenants.len()
    }
}

/// The server's presence: the book, where it publishes (in order), and the limit on how often one
/// user's reports reach everyone's activity feed.
pub struct Presence {
    publisher: InOrder,
    /// Where what users do is recorded for every node (see [`Standing`]).
    roster: Arc<dyn Roster>,
    book: Mutex<PresenceBook>,
    next_event: AtomicU64,
    reports: KeyedLimiter<i64>,
    reports_per_min: usize,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence").field("entries", &self.entries()).finish_non_exhaustive()
    }
}

/// A report refused because its user sent too many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("at most {0} activity reports a minute; this one was not shown")]
pub struct TooManyReports(pub usize);

impl Presence {
    pub fn new(publisher: InOrder, roster: Arc<dyn Roster>, reports_per_min: usize) -> Self {
        let per_min = reports_per_min as f64;
        Self {
            publisher,
            roster,
            book: Mutex::new(PresenceBook::default()),
            next_event: AtomicU64::new(1),
            reports: KeyedLimiter::new(per_min / 60.0, per_min),
            reports_per_min,
        }
    }

    /// How many entries the book holds (see [`PresenceBook::entries`]).
    pub fn entries(&self) -> usize {
        self.book.lock().expect("presence lock").entries()
    }

    /// A connection of `user` opened, leaving them `standing` in the deployment.
    pub fn connected(&self, user: &User, standing: &Standing) {
        self.change(|book, _| Some(book.connected(user, standing)));
    }

    /// A connection of `user` closed, leaving them `standing` in the deployment.
    pub fn disconnected(&self, user: &User, standing: &Standing) {
        self.change(|book, _| book.disconnected(user, standing));
    }

    /// `user`'s last connections were on a node that died.
    pub fn gone(&self, user: &User) {
        self.change(|book, _| Some(book.gone(user)));
    }

    /// Activity the client reported; `detail` was checked with [`check_detail`]. Refused, and
    /// counted, past the user's limit.
    pub fn reported(&self, user: &User, action: ActivityAction, detail: &str) -> Result<(), TooManyReports> {
        if self.reports.check(&user.id, std::time::Instant::now()).is_err() {
            telemetry::denied("activity_rate");
            return Err(TooManyReports(self.reports_per_min));
        }
        metrics::counter!(telemetry::ACTIVITY, "action" => action_label(action)).increment(1);
        self.did(user, format!("{} {detail}", action.verb()));
        Ok(())
    }

    pub fn signed_in(&self, user: &User) {
        self.did(user, "signed in".into());
    }

    pub fn signed_out(&self, user: &User) {
        self.did(user, "signed out".into());
    }

    /// Publishes what `user` did, and records it for the other nodes, whose next document for the
    /// user then carries it too.
    fn did(&self, user: &User, what: String) {
        let at = crate::clock::now_ms();
        let (roster, noted_by, noted) = (self.roster.clone(), user.clone(), what.clone());
        tokio::spawn(async move { roster.note_activity(&noted_by, &noted, at).await });
        self.change(|book, _| Some(book.activity(user, what, at)));
    }

    /// Decides and publishes under one lock, so the topics see changes in the order they happened.
    fn change(&self, decide: impl FnOnce(&mut PresenceBook, i64) -> Option<Publication>) {
        let now = crate::clock::now_ms();
        let mut book = self.book.lock().expect("presence lock");
        let Some(publication) = decide(&mut book, now) else { return };
        let tenant = &publication.tenant;
        metrics::gauge!(telemetry::USERS_ONLINE, "tenant" => tenant.to_string()).set(book.online_count(tenant) as f64);
        if let Some(change) = publication.online {
            self.publish(tenant, ONLINE_TOPIC, TopicKind::Collection, Item::Change(change));
        }
        if let Some((level, title)) = publication.activity {
            let id = format!("a{}", self.next_event.fetch_add(1, Ordering::Relaxed));
            let event = Event::titled(id, now, "activity", level, title);
            self.publish(tenant, ACTIVITY_TOPIC, TopicKind::Events, Item::Event(event));
        }
    }

    fn publish(&self, tenant: &TenantId, topic: &str, kind: TopicKind, item: Item) {
        self.publisher.send(key(tenant, topic), kind, vec![item]);
    }
}

fn key(tenant: &TenantId, topic: &str) -> TopicKey {
    TopicKey::new(tenant.clone(), TopicName::parse(topic).expect("presence topics are valid"))
}

fn action_label(action: ActivityAction) -> &'static str {
    match action {
        ActivityAction::OpenDashboard => "open_dashboard",
        ActivityAction::ChangeMode => "change_mode",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::Role;

    /// `connections` in the deployment, online since `since`, nothing done yet.
    fn standing(connections: usize, since: i64) -> Standing {
        Standing { connections, since, activity: None }
    }

    fn user(id: i64, tenant: &str) -> User {
        User { id, email: format!("u{id}@{tenant}.test"), tenant: TenantId::parse(tenant).unwrap(), role: Role::Viewer }
    }

    #[test]
    fn the_first_connection_brings_a_user_online_and_the_last_takes_them_offline() {
        let mut book = PresenceBook::default();
        let ada = user(1, "acme");
        let first = book.connected(&ada, &standing(1, 10));
        assert_eq!(first.activity, Some((Level::Success, "u1@acme.test came online".into())));
        let second = book.connected(&ada, &standing(2, 10));
        assert_eq!(second.activity, None, "a second tab is no news");
        assert_eq!(second.online.unwrap().doc.unwrap()["connections"], 2);
        assert_eq!(book.disconnected(&ada, &standing(1, 10)).unwrap().activity, None);
        let last = book.disconnected(&ada, &Standing::default()).unwrap();
        assert_eq!(last.online.unwrap().op, ChangeOp::Delete);
        assert_eq!(last.activity.unwrap().1, "u1@acme.test went offline");
        assert!(book.disconnected(&ada, &Standing::default()).is_none(), "no connection left to close");
        assert_eq!(book.entries(), 0, "nothing stays behind");
    }

    #[test]
    fn online_and_offline_follow_the_whole_deployment() {
        let mut book = PresenceBook::default();
        let ada = user(1, "acme");
        // Ada already has a tab open on another node: this one is no news.
        let here = book.connected(&ada, &standing(2, 10));
        assert_eq!(here.activity, None);
        assert_eq!(here.online.unwrap().doc.unwrap()["connections"], 2);
        // Closing it leaves her online, through the other node.
        let closed = book.disconnected(&ada, &standing(1, 10)).unwrap();
        assert_eq!(closed.online.unwrap().op, ChangeOp::Upsert);
        assert_eq!(closed.activity, None);
        assert_eq!(book.entries(), 0, "this node holds nothing for her any more");
        // The other node dies: she is gone.
        assert_eq!(book.gone(&ada).online.unwrap().op, ChangeOp::Delete);
    }

    #[test]
    fn activity_lands_on_the_users_document_and_tenants_stay_apart() {
        let mut book = PresenceBook::default();
        let (ada, bob) = (user(1, "acme"), user(2, "globex"));
        book.connected(&ada, &standing(1, 1));
        book.connected(&bob, &standing(1, 1));
        let p = book.activity(&ada, "opened Operations".into(), 5);
        assert_eq!(p.tenant.as_str(), "acme");
        let doc = p.online.unwrap().doc.unwrap();
        assert_eq!((doc["activity"].as_str(), doc["activeAt"].as_i64()), (Some("opened Operations"), Some(5)));
        assert_eq!(book.online_count(&ada.tenant), 1);
        let offline = book.activity(&user(3, "acme"), "signed in".into(), 6);
        assert!(offline.online.is_none(), "not online: only the activity line");
    }

    #[test]
    fn every_node_publishes_the_deployments_since_and_latest_activity() {
        let ada = user(1, "acme");
        // Node A: online since 10, opened a dashboard at 20.
        let mut a = PresenceBook::default();
        a.connected(&ada, &standing(1, 10));
        a.activity(&ada, "opened Ops".into(), 20);
        // Node B: her second tab opens at 30; the roster answers what A recorded.
        let mut b = PresenceBook::default();
        let told = Standing { connections: 2, since: 10, activity: Some(("opened Ops".into(), 20)) };
        let doc = b.connected(&ada, &told).online.unwrap().doc.unwrap();
        assert_eq!((doc["since"].as_i64(), doc["connections"].as_i64()), (Some(10), Some(2)));
        assert_eq!((doc["activity"].as_str(), doc["activeAt"].as_i64()), (Some("opened Ops"), Some(20)));
        // What B did itself since is newer than an older answer, and is kept.
        b.activity(&ada, "set Orders to Manual".into(), 40);
        let doc = b.disconnected(&ada, &told).unwrap().online.unwrap().doc.unwrap();
        assert_eq!(doc["activity"].as_str(), Some("set Orders to Manual"));
    }

    #[test]
    fn details_are_short_printable_text() {
        assert_eq!(check_detail(" Operations ").unwrap(), "Operations");
        assert!(check_detail("").is_err());
        assert!(check_detail(&"x".repeat(MAX_ACTIVITY_DETAIL + 1)).is_err());
        assert!(check_detail("a\nb").is_err());
        for owned in ["presence/online", "dashboards/edits"] {
            assert!(TopicName::parse(owned).unwrap().is_server_owned(), "{owned}");
        }
        assert!(!TopicName::parse("presences/x").unwrap().is_server_owned());
        assert!(!TopicName::parse("sales/dashboards/x").unwrap().is_server_owned());
    }
}
