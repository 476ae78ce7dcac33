//! The live session as a state machine: inputs in, effects out, no I/O.
//!
//! Every decision about the connection lives here — which transport to use, when to (re)connect
//! and how long to wait, what to resubscribe with, which messages to pass on to widgets and which to
//! drop — so the host tests cover it without a browser or a socket. The browser driver
//! (`driver.rs`) only performs the effects and feeds back what happened.
//!
//! Delivery rules, per subscription: the first message is a snapshot; an update is passed on only if
//! it is the next offset of the same epoch; an older offset is a duplicate and dropped; a later one,
//! or another epoch, means something was lost, so the session asks for a fresh snapshot itself; after
//! a `gap` nothing is passed on until the snapshot that follows.
//!
//! Transports: every attempt starts with the WebSocket. When it cannot open (a proxy refusing the
//! upgrade), or drops twice in a row before delivering anything (a middlebox cutting long frames),
//! the same attempt tries the dashboard's SSE stream, and when that cannot open either, polling. Only
//! when all three fail does the attempt count as failed and wait out the backoff. While on a
//! fallback, the session probes the faster transports in the background (5 s, then doubling up to 3
//! min) and climbs back as soon as one opens. Positions carry over in every switch: the WebSocket
//! resubscribes with each widget's resume token, the stream and the polls start from the same
//! tokens (or from the server's cursor while they keep going), and duplicates fall to the offset
//! rule.
//!
//! The operator's live mode overrides the ladder. A connection closed with 4405 (the tenant polls,
//! an administrator's choice) goes straight to polling from the positions it holds and probes
//! nothing; each poll answer says the mode, and when it says `live` again the page climbs back to
//! the WebSocket. Live updates turned off (4403) leave the page static, but it asks the mode again
//! every poll interval and comes back when they are on.

use super::{fallback, status::ConnectionStatus};
use protocol::backoff::Backoff;
use protocol::close::{ABNORMAL, GOING_AWAY, Reconnect};
use protocol::{
    ActivityAction, ClientMessage, ControlMessage, ErrorCode, Item, LiveMode, Meta, PollAnswer, ServerMessage, Update,
};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, time::Duration};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveSessionConfig {
    pub backoff: Backoff,
    /// Failed attempts in a row after which the session goes Offline.
    pub max_attempts: u32,
    /// Longest random wait before reconnecting after 1001 "going away".
    pub going_away_spread: Duration,
    /// Waits between tries of a faster transport while on a fallback.
    pub probe_backoff: Backoff,
    /// How often to poll when no widget's interval asks for sooner.
    pub poll_every: Duration,
    /// Say [`Effect::WebSocketRefused`] when the WebSocket does not get through and there is no
    /// dashboard to fall back on (the hub of shared tabs, which hands each tab a connection of its
    /// own then).
    pub report_refusals: bool,
}

impl LiveSessionConfig {
    /// A wall display's: never Offline, however long the outage (see `page_kind`).
    pub fn display() -> Self {
        Self { max_attempts: u32::MAX, ..Self::default() }
    }
}

impl Default for LiveSessionConfig {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            max_attempts: 10,
            going_away_spread: Duration::from_secs(1),
            probe_backoff: Backoff {
                initial: Duration::from_secs(5),
                max: Duration::from_secs(180),
                factor: 2.0,
                jitter: 0.2,
            },
            poll_every: Duration::from_secs(30),
            report_refusals: false,
        }
    }
}

/// How the session reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    /// `GET /api/stream/dashboard/{id}`
    Sse,
    /// `GET /api/v1/dashboards/{id}/updates`
    Polling,
}

/// Where a subscription stands: the last snapshot or update applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetPosition {
    pub epoch: String,
    pub offset: u64,
    /// Opaque; sent back on resubscribe.
    pub resume_token: String,
}

