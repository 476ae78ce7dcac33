//! The live session as a state machine: inputs in, effects out, no I/O.
//!
//! Every decision about the connection lives here — when to (re)connect and how long to wait, what
//! to resubscribe with, which messages to pass on to widgets and which to drop — so the host tests
//! cover it without a browser or a socket. The browser driver (`socket.rs`) only performs the
//! effects and feeds back what happened.
//!
//! Delivery rules, per subscription: the first message is a snapshot; an update is passed on only if
//! it is the next offset of the same epoch; an older offset is a duplicate and dropped; a later one,
//! or another epoch, means something was lost, so the session asks for a fresh snapshot itself; after
//! a `gap` nothing is passed on until the snapshot that follows.

use super::{backoff::Backoff, status::ConnectionStatus};
use crate::protocol::{ActivityAction, ClientMessage, ControlMessage, ErrorCode, Item, Meta, ServerMessage};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, time::Duration};

/// Close codes the session treats specially (see docs/protocol.md).
pub const GOING_AWAY: u16 = 1001;
pub const SESSION_ENDED: u16 = 4401;
pub const LIVE_OFF: u16 = 4403;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionConfig {
    pub backoff: Backoff,
    /// Failed attempts in a row after which the session goes Offline.
    pub max_attempts: u32,
    /// Longest random wait before reconnecting after 1001 "going away".
    pub going_away_spread: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { backoff: Backoff::default(), max_attempts: 10, going_away_spread: Duration::from_secs(1) }
    }
}

/// Where a subscription stands: the last snapshot or update applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub epoch: String,
    pub offset: u64,
    /// Opaque; sent back on resubscribe.
    pub resume_token: String,
}

impl From<&Meta> for Position {
    fn from(meta: &Meta) -> Self {
        Self { epoch: meta.epoch.clone(), offset: meta.offset, resume_token: meta.resume_token.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub topic: String,
    pub position: Option<Position>,
    /// A gap was announced or detected; updates wait for the snapshot.
    #[serde(skip)]
    awaiting_snapshot: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The socket opened.
    Opened,
    /// The socket closed with this code (1006 when it just dropped).
    Closed {
        code: u16,
        reason: String,
    },
    Received(ServerMessage),
    /// Follow `topic` for `widget`, from `position` when a saved page left one.
    Subscribe {
        widget: String,
        topic: String,
        position: Option<Position>,
    },
    Unsubscribe {
        widget: String,
    },
    /// Manual refresh of one widget.
    Refresh {
        widget: String,
    },
    /// Tell the server what the user is doing (while not live, the latest is kept for the next
    /// connection).
    Report {
        action: ActivityAction,
        detail: String,
    },
    /// The retry scheduled by [`Effect::RetryIn`] is due.
    RetryDue,
    /// The user pressed Retry.
    RetryNow,
    /// The global live switch.
    SetLive(bool),
    /// No `pong` arrived in time: the connection is dead even if the socket does not know yet.
    HeartbeatLost,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Open,
    Close,
    Send(ClientMessage),
    Deliver {
        widget: String,
        delivery: Delivery,
    },
    /// Feed [`Input::RetryDue`] after this long.
    RetryIn(Duration),
    /// The session ended: send the user to sign in.
    SignIn,
}

/// What a widget receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Replace everything with this.
    Snapshot { series: Vec<Item>, meta: Meta },
    /// Apply this change; it is the next in order.
    Update { series: Vec<Item>, meta: Meta, ts: i64 },
    /// Data was lost; a snapshot follows.
    Gap,
    /// The server refused the subscription or a request for it.
    Error { code: ErrorCode, message: String },
}

#[derive(Debug, Clone)]
pub struct Session {
    config: SessionConfig,
    status: ConnectionStatus,
    failed_attempts: u32,
    subscriptions: BTreeMap<String, Subscription>,
    /// The latest activity reported while not live, sent once the socket opens.
    pending_report: Option<(ActivityAction, String)>,
}

impl Session {
    /// A session that starts connecting at once (the caller performs the returned `Open`).
    pub fn start(config: SessionConfig) -> (Self, Vec<Effect>) {
        let session = Self {
            config,
            status: ConnectionStatus::Connecting,
            failed_attempts: 0,
            subscriptions: BTreeMap::new(),
            pending_report: None,
        };
        (session, vec![Effect::Open])
    }

