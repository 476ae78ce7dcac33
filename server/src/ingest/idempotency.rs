//! Idempotent publishing: a publisher that retries a request whose answer it lost (a timeout, a
//! dropped connection) sends the same `Idempotency-Key` again, and the server answers what it
//! answered the first time instead of publishing the point twice (the IETF httpapi draft
//! "The Idempotency-Key HTTP Header Field").
//!
//! A key is held per tenant, deployment-wide, for the window (`LIVEDASH_IDEMPOTENCY_WINDOW_SECS`):
//!
//! - The first request *claims* the key with a pending record naming its fingerprint (a digest of
//!   the topic and the body). Claiming is atomic, so of two nodes taking the same key at once only
//!   one publishes.
//! - Once published, the record becomes the answer, kept for the window. A request that fails
//!   (refused, or the engine was down) gives the key back, so a retry is weighed afresh: only
//!   answers that published something are replayed.
//! - A repeat with the same fingerprint gets the kept answer; one while the first is still being
//!   published gets 409; one with another topic or body gets 422.
//!
//! A pending record lasts [`PENDING_FOR`], not the window: if the node publishing it dies, the key
//! is free again soon. The rule (what a record means for a request) is [`judge`], here; the stores
//! ([`MemoryReceipts`] for one node, Redis for several) only claim, replace and count atomically.

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The request header, as the draft names it.
pub const HEADER: &str = "idempotency-key";
/// The answer header of a replayed answer (as Stripe and others name it).
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key taken.
pub const MAX_KEY_LEN: usize = 255;
/// How long a claim holds a key while its publish runs.
pub const PENDING_FOR: Duration = Duration::from_secs(30);

/// A publisher's key, checked: 1 to [`MAX_KEY_LEN`] visible ASCII characters. The draft makes the
/// header a structured-field string (`"…"`); a bare token is taken too, as most publishers send one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(header: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(header).map_err(|_| "must be visible ASCII".to_owned())?.trim();
        let text = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(quoted) => quoted,
            None => text,
        };
        if text.is_empty() || text.len() > MAX_KEY_LEN {
            return Err(format!("must be 1 to {MAX_KEY_LEN} characters"));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be visible ASCII, without spaces".into());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What identifies a request under one key: its topic and its body, byte for byte.
pub fn fingerprint(topic: &str, body: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(topic.as_bytes());
    digest.update([0]);
    digest.update(body);
    digest.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What a request under a held key gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free and is now this request's: publish, then [`settle`].
    Mine,
    /// The same request was answered: this is the answer's body.
    Replay(String),
    /// The same request is being published right now.
    InFlight,
    /// The key was used for another topic or body.
    Reused,
}

/// What a held record means for a request with `fingerprint`: the whole rule.
pub fn judge(held: &str, fingerprint: &str) -> Claim {
    match Record::decode(held) {
        Some(Record::Pending { fingerprint: f }) if f == fingerprint => Claim::InFlight,
        Some(Record::Done { fingerprint: f, answer }) if f == fingerprint => Claim::Replay(answer.to_owned()),
        // Another request's, or a record of another version: never publish under it.
        _ => Claim::Reused,
    }
}

/// A key's record: `pending:<fingerprint>` or `done:<fingerprint>:<answer>`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Record<'a> {
    Pending { fingerprint: &'a str },
    Done { fingerprint: &'a str, answer: &'a str },
}

impl<'a> Record<'a> {
    fn encode(&self) -> String {
        match self {
            Record::Pending { fingerprint } => format!("pending:{fingerprint}"),
            Record::Done { fingerprint, answer } => format!("done:{fingerprint}:{answer}"),
        }
    }

    fn decode(text: &'a str) -> Option<Self> {
        if let Some(fingerprint) = text.strip_prefix("pending:") {
            return Some(Record::Pending { fingerprint });
        }
        let (fingerprint, answer) = text.strip_prefix("done:")?.split_once(':')?;
        Some(Record::Done { fingerprint, answer })
    }
}

/// Why a store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The tenant holds as many keys as it may; they free up as their window ends.
    #[error("{0} idempotency keys are held for this tenant already")]
    Full(usize),
    #[error("the idempotency store did not answer: {0}")]
    Unavailable(String),
}

/// What [`Receipts::hold`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// The key was free: it now holds the record given.
    Taken,
    /// The key holds this record.
    Existing(String),
}