impl From<&Meta> for WidgetPosition {
    fn from(meta: &Meta) -> Self {
        Self { epoch: meta.epoch.clone(), offset: meta.offset, resume_token: meta.resume_token.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidgetSubscription {
    pub topic: String,
    pub position: Option<WidgetPosition>,
    /// A gap was announced or detected, or a refresh asked: updates wait for the snapshot, and a
    /// connection opened before it arrives asks for it again (never resumes from `position`).
    #[serde(skip)]
    awaiting_snapshot: bool,
    /// The widget's interval, which polling honours when it is shorter than the default.
    #[serde(skip)]
    interval_secs: Option<u32>,
    /// On a fallback: updates that arrived out of order (their predecessors are being fetched),
    /// by offset, applied once the hole before them is filled.
    #[serde(skip)]
    ahead: BTreeMap<u64, Update>,
    /// On a fallback: a fetch of this widget's snapshot or missed updates is under way.
    #[serde(skip)]
    fetching: bool,
    /// A refresh asked for a snapshot that has not come yet.
    #[serde(skip)]
    snapshot_asked: bool,
}

impl WidgetSubscription {
    fn new(topic: String, position: Option<WidgetPosition>, awaiting_snapshot: bool) -> Self {
        Self {
            topic,
            position,
            awaiting_snapshot,
            interval_secs: None,
            ahead: BTreeMap::new(),
            fetching: false,
            snapshot_asked: false,
        }
    }

    /// A new subscription to it must start with a snapshot rather than resume from the position.
    fn wants_snapshot(&self) -> bool {
        self.awaiting_snapshot || self.snapshot_asked
    }

    /// The subscription has a hole to fill: a snapshot it waits for, or updates it holds.
    fn needs_healing(&self) -> bool {
        self.wants_snapshot() || !self.ahead.is_empty()
    }
}

/// Out-of-order updates a subscription holds on a fallback while it fetches what came before
/// them; past this, the oldest are dropped (the fetch brings them again, or a snapshot).
pub const AHEAD_MAX: usize = 256;

/// Why a poll was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollPurpose {
    /// The polling transport's regular poll: its answer moves the cursor.
    Regular,
    /// Snapshots (or the missed updates) of these widgets only, on a fallback transport: a new
    /// subscription, a manual refresh, a hole to heal.
    Widgets(Vec<String>),
}

/// A poll that did not answer 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollFailure {
    /// The HTTP status; `None` when the request did not get an answer at all.
    pub status: Option<u16>,
    /// The API's error code (`live_dashboards_off`, `limit_exceeded`, …).
    pub code: Option<ErrorCode>,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u32>,
}

impl PollFailure {
    /// The close code a WebSocket would have ended with for the same failure, for what the page
    /// says about it: a 503 is the server asking to come back later, another 5xx a server error,
    /// no answer at all the network.
    pub fn close_code(&self) -> u16 {
        match self.status {
            Some(503) => protocol::close::TRY_AGAIN,
            Some(500..=599) => protocol::close::SERVER_ERROR,
            Some(429) => protocol::close::LIMIT,
            _ => protocol::close::ABNORMAL,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The WebSocket opened.
    Opened,
    /// The WebSocket closed with this code (1006 when it just dropped or never opened).
    Closed {
        code: u16,
        reason: String,
    },
    /// The SSE stream opened.
    StreamOpened,
    /// The SSE stream failed (1006) or the server closed it with this code (its `close` event).
    StreamClosed {
        code: u16,
    },
    /// The stream cursor of the latest SSE data event (its `id:`).
    StreamCursor(String),
    /// A poll of `dashboard` answered (or failed, or timed out).
    Polled {
        dashboard: i64,
        purpose: PollPurpose,
        answer: Result<PollAnswer, PollFailure>,
    },
    Received(ServerMessage),
    /// Follow `topic` for `widget`, from `position` when a saved page left one.
    Subscribe {
        widget: String,
        topic: String,
        position: Option<WidgetPosition>,
    },
    Unsubscribe {
        widget: String,
    },
    /// The widget's interval (its mode's), which polling honours.
    SetInterval {
        widget: String,
        secs: Option<u32>,
    },
    /// The page shows this stored dashboard: the fallback transports serve its feeds.
    SetDashboard(Option<i64>),
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
    /// The poll scheduled by [`Effect::PollIn`] is due.
    PollDue,
    /// The probe scheduled by [`Effect::ProbeIn`] is due.
    ProbeDue,
    /// The widget fetches scheduled by [`Effect::FetchIn`] are due.
    FetchDue,
    /// The user pressed Retry.
    RetryNow,
    /// The global live switch.
    SetLive(bool),
    /// Nothing (not even a `pong`) arrived in time after a ping: the path is dead even if the
    /// socket does not know yet, which on a half-open path can take minutes.
    HeartbeatLost,
    /// The mode check scheduled by [`Effect::CheckModeIn`] is due.
    ModeCheckDue,
    /// What the mode check ([`Effect::CheckMode`]) found.
    ModeIs(ModeCheck),
}

/// The answer to [`Effect::CheckMode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeCheck {
    Mode(LiveMode),
    /// The session ended.
    SignedOut,
    /// No answer (the network, the server): ask again later.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Open the WebSocket (as the transport, or as a probe while on a fallback).
    Open,
    /// Close the socket; its close event follows.
    Close,
    /// Forget the socket without waiting for its close event (the session has moved on: on a dead
    /// path that event may come minutes later).
    DropSocket,
    Send(ClientMessage),
    /// Open the dashboard's SSE stream with these query parameters.
    OpenStream {
        dashboard: i64,
        query: Vec<(String, String)>,
    },
    CloseStream,
    /// Ask `GET /api/v1/dashboards/{dashboard}/updates` with these query parameters, and feed the
    /// answer back as [`Input::Polled`] with this purpose.
    Poll {
        dashboard: i64,
        query: Vec<(String, String)>,
        purpose: PollPurpose,
    },
    /// Feed [`Input::PollDue`] after this long.
    PollIn(Duration),
    /// Feed [`Input::ProbeDue`] after this long.
    ProbeIn(Duration),
    /// Feed [`Input::FetchDue`] after this long.
    FetchIn(Duration),
    Deliver {
        widget: String,
        delivery: Delivery,
    },
    /// Feed [`Input::RetryDue`] after this long.
    RetryIn(Duration),
    /// The session ended: send the user to sign in.
    SignIn,
    /// The WebSocket does not get through and this session has no fallback of its own (no
    /// dashboard): whoever runs it may have one (the hub of shared tabs hands each tab its own).
    WebSocketRefused,
    /// The tenant polls (an administrator's choice) and this session cannot (no dashboard): the
    /// hub of shared tabs hands each tab a connection of its own, which polls.
    PollingChosen,
    /// Feed [`Input::ModeCheckDue`] after this long.
    CheckModeIn(Duration),
    /// Ask the server the tenant's live mode (`GET /api/auth/me`), and feed the answer back as
    /// [`Input::ModeIs`].
    CheckMode,
}

/// What a widget receives (also across tabs, from the hub: see `relay`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
pub struct LiveSession {
    config: LiveSessionConfig,
    status: ConnectionStatus,
    failed_attempts: u32,
    subscriptions: BTreeMap<String, WidgetSubscription>,
    /// The latest activity reported while not live, sent once the socket opens.
    pending_report: Option<(ActivityAction, String)>,
    /// The transport in use, or being tried in the current attempt.
    transport: Transport,
    dashboard: Option<i64>,
    /// The server's cursor for the dashboard, from the stream or the polls, while on a fallback.
    cursor: Option<String>,
    /// The WebSocket in use delivered a snapshot or update.
    socket_delivered: bool,
    /// WebSockets in a row that dropped before delivering anything.
    quiet_drops: u32,
    /// A faster transport being tried while on a fallback.
    probing: Option<Transport>,
    probe_scheduled: bool,
    failed_probes: u32,
    /// On a fallback: a retry of the widget fetches that did not heal their widgets is scheduled.
    fetch_scheduled: bool,
    /// Widget fetches in a row that did not heal their widgets (spaces the retries out).
    failed_fetches: u32,
    /// The server said the tenant polls, an administrator's choice: poll, and probe nothing.
    polling_chosen: bool,
}

impl LiveSession {
    /// A session that starts connecting at once (the caller performs the returned `Open`).
    pub fn start(config: LiveSessionConfig) -> (Self, Vec<Effect>) {
        let session = Self {
            config,
            status: ConnectionStatus::Connecting,
            failed_attempts: 0,
            subscriptions: BTreeMap::new(),
            pending_report: None,
            transport: Transport::WebSocket,
            dashboard: None,
            cursor: None,
            socket_delivered: false,
            quiet_drops: 0,
            probing: None,
            probe_scheduled: false,
            failed_probes: 0,
            fetch_scheduled: false,
            failed_fetches: 0,
            polling_chosen: false,
        };
        (session, vec![Effect::Open])
    }