    pub fn status(&self) -> ConnectionStatus {
        self.status
    }

    pub fn subscriptions(&self) -> &BTreeMap<String, Subscription> {
        &self.subscriptions
    }

    /// `random` is uniform in `[0, 1)`; it spreads reconnects.
    pub fn handle(&mut self, input: Input, random: f64) -> Vec<Effect> {
        match input {
            Input::Opened => {
                self.status = ConnectionStatus::Live;
                self.failed_attempts = 0;
                let mut effects: Vec<Effect> =
                    self.subscriptions.iter().map(|(widget, sub)| Effect::Send(subscribe(widget, sub))).collect();
                if let Some((action, detail)) = self.pending_report.take() {
                    effects.push(Effect::Send(ClientMessage::Activity { action, detail }));
                }
                effects
            }
            Input::Closed { code, .. } => self.on_closed(code, random),
            Input::Received(message) => self.on_message(message),
            Input::Subscribe { widget, topic, position } => {
                let sub = Subscription { topic, position, awaiting_snapshot: false };
                let effect = self.is_live().then(|| Effect::Send(subscribe(&widget, &sub)));
                self.subscriptions.insert(widget, sub);
                effect.into_iter().collect()
            }
            Input::Unsubscribe { widget } => {
                let existed = self.subscriptions.remove(&widget).is_some();
                (existed && self.is_live())
                    .then_some(Effect::Send(ClientMessage::Unsubscribe { widget_id: widget }))
                    .into_iter()
                    .collect()
            }
            Input::Refresh { widget } => (self.is_live() && self.subscriptions.contains_key(&widget))
                .then_some(Effect::Send(ClientMessage::RequestUpdate { widget_id: widget }))
                .into_iter()
                .collect(),
            Input::Report { action, detail } if self.is_live() => {
                vec![Effect::Send(ClientMessage::Activity { action, detail })]
            }
            Input::Report { action, detail } => {
                // Only the latest matters: it says what the user is doing now.
                self.pending_report = Some((action, detail));
                vec![]
            }
            Input::RetryDue => match self.status {
                ConnectionStatus::Reconnecting { .. } => {
                    self.status = ConnectionStatus::Connecting;
                    vec![Effect::Open]
                }
                _ => vec![],
            },
            Input::RetryNow => match self.status {
                ConnectionStatus::Offline | ConnectionStatus::LiveOff | ConnectionStatus::Reconnecting { .. } => {
                    self.failed_attempts = 0;
                    self.status = ConnectionStatus::Connecting;
                    vec![Effect::Open]
                }
                _ => vec![],
            },
            Input::SetLive(false) => match self.status {
                ConnectionStatus::Paused | ConnectionStatus::SignedOut => vec![],
                ConnectionStatus::Live | ConnectionStatus::Connecting => {
                    self.status = ConnectionStatus::Paused;
                    vec![Effect::Close]
                }
                _ => {
                    self.status = ConnectionStatus::Paused;
                    vec![]
                }
            },
            Input::SetLive(true) => match self.status {
                ConnectionStatus::Paused => {
                    self.failed_attempts = 0;
                    self.status = ConnectionStatus::Connecting;
                    vec![Effect::Open]
                }
                _ => vec![],
            },
            Input::HeartbeatLost => {
                if self.is_live() {
                    vec![Effect::Close]
                } else {
                    vec![]
                }
            }
        }
    }

    fn is_live(&self) -> bool {
        self.status == ConnectionStatus::Live
    }

