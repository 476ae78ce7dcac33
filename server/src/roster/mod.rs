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

pub trait Roster: Send + Sync + 'static {
    /// Counts one more connection of `user` unless they already have `max` open in the whole
    /// deployment: the count with it, or `None` when full.
    fn join<'a>(&'a self, user: &'a User, max: usize) -> BoxFuture<'a, Option<usize>>;

    /// Counts one connection of `user` less: the count left.
    fn leave<'a>(&'a self, user: &'a User) -> BoxFuture<'a, usize>;
}

/// One node: the deployment is this process.
#[derive(Debug, Default)]
pub struct MemoryRoster {
    per_user: Mutex<HashMap<i64, usize>>,
}

impl Roster for MemoryRoster {
    fn join<'a>(&'a self, user: &'a User, max: usize) -> BoxFuture<'a, Option<usize>> {
        let mut per_user = self.per_user.lock().expect("roster lock");
        let count = per_user.entry(user.id).or_default();
        let joined = (*count < max).then(|| {
            *count += 1;
            *count
        });
        if *count == 0 {
            per_user.remove(&user.id);
        }
        Box::pin(std::future::ready(joined))
    }

    fn leave<'a>(&'a self, user: &'a User) -> BoxFuture<'a, usize> {
        let mut per_user = self.per_user.lock().expect("roster lock");
        let left = match per_user.get_mut(&user.id) {
            Some(count) => {
                *count = count.saturating_sub(1);
                *count
            }
            None => 0,
        };
        if left == 0 {
            per_user.remove(&user.id);
        }
        Box::pin(std::future::ready(left))
    }
}

/// One counted connection; it is uncounted when left, or when dropped unleft (a task that
/// panicked), so a slot is never held by a connection that is gone.
pub struct Seat {
    roster: Arc<dyn Roster>,
    user: User,
    /// The user's connections in the deployment when this one joined.
    pub joined_as: usize,
    left: bool,
}

impl Seat {
    /// Takes a seat for `user` if they have fewer than `max`.
    pub async fn take(roster: Arc<dyn Roster>, user: &User, max: usize) -> Option<Seat> {
        let joined_as = roster.join(user, max).await?;
        Some(Seat { roster, user: user.clone(), joined_as, left: false })
    }

    /// Gives the seat back; the user's connections left in the deployment.
    pub async fn leave(&mut self) -> usize {
        if self.left {
            return 0;
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
        f.debug_struct("Seat").field("user", &self.user.id).field("joined_as", &self.joined_as).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{broker::topic_name::TenantId, store::accounts::Role};

    fn user(id: i64) -> User {
        User { id, email: format!("u{id}@acme.test"), tenant: TenantId::parse("acme").unwrap(), role: Role::Viewer }
    }

    #[tokio::test]
    async fn seats_are_capped_per_user_and_given_back() {
        let roster: Arc<dyn Roster> = Arc::new(MemoryRoster::default());
        let mut first = Seat::take(roster.clone(), &user(1), 2).await.unwrap();
        let second = Seat::take(roster.clone(), &user(1), 2).await.unwrap();
        assert_eq!((first.joined_as, second.joined_as), (1, 2));
        assert!(Seat::take(roster.clone(), &user(1), 2).await.is_none());
        assert!(Seat::take(roster.clone(), &user(2), 2).await.is_some(), "another user is not affected");
        assert_eq!(first.leave().await, 1);
        assert_eq!(first.leave().await, 0, "leaving twice gives back one seat");
        drop(second);
        tokio::task::yield_now().await;
        assert_eq!(Seat::take(roster, &user(1), 2).await.unwrap().joined_as, 1, "a dropped seat is given back");
    }
}
