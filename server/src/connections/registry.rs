//! Every open live connection (WebSocket, dashboard or job SSE stream), so the server can close the
//! right ones when something changes elsewhere: a logout (4401), a tenant's live mode set to
//! `polling` (4405) or `off` (4403); and so it can have the right ones check their subscriptions
//! again when the tenant's topic rules change. Each registration holds its user's [`Seat`] in the
//! deployment-wide count (the per-user limit is the roster's).

use super::live_mode_gate::{Carrier, shut_out};
use crate::outbox::Outbox;
use crate::topic_name::TenantId;
use crate::{
    auth::Auth,
    broker::cluster::Notice,
    roster::{Seat, Standing},
};
use protocol::LiveMode;
use protocol::close::{Disconnect, SESSION_ENDED};
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::Notify;

/// How long [`Registry::recheck`] keeps asking a store that does not answer.
const RECHECK_FOR: Duration = Duration::from_secs(300);

/// A request to close one socket, with the close code and reason to send.
#[derive(Debug, Default)]
pub struct Kick {
    reason: Mutex<Option<Disconnect>>,
    notify: Notify,
}

impl Kick {
    fn send(&self, disconnect: Disconnect) {
        self.reason.lock().expect("kick lock").get_or_insert(disconnect);
        // Every waiter: a connection waits for it in its loop and, at once, beside a blocked write.
        self.notify.notify_waiters();
    }

    /// A kick, or the session's expiry at `expires_at` (Unix seconds), whichever comes first: what
    /// a blocked write must not outlast.
    pub async fn or_expiry(&self, expires_at: i64) -> Disconnect {
        let left = std::time::Duration::from_secs((expires_at - crate::clock::now_secs()).max(0) as u64);
        tokio::select! {
            kicked = self.received() => kicked,
            () = tokio::time::sleep(left) => Disconnect::session_ended("session expired"),
        }
    }

    /// Completes with the close code and reason once someone asks this socket to close.
    pub async fn received(&self) -> Disconnect {
        loop {
            // Listening before looking: a kick between the two is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(disconnect) = self.reason.lock().expect("kick lock").clone() {
                return disconnect;
            }
            notified.await;
        }
    }
}

#[derive(Debug)]
struct Entry {
    user_id: i64,
    session_id: String,
    tenant: TenantId,
    kick: Arc<Kick>,
    /// Woken when the topic rules change, so the connection checks them before it writes again.
    outbox: Arc<Outbox>,
    rules_changed: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
pub struct Registry {
    sockets: Mutex<Sockets>,
}

#[derive(Debug, Default)]
struct Sockets {
    by_id: HashMap<u64, Entry>,
    /// Open sockets per user on this node.
    per_user: HashMap<i64, usize>,
}

/// Removes its socket from the registry when the connection ends, however it ends.
pub struct Registration {
    registry: Arc<Registry>,
    connection: u64,
    pub kick: Arc<Kick>,
    /// Set when the tenant's topic rules changed since the connection last checked them.
    pub rules_changed: Arc<AtomicBool>,
    seat: Seat,
}

impl Registration {
    /// The user's standing in the deployment when this connection opened.
    pub fn joined(&self) -> &Standing {
        &self.seat.joined
    }

    /// Gives the user's seat back as the connection ends: their standing without it.
    pub async fn leave(&mut self) -> Standing {
        self.seat.leave().await
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut sockets = self.registry.sockets.lock().expect("registry lock");
        let Some(entry) = sockets.by_id.remove(&self.connection) else { return };
        if let Some(count) = sockets.per_user.get_mut(&entry.user_id) {
            *count -= 1;
            if *count == 0 {
                sockets.per_user.remove(&entry.user_id);
            }
        }
    }
}

impl Registry {
    /// Adds a socket whose user holds `seat` and which writes from `outbox`.
    pub fn register(
        self: &Arc<Self>,
        connection: u64,
        user_id: i64,
        session_id: &str,
        tenant: &TenantId,
        outbox: Arc<Outbox>,
        seat: Seat,
    ) -> Registration {
        let mut sockets = self.sockets.lock().expect("registry lock");
        *sockets.per_user.entry(user_id).or_default() += 1;
        let kick = Arc::new(Kick::default());
        let rules_changed = Arc::new(AtomicBool::new(false));
        let entry = Entry {
            user_id,
            session_id: session_id.to_owned(),
            tenant: tenant.clone(),
            kick: kick.clone(),
            outbox,
            rules_changed: rules_changed.clone(),
        };
        sockets.by_id.insert(connection, entry);
        Registration { registry: self.clone(), connection, kick, rules_changed, seat }
    }