    fn on_closed(&mut self, code: u16, random: f64) -> Vec<Effect> {
        match (self.status, code) {
            // We closed it ourselves, or nothing more is to be done.
            (ConnectionStatus::Paused | ConnectionStatus::SignedOut | ConnectionStatus::Offline, _) => vec![],
            (_, SESSION_ENDED) => {
                self.status = ConnectionStatus::SignedOut;
                vec![Effect::SignIn]
            }
            (_, LIVE_OFF) => {
                self.status = ConnectionStatus::LiveOff;
                vec![]
            }
            (_, GOING_AWAY) => {
                // Prompt, but spread: thousands of clients must not return in the same millisecond.
                let delay = self.config.going_away_spread.mul_f64(random.clamp(0.0, 1.0));
                self.retry(1, delay)
            }
            _ => {
                self.failed_attempts += 1;
                if self.failed_attempts > self.config.max_attempts {
                    self.status = ConnectionStatus::Offline;
                    return vec![];
                }
                let delay = self.config.backoff.delay(self.failed_attempts, random);
                self.retry(self.failed_attempts, delay)
            }
        }
    }

    fn retry(&mut self, attempt: u32, delay: Duration) -> Vec<Effect> {
        let retry_in_secs = delay.as_secs_f64().ceil() as u32;
        self.status = ConnectionStatus::Reconnecting { attempt, retry_in_secs };
        vec![Effect::RetryIn(delay)]
    }