/// Where the deployment's keys are held: atomic, so two nodes never both take one key.
pub trait Receipts: Send + Sync + 'static {
    /// Sets `key` of `tenant` to `record` for `ttl` if it holds nothing; otherwise tells what it
    /// holds. A tenant holding `max` keys takes no new one.
    fn hold<'a>(
        &'a self,
        tenant: &'a str,
        key: &'a str,
        record: &'a str,
        ttl: Duration,
        max: usize,
    ) -> BoxFuture<'a, Result<Held, ReceiptError>>;

    /// If `key` still holds `old`, replaces it with `new` for `ttl`, or removes it (`None`).
    fn replace<'a>(
        &'a self,
        tenant: &'a str,
        key: &'a str,
        old: &'a str,
        new: Option<&'a str>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ReceiptError>>;
}

/// Claims `key` for a request with `fingerprint`, or tells what an earlier request left.
pub async fn claim(
    receipts: &dyn Receipts,
    tenant: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
    max: usize,
) -> Result<Claim, ReceiptError> {
    let pending = Record::Pending { fingerprint }.encode();
    Ok(match receipts.hold(tenant, key.as_str(), &pending, PENDING_FOR, max).await? {
        Held::Taken => Claim::Mine,
        Held::Existing(held) => judge(&held, fingerprint),
    })
}

/// Ends a claim: keeps `answer` for `window` (the request published), or gives the key back
/// (`None`: it did not, so a retry is weighed afresh). A claim that outlived [`PENDING_FOR`] and was
/// taken by another request meanwhile is left to that one.
pub async fn settle(
    receipts: &dyn Receipts,
    tenant: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
    answer: Option<&str>,
    window: Duration,
) -> Result<(), ReceiptError> {
    let pending = Record::Pending { fingerprint }.encode();
    let done = answer.map(|answer| Record::Done { fingerprint, answer }.encode());
    receipts.replace(tenant, key.as_str(), &pending, done.as_deref(), window).await
}

/// The keys of a deployment of one node. Bounded per tenant by the `max` each call names; expired
/// records are swept when a tenant reaches it.
#[derive(Debug, Default)]
pub struct MemoryReceipts {
    tenants: Mutex<HashMap<String, TenantKeys>>,
}

/// A tenant's records by key, each with the moment it expires.
type TenantKeys = HashMap<String, (String, Instant)>;

impl MemoryReceipts {
    /// Records held for `tenant`, expired or not (for tests).
    #[cfg(test)]
    fn held(&self, tenant: &str) -> usize {
        self.tenants.lock().expect("receipts lock").get(tenant).map_or(0, HashMap::len)
    }
}

