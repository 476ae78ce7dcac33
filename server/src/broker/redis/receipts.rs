//! The idempotency keys of a deployment of several nodes, in Redis beside the topics (see
//! [`crate::ingest::idempotency`]): one key per record, expiring with it, and per tenant a sorted
//! set of its records by expiry, which is what the keys-per-tenant limit counts.

use super::RedisEngine;
use crate::clock::now_ms;
use crate::ingest::idempotency::{Held, ReceiptError, Receipts};
use futures_util::future::BoxFuture;
use std::time::Duration;

/// KEYS: the record, the tenant's set. ARGV: the record, its life in ms, the tenant's most, now in
/// ms. Sets the record if the key holds none: `{1, ''}`; `{0, held}` if it holds one; `{2, ''}` if
/// the tenant holds its most.
pub(super) const HOLD: &str = r"
local held = redis.call('GET', KEYS[1])
if held then return {0, held} end
local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {2, ''} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return {1, ''}";

/// KEYS: the record, the tenant's set. ARGV: the record expected, the new one ('' removes it), its
/// life in ms, now in ms. Does nothing unless the key holds the record expected.
pub(super) const REPLACE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], KEYS[1])
  return 1
end
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + ttl, KEYS[1])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1";

impl RedisEngine {
    /// The record's key and its tenant's set.
    fn receipt_keys(&self, tenant: &str, key: &str) -> (String, String) {
        (format!("{}idem:{tenant}:{key}", self.prefix), format!("{}tenant:{tenant}:idem", self.prefix))
    }
}

fn unavailable(error: redis::RedisError) -> ReceiptError {
    ReceiptError::Unavailable(format!("Redis: {error}"))
}

impl Receipts for RedisEngine {
    fn hold<'a>(
        &'a self,
        tenant: &'a str,
        key: &'a str,
        record: &'a str,
        ttl: Duration,
        max: usize,
    ) -> BoxFuture<'a, Result<Held, ReceiptError>> {
        Box::pin(async move {
            let (record_key, tenant_set) = self.receipt_keys(tenant, key);
            let (outcome, held): (i64, String) = self
                .hold_receipt_script
                .key(record_key)
                .key(tenant_set)
                .arg(record)
                .arg(ttl.as_millis().max(1) as u64)
                .arg(max)
                .arg(now_ms())
                .invoke_async(&mut self.connection.clone())
                .await
                .map_err(unavailable)?;
            match outcome {
                1 => Ok(Held::Taken),
                0 => Ok(Held::Existing(held)),
                _ => Err(ReceiptError::Full(max)),
            }
        })
    }

    fn replace<'a>(
        &'a self,
        tenant: &'a str,
        key: &'a str,
        old: &'a str,
        new: Option<&'a str>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ReceiptError>> {
        Box::pin(async move {
            let (record_key, tenant_set) = self.receipt_keys(tenant, key);
            let _: i64 = self
                .replace_receipt_script
                .key(record_key)
                .key(tenant_set)
                .arg(old)
                .arg(new.unwrap_or(""))
                .arg(ttl.as_millis().max(1) as u64)
                .arg(now_ms())
                .invoke_async(&mut self.connection.clone())
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }
}