    fn on_message(&mut self, message: ServerMessage) -> Vec<Effect> {
        let deliver = |widget: String, delivery| vec![Effect::Deliver { widget, delivery }];
        match message {
            ServerMessage::Control(ControlMessage::Snapshot { widget_id, series, meta, .. }) => {
                let Some(sub) = self.subscriptions.get_mut(&widget_id) else { return vec![] };
                sub.position = Some(Position::from(&meta));
                sub.awaiting_snapshot = false;
                deliver(widget_id, Delivery::Snapshot { series, meta })
            }
            ServerMessage::Control(ControlMessage::Gap { widget_id, .. }) => {
                let Some(sub) = self.subscriptions.get_mut(&widget_id) else { return vec![] };
                sub.awaiting_snapshot = true;
                deliver(widget_id, Delivery::Gap)
            }
            ServerMessage::Control(ControlMessage::Error { code, message, widget_id: Some(widget_id) }) => {
                if !self.subscriptions.contains_key(&widget_id) {
                    return vec![];
                }
                deliver(widget_id, Delivery::Error { code, message })
            }
            ServerMessage::Update(update) => {
                let Some(sub) = self.subscriptions.get_mut(&update.widget_id) else { return vec![] };
                if sub.awaiting_snapshot {
                    return vec![];
                }
                let next = sub.position.as_ref().filter(|p| p.epoch == update.meta.epoch).map(|p| p.offset + 1);
                match next {
                    Some(next) if update.meta.offset < next => vec![], // a duplicate
                    Some(next) if update.meta.offset == next => {
                        sub.position = Some(Position::from(&update.meta));
                        let delivery = Delivery::Update { series: update.series, meta: update.meta, ts: update.ts };
                        deliver(update.widget_id, delivery)
                    }
                    // A hole, another epoch, or an update before any snapshot: the server should
                    // have said `gap`; heal it anyway with a fresh snapshot.
                    _ => {
                        sub.awaiting_snapshot = true;
                        sub.position = None;
                        let resubscribe = subscribe(&update.widget_id, sub);
                        let unsubscribe = ClientMessage::Unsubscribe { widget_id: update.widget_id.clone() };
                        let mut effects = deliver(update.widget_id, Delivery::Gap);
                        effects.extend([Effect::Send(unsubscribe), Effect::Send(resubscribe)]);
                        effects
                    }
                }
            }
            ServerMessage::Control(_) => vec![],
        }
    }
}

fn subscribe(widget: &str, sub: &Subscription) -> ClientMessage {
    ClientMessage::Subscribe {
        widget_id: widget.to_owned(),
        topic: sub.topic.clone(),
        resume_token: sub.position.as_ref().map(|p| p.resume_token.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Point, TopicKind, Update};

    fn meta(epoch: &str, offset: u64) -> Meta {
        Meta {
            topic: "t".into(),
            kind: TopicKind::Series,
            epoch: epoch.into(),
            offset,
            resume_token: format!("{epoch}.{offset}"),
        }
    }

    fn items(v: f64) -> Vec<Item> {
        vec![Item::Point(Point { ts: v as i64, value: v })]
    }

    fn snapshot(widget: &str, epoch: &str, offset: u64) -> Input {
        Input::Received(ServerMessage::Control(ControlMessage::Snapshot {
            widget_id: widget.into(),
            ts: 0,
            series: items(offset as f64),
            meta: meta(epoch, offset),
        }))
    }

    fn update(widget: &str, epoch: &str, offset: u64) -> Input {
        Input::Received(ServerMessage::Update(Update {
            widget_id: widget.into(),
            ts: 0,
            series: items(offset as f64),
            meta: meta(epoch, offset),
        }))
    }

    fn closed(code: u16) -> Input {
        Input::Closed { code, reason: String::new() }
    }

    fn live_with(widget: &str) -> Session {
        let (mut s, _) = Session::start(SessionConfig::default());
        s.handle(Input::Subscribe { widget: widget.into(), topic: "t".into(), position: None }, 0.5);
        s.handle(Input::Opened, 0.5);
        s
    }

    fn delivered_offsets(effects: &[Effect]) -> Vec<u64> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Deliver {
                    delivery: Delivery::Update { meta, .. } | Delivery::Snapshot { meta, .. }, ..
                } => Some(meta.offset),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn subscriptions_are_sent_once_the_socket_is_open() {
        let (mut s, effects) = Session::start(SessionConfig::default());
        assert_eq!(effects, vec![Effect::Open]);
        assert_eq!(s.status(), ConnectionStatus::Connecting);
        assert!(s.handle(Input::Subscribe { widget: "w".into(), topic: "t".into(), position: None }, 0.5).is_empty());
        let sent = s.handle(Input::Opened, 0.5);
        assert_eq!(
            sent,
            vec![Effect::Send(ClientMessage::Subscribe {
                widget_id: "w".into(),
                topic: "t".into(),
                resume_token: None
            })]
        );
        assert_eq!(s.status(), ConnectionStatus::Live);
    }

    #[test]
    fn updates_pass_in_order_and_duplicates_are_dropped() {
        let mut s = live_with("w");
        let mut offsets = Vec::new();
        for input in
            [snapshot("w", "e", 3), update("w", "e", 4), update("w", "e", 4), update("w", "e", 2), update("w", "e", 5)]
        {
            offsets.extend(delivered_offsets(&s.handle(input, 0.5)));
        }
        assert_eq!(offsets, vec![3, 4, 5]);
    }

    #[test]
    fn a_hole_is_healed_with_a_fresh_snapshot() {
        let mut s = live_with("w");
        s.handle(snapshot("w", "e", 3), 0.5);
        let effects = s.handle(update("w", "e", 6), 0.5);
        assert!(effects.contains(&Effect::Deliver { widget: "w".into(), delivery: Delivery::Gap }));
        assert!(effects.contains(&Effect::Send(ClientMessage::Subscribe {
            widget_id: "w".into(),
            topic: "t".into(),
            resume_token: None
        })));
        assert!(delivered_offsets(&s.handle(update("w", "e", 7), 0.5)).is_empty(), "held until the snapshot");
        assert_eq!(delivered_offsets(&s.handle(snapshot("w", "e", 7), 0.5)), vec![7]);
        assert_eq!(delivered_offsets(&s.handle(update("w", "e", 8), 0.5)), vec![8]);
    }

    #[test]
    fn after_a_gap_only_the_snapshot_counts_even_in_a_new_epoch() {
        let mut s = live_with("w");
        s.handle(snapshot("w", "old", 9), 0.5);
        let gap = Input::Received(ServerMessage::Control(ControlMessage::Gap {
            widget_id: "w".into(),
            reason: "restart".into(),
        }));
        assert_eq!(s.handle(gap, 0.5), vec![Effect::Deliver { widget: "w".into(), delivery: Delivery::Gap }]);
        assert!(delivered_offsets(&s.handle(update("w", "old", 10), 0.5)).is_empty());
        assert_eq!(delivered_offsets(&s.handle(snapshot("w", "new", 2), 0.5)), vec![2]);
        assert_eq!(delivered_offsets(&s.handle(update("w", "new", 3), 0.5)), vec![3]);
    }

    #[test]
    fn reconnecting_resubscribes_with_each_resume_token() {
        let mut s = live_with("w");
        s.handle(snapshot("w", "e", 3), 0.5);
        s.handle(update("w", "e", 4), 0.5);
        assert_eq!(s.handle(closed(1006), 0.5), vec![Effect::RetryIn(Duration::from_secs(1))]);
        assert_eq!(s.status(), ConnectionStatus::Reconnecting { attempt: 1, retry_in_secs: 1 });
        assert_eq!(s.handle(Input::RetryDue, 0.5), vec![Effect::Open]);
        let resent = s.handle(Input::Opened, 0.5);
        assert_eq!(
            resent,
            vec![Effect::Send(ClientMessage::Subscribe {
                widget_id: "w".into(),
                topic: "t".into(),
                resume_token: Some("e.4".into())
            })]
        );
        assert_eq!(delivered_offsets(&s.handle(update("w", "e", 5), 0.5)), vec![5], "replay continues in order");
    }

    #[test]
    fn backoff_grows_then_goes_offline_after_ten_failures_and_retry_starts_over() {
        let (mut s, _) = Session::start(SessionConfig::default());
        let mut delays = Vec::new();
        for _ in 0..10 {
            match s.handle(closed(1006), 0.5).as_slice() {
                [Effect::RetryIn(d)] => delays.push(d.as_secs()),
                other => panic!("{other:?}"),
            }
            s.handle(Input::RetryDue, 0.5);
        }
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30, 30, 30]);
        assert!(s.handle(closed(1006), 0.5).is_empty());
        assert_eq!(s.status(), ConnectionStatus::Offline);
        assert_eq!(s.handle(Input::RetryNow, 0.5), vec![Effect::Open]);
        assert_eq!(s.handle(closed(1006), 0.5), vec![Effect::RetryIn(Duration::from_secs(1))], "counting anew");
    }