    pub fn status(&self) -> ConnectionStatus {
        self.status
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    pub fn subscriptions(&self) -> &BTreeMap<String, WidgetSubscription> {
        &self.subscriptions
    }

    /// `random` is uniform in `[0, 1)`; it spreads reconnects.
    pub fn handle(&mut self, input: Input, random: f64) -> Vec<Effect> {
        match input {
            Input::Opened => self.on_socket_opened(),
            Input::Closed { code, .. } => self.on_socket_closed(code, random),
            Input::StreamOpened => self.on_stream_opened(),
            Input::StreamClosed { code } => self.on_stream_closed(code, random),
            Input::StreamCursor(cursor) => {
                if self.transport == Transport::Sse {
                    self.cursor = Some(cursor);
                }
                vec![]
            }
            Input::Polled { dashboard, purpose, answer } => {
                if Some(dashboard) != self.dashboard {
                    return vec![]; // asked for the dashboard the page showed before
                }
                self.on_polled(purpose, answer, random)
            }
            Input::Received(message) => self.on_message(message),
            Input::Subscribe { widget, topic, position } => {
                let awaiting_snapshot = self.on_fallback() && position.is_none();
                let sub = WidgetSubscription::new(topic, position, awaiting_snapshot);
                let send = self.is_live().then(|| Effect::Send(subscribe(&widget, &sub)));
                self.subscriptions.insert(widget.clone(), sub);
                match send {
                    Some(send) => vec![send],
                    None if self.on_fallback() => self.fetch(&widget),
                    None => vec![],
                }
            }
            Input::Unsubscribe { widget } => {
                let existed = self.subscriptions.remove(&widget).is_some();
                (existed && self.is_live())
                    .then_some(Effect::Send(ClientMessage::Unsubscribe { widget_id: widget }))
                    .into_iter()
                    .collect()
            }
            Input::SetInterval { widget, secs } => {
                if let Some(sub) = self.subscriptions.get_mut(&widget) {
                    sub.interval_secs = secs;
                }
                vec![]
            }
            Input::SetDashboard(dashboard) => self.on_dashboard(dashboard, random),
            Input::Refresh { widget } => {
                let (live, on_fallback) = (self.is_live(), self.on_fallback());
                let Some(sub) = self.subscriptions.get_mut(&widget) else { return vec![] };
                if on_fallback {
                    // The stream goes on meanwhile: what it brings waits for the fetched snapshot.
                    sub.awaiting_snapshot = true;
                    return self.fetch(&widget);
                }
                // Until the snapshot comes, a connection that opens (the socket dropped, or the
                // refresh was asked during an outage) asks for one afresh instead of resuming.
                sub.snapshot_asked = true;
                if live { vec![Effect::Send(ClientMessage::RequestUpdate { widget_id: widget })] } else { vec![] }
            }
            Input::Report { action, detail } if self.is_live() => {
                vec![Effect::Send(ClientMessage::Activity { action, detail })]
            }
            Input::Report { action, detail } => {
                // Only the latest matters: it says what the user is doing now.
                self.pending_report = Some((action, detail));
                vec![]
            }
            Input::RetryDue => match self.status {
                ConnectionStatus::Reconnecting { .. } => self.begin_attempt(),
                _ => vec![],
            },
            Input::PollDue => match self.status {
                ConnectionStatus::Polling { .. } => self.regular_poll(),
                _ => vec![],
            },
            Input::FetchDue => {
                self.fetch_scheduled = false;
                if self.on_fallback() { self.heal() } else { vec![] }
            }
            Input::ProbeDue => {
                self.probe_scheduled = false;
                if self.on_fallback() && self.probing.is_none() && !self.polling_chosen {
                    self.probing = Some(Transport::WebSocket);
                    vec![Effect::Open]
                } else {
                    vec![]
                }
            }
            Input::RetryNow => match self.status {
                ConnectionStatus::Offline | ConnectionStatus::LiveOff | ConnectionStatus::Reconnecting { .. } => {
                    self.failed_attempts = 0;
                    self.begin_attempt()
                }
                _ => vec![],
            },
            Input::SetLive(false) => match self.status {
                ConnectionStatus::Paused | ConnectionStatus::SignedOut => vec![],
                _ => {
                    let effects = self.stop_transport();
                    self.status = ConnectionStatus::Paused;
                    effects
                }
            },
            Input::SetLive(true) => match self.status {
                ConnectionStatus::Paused => {
                    self.failed_attempts = 0;
                    self.begin_attempt()
                }
                _ => vec![],
            },
            Input::HeartbeatLost if self.is_live() => {
                // The socket is as good as closed: the pill must not say Live while nothing can arrive.
                let mut effects = vec![Effect::DropSocket];
                effects.extend(self.on_socket_closed(ABNORMAL, random));
                effects
            }
            Input::HeartbeatLost => vec![],
            Input::ModeCheckDue if self.status == ConnectionStatus::LiveOff => vec![Effect::CheckMode],
            Input::ModeCheckDue => vec![],
            Input::ModeIs(check) => self.on_mode_checked(check, random),
        }
    }
}

mod delivery;
#[cfg(test)]
mod tests;
mod transport;

use delivery::subscribe;
