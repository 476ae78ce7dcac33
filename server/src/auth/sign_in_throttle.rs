//! The sign-in throttle: guessing passwords is slow from anywhere, and the owner still gets in.
//!
//! Three limits, each keyed on the same normalised identities the sign-in itself uses (an
//! [`EmailKey`], a [`Source`]: an IPv4 address or an IPv6 /64):
//! - **attempts per source**, any account: one address cannot spray guesses across accounts;
//! - **failures per account and source**: a burst of wrong passwords from one place stops there;
//! - **failures per account** from sources the account has not signed in from lately: a slow bound
//!   on guesses spread over many addresses. It delays rather than locks: it refills steadily, and
//!   sources where the account signed in successfully in the last [`KNOWN_FOR`] are not held by it,
//!   so the owner at their usual address gets in while an attacker elsewhere keeps failing.
//!
//! Only failures count against an account. Pure apart from the time, which callers pass.

use crate::{client_addr::Source, limits::KeyedLimiter, store::accounts::EmailKey};
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long a successful sign-in makes its source one of the account's own.
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Sources remembered per account (the most recent ones).
const KNOWN_PER_ACCOUNT: usize = 8;
/// Accounts whose sources are remembered; past it, the least recently used are forgotten (they
/// are then held by the per-account bound like anyone else, never locked).
const KNOWN_ACCOUNTS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Sign-in attempts a minute from one source (any account).
    pub attempts_per_min_per_source: usize,
    /// Failed sign-ins a minute for one account from one source.
    pub failures_per_min_per_account_and_source: usize,
    /// Failed sign-ins an hour for one account from sources it has not signed in from (also the
    /// burst).
    pub failures_per_hour_per_account: usize,
}

/// A refused attempt: which limit, its value, and how long to wait.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttled {
    /// The limit's name in `livedash_denials_total` and the API's error body.
    pub limit: &'static str,
    pub max: usize,
    pub wait_secs: f64,
    pub message: &'static str,
}

#[derive(Debug)]
pub struct SignInThrottle {
    settings: ThrottleSettings,
    attempts: KeyedLimiter<Source>,
    pair_failures: KeyedLimiter<(EmailKey, Source)>,
    account_failures: KeyedLimiter<EmailKey>,
    known: Mutex<KnownSources>,
}

impl SignInThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        fn per<K: Eq + std::hash::Hash + Clone>(n: usize, period_secs: f64) -> KeyedLimiter<K> {
            KeyedLimiter::new(n as f64 / period_secs, n as f64)
        }
        Self {
            settings,
            attempts: per(settings.attempts_per_min_per_source, 60.0),
            pair_failures: per(settings.failures_per_min_per_account_and_source, 60.0),
            account_failures: per(settings.failures_per_hour_per_account, 3600.0),
            known: Mutex::new(KnownSources::default()),
        }
    }

    /// Before the body is read: takes one attempt of `source`'s allowance.
    pub fn attempt(&self, source: Source, now: Instant) -> Result<(), Throttled> {
        self.attempts.check(&source, now).map_err(|wait| Throttled {
            limit: "logins_per_address",
            max: self.settings.attempts_per_min_per_source,
            wait_secs: wait,
            message: "too many sign-in attempts from this address; try again shortly",
        })
    }

    /// Before the password is checked: whether `account` may be tried from `source` now.
    pub fn admit(&self, account: &EmailKey, source: Source, now: Instant) -> Result<(), Throttled> {
        if let Some(wait) = self.pair_failures.blocked(&(account.clone(), source), now) {
            return Err(Throttled {
                limit: "login_failures_per_account_and_address",
                max: self.settings.failures_per_min_per_account_and_source,
                wait_secs: wait,
                message: "too many failed sign-ins for this account from this address; try again shortly",
            });
        }
        if !self.known(account, source, now)
            && let Some(wait) = self.account_failures.blocked(account, now)
        {
            return Err(Throttled {
                limit: "login_failures_per_account",
                max: self.settings.failures_per_hour_per_account,
                wait_secs: wait,
                message: "too many failed sign-ins for this account; try again shortly",
            });
        }
        Ok(())
    }

    /// A wrong e-mail or password.
    pub fn failed(&self, account: &EmailKey, source: Source, now: Instant) {
        let _ = self.pair_failures.check(&(account.clone(), source), now);
        if !self.known(account, source, now) {
            let _ = self.account_failures.check(account, now);
        }
    }

    /// A sign-in that succeeded: `source` is one of the account's own from now on.
    pub fn succeeded(&self, account: &EmailKey, source: Source, now: Instant) {
        self.known.lock().expect("known sources lock").remember(account, source, now);
    }

    fn known(&self, account: &EmailKey, source: Source, now: Instant) -> bool {
        self.known.lock().expect("known sources lock").contains(account, source, now)
    }
}