    #[test]
    fn going_away_reconnects_within_a_second_spread_by_randomness() {
        let mut a = live_with("w");
        let mut b = live_with("w");
        let [Effect::RetryIn(da)] = a.handle(closed(GOING_AWAY), 0.1)[..] else { panic!() };
        let [Effect::RetryIn(db)] = b.handle(closed(GOING_AWAY), 0.9)[..] else { panic!() };
        assert!(da < db && db <= Duration::from_secs(1), "{da:?} {db:?}");
    }

    #[test]
    fn session_end_and_live_off_do_not_retry() {
        let mut s = live_with("w");
        assert_eq!(s.handle(closed(SESSION_ENDED), 0.5), vec![Effect::SignIn]);
        assert_eq!(s.status(), ConnectionStatus::SignedOut);
        assert!(s.handle(Input::RetryDue, 0.5).is_empty());

        let mut t = live_with("w");
        assert!(t.handle(closed(LIVE_OFF), 0.5).is_empty());
        assert_eq!(t.status(), ConnectionStatus::LiveOff);
        assert_eq!(t.handle(Input::RetryNow, 0.5), vec![Effect::Open], "the user may try again");
    }

    #[test]
    fn activity_reported_before_the_socket_opens_is_sent_when_it_does() {
        let (mut s, _) = Session::start(SessionConfig::default());
        for detail in ["Ops", "Sales"] {
            let report = Input::Report { action: ActivityAction::OpenDashboard, detail: detail.into() };
            assert!(s.handle(report, 0.5).is_empty());
        }
        let sent = s.handle(Input::Opened, 0.5);
        let only_the_latest =
            Effect::Send(ClientMessage::Activity { action: ActivityAction::OpenDashboard, detail: "Sales".into() });
        assert_eq!(sent, vec![only_the_latest]);
        assert!(s.handle(closed(1006), 0.5).len() == 1 && s.handle(Input::RetryDue, 0.5) == vec![Effect::Open]);
        assert!(s.handle(Input::Opened, 0.5).is_empty(), "sent once");
    }

