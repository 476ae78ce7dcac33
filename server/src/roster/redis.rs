//! The roster in Redis, for several nodes.
//!
//! Each user has a hash of connections per node; each node renews its heartbeat in one sorted set
//! (score: when it expires) every third of [`RedisRoster::expiry`]. Counting ignores, and clears,
//! the shares of nodes whose heartbeat has expired, and every node sweeps dead nodes: the first to
//! claim one takes its connections out of every count and tells presence who is now offline, so a
//! crashed node's users neither stay "online" nor hold connection slots.
//!
//! When Redis cannot be reached, a join is refused (the client retries with backoff): a connection
//! let in uncounted would, on leaving, take its user's count below the truth. A join or leave whose
//! answer is lost may still have happened in Redis, so each node keeps its own exact count per user
//! and, for users whose Redis count it is unsure of, writes it back with its next heartbeat: the
//! counts are exact again within a third of the expiry after Redis answers.

use super::{Roster, RosterUnavailable, Standing};
use crate::{shutdown::ShutdownSignal, store::accounts::User, telemetry, topic_name::TenantId};
use futures_util::future::BoxFuture;
use redis::{Script, aio::ConnectionManager};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

/// How long a user's counts live in Redis without a change (a bound, not a rule: they are
/// cleaned as nodes die).
const COUNTS_TTL: Duration = Duration::from_secs(24 * 3600);
const HEARTBEAT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1";
/// Sets this node's share of a user's connections to what the node knows it is.
const RECONCILE: &str = r"
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('SADD', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[3])
end
return 1";
/// Records a user's activity on their standing, if they have one (are online somewhere).
const NOTE_ACTIVITY: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'activity', ARGV[1], 'at', ARGV[2])
end
return 1";

pub struct RedisRoster {
    connection: ConnectionManager,
    prefix: String,
    node: String,
    expiry: Duration,
    join: Script,
    leave: Script,
    sweep: Script,
    heartbeat: Script,
    note_activity: Script,
    reconcile: Script,
    /// This node's connections per user, exactly; `unsure` when Redis may have counted otherwise.
    local: Mutex<HashMap<i64, LocalCount>>,
}

#[derive(Debug)]
struct LocalCount {
    user: User,
    connections: usize,
    unsure: bool,
}

/// A user who was connected only through a node that died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    pub user: User,
}

impl RedisRoster {
    /// Connects and beats once, so that this node's connections count from the first.
    pub async fn connect(url: &str, prefix: &str, expiry: Duration) -> redis::RedisResult<Arc<Self>> {
        let client = redis::Client::open(url)?;
        let connection = crate::broker::redis::command_connection(&client).await?;
        let roster = Arc::new(Self {
            connection,
            prefix: prefix.to_owned(),
            node: format!("{:016x}", rand::random::<u64>()),
            expiry,
            join: with_live_count(include_str!("join.lua")),
            leave: with_live_count(include_str!("leave.lua")),
            sweep: with_live_count(include_str!("sweep.lua")),
            heartbeat: Script::new(HEARTBEAT),
            note_activity: Script::new(NOTE_ACTIVITY),
            reconcile: Script::new(RECONCILE),
            local: Mutex::default(),
        });
        roster.beat().await?;
        Ok(roster)
    }