/// Where each account signed in lately, bounded in accounts and in sources per account.
#[derive(Debug, Default)]
struct KnownSources {
    by_account: HashMap<EmailKey, Vec<(Source, Instant)>>,
}

impl KnownSources {
    fn contains(&self, account: &EmailKey, source: Source, now: Instant) -> bool {
        self.by_account
            .get(account)
            .is_some_and(|sources| sources.iter().any(|(s, at)| *s == source && now.duration_since(*at) < KNOWN_FOR))
    }

    fn remember(&mut self, account: &EmailKey, source: Source, now: Instant) {
        if !self.by_account.contains_key(account) && self.by_account.len() >= KNOWN_ACCOUNTS {
            self.forget_oldest(now);
        }
        let sources = self.by_account.entry(account.clone()).or_default();
        sources.retain(|(s, at)| *s != source && now.duration_since(*at) < KNOWN_FOR);
        sources.push((source, now));
        if sources.len() > KNOWN_PER_ACCOUNT {
            sources.remove(0); // the least recent
        }
    }

    /// Drops expired entries and, if that is not enough, the accounts seen least recently (a
    /// tenth of them, so this runs rarely).
    fn forget_oldest(&mut self, now: Instant) {
        self.by_account.retain(|_, sources| {
            sources.retain(|(_, at)| now.duration_since(*at) < KNOWN_FOR);
            !sources.is_empty()
        });
        if self.by_account.len() < KNOWN_ACCOUNTS {
            return;
        }
        let mut latest: Vec<(Instant, EmailKey)> =
            self.by_account.iter().map(|(account, s)| (s.last().map_or(now, |(_, at)| *at), account.clone())).collect();
        latest.sort_unstable_by_key(|(at, _)| *at);
        for (_, account) in latest.into_iter().take(KNOWN_ACCOUNTS / 10) {
            self.by_account.remove(&account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    const SETTINGS: ThrottleSettings = ThrottleSettings {
        attempts_per_min_per_source: 20,
        failures_per_min_per_account_and_source: 10,
        failures_per_hour_per_account: 30,
    };

    fn source(text: &str) -> Source {
        Source::of(text.parse::<IpAddr>().unwrap())
    }

    /// What an attacker gets: guesses at `account` from `sources` distinct addresses, each
    /// trying until refused, for `minutes`, one round every ten seconds.
    fn guesses(throttle: &SignInThrottle, account: &EmailKey, sources: usize, t0: Instant, minutes: u64) -> usize {
        let mut admitted = 0;
        for second in (0..minutes * 60).step_by(10) {
            let now = t0 + Duration::from_secs(second);
            for n in 0..sources {
                let from = Source::of(IpAddr::from([203, 0, (n / 250) as u8, (n % 250) as u8]));
                if throttle.attempt(from, now).is_ok() && throttle.admit(account, from, now).is_ok() {
                    throttle.failed(account, from, now);
                    admitted += 1;
                }
            }
        }
        admitted
    }

    #[test]
    fn failures_from_one_address_stop_there() {
        let throttle = SignInThrottle::new(SETTINGS);
        let (ops, t0) = (EmailKey::new("ops@globex.test"), Instant::now());
        let attacker = source("198.51.100.7");
        for _ in 0..10 {
            throttle.admit(&ops, attacker, t0).unwrap();
            throttle.failed(&ops, attacker, t0);
        }
        let refused = throttle.admit(&ops, attacker, t0).unwrap_err();
        assert_eq!(refused.limit, "login_failures_per_account_and_address");
        assert!(refused.wait_secs > 0.0);
        assert!(throttle.admit(&ops, source("192.0.2.1"), t0).is_ok(), "elsewhere is not held by it");
    }

    #[test]
    fn spelling_the_account_differently_is_the_same_account() {
        let throttle = SignInThrottle::new(SETTINGS);
        let (t0, attacker) = (Instant::now(), source("198.51.100.7"));
        for _ in 0..10 {
            throttle.failed(&EmailKey::new("ops@globex.test"), attacker, t0);
        }
        for spelling in [" ops@globex.test", "ops@globex.test\t", "OPS@globex.test"] {
            assert!(throttle.admit(&EmailKey::new(spelling), attacker, t0).is_err(), "{spelling:?}");
        }
    }

    #[test]
    fn a_slash_64_is_one_address() {
        let throttle = SignInThrottle::new(SETTINGS);
        let (ops, t0) = (EmailKey::new("ops@globex.test"), Instant::now());
        for host in 0..10 {
            throttle.failed(&ops, source(&format!("2001:db8:5:6::{host:x}")), t0);
        }
        assert!(throttle.admit(&ops, source("2001:db8:5:6:ffff::1"), t0).is_err());
        for host in 0..20 {
            let _ = throttle.attempt(source(&format!("2001:db8:5:6::{:x}", 100 + host)), t0);
        }
        assert!(throttle.attempt(source("2001:db8:5:6::beef"), t0).is_err(), "attempts share the /64's allowance");
    }

    #[test]
    fn many_addresses_get_a_slow_trickle_and_the_owner_still_signs_in() {
        let throttle = SignInThrottle::new(SETTINGS);
        let (ops, t0) = (EmailKey::new("ops@globex.test"), Instant::now());
        let home = source("192.0.2.10");
        throttle.succeeded(&ops, home, t0);
        let in_an_hour = guesses(&throttle, &ops, 1_000, t0, 60);
        // The burst, then one an hour's refill: never what 1,000 addresses × 10 a minute would be.
        assert!((30..=61).contains(&in_an_hour), "{in_an_hour} guesses in the first hour");
        // The attackers' last round: whatever had refilled, they took.
        let later = t0 + Duration::from_secs(3590);
        assert!(throttle.admit(&ops, home, later).is_ok(), "the owner at home is not locked out");
        let elsewhere = throttle.admit(&ops, source("192.0.2.99"), later).unwrap_err();
        assert_eq!(elsewhere.limit, "login_failures_per_account");
        assert!(elsewhere.wait_secs <= 120.0, "delayed, not locked: {} s", elsewhere.wait_secs);
    }

    #[test]
    fn a_source_stays_known_for_its_time_only() {
        let mut known = KnownSources::default();
        let (ops, t0, home) = (EmailKey::new("ops@globex.test"), Instant::now(), source("192.0.2.10"));
        known.remember(&ops, home, t0);
        assert!(known.contains(&ops, home, t0 + KNOWN_FOR - Duration::from_secs(1)));
        assert!(!known.contains(&ops, home, t0 + KNOWN_FOR));
        assert!(!known.contains(&EmailKey::new("other@globex.test"), home, t0), "per account");
        for n in 0..20 {
            known.remember(&ops, source(&format!("198.51.100.{n}")), t0);
        }
        assert_eq!(known.by_account[&ops].len(), KNOWN_PER_ACCOUNT, "bounded per account");
    }

    #[test]
    fn remembered_accounts_are_bounded() {
        let mut known = KnownSources::default();
        let t0 = Instant::now();
        for n in 0..KNOWN_ACCOUNTS + 10 {
            known.remember(
                &EmailKey::new(&format!("u{n}@x.test")),
                source("192.0.2.1"),
                t0 + Duration::from_millis(n as u64),
            );
        }
        assert!(known.by_account.len() <= KNOWN_ACCOUNTS);
        assert!(
            known.by_account.contains_key(&EmailKey::new(&format!("u{}@x.test", KNOWN_ACCOUNTS + 9))),
            "the newest stays"
        );
    }
}
