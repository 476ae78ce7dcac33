//! Who is connected, deployment-wide: the per-user connection limit and the counts that presence
//! shows. One node counts in memory ([`MemoryRoster`]); several count in Redis ([`redis`]), each
//! node's share kept under a heartbeat, so the connections of a node that died stop counting once
//! its heartbeat expires.

pub mod redis;

use crate::store::accounts::User;
use futures_util::future::BoxFuture;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// What the deployment knows of one user's connections, as of a join or a leave: what presence
/// shows of them, the same whichever node tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    /// Their connections open in the whole deployment.
    pub connections: usize,
    /// When the first of those opened, ms since the Unix epoch (0 once none is open).
    pub since: i64,
    /// What they last did while online, and when (ms since the Unix epoch).
    pub activity: Option<(String, i64)>,
}

/// The counts could not be reached (Redis down): a connection is refused rather than let in
/// uncounted, since its later leave would take the count below the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the deployment's connection counts cannot be reached; try again shortly")]
pub struct RosterUnavailable;

pub trait Roster: Send + Sync + 'static {
    /// Counts one more connection of `user`, opened at `now`, unless they already have `max` open
    /// in the whole deployment: their standing with it, or `None` when full.
    fn join<'a>(
        &'a self,
        user: &'a User,
        max: usize,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Standing>, RosterUnavailable>>;

    /// Counts one connection of `user` less: their standing without it.
    fn leave<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Standing>;

    /// Records what `user` did at `at`, while they are online anywhere.
    fn note_activity<'a>(&'a self, user: &'a User, what: &'a str, at: i64) -> BoxFuture<'a, ()>;
}

/// One node: the deployment is this process.
#[derive(Debug, Default)]
pub struct MemoryRoster {
    per_user: Mutex<HashMap<i64, Standing>>,
}

impl Roster for MemoryRoster {
    fn join<'a>(
        &'a self,
        user: &'a User,
        max: usize,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Standing>, RosterUnavailable>> {
        let mut per_user = self.per_user.lock().expect("roster lock");
        let standing = per_user.entry(user.id).or_insert_with(|| Standing { since: now, ..Standing::default() });
        let joined = (standing.connections < max).then(|| {
            standing.connections += 1;
            standing.clone()
        });
        if standing.connections == 0 {
            per_user.remove(&user.id);
        }
        Box::pin(std::future::ready(Ok(joined)))
    }

    fn leave<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Standing> {
        let mut per_user = self.per_user.lock().expect("roster lock");
        let left = match per_user.get_mut(&user.id) {
            Some(standing) => {
                standing.connections = standing.connections.saturating_sub(1);
                standing.clone()
            }
            None => Standing::default(),
        };
        if left.connections == 0 {
            per_user.remove(&user.id);
        }
        Box::pin(std::future::ready(left))
    }

    fn note_activity<'a>(&'a self, user: &'a User, what: &'a str, at: i64) -> BoxFuture<'a, ()> {
        if let Some(standing) = self.per_user.lock().expect("roster lock").get_mut(&user.id) {
            standing.activity = Some((what.to_owned(), at));
        }
        Box::pin(std::future::ready(()))
    }
}

/// One counted connection; it is uncounted when left, or when dropped unleft (a task that
/// panicked), so a slot is never held by a connection that is gone.
pub struct Seat {
    roster: Arc<dyn Roster>,
    user: User,
    /// The user's standing in the deployment when this connection joined.
    pub joined: Standing,
    left: bool,
}

impl Seat {
    /// Takes a seat for `user` if they have fewer than `max` (`None` when full).
    pub async fn take(roster: Arc<dyn Roster>, user: &User, max: usize) -> Result<Option<Seat>, RosterUnavailable> {
        let joined = roster.join(user, max, crate::clock::now_ms()).await?;
        Ok(joined.map(|joined| Seat { roster, user: user.clone(), joined, left: false }))
    }

    /// Gives the seat back: the user's standing without it (nothing, if it was given back before).
    pub async fn leave(&mut self) -> Standing {
        if self.left {
            return Standing::default();
        }
        self.left = true;
        self.roster.leave(&self.user).await
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        let (roster, user) = (self.roster.clone(), self.user.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                roster.leave(&user).await;
            });
        }
    }
}

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seat").field("user", &self.user.id).field("joined", &self.joined).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{store::accounts::Role, topic_name::TenantId};

    fn user(id: i64) -> User {
        User { id, email: format!("u{id}@acme.test"), tenant: TenantId::parse("acme").unwrap(), role: Role::Viewer }
    }

    #[tokio::test]
    async fn seats_are_capped_per_user_and_given_back() {
        let roster: Arc<dyn Roster> = Arc::new(MemoryRoster::default());
        let mut first = Seat::take(roster.clone(), &user(1), 2).await.unwrap().unwrap();
        let second = Seat::take(roster.clone(), &user(1), 2).await.unwrap().unwrap();
        assert_eq!((first.joined.connections, second.joined.connections), (1, 2));
        assert!(Seat::take(roster.clone(), &user(1), 2).await.unwrap().is_none());
        assert!(Seat::take(roster.clone(), &user(2), 2).await.unwrap().is_some(), "another user is not affected");
        assert_eq!(first.leave().await.connections, 1);
        assert_eq!(first.leave().await.connections, 0, "leaving twice gives back one seat");
        drop(second);
        tokio::task::yield_now().await;
        let again = Seat::take(roster, &user(1), 2).await.unwrap().unwrap();
        assert_eq!(again.joined.connections, 1, "a dropped seat is given back");
    }

    #[tokio::test]
    async fn a_standing_keeps_the_first_connections_time_and_the_latest_activity_until_the_last_leaves() {
        let roster = MemoryRoster::default();
        let ada = user(1);
        assert_eq!(roster.join(&ada, 5, 100).await.unwrap().unwrap().since, 100);
        roster.note_activity(&ada, "opened Ops", 150).await;
        let second = roster.join(&ada, 5, 200).await.unwrap().unwrap();
        assert_eq!((second.since, second.activity), (100, Some(("opened Ops".into(), 150))));
        assert_eq!(roster.leave(&ada).await.since, 100);
        assert_eq!(roster.leave(&ada).await.connections, 0);
        let fresh = roster.join(&ada, 5, 300).await.unwrap().unwrap();
        assert_eq!((fresh.since, fresh.activity), (300, None), "a new stay online starts afresh");
        roster.note_activity(&user(2), "not online", 1).await;
        assert!(roster.per_user.lock().unwrap().get(&2).is_none(), "nothing kept for someone offline");
    }
}
