//! What the nodes of a deployment tell each other and share out, apart from ordering messages (the
//! [`Engine`](super::engine::Engine)'s job): notices about connections only another node can close,
//! and duties one node does for all (the demo feed). Alone, a node is its whole cluster ([`Alone`]);
//! over Redis, see [`super::redis`].

use crate::topic_name::TenantId;
use futures_util::future::BoxFuture;
use protocol::LiveMode;
use std::time::Duration;

pub trait Cluster: Send + Sync + 'static {
    /// Tells every other node of the deployment (this one has acted on it already).
    fn announce(&self, notice: Notice) -> BoxFuture<'_, ()>;

    /// What to do with the notices other nodes announce.
    fn on_notice(&self, handle: Box<dyn Fn(Notice) + Send + Sync>);

    /// Claims, or keeps, a duty that one node of the deployment does (the demo feed) for `ttl`:
    /// `true` while this node holds it. Alone, a node always does; several hand it over when its
    /// holder stops renewing it (it stopped, died, or lost Redis).
    fn hold_duty<'a>(&'a self, duty: &'a str, ttl: Duration) -> BoxFuture<'a, bool>;

    /// Gives the duty up (at shutdown), so that another node takes it at its next claim.
    fn release_duty<'a>(&'a self, duty: &'a str) -> BoxFuture<'a, ()>;
}

/// What a node tells the others about connections only they can close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A session ended (a logout): its sockets close with 4401 wherever they are.
    SessionEnded(String),
    /// A tenant's live mode changed: what it no longer lets in closes (4405 for `polling`, 4403 for
    /// `off`), and every node forgets the mode it remembered.
    LiveMode(TenantId, LiveMode),
    /// A tenant's topic rules changed: every node reads them again, and its connections of that
    /// tenant check their subscriptions against them.
    TopicRules(TenantId),
    /// A widget's collection notifications or thresholds changed, or a widget that had some
    /// went: every node reads the tenant's notifying widgets again. (Written `collection_notify`,
    /// the line of the release that had only collection notifications.)
    Notifiers(TenantId),
    /// Never announced: this node's link to the others was down, so it may have missed notices.
    /// Whatever it remembers may be stale, and every open socket must be checked again.
    Missed,
}

impl Notice {
    /// One line, for a channel: `session <id>`, `live_mode <tenant> <mode>`, `topic_rules <tenant>`
    /// (or `missed -`). A switch
    /// to `off` is written `live_off <tenant>`, the line of the previous release, so that its nodes
    /// still close the tenant's sockets during a rolling upgrade.
    pub fn to_line(&self) -> String {
        match self {
            Notice::SessionEnded(session) => format!("session {session}"),
            Notice::LiveMode(tenant, LiveMode::Off) => format!("live_off {tenant}"),
            Notice::LiveMode(tenant, mode) => format!("live_mode {tenant} {mode}"),
            Notice::TopicRules(tenant) => format!("topic_rules {tenant}"),
            Notice::Notifiers(tenant) => format!("collection_notify {tenant}"),
            Notice::Missed => "missed -".to_owned(),
        }
    }

    pub fn from_line(line: &str) -> Option<Self> {
        match line.split_once(' ')? {
            ("session", session) if !session.is_empty() => Some(Notice::SessionEnded(session.to_owned())),
            ("live_off", tenant) => Some(Notice::LiveMode(TenantId::parse(tenant).ok()?, LiveMode::Off)),
            ("live_mode", rest) => {
                let (tenant, mode) = rest.split_once(' ')?;
                Some(Notice::LiveMode(TenantId::parse(tenant).ok()?, LiveMode::parse(mode)?))
            }
            ("topic_rules", tenant) => Some(Notice::TopicRules(TenantId::parse(tenant).ok()?)),
            ("collection_notify", tenant) => Some(Notice::Notifiers(TenantId::parse(tenant).ok()?)),
            ("missed", "-") => Some(Notice::Missed),
            _ => None,
        }
    }
}

/// A node with no other: nothing to tell, every duty its own.
pub struct Alone;

impl Cluster for Alone {
    fn announce(&self, _notice: Notice) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }

    fn on_notice(&self, _handle: Box<dyn Fn(Notice) + Send + Sync>) {}

    fn hold_duty<'a>(&'a self, _duty: &'a str, _ttl: Duration) -> BoxFuture<'a, bool> {
        Box::pin(std::future::ready(true))
    }

    fn release_duty<'a>(&'a self, _duty: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_through_one_line() {
        let acme = TenantId::parse("acme").unwrap();
        let modes = LiveMode::ALL.map(|mode| Notice::LiveMode(acme.clone(), mode));
        let notices = [Notice::SessionEnded("abc123".into()), Notice::TopicRules(acme.clone()), Notice::Missed];
        for notice in notices.into_iter().chain(modes) {
            assert_eq!(Notice::from_line(&notice.to_line()), Some(notice));
        }
        assert_eq!(Notice::LiveMode(acme, LiveMode::Off).to_line(), "live_off acme", "what older nodes read");
        assert_eq!(Notice::from_line("live_off ../x"), None);
        assert_eq!(Notice::from_line("live_mode acme fast"), None);
        assert_eq!(Notice::from_line("live_mode acme"), None);
        assert_eq!(Notice::from_line("session "), None);
        assert_eq!(Notice::from_line("topic_rules ../x"), None);
        assert_eq!(Notice::from_line("collection_notify ../x"), None);
        assert_eq!(Notice::from_line("reboot now"), None);
    }
}
