//! Where each threshold's alert state is kept: one place for the whole deployment, so that two
//! nodes taking values of the same topic at the same moment raise one alert, not two. The state
//! moves by compare-and-set: a node reads it, applies its values
//! ([`AlertState::observe`]), and writes the result only if nobody wrote in between; otherwise it
//! reads again and applies its values to what the other node left. The rule itself stays in Rust,
//! in one place; the store only compares and swaps.
//!
//! [`MemoryAlertStates`] is the store of a single node; Redis is that of several (`alert.lua`,
//! beside the topics). A state back at `ok` with nothing pending is removed, so the store holds
//! only thresholds that are not fine.

use super::alerts::Alert;
use futures_util::future::BoxFuture;
use protocol::thresholds::{AlertState, Threshold, ThresholdState};
use std::collections::HashMap;
use std::sync::Mutex;

/// What a compare-and-set found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swapped {
    Done,
    /// Another writer was first: what the key holds now.
    Moved(Option<String>),
}

/// A store of alert states by key, shared by every node that publishes.
pub trait AlertStates: Send + Sync + 'static {
    /// What `key` holds.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, String>>;

    /// Sets `key` to `new` (removes it with `None`) if it still holds `old`.
    fn swap<'a>(
        &'a self,
        key: &'a str,
        old: Option<&'a str>,
        new: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Swapped, String>>;
}

/// Attempts at a compare-and-set before giving up: each lost one means another node moved the
/// state meanwhile, which a handful of nodes publishing one topic does a few times at most.
const ATTEMPTS: usize = 8;

/// Applies `values` (seen at `at`) to the state under `key` and returns the changes they made, once
/// across the deployment: the node whose write lands reports them.
pub async fn observe(
    states: &dyn AlertStates,
    key: &str,
    threshold: &Threshold,
    at: i64,
    values: &[f64],
) -> Result<Vec<Alert>, String> {
    let mut held = states.get(key).await?;
    for _ in 0..ATTEMPTS {
        let before = decode(held.as_deref());
        let mut state = before.clone();
        let alerts: Vec<Alert> = values
            .iter()
            .filter_map(|&value| state.observe(threshold, at, value).map(|transition| Alert { transition, value, at }))
            .collect();
        if state == before {
            return Ok(alerts);
        }
        let new = encode(&state);
        match states.swap(key, held.as_deref(), new.as_deref()).await? {
            Swapped::Done => return Ok(alerts),
            Swapped::Moved(now) => held = now,
        }
    }
    Err(format!("the alert state {key} kept moving under {ATTEMPTS} attempts"))
}

/// `level` or `level:pending_level:since`; `None` for a fine state with nothing pending.
fn encode(state: &AlertState) -> Option<String> {
    match state.pending {
        None if state.level == ThresholdState::Ok => None,
        None => Some(state.level.as_str().to_owned()),
        Some((pending, since)) => Some(format!("{}:{}:{since}", state.level.as_str(), pending.as_str())),
    }
}

/// What [`encode`] wrote; anything else (a format of another version) starts afresh.
fn decode(text: Option<&str>) -> AlertState {
    let level = ThresholdState::parse;
    let Some(text) = text else { return AlertState::default() };
    let mut parts = text.split(':');
    let parsed = (|| {
        let current = level(parts.next()?)?;
        let pending = match (parts.next(), parts.next()) {
            (Some(p), Some(since)) => Some((level(p)?, since.parse().ok()?)),
            (None, None) => None,
            _ => return None,
        };
        Some(AlertState { level: current, pending })
    })();
    parsed.unwrap_or_default()
}

/// The states of one node, for a deployment of one. Bounded: past [`MemoryAlertStates::MAX`]
/// states (thresholds not fine at once), new ones are refused, and counted by the caller as failed.
#[derive(Debug, Default)]
pub struct MemoryAlertStates {
    held: Mutex<HashMap<String, String>>,
}

impl MemoryAlertStates {
    pub const MAX: usize = 100_000;
}

impl AlertStates for MemoryAlertStates {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, String>> {
        let held = self.held.lock().expect("alert states lock").get(key).cloned();
        Box::pin(async move { Ok(held) })
    }

