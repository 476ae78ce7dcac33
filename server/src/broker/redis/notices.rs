//! The cluster side of the Redis engine: notices between nodes (sent on a channel, kept while the
//! link is down and sent when it is back) and duties one node holds for all.

use super::*;

/// Claims a duty for ARGV[1] for ARGV[2] ms, or renews it if ARGV[1] holds it: 1 if it does now.
pub(super) const HOLD_DUTY: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0";

/// Gives a duty up if ARGV[1] holds it.
pub(super) const RELEASE_DUTY: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// Notices waiting to be sent, and whether some had to be dropped.
#[derive(Debug, Default)]
pub(super) struct Unsent {
    queue: VecDeque<Notice>,
    overflowed: bool,
}

/// Notices kept for resending while Redis is unreachable.
pub(super) const MAX_UNSENT_NOTICES: usize = 1024;

impl RedisEngine {
    /// A notice another node announced: `<node> <notice>`.
    pub(super) fn heard_notice(&self, payload: &[u8]) {
        let Some((node, line)) = std::str::from_utf8(payload).ok().and_then(|p| p.split_once(' ')) else { return };
        if node == self.node {
            return;
        }
        match (Notice::from_line(line), self.notices.get()) {
            (Some(notice), Some(handle)) => handle(notice),
            (None, _) => tracing::warn!("ignored a notice that is not one of ours"),
            (Some(_), None) => {}
        }
    }

    /// Sends the notices that could not be sent, oldest first, in a task of its own (one at a
    /// time), until one fails again. When some had to be dropped, the others are first told they
    /// missed notices, so they check every socket again.
    pub(super) fn flush_unsent(&self) {
        let nothing_waits = {
            let unsent = self.unsent.lock().expect("unsent lock");
            unsent.queue.is_empty() && !unsent.overflowed
        };
        if nothing_waits || self.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(me) = self.me.upgrade() else { return };
        tokio::spawn(async move {
            loop {
                let next = {
                    let mut unsent = me.unsent.lock().expect("unsent lock");
                    if std::mem::take(&mut unsent.overflowed) { Some(Notice::Missed) } else { unsent.queue.pop_front() }
                };
                let Some(notice) = next else { break };
                if me.send_notice(&notice).await.is_err() {
                    let mut unsent = me.unsent.lock().expect("unsent lock");
                    match notice {
                        Notice::Missed => unsent.overflowed = true,
                        notice => unsent.queue.push_front(notice),
                    }
                    break;
                }
            }
            me.flushing.store(false, Ordering::Release);
        });
    }

    pub(super) async fn send_notice(&self, notice: &Notice) -> redis::RedisResult<i64> {
        redis::cmd("PUBLISH")
            .arg(keys::notices_channel(&self.prefix))
            .arg(format!("{} {}", self.node, notice.to_line()))
            .query_async(&mut self.connection.clone())
            .await
    }
}

impl Cluster for RedisEngine {
    fn hold_duty<'a>(&'a self, duty: &'a str, ttl: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let held: redis::RedisResult<i64> = self
                .hold_duty_script
                .key(keys::duty(&self.prefix, duty))
                .arg(&self.node)
                .arg(ttl.as_millis() as u64)
                .invoke_async(&mut self.connection.clone())
                .await;
            // Unreachable, it cannot know that no other node holds the duty: it does not.
            held.is_ok_and(|held| held == 1)
        })
    }

    fn release_duty<'a>(&'a self, duty: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _: redis::RedisResult<i64> = self
                .release_duty_script
                .key(keys::duty(&self.prefix, duty))
                .arg(&self.node)
                .invoke_async(&mut self.connection.clone())
                .await;
        })
    }

    fn announce(&self, notice: Notice) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Behind the ones still waiting, if any, so the others hear them in order.
            let others_wait = !self.unsent.lock().expect("unsent lock").queue.is_empty();
            if !others_wait {
                match self.send_notice(&notice).await {
                    Ok(_) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, ?notice, "could not tell the other nodes; told when Redis answers")
                    }
                }
            }
            let mut unsent = self.unsent.lock().expect("unsent lock");
            if unsent.queue.len() == MAX_UNSENT_NOTICES {
                unsent.queue.pop_front();
                unsent.overflowed = true;
                metrics::counter!(telemetry::DROPS, "reason" => "unsent_notice").increment(1);
            }
            unsent.queue.push_back(notice);
            drop(unsent);
            self.flush_unsent();
        })
    }

    fn on_notice(&self, handle: Box<dyn Fn(Notice) + Send + Sync>) {
        if self.notices.set(handle).is_err() {
            tracing::warn!("notices already have a handler");
        }
    }
}