    /// This node's id in Redis.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Renews the heartbeat and sweeps dead nodes every third of the expiry, until shutdown;
    /// `gone` hears of every user a dead node leaves with no connection.
    pub async fn run(self: Arc<Self>, gone: impl Fn(Gone), mut shutdown: ShutdownSignal) {
        let mut ticker = tokio::time::interval(self.expiry / 3);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.stopping() => break,
            }
            if let Err(e) = self.beat().await {
                tracing::warn!(error = %e, "could not renew this node's heartbeat in Redis");
                continue;
            }
            self.reconcile_unsure().await;
            for user in self.sweep_dead().await {
                gone(user);
            }
        }
        // Leaving cleanly: this node's connections have closed; its heartbeat goes now.
        let _: redis::RedisResult<i64> =
            redis::cmd("ZREM").arg(self.nodes_key()).arg(&self.node).query_async(&mut self.connection.clone()).await;
    }

    async fn beat(&self) -> redis::RedisResult<()> {
        let expiry = self.expiry.as_millis() as u64;
        let _: i64 = self
            .heartbeat
            .key(self.nodes_key())
            .arg(&self.node)
            .arg(expiry)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(())
    }

    /// Writes this node's exact count for every user whose count in Redis it is unsure of.
    async fn reconcile_unsure(&self) {
        let unsure: Vec<(User, usize)> = {
            let local = self.local.lock().expect("roster lock");
            local.values().filter(|l| l.unsure).map(|l| (l.user.clone(), l.connections)).collect()
        };
        for (user, connections) in unsure {
            let set: redis::RedisResult<i64> = self
                .reconcile
                .key(self.conns_key(&user))
                .key(self.node_users_key())
                .arg(&self.node)
                .arg(connections)
                .arg(member(&user))
                .arg(COUNTS_TTL.as_millis() as u64)
                .invoke_async(&mut self.connection.clone())
                .await;
            if set.is_err() {
                return; // the next heartbeat tries again
            }
            let mut local = self.local.lock().expect("roster lock");
            if let Some(count) = local.get_mut(&user.id) {
                // A join or leave since the snapshot left it unsure again if it failed too.
                if count.connections == connections {
                    count.unsure = false;
                }
                if count.connections == 0 && !count.unsure {
                    local.remove(&user.id);
                }
            }
            tracing::info!(user = user.id, connections, "a user's connection count in Redis was set right");
        }
    }

    /// Notes a join or leave in this node's own count; `unsure` when Redis's answer was lost.
    fn note_local(&self, user: &User, change: isize, unsure: bool) {
        let mut local = self.local.lock().expect("roster lock");
        let count =
            local.entry(user.id).or_insert_with(|| LocalCount { user: user.clone(), connections: 0, unsure: false });
        count.connections = count.connections.saturating_add_signed(change);
        count.unsure |= unsure;
        if count.connections == 0 && !count.unsure {
            local.remove(&user.id);
        }
    }

    async fn sweep_dead(&self) -> Vec<Gone> {
        let mut gone = Vec::new();
        loop {
            let swept: redis::RedisResult<Vec<String>> =
                self.sweep.key(self.nodes_key()).arg(&self.prefix).invoke_async(&mut self.connection.clone()).await;
            match swept {
                Ok(swept) if swept.is_empty() => return gone,
                Ok(swept) => {
                    tracing::warn!(node = %swept[0], users = swept.len() - 1, "a node's heartbeat expired: its connections no longer count");
                    metrics::counter!(telemetry::NODES_SWEPT).increment(1);
                    gone.extend(swept[1..].iter().filter_map(|member| parse_member(member)).map(|user| Gone { user }));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not sweep dead nodes");
                    return gone;
                }
            }
        }
    }

    fn nodes_key(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    fn conns_key(&self, user: &User) -> String {
        format!("{}user:{}:conns", self.prefix, user.id)
    }

    /// The sweep script names it too: keep the two in step.
    fn standing_key(&self, user: &User) -> String {
        format!("{}user:{}:standing", self.prefix, user.id)
    }

    fn node_users_key(&self) -> String {
        format!("{}node:{}:users", self.prefix, self.node)
    }
}

/// Tries a leave gets before it is given up (waiting 0.1, 0.3, 0.9 s between them).
const LEAVE_ATTEMPTS: u32 = 4;
const LEAVE_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);