    fn swap<'a>(
        &'a self,
        key: &'a str,
        old: Option<&'a str>,
        new: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Swapped, String>> {
        let mut held = self.held.lock().expect("alert states lock");
        let result = if held.get(key).map(String::as_str) != old {
            Ok(Swapped::Moved(held.get(key).cloned()))
        } else {
            match new {
                None => {
                    held.remove(key);
                    Ok(Swapped::Done)
                }
                Some(_) if old.is_none() && held.len() >= Self::MAX => {
                    Err(format!("{} thresholds are past a bound already", Self::MAX))
                }
                Some(new) => {
                    held.insert(key.to_owned(), new.to_owned());
                    Ok(Swapped::Done)
                }
            }
        };
        drop(held);
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::thresholds::{Direction, Transition};
    use std::sync::atomic::{AtomicBool, Ordering};

    fn below(for_secs: u32) -> Threshold {
        Threshold {
            key: "orders".into(),
            direction: Direction::Below,
            warning: Some(50.0),
            critical: Some(30.0),
            for_secs,
            hysteresis: 0.0,
        }
    }

    #[test]
    fn a_state_round_trips_and_a_fine_one_is_nothing() {
        let states = [
            AlertState::default(),
            AlertState { level: ThresholdState::Critical, pending: None },
            AlertState { level: ThresholdState::Ok, pending: Some((ThresholdState::Warning, 1234)) },
        ];
        for state in states {
            assert_eq!(decode(encode(&state).as_deref()), state);
        }
        assert_eq!(encode(&AlertState::default()), None);
        assert_eq!(decode(Some("bogus:x")), AlertState::default());
    }

    #[tokio::test]
    async fn values_move_the_state_once_and_a_fine_state_leaves_nothing_behind() {
        let states = MemoryAlertStates::default();
        let t = below(0);
        let alerts = observe(&states, "k", &t, 10, &[40.0, 20.0]).await.unwrap();
        let moves: Vec<_> = alerts.iter().map(|a| (a.transition.from, a.transition.to, a.value)).collect();
        assert_eq!(
            moves,
            [
                (ThresholdState::Ok, ThresholdState::Warning, 40.0),
                (ThresholdState::Warning, ThresholdState::Critical, 20.0)
            ]
        );
        assert!(observe(&states, "k", &t, 11, &[25.0]).await.unwrap().is_empty(), "no repeat while it stays");
        let back = observe(&states, "k", &t, 12, &[60.0]).await.unwrap();
        assert_eq!(
            back[0].transition,
            Transition { from: ThresholdState::Critical, to: ThresholdState::Ok, since: 12 }
        );
        assert!(states.held.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_worse_state_must_hold_for_its_time_across_messages() {
        let states = MemoryAlertStates::default();
        let t = below(60);
        assert!(observe(&states, "k", &t, 0, &[20.0]).await.unwrap().is_empty());
        assert_eq!(states.held.lock().unwrap()["k"], "ok:critical:0");
        assert!(observe(&states, "k", &t, 30_000, &[20.0]).await.unwrap().is_empty());
        let alerts = observe(&states, "k", &t, 60_000, &[25.0]).await.unwrap();
        assert_eq!(
            alerts[0].transition,
            Transition { from: ThresholdState::Ok, to: ThresholdState::Critical, since: 0 }
        );
    }

    /// A store where another node writes between this node's read and its write, once.
    struct Raced {
        inner: MemoryAlertStates,
        raced: AtomicBool,
    }

    impl AlertStates for Raced {
        fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, String>> {
            self.inner.get(key)
        }

        fn swap<'a>(
            &'a self,
            key: &'a str,
            old: Option<&'a str>,
            new: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Swapped, String>> {
            if !self.raced.swap(true, Ordering::SeqCst) {
                self.inner.held.lock().unwrap().insert(key.to_owned(), "critical".to_owned());
            }
            self.inner.swap(key, old, new)
        }
    }

    #[tokio::test]
    async fn a_node_that_loses_the_race_applies_its_values_to_what_the_winner_left() {
        let states = Raced { inner: MemoryAlertStates::default(), raced: AtomicBool::new(false) };
        // The other node made it critical already: this one's critical value is no news.
        assert!(observe(&states, "k", &below(0), 5, &[20.0]).await.unwrap().is_empty());
        assert_eq!(states.inner.held.lock().unwrap()["k"], "critical");
    }

    #[tokio::test]
    async fn the_memory_store_is_bounded() {
        let states = MemoryAlertStates::default();
        {
            let mut held = states.held.lock().unwrap();
            for i in 0..MemoryAlertStates::MAX {
                held.insert(format!("k{i}"), "critical".into());
            }
        }
        assert!(observe(&states, "new", &below(0), 0, &[20.0]).await.is_err());
        // One already held still moves.
        assert_eq!(observe(&states, "k1", &below(0), 0, &[60.0]).await.unwrap().len(), 1);
    }
}
