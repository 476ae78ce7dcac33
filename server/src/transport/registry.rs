//! Every open socket, so the server can close the right ones when something changes elsewhere: a
//! logout (4401), a tenant's live flag turned off (4403). Also what counts connections per user.

use crate::broker::topic_name::TenantId;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tokio::sync::Notify;

/// A request to close one socket, with the close code and reason to send.
#[derive(Debug, Default)]
pub struct Kick {
    reason: Mutex<Option<(u16, &'static str)>>,
    notify: Notify,
}

impl Kick {
    fn send(&self, code: u16, reason: &'static str) {
        self.reason.lock().expect("kick lock").get_or_insert((code, reason));
        self.notify.notify_one();
    }

    /// Completes with the close code and reason once someone asks this socket to close.
    pub async fn received(&self) -> (u16, &'static str) {
        loop {
            if let Some(reason) = *self.reason.lock().expect("kick lock") {
                return reason;
            }
            self.notify.notified().await;
        }
    }
}

#[derive(Debug)]
struct Entry {
    user_id: i64,
    session_id: String,
    tenant: TenantId,
    kick: Arc<Kick>,
}

#[derive(Debug, Default)]
pub struct Registry {
    sockets: Mutex<Sockets>,
}

#[derive(Debug, Default)]
struct Sockets {
    by_id: HashMap<u64, Entry>,
    /// Open sockets per user, so that admitting one does not walk them all (a reconnect storm
    /// admits thousands at once).
    per_user: HashMap<i64, usize>,
}

/// Removes its socket from the registry when the connection ends, however it ends.
pub struct Registration {
    registry: Arc<Registry>,
    connection: u64,
    pub kick: Arc<Kick>,
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
    /// Adds a socket unless its user already has `max_per_user` open; `None` then.
    pub fn register(
        self: &Arc<Self>,
        connection: u64,
        user_id: i64,
        session_id: &str,
        tenant: &TenantId,
        max_per_user: usize,
    ) -> Option<Registration> {
        let mut sockets = self.sockets.lock().expect("registry lock");
        let count = sockets.per_user.entry(user_id).or_default();
        if *count >= max_per_user {
            return None;
        }
        *count += 1;
        let kick = Arc::new(Kick::default());
        let entry = Entry { user_id, session_id: session_id.to_owned(), tenant: tenant.clone(), kick: kick.clone() };
        sockets.by_id.insert(connection, entry);
        Some(Registration { registry: self.clone(), connection, kick })
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
        sockets.by_id.values().filter(|e| pick(e)).map(|e| e.kick.send(code, reason)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[tokio::test]
    async fn kicks_reach_exactly_the_chosen_sockets() {
        let r = Arc::new(Registry::default());
        let a = r.register(1, 10, "s1", &acme(), 5).unwrap();
        let b = r.register(2, 10, "s2", &acme(), 5).unwrap();
        let other = TenantId::parse("globex").unwrap();
        let c = r.register(3, 20, "s3", &other, 5).unwrap();
        assert_eq!(r.kick_session("s1", 4401, "logged out"), 1);
        assert_eq!(a.kick.received().await, (4401, "logged out"));
        assert_eq!(r.kick_tenant(&acme(), 4403, "live updates are off"), 2);
        assert_eq!(b.kick.received().await, (4403, "live updates are off"));
        assert!(c.kick.reason.lock().unwrap().is_none());
    }

    #[test]
    fn connections_per_user_are_capped_and_freed_on_drop() {
        let r = Arc::new(Registry::default());
        let first = r.register(1, 10, "s", &acme(), 2).unwrap();
        let _second = r.register(2, 10, "s", &acme(), 2).unwrap();
        assert!(r.register(3, 10, "s", &acme(), 2).is_none());
        assert!(r.register(4, 11, "s", &acme(), 2).is_some(), "another user is not affected");
        drop(first);
        let third = r.register(5, 10, "s", &acme(), 2);
        assert!(third.is_some());
        assert_eq!(r.open(), (2, 1), "user 11's socket closed at once");
        drop(third);
        assert_eq!(r.open(), (1, 1));
    }
}
