//! The alert states of a deployment of several nodes, in Redis beside the topics (see
//! [`crate::notifying::alert_states`]): one key per threshold, moved by compare-and-set, and
//! forgotten after [`KEPT_SECS`] without a change (a topic that stopped publishing).

use super::RedisEngine;
use crate::notifying::alert_states::{AlertStates, Swapped};
use futures_util::future::BoxFuture;

/// A state not written for this long is forgotten: nothing weighed it for a month.
const KEPT_SECS: u64 = 30 * 24 * 3600;

/// Writes ARGV[2] (removes the key for '') if the key holds ARGV[1] ('' for nothing). Returns
/// `{1, ''}`, or `{0, what it holds}`.
pub(super) const SWAP: &str = r"
local held = redis.call('GET', KEYS[1]) or ''
if held ~= ARGV[1] then return {0, held} end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return {1, ''}";

impl RedisEngine {
    fn alert_key(&self, key: &str) -> String {
        format!("{}alert:{key}", self.prefix)
    }
}

impl AlertStates for RedisEngine {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            redis::cmd("GET")
                .arg(self.alert_key(key))
                .query_async(&mut self.connection.clone())
                .await
                .map_err(|e| format!("Redis: {e}"))
        })
    }

    fn swap<'a>(
        &'a self,
        key: &'a str,
        old: Option<&'a str>,
        new: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Swapped, String>> {
        Box::pin(async move {
            let (done, held): (i64, String) = self
                .swap_alert_script
                .key(self.alert_key(key))
                .arg(old.unwrap_or(""))
                .arg(new.unwrap_or(""))
                .arg(KEPT_SECS)
                .invoke_async(&mut self.connection.clone())
                .await
                .map_err(|e| format!("Redis: {e}"))?;
            Ok(if done == 1 { Swapped::Done } else { Swapped::Moved((!held.is_empty()).then_some(held)) })
        })
    }
}