    #[test]
    fn a_saved_position_resumes_a_new_page_where_the_old_one_stopped() {
        let (mut s, _) = Session::start(SessionConfig::default());
        let position = Position { epoch: "e".into(), offset: 41, resume_token: "e.41".into() };
        s.handle(Input::Subscribe { widget: "w".into(), topic: "t".into(), position: Some(position) }, 0.5);
        let sent = s.handle(Input::Opened, 0.5);
        assert_eq!(
            sent,
            vec![Effect::Send(ClientMessage::Subscribe {
                widget_id: "w".into(),
                topic: "t".into(),
                resume_token: Some("e.41".into())
            })]
        );
        assert!(delivered_offsets(&s.handle(update("w", "e", 41), 0.5)).is_empty(), "already shown before the refresh");
        assert_eq!(delivered_offsets(&s.handle(update("w", "e", 42), 0.5)), vec![42]);
    }

    #[test]
    fn pausing_closes_and_resuming_reconnects() {
        let mut s = live_with("w");
        assert_eq!(s.handle(Input::SetLive(false), 0.5), vec![Effect::Close]);
        assert!(s.handle(closed(1000), 0.5).is_empty(), "our own close is no failure");
        assert_eq!(s.status(), ConnectionStatus::Paused);
        assert!(s.handle(Input::Refresh { widget: "w".into() }, 0.5).is_empty());
        assert_eq!(s.handle(Input::SetLive(true), 0.5), vec![Effect::Open]);
    }

    #[test]
    fn a_lost_heartbeat_closes_the_socket_and_the_close_reconnects() {
        let mut s = live_with("w");
        assert_eq!(s.handle(Input::HeartbeatLost, 0.5), vec![Effect::Close]);
        assert!(matches!(s.handle(closed(1006), 0.5)[..], [Effect::RetryIn(_)]));
    }

    #[test]
    fn refresh_and_unsubscribe_are_sent_only_when_live() {
        let mut s = live_with("w");
        assert_eq!(
            s.handle(Input::Refresh { widget: "w".into() }, 0.5),
            vec![Effect::Send(ClientMessage::RequestUpdate { widget_id: "w".into() })]
        );
        assert!(s.handle(Input::Refresh { widget: "nope".into() }, 0.5).is_empty());
        let report = Input::Report { action: ActivityAction::OpenDashboard, detail: "Ops".into() };
        assert_eq!(
            s.handle(report.clone(), 0.5),
            vec![Effect::Send(ClientMessage::Activity { action: ActivityAction::OpenDashboard, detail: "Ops".into() })]
        );
        assert_eq!(
            s.handle(Input::Unsubscribe { widget: "w".into() }, 0.5),
            vec![Effect::Send(ClientMessage::Unsubscribe { widget_id: "w".into() })]
        );
        assert!(delivered_offsets(&s.handle(snapshot("w", "e", 1), 0.5)).is_empty(), "forgotten widget");
    }
}