    /// Flags every socket of `tenant` to check its subscriptions against the tenant's new topic
    /// rules, and wakes it to do so now; returns how many.
    pub fn rules_changed(&self, tenant: &TenantId) -> usize {
        let sockets = self.sockets.lock().expect("registry lock");
        sockets
            .by_id
            .values()
            .filter(|e| &e.tenant == tenant)
            .map(|e| {
                e.rules_changed.store(true, Ordering::Release);
                e.outbox.wake();
            })
            .count()
    }

    /// Closes the connections a notice is about (a logout or a change of live mode, here or on
    /// another node); returns how many. [`Notice::Missed`] closes none here: see
    /// [`Registry::recheck`].
    pub fn apply(&self, notice: &Notice) -> usize {
        match notice {
            Notice::SessionEnded(session) if crate::auth::display_of_session(session).is_some() => {
                self.kick_session(session, SESSION_ENDED, "display revoked")
            }
            Notice::SessionEnded(session) => self.kick_session(session, SESSION_ENDED, "logged out"),
            Notice::LiveMode(tenant, mode) => self.kick_for_mode(tenant, *mode),
            // The rules must be read first: see `Permissions::reread`.
            Notice::TopicRules(_) | Notice::Notifiers(_) | Notice::Missed => 0,
        }
    }

    /// Closes the tenant's connections that `mode` no longer lets in (every registered connection
    /// pushes: polls hold nothing open).
    fn kick_for_mode(&self, tenant: &TenantId, mode: LiveMode) -> usize {
        match shut_out(mode, Carrier::Push) {
            Some(out) => self.kick_tenant(tenant, out.code, out.reason),
            None => 0,
        }
    }

    /// Asks the store again about every open socket's session and tenant, and closes the sockets
    /// whose session ended or whose tenant's live mode no longer lets them in: what notices missed while
    /// the node was cut off from the others would have closed. What the store cannot answer now
    /// (it may be coming back too) is asked again, with backoff, for up to [`RECHECK_FOR`].
    /// Returns how many sockets it closed.
    pub async fn recheck(&self, auth: &Auth) -> usize {
        let (mut sessions, mut tenants): (HashSet<String>, HashSet<TenantId>) = {
            let sockets = self.sockets.lock().expect("registry lock");
            sockets.by_id.values().map(|e| (e.session_id.clone(), e.tenant.clone())).unzip()
        };
        let (mut closed, mut pause, give_up) = (0, Duration::from_millis(250), Instant::now() + RECHECK_FOR);
        loop {
            let mut unanswered = HashSet::new();
            for session in sessions {
                match auth.session_stands(&session).await {
                    Ok(true) => {}
                    Ok(false) => closed += self.kick_session(&session, SESSION_ENDED, "logged out"),
                    Err(_) => {
                        unanswered.insert(session);
                    }
                }
            }
            let mut unanswered_tenants = HashSet::new();
            for tenant in tenants {
                match auth.live_mode(&tenant).await {
                    Ok(mode) => closed += self.kick_for_mode(&tenant, mode),
                    Err(_) => {
                        unanswered_tenants.insert(tenant);
                    }
                }
            }
            if (unanswered.is_empty() && unanswered_tenants.is_empty()) || Instant::now() >= give_up {
                return closed;
            }
            (sessions, tenants) = (unanswered, unanswered_tenants);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(10));
        }
    }

    /// Closes every socket of a session; returns how many.
    pub fn kick_session(&self, session_id: &str, code: u16, reason: &'static str) -> usize {
        self.kick_where(|e| e.session_id == session_id, code, reason)
    }

    /// Closes every socket of a tenant; returns how many.
    pub fn kick_tenant(&self, tenant: &TenantId, code: u16, reason: &'static str) -> usize {
        self.kick_where(|e| &e.tenant == tenant, code, reason)
    }