impl Roster for RedisRoster {
    fn join<'a>(
        &'a self,
        user: &'a User,
        max: usize,
        now: i64,
    ) -> BoxFuture<'a, Result<Option<Standing>, RosterUnavailable>> {
        Box::pin(async move {
            let joined: redis::RedisResult<Vec<String>> = self
                .join
                .key(self.conns_key(user))
                .key(self.nodes_key())
                .key(self.node_users_key())
                .key(self.standing_key(user))
                .arg(&self.node)
                .arg(max)
                .arg(member(user))
                .arg(COUNTS_TTL.as_millis() as u64)
                .arg(now)
                .invoke_async(&mut self.connection.clone())
                .await;
            match joined {
                Ok(reply) if reply.first().is_some_and(|n| n == "-1") => Ok(None),
                Ok(reply) => {
                    self.note_local(user, 1, false);
                    Ok(Some(standing_from(&reply)))
                }
                Err(e) => {
                    // The join may still run once Redis answers: set right at the next heartbeat.
                    tracing::warn!(error = %e, "Redis unreachable: a connection is refused (it could not be counted)");
                    self.note_local(user, 0, true);
                    Err(RosterUnavailable)
                }
            }
        })
    }

    fn leave<'a>(&'a self, user: &'a User) -> BoxFuture<'a, Standing> {
        Box::pin(async move {
            // Tried again briefly; a leave that still does not reach Redis is set right with a
            // later heartbeat.
            let mut pause = LEAVE_RETRY_FIRST;
            for attempt in 1..=LEAVE_ATTEMPTS {
                let left: redis::RedisResult<Vec<String>> = self
                    .leave
                    .key(self.conns_key(user))
                    .key(self.nodes_key())
                    .key(self.node_users_key())
                    .key(self.standing_key(user))
                    .arg(&self.node)
                    .arg(member(user))
                    .invoke_async(&mut self.connection.clone())
                    .await;
                match left {
                    Ok(reply) => {
                        self.note_local(user, -1, false);
                        return standing_from(&reply);
                    }
                    Err(e) if attempt == LEAVE_ATTEMPTS => {
                        tracing::warn!(error = %e, user = user.id, "a connection's leave could not be counted in Redis yet");
                        self.note_local(user, -1, true);
                    }
                    Err(_) => {
                        tokio::time::sleep(pause).await;
                        pause *= 3;
                    }
                }
            }
            Standing::default()
        })
    }

    fn note_activity<'a>(&'a self, user: &'a User, what: &'a str, at: i64) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let noted: redis::RedisResult<i64> = self
                .note_activity
                .key(self.standing_key(user))
                .arg(what)
                .arg(at)
                .invoke_async(&mut self.connection.clone())
                .await;
            if let Err(e) = noted {
                tracing::debug!(error = %e, "could not record activity in Redis");
            }
        })
    }
}

/// A standing as the join and leave scripts answer it: connections, since, activity, its time.
fn standing_from(reply: &[String]) -> Standing {
    let number = |i: usize| reply.get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let activity = reply.get(2).filter(|what| !what.is_empty()).map(|what| (what.clone(), number(3)));
    Standing { connections: number(0).max(0) as usize, since: number(1), activity }
}

/// A roster script, with the functions they share in front (a script cannot call another's).
fn with_live_count(script: &str) -> Script {
    Script::new(&format!("{}{script}", include_str!("live_count.lua")))
}

/// How a node's users set names a user: what presence needs to say they went offline.
fn member(user: &User) -> String {
    format!("{}\t{}\t{}\t{}", user.id, user.tenant, user.role.as_str(), user.email)
}

fn parse_member(member: &str) -> Option<User> {
    let mut parts = member.splitn(4, '\t');
    let id = parts.next()?.parse().ok()?;
    let tenant = TenantId::parse(parts.next()?).ok()?;
    let role = crate::store::accounts::Role::parse(parts.next()?)?;
    let email = parts.next()?.to_owned();
    Some(User { id, email, tenant, role })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::Role;

    #[test]
    fn a_standing_reads_from_the_scripts_answer() {
        let reply = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(
            standing_from(&reply(&["2", "100", "opened Ops", "150"])),
            Standing { connections: 2, since: 100, activity: Some(("opened Ops".into(), 150)) }
        );
        assert_eq!(standing_from(&reply(&["1", "100", "", "0"])).activity, None);
        assert_eq!(standing_from(&[]), Standing::default());
    }

    #[test]
    fn a_member_names_the_whole_user() {
        let user =
            User { id: 7, email: "ops@acme.test".into(), tenant: TenantId::parse("acme").unwrap(), role: Role::Admin };
        assert_eq!(parse_member(&member(&user)), Some(user));
        assert_eq!(parse_member("x\tacme\tadmin\ta@b"), None);
    }
}