impl Receipts for MemoryReceipts {
    fn hold<'a>(
        &'a self,
        tenant: &'a str,
        key: &'a str,
        record: &'a str,
        ttl: Duration,
        max: usize,
    ) -> BoxFuture<'a, Result<Held, ReceiptError>> {
        let now = Instant::now();
        let mut tenants = self.tenants.lock().expect("receipts lock");
        let keys = tenants.entry(tenant.to_owned()).or_default();
        let result = match keys.get(key) {
            Some((held, until)) if *until > now => Ok(Held::Existing(held.clone())),
            _ => {
                if keys.len() >= max && !keys.contains_key(key) {
                    keys.retain(|_, (_, until)| *until > now);
                }
                if keys.len() >= max && !keys.contains_key(key) {
                    Err(ReceiptError::Full(max))
                } else {
                    keys.insert(key.to_owned(), (record.to_owned(), now + ttl));
                    Ok(Held::Taken)
                }
            }
        };
        drop(tenants);
        Box::pin(std::future::ready(result))
    }

    fn replace<'a>(
        &'a self,
        tenant: &'a str,
        key: &'a str,
        old: &'a str,
        new: Option<&'a str>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), ReceiptError>> {
        let now = Instant::now();
        let mut tenants = self.tenants.lock().expect("receipts lock");
        if let Some(keys) = tenants.get_mut(tenant) {
            if keys.get(key).is_some_and(|(held, until)| held == old && *until > now) {
                match new {
                    Some(new) => {
                        keys.insert(key.to_owned(), (new.to_owned(), now + ttl));
                    }
                    None => {
                        keys.remove(key);
                    }
                }
            }
            if keys.is_empty() {
                tenants.remove(tenant);
            }
        }
        drop(tenants);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(300);

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn keys_are_visible_ascii_bare_or_quoted() {
        assert_eq!(key("abc-123").as_str(), "abc-123");
        assert_eq!(key("\"8e03978e-40d5-43e8-bc93-6894a57f9324\"").as_str(), "8e03978e-40d5-43e8-bc93-6894a57f9324");
        for bad in ["", "\"\"", "a b", "é", &"x".repeat(MAX_KEY_LEN + 1)] {
            assert!(IdempotencyKey::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"x".repeat(MAX_KEY_LEN).into_bytes()).is_ok());
    }

    #[test]
    fn the_fingerprint_tells_topic_and_body_apart() {
        let a = fingerprint("orders/open", b"{\"value\":1}");
        assert_eq!(a, fingerprint("orders/open", b"{\"value\":1}"));
        assert_ne!(a, fingerprint("orders/open", b"{\"value\":2}"));
        assert_ne!(a, fingerprint("orders/done", b"{\"value\":1}"));
        // The separator keeps the topic's end and the body's start apart.
        assert_ne!(fingerprint("ab", b"c"), fingerprint("a", b"bc"));
    }

    #[test]
    fn a_record_means_the_same_request_or_another() {
        let done = Record::Done { fingerprint: "f1", answer: "{\"offset\":3}" }.encode();
        assert_eq!(judge(&done, "f1"), Claim::Replay("{\"offset\":3}".into()));
        assert_eq!(judge(&done, "f2"), Claim::Reused);
        let pending = Record::Pending { fingerprint: "f1" }.encode();
        assert_eq!(judge(&pending, "f1"), Claim::InFlight);
        assert_eq!(judge(&pending, "f2"), Claim::Reused);
        assert_eq!(judge("something else", "f1"), Claim::Reused);
    }

    #[tokio::test]
    async fn a_key_replays_its_answer_and_refuses_another_body() {
        let receipts = MemoryReceipts::default();
        let k = key("k1");
        assert_eq!(claim(&receipts, "acme", &k, "f1", 10).await.unwrap(), Claim::Mine);
        assert_eq!(claim(&receipts, "acme", &k, "f1", 10).await.unwrap(), Claim::InFlight);
        assert_eq!(claim(&receipts, "acme", &k, "f2", 10).await.unwrap(), Claim::Reused);
        // Another tenant's key of the same name is its own.
        assert_eq!(claim(&receipts, "globex", &k, "f2", 10).await.unwrap(), Claim::Mine);
        settle(&receipts, "acme", &k, "f1", Some("{\"offset\":7}"), WINDOW).await.unwrap();
        assert_eq!(claim(&receipts, "acme", &k, "f1", 10).await.unwrap(), Claim::Replay("{\"offset\":7}".into()));
        assert_eq!(claim(&receipts, "acme", &k, "f2", 10).await.unwrap(), Claim::Reused);
    }

    #[tokio::test]
    async fn a_failed_request_gives_its_key_back() {
        let receipts = MemoryReceipts::default();
        let k = key("k1");
        assert_eq!(claim(&receipts, "acme", &k, "f1", 10).await.unwrap(), Claim::Mine);
        settle(&receipts, "acme", &k, "f1", None, WINDOW).await.unwrap();
        assert_eq!(receipts.held("acme"), 0, "nothing is kept for a tenant with no keys");
        assert_eq!(claim(&receipts, "acme", &k, "f2", 10).await.unwrap(), Claim::Mine);
    }

    #[tokio::test]
    async fn a_claim_taken_over_after_it_expired_is_left_to_its_new_owner() {
        let receipts = MemoryReceipts::default();
        let k = key("k1");
        receipts.hold("acme", "k1", "pending:f1", Duration::ZERO, 10).await.unwrap();
        // Expired: the next request takes the key.
        assert_eq!(claim(&receipts, "acme", &k, "f2", 10).await.unwrap(), Claim::Mine);
        settle(&receipts, "acme", &k, "f1", Some("late"), WINDOW).await.unwrap();
        assert_eq!(claim(&receipts, "acme", &k, "f2", 10).await.unwrap(), Claim::InFlight);
    }

    #[tokio::test]
    async fn a_tenant_holds_at_most_max_keys_and_expired_ones_make_room() {
        let receipts = MemoryReceipts::default();
        for i in 0..3 {
            receipts.hold("acme", &format!("k{i}"), "pending:f", WINDOW, 3).await.unwrap();
        }
        let refused = claim(&receipts, "acme", &key("k3"), "f", 3).await;
        assert!(matches!(refused, Err(ReceiptError::Full(3))), "{refused:?}");
        // A key already held is still answered, and another tenant is not affected.
        assert_eq!(claim(&receipts, "acme", &key("k0"), "f", 3).await.unwrap(), Claim::InFlight);
        assert_eq!(claim(&receipts, "globex", &key("k3"), "f", 3).await.unwrap(), Claim::Mine);
        receipts.hold("busy", "old", "pending:f", Duration::ZERO, 1).await.unwrap();
        assert_eq!(claim(&receipts, "busy", &key("new"), "f", 1).await.unwrap(), Claim::Mine);
        assert_eq!(receipts.held("busy"), 1);
    }
}