    /// Sockets open now, and users with at least one (nothing stays behind a closed socket).
    pub fn open(&self) -> (usize, usize) {
        let sockets = self.sockets.lock().expect("registry lock");
        (sockets.by_id.len(), sockets.per_user.len())
    }

    fn kick_where(&self, pick: impl Fn(&Entry) -> bool, code: u16, reason: &'static str) -> usize {
        let sockets = self.sockets.lock().expect("registry lock");
        sockets.by_id.values().filter(|e| pick(e)).map(|e| e.kick.send(Disconnect::new(code, reason))).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        roster::{MemoryRoster, Roster},
        store::accounts::{Role, User},
    };

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn outbox() -> Arc<Outbox> {
        Arc::new(Outbox::new(4))
    }

    async fn seat(user_id: i64) -> Seat {
        let roster: Arc<dyn Roster> = Arc::new(MemoryRoster::default());
        let user = User { id: user_id, email: "u@acme.test".into(), tenant: acme(), role: Role::Viewer };
        Seat::take(roster, &user, 10).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn kicks_reach_exactly_the_chosen_sockets() {
        let r = Arc::new(Registry::default());
        let a = r.register(1, 10, "s1", &acme(), outbox(), seat(10).await);
        let b = r.register(2, 10, "s2", &acme(), outbox(), seat(10).await);
        let other = TenantId::parse("globex").unwrap();
        let c = r.register(3, 20, "s3", &other, outbox(), seat(20).await);
        assert_eq!(r.kick_session("s1", 4401, "logged out"), 1);
        assert_eq!(a.kick.received().await, Disconnect::new(4401, "logged out"));
        assert_eq!(r.kick_tenant(&acme(), 4403, "live updates are off"), 2);
        assert_eq!(b.kick.received().await, Disconnect::new(4403, "live updates are off"));
        assert!(c.kick.reason.lock().unwrap().is_none());
    }

    #[tokio::test]
    async fn a_change_of_live_mode_closes_what_the_mode_keeps_out() {
        let r = Arc::new(Registry::default());
        let a = r.register(1, 10, "s1", &acme(), outbox(), seat(10).await);
        assert_eq!(r.apply(&Notice::LiveMode(acme(), LiveMode::Live)), 0);
        assert_eq!(r.apply(&Notice::LiveMode(acme(), LiveMode::Polling)), 1);
        assert_eq!(a.kick.received().await.code, protocol::close::POLLING_ONLY);
        let b = r.register(2, 10, "s1", &acme(), outbox(), seat(10).await);
        assert_eq!(r.apply(&Notice::LiveMode(acme(), LiveMode::Off)), 2);
        assert_eq!(b.kick.received().await.code, protocol::close::LIVE_OFF);
    }

    #[tokio::test]
    async fn a_change_of_topic_rules_flags_and_wakes_the_tenants_connections_only() {
        let r = Arc::new(Registry::default());
        let (mine, theirs) = (outbox(), outbox());
        let a = r.register(1, 10, "s1", &acme(), mine.clone(), seat(10).await);
        let globex = TenantId::parse("globex").unwrap();
        let b = r.register(2, 20, "s2", &globex, theirs.clone(), seat(20).await);
        assert_eq!(r.rules_changed(&acme()), 1);
        assert!(a.rules_changed.load(Ordering::Acquire));
        assert!(!b.rules_changed.load(Ordering::Acquire));
        let woken = tokio::time::timeout(Duration::from_secs(5), mine.ready()).await;
        assert!(woken.is_ok(), "the connection's writer is woken to check");
        assert_eq!(r.apply(&Notice::TopicRules(acme())), 0, "a notice alone closes nothing");
    }

    #[tokio::test]
    async fn a_closed_socket_leaves_nothing_behind() {
        let r = Arc::new(Registry::default());
        let first = r.register(1, 10, "s", &acme(), outbox(), seat(10).await);
        let second = r.register(2, 11, "s", &acme(), outbox(), seat(11).await);
        assert_eq!(r.open(), (2, 2));
        drop(first);
        assert_eq!(r.open(), (1, 1), "user 10's socket closed at once");
        drop(second);
        assert_eq!(r.open(), (0, 0));
    }
}
