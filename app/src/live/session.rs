//! The live session as a state machine: inputs in, effects out, no I/O.
//!
//! Every decision about the connection lives here — which transport to use, when to (re)connect
//! and how long to wait, what to resubscribe with, which messages to pass on to widgets and which to
//! drop — so the host tests cover it without a browser or a socket. The browser driver
//! (`socket.rs`) only performs the effects and feeds back what happened.
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

use super::{backoff::Backoff, fallback, status::ConnectionStatus};
use crate::protocol::{
    ActivityAction, ClientMessage, ControlMessage, ErrorCode, Item, Meta, PollAnswer, ServerMessage, Update,
};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, time::Duration};

/// Close codes the session treats specially (see docs/protocol.md). The SSE stream's `close`
/// event and the polling statuses map onto them.
pub const GOING_AWAY: u16 = 1001;
pub const SESSION_ENDED: u16 = 4401;
pub const LIVE_OFF: u16 = 4403;
/// A WebSocket that closed before it opened, or a stream that failed: the browser gives no reason.
pub const ABNORMAL: u16 = 1006;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionConfig {
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

impl Default for SessionConfig {
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub topic: String,
    pub position: Option<Position>,
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

impl Subscription {
    fn new(topic: String, position: Option<Position>, awaiting_snapshot: bool) -> Self {
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
    pub code: Option<String>,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u32>,
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
        position: Option<Position>,
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
pub struct Session {
    config: SessionConfig,
    status: ConnectionStatus,
    failed_attempts: u32,
    subscriptions: BTreeMap<String, Subscription>,
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
        };
        (session, vec![Effect::Open])
    }

    pub fn status(&self) -> ConnectionStatus {
        self.status
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    pub fn subscriptions(&self) -> &BTreeMap<String, Subscription> {
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
                let sub = Subscription::new(topic, position, awaiting_snapshot);
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
            Input::SetDashboard(dashboard) => self.on_dashboard(dashboard),
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
                if self.on_fallback() && self.probing.is_none() {
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
        }
    }

    fn is_live(&self) -> bool {
        self.status == ConnectionStatus::Live
    }

    fn on_fallback(&self) -> bool {
        matches!(self.status, ConnectionStatus::LiveSse | ConnectionStatus::Polling { .. })
    }

    /// A new attempt, from the top of the ladder: the WebSocket.
    fn begin_attempt(&mut self) -> Vec<Effect> {
        self.status = ConnectionStatus::Connecting;
        self.transport = Transport::WebSocket;
        self.probing = None;
        vec![Effect::Open]
    }

    /// Closes whatever is open or being tried (the live switch went off).
    fn stop_transport(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        let socket_open = self.is_live() || self.probing == Some(Transport::WebSocket);
        if socket_open || (self.status == ConnectionStatus::Connecting && self.transport == Transport::WebSocket) {
            effects.push(Effect::Close);
        }
        if self.status == ConnectionStatus::LiveSse
            || self.probing == Some(Transport::Sse)
            || (self.status == ConnectionStatus::Connecting && self.transport == Transport::Sse)
        {
            effects.push(Effect::CloseStream);
        }
        self.probing = None;
        effects
    }

    fn on_socket_opened(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.on_fallback() {
            // A probe got through: leave the fallback.
            if self.status == ConnectionStatus::LiveSse {
                effects.push(Effect::CloseStream);
            }
        } else if self.status != ConnectionStatus::Connecting || self.transport != Transport::WebSocket {
            return effects; // a socket we no longer want (the driver closes it with the next Open)
        }
        self.status = ConnectionStatus::Live;
        self.transport = Transport::WebSocket;
        self.failed_attempts = 0;
        self.failed_probes = 0;
        self.probing = None;
        self.cursor = None;
        self.socket_delivered = false;
        self.fetch_scheduled = false;
        for sub in self.subscriptions.values_mut() {
            // The socket replays from each position: what a fallback held or fetched comes again.
            sub.ahead.clear();
            sub.fetching = false;
        }
        effects.extend(self.subscriptions.iter().map(|(widget, sub)| Effect::Send(subscribe(widget, sub))));
        if let Some((action, detail)) = self.pending_report.take() {
            effects.push(Effect::Send(ClientMessage::Activity { action, detail }));
        }
        effects
    }

    fn on_socket_closed(&mut self, code: u16, random: f64) -> Vec<Effect> {
        if self.probing == Some(Transport::WebSocket) {
            // The faster transport still does not get through; on polling, try the stream next.
            if matches!(self.status, ConnectionStatus::Polling { .. })
                && let Some(dashboard) = self.dashboard
            {
                self.probing = Some(Transport::Sse);
                return vec![Effect::OpenStream { dashboard, query: self.stream_query() }];
            }
            return self.probe_failed(random);
        }
        if self.transport != Transport::WebSocket {
            return vec![]; // a socket of an earlier attempt
        }
        let was_open = self.is_live();
        if was_open && !self.socket_delivered && !matches!(code, GOING_AWAY | SESSION_ENDED | LIVE_OFF) {
            self.quiet_drops += 1;
        } else if was_open {
            self.quiet_drops = 0;
        }
        match (self.status, code) {
            // We closed it ourselves, or nothing more is to be done.
            (ConnectionStatus::Paused | ConnectionStatus::SignedOut | ConnectionStatus::Offline, _) => vec![],
            (_, SESSION_ENDED) => self.signed_out(),
            (_, LIVE_OFF) => {
                self.status = ConnectionStatus::LiveOff;
                vec![]
            }
            (_, GOING_AWAY) => self.going_away(random),
            _ if (!was_open || self.quiet_drops >= 2) && self.dashboard.is_some() => {
                // The WebSocket does not get through: the same attempt tries the stream.
                self.quiet_drops = 0;
                self.try_stream()
            }
            _ if self.config.report_refusals && (!was_open || self.quiet_drops >= 2) => {
                let mut effects = self.attempt_failed(random);
                effects.push(Effect::WebSocketRefused);
                effects
            }
            _ => self.attempt_failed(random),
        }
    }

    fn try_stream(&mut self) -> Vec<Effect> {
        let Some(dashboard) = self.dashboard else { return vec![] };
        self.status = ConnectionStatus::Connecting;
        self.transport = Transport::Sse;
        vec![Effect::OpenStream { dashboard, query: self.stream_query() }]
    }

    fn on_stream_opened(&mut self) -> Vec<Effect> {
        let switching = self.probing == Some(Transport::Sse);
        let connecting = self.status == ConnectionStatus::Connecting && self.transport == Transport::Sse;
        if !switching && !connecting {
            return vec![];
        }
        self.probing = None;
        self.transport = Transport::Sse;
        self.status = ConnectionStatus::LiveSse;
        self.failed_attempts = 0;
        if switching {
            self.failed_probes = 0;
        }
        let mut effects = self.schedule_probe();
        effects.extend(self.heal());
        effects
    }

    fn on_stream_closed(&mut self, code: u16, random: f64) -> Vec<Effect> {
        if self.probing == Some(Transport::Sse) {
            return self.probe_failed(random);
        }
        if self.transport != Transport::Sse {
            return vec![];
        }
        let was_open = self.status == ConnectionStatus::LiveSse;
        match (self.status, code) {
            (ConnectionStatus::Paused | ConnectionStatus::SignedOut | ConnectionStatus::Offline, _) => vec![],
            (_, SESSION_ENDED) => self.signed_out(),
            (_, LIVE_OFF) => {
                self.status = ConnectionStatus::LiveOff;
                vec![]
            }
            (_, GOING_AWAY) => self.going_away(random),
            _ if !was_open => {
                // Nor does the stream: poll.
                self.transport = Transport::Polling;
                self.regular_poll()
            }
            _ => self.attempt_failed(random),
        }
    }

    fn on_polled(&mut self, purpose: PollPurpose, answer: Result<PollAnswer, PollFailure>, random: f64) -> Vec<Effect> {
        let regular = purpose == PollPurpose::Regular;
        if regular && self.transport != Transport::Polling {
            return vec![]; // a poll of a transport we left
        }
        let answer = match (answer, &purpose) {
            (Ok(answer), _) => answer,
            (Err(failure), PollPurpose::Widgets(widgets)) => {
                if failure.status == Some(401) {
                    return self.signed_out();
                }
                // Tried again a little later (the widget keeps waiting, and says so by not moving).
                return self.fetched(widgets);
            }
            (Err(failure), PollPurpose::Regular) => return self.poll_failed(failure, random),
        };
        let mut effects = Vec::new();
        let first_regular = regular && self.status == ConnectionStatus::Connecting;
        if regular {
            if !matches!(self.status, ConnectionStatus::Polling { .. } | ConnectionStatus::Connecting) {
                return vec![];
            }
            let first = self.status == ConnectionStatus::Connecting;
            self.status = ConnectionStatus::Polling { every_secs: self.poll_interval().as_secs() as u32 };
            self.failed_attempts = 0;
            self.cursor = Some(answer.cursor);
            if first {
                effects.extend(self.schedule_probe());
            }
            effects.push(Effect::PollIn(self.poll_interval()));
        }
        for widget in answer.widgets {
            for message in widget.messages {
                effects.extend(self.on_message(message));
            }
        }
        match purpose {
            PollPurpose::Regular if first_regular => effects.extend(self.heal()),
            PollPurpose::Regular => {}
            PollPurpose::Widgets(widgets) => effects.extend(self.fetched(&widgets)),
        }
        effects
    }

    /// A widget fetch answered: widgets it left with a hole are fetched again a little later.
    fn fetched(&mut self, widgets: &[String]) -> Vec<Effect> {
        let mut unhealed = false;
        for widget in widgets {
            if let Some(sub) = self.subscriptions.get_mut(widget) {
                sub.fetching = false;
                unhealed |= sub.needs_healing();
            }
        }
        if unhealed {
            self.failed_fetches += 1;
            self.schedule_fetch()
        } else {
            self.failed_fetches = 0;
            vec![]
        }
    }

    fn schedule_fetch(&mut self) -> Vec<Effect> {
        if self.fetch_scheduled || !self.on_fallback() {
            return vec![];
        }
        self.fetch_scheduled = true;
        vec![Effect::FetchIn(self.config.backoff.delay(self.failed_fetches.max(1), 0.5))]
    }

    /// Fetches every widget that has a hole to fill and no fetch under way.
    fn heal(&mut self) -> Vec<Effect> {
        let widgets: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|(_, sub)| sub.needs_healing() && !sub.fetching)
            .map(|(widget, _)| widget.clone())
            .collect();
        widgets.iter().flat_map(|widget| self.fetch(widget)).collect()
    }

    fn poll_failed(&mut self, failure: PollFailure, random: f64) -> Vec<Effect> {
        match (failure.status, failure.code.as_deref()) {
            (Some(401), _) => self.signed_out(),
            (Some(403), Some("live_dashboards_off")) => {
                self.status = ConnectionStatus::LiveOff;
                vec![]
            }
            (Some(429), _) if matches!(self.status, ConnectionStatus::Polling { .. }) => {
                let wait = Duration::from_secs(u64::from(failure.retry_after.unwrap_or(1)));
                vec![Effect::PollIn(wait.max(self.poll_interval()))]
            }
            _ => self.attempt_failed(random),
        }
    }

    fn regular_poll(&mut self) -> Vec<Effect> {
        let Some(dashboard) = self.dashboard else { return vec![] };
        vec![Effect::Poll { dashboard, query: self.poll_query(), purpose: PollPurpose::Regular }]
    }

    /// On a fallback: the widget's snapshot when it waits for one, else the updates it missed since
    /// its position.
    fn fetch(&mut self, widget: &str) -> Vec<Effect> {
        let Some(dashboard) = self.dashboard else { return vec![] };
        let Some(sub) = self.subscriptions.get_mut(widget) else { return vec![] };
        if sub.snapshot_asked {
            sub.awaiting_snapshot = true; // asked during the outage that led to this fallback
        }
        let from = sub.position.as_ref().filter(|_| !sub.awaiting_snapshot);
        let widgets = vec![widget.to_owned()];
        let query = fallback::widget_query(&widgets, from.map(|p| (widget, p.resume_token.as_str())));
        sub.fetching = true;
        vec![Effect::Poll { dashboard, query, purpose: PollPurpose::Widgets(widgets) }]
    }

    fn stream_query(&self) -> Vec<(String, String)> {
        match &self.cursor {
            Some(cursor) => vec![("lastEventId".into(), cursor.clone())],
            None => fallback::positions_query(self.tokens()),
        }
    }

    fn poll_query(&self) -> Vec<(String, String)> {
        match &self.cursor {
            Some(cursor) => vec![("since".into(), cursor.clone())],
            None => fallback::positions_query(self.tokens()),
        }
    }

    /// Where each widget resumes from; one waiting for a snapshot is left out, so the server
    /// starts it with one.
    fn tokens(&self) -> impl Iterator<Item = (&str, &str)> {
        self.subscriptions
            .iter()
            .filter(|(_, sub)| !sub.wants_snapshot())
            .filter_map(|(widget, sub)| sub.position.as_ref().map(|p| (widget.as_str(), p.resume_token.as_str())))
    }

    fn poll_interval(&self) -> Duration {
        fallback::poll_interval(self.config.poll_every, self.subscriptions.values().filter_map(|s| s.interval_secs))
    }

    fn schedule_probe(&mut self) -> Vec<Effect> {
        if self.probe_scheduled {
            return vec![];
        }
        self.probe_scheduled = true;
        vec![Effect::ProbeIn(self.config.probe_backoff.delay(self.failed_probes + 1, 0.5))]
    }

    fn probe_failed(&mut self, random: f64) -> Vec<Effect> {
        self.probing = None;
        self.failed_probes += 1;
        if self.probe_scheduled || !self.on_fallback() {
            return vec![];
        }
        self.probe_scheduled = true;
        vec![Effect::ProbeIn(self.config.probe_backoff.delay(self.failed_probes + 1, random))]
    }

    fn on_dashboard(&mut self, dashboard: Option<i64>) -> Vec<Effect> {
        if dashboard == self.dashboard || dashboard.is_none() {
            self.dashboard = self.dashboard.or(dashboard);
            return vec![];
        }
        self.dashboard = dashboard;
        self.cursor = None;
        let connecting = self.status == ConnectionStatus::Connecting;
        match (self.status, self.transport) {
            // A stream of the old dashboard, open or still opening, must not serve the new one.
            (ConnectionStatus::LiveSse, _) | (ConnectionStatus::Connecting, Transport::Sse) => {
                let mut effects = vec![Effect::CloseStream];
                effects.extend(self.try_stream());
                effects
            }
            // The old dashboard's poll in flight is ignored when it answers (`Input::Polled`).
            (ConnectionStatus::Polling { .. }, _) => self.regular_poll(),
            (_, Transport::Polling) if connecting => self.regular_poll(),
            _ => vec![],
        }
    }

    /// The transport that said so has closed already; only a probe may still be open.
    fn signed_out(&mut self) -> Vec<Effect> {
        let mut effects = match self.probing.take() {
            Some(Transport::WebSocket) => vec![Effect::Close],
            Some(Transport::Sse) => vec![Effect::CloseStream],
            _ => vec![],
        };
        self.status = ConnectionStatus::SignedOut;
        effects.push(Effect::SignIn);
        effects
    }

    fn going_away(&mut self, random: f64) -> Vec<Effect> {
        // Prompt, but spread: thousands of clients must not return in the same millisecond.
        let delay = self.config.going_away_spread.mul_f64(random.clamp(0.0, 1.0));
        self.retry(1, delay)
    }

    /// Every transport of the attempt failed: wait out the backoff (or give up).
    fn attempt_failed(&mut self, random: f64) -> Vec<Effect> {
        self.failed_attempts += 1;
        if self.failed_attempts > self.config.max_attempts {
            self.status = ConnectionStatus::Offline;
            return vec![];
        }
        let delay = self.config.backoff.delay(self.failed_attempts, random);
        self.retry(self.failed_attempts, delay)
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
                let stale = !sub.awaiting_snapshot
                    && sub.position.as_ref().is_some_and(|p| p.epoch == meta.epoch && p.offset > meta.offset);
                if stale {
                    // A fallback's fetch answered after the stream had brought newer updates: what
                    // the widget shows already follows on from it.
                    return vec![];
                }
                sub.position = Some(Position::from(&meta));
                sub.awaiting_snapshot = false;
                sub.snapshot_asked = false;
                self.socket_delivered = true;
                let mut effects = deliver(widget_id.clone(), Delivery::Snapshot { series, meta });
                effects.extend(self.apply_ahead(&widget_id));
                effects
            }
            ServerMessage::Control(ControlMessage::Gap { widget_id, .. }) => {
                let Some(sub) = self.subscriptions.get_mut(&widget_id) else { return vec![] };
                sub.awaiting_snapshot = true;
                deliver(widget_id, Delivery::Gap)
            }
            ServerMessage::Control(ControlMessage::Error { code, message, widget_id: Some(widget_id) }) => {
                let Some(sub) = self.subscriptions.get_mut(&widget_id) else { return vec![] };
                if code == ErrorCode::RateLimited {
                    sub.snapshot_asked = false; // refused: no snapshot is coming, the view stays live
                }
                deliver(widget_id, Delivery::Error { code, message })
            }
            ServerMessage::Update(update) => self.on_update(update),
            ServerMessage::Control(_) => vec![],
        }
    }

    fn on_update(&mut self, update: Update) -> Vec<Effect> {
        let on_fallback = self.on_fallback();
        let widget = update.widget_id.clone();
        let Some(sub) = self.subscriptions.get_mut(&widget) else { return vec![] };
        if sub.awaiting_snapshot {
            if on_fallback {
                hold(sub, update); // what follows the snapshot being fetched
            }
            return vec![];
        }
        let next = sub.position.as_ref().filter(|p| p.epoch == update.meta.epoch).map(|p| p.offset + 1);
        match next {
            Some(next) if update.meta.offset < next => vec![], // a duplicate
            Some(next) if update.meta.offset == next => {
                sub.position = Some(Position::from(&update.meta));
                self.socket_delivered = true;
                let mut effects = vec![Effect::Deliver { widget: widget.clone(), delivery: delivery_of(update) }];
                effects.extend(self.apply_ahead(&widget));
                effects
            }
            // On a fallback the stream and the fetches overlap: an update ahead of the position
            // waits while what came before it is fetched.
            Some(_) if on_fallback => {
                hold(sub, update);
                if sub.fetching { vec![] } else { self.fetch(&widget) }
            }
            // A hole, another epoch, or an update before any snapshot: the server should have said
            // `gap`; heal it anyway with a fresh snapshot.
            _ => {
                sub.awaiting_snapshot = true;
                sub.position = None;
                let mut effects = vec![Effect::Deliver { widget: widget.clone(), delivery: Delivery::Gap }];
                if on_fallback {
                    hold(sub, update);
                    effects.extend(self.fetch(&widget));
                } else {
                    let resubscribe = subscribe(&widget, sub);
                    let unsubscribe = ClientMessage::Unsubscribe { widget_id: widget };
                    effects.extend([Effect::Send(unsubscribe), Effect::Send(resubscribe)]);
                }
                effects
            }
        }
    }

    /// Applies the held updates that now follow on from the widget's position; asks for what is
    /// still missing before the rest.
    fn apply_ahead(&mut self, widget: &str) -> Vec<Effect> {
        let Some(sub) = self.subscriptions.get_mut(widget) else { return vec![] };
        let mut effects = Vec::new();
        while let Some(position) = &sub.position
            && let Some(entry) = sub.ahead.first_entry()
        {
            let update = entry.get();
            if update.meta.epoch == position.epoch && update.meta.offset <= position.offset {
                entry.remove(); // brought by the snapshot or the fetch already
            } else if update.meta.epoch == position.epoch && update.meta.offset == position.offset + 1 {
                let update = entry.remove();
                sub.position = Some(Position::from(&update.meta));
                effects.push(Effect::Deliver { widget: widget.to_owned(), delivery: delivery_of(update) });
            } else {
                break;
            }
        }
        if sub.needs_healing() && !sub.fetching && self.on_fallback() {
            effects.extend(self.fetch(widget));
        }
        effects
    }
}

/// Keeps an out-of-order update on a fallback, within [`AHEAD_MAX`] (the newest go first: the
/// fetch under way brings them again).
fn hold(sub: &mut Subscription, update: Update) {
    sub.ahead.insert(update.meta.offset, update);
    if sub.ahead.len() > AHEAD_MAX {
        sub.ahead.pop_last();
    }
}

fn delivery_of(update: Update) -> Delivery {
    Delivery::Update { series: update.series, meta: update.meta, ts: update.ts }
}

/// Resumes from the subscription's position, unless it waits for a snapshot (a gap, a refresh):
/// then it asks afresh, which starts with one.
fn subscribe(widget: &str, sub: &Subscription) -> ClientMessage {
    ClientMessage::Subscribe {
        widget_id: widget.to_owned(),
        topic: sub.topic.clone(),
        resume_token: sub.position.as_ref().filter(|_| !sub.wants_snapshot()).map(|p| p.resume_token.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Point, Update};

    fn meta(epoch: &str, offset: u64) -> Meta {
        Meta::at(epoch, offset)
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
    fn a_lost_heartbeat_leaves_live_at_once_without_waiting_for_the_close_event() {
        // On a half-open path the browser fires `close` only after its own closing handshake
        // times out: until then nothing arrives, and the pill must not say Live.
        let mut s = live_with("w");
        s.handle(snapshot("w", "e", 1), 0.5);
        let effects = s.handle(Input::HeartbeatLost, 0.5);
        assert!(matches!(effects[..], [Effect::DropSocket, Effect::RetryIn(_)]), "{effects:?}");
        assert!(matches!(s.status(), ConnectionStatus::Reconnecting { attempt: 1, .. }));
        assert_eq!(s.handle(Input::RetryDue, 0.5), vec![Effect::Open]);
        assert!(s.handle(Input::HeartbeatLost, 0.5).is_empty(), "only a live socket has a heartbeat");
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

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// A session on dashboard 7 with `w` subscribed at `e.41`, whose WebSocket never opened.
    fn refused_websocket() -> (Session, Vec<Effect>) {
        let (mut s, _) = Session::start(SessionConfig::default());
        s.handle(Input::SetDashboard(Some(7)), 0.5);
        let position = Position { epoch: "e".into(), offset: 41, resume_token: "e.41".into() };
        s.handle(Input::Subscribe { widget: "w".into(), topic: "t".into(), position: Some(position) }, 0.5);
        let effects = s.handle(closed(ABNORMAL), 0.5);
        (s, effects)
    }

    fn answer(cursor: &str, messages: Vec<ServerMessage>) -> Result<PollAnswer, PollFailure> {
        let widgets = vec![crate::protocol::PollWidget { widget_id: "w".into(), messages }];
        Ok(PollAnswer { cursor: cursor.into(), widgets })
    }

    fn message(input: Input) -> ServerMessage {
        match input {
            Input::Received(message) => message,
            other => panic!("{other:?}"),
        }
    }

    fn failure(status: Option<u16>, code: Option<&str>) -> PollFailure {
        PollFailure { status, code: code.map(Into::into), retry_after: Some(12) }
    }

    #[test]
    fn a_refused_websocket_falls_back_to_sse_from_the_same_positions_and_climbs_back() {
        let (mut s, effects) = refused_websocket();
        assert_eq!(effects, vec![Effect::OpenStream { dashboard: 7, query: q(&[("positions", "w:e.41")]) }]);
        assert_eq!(s.status(), ConnectionStatus::Connecting, "still the same attempt");
        assert_eq!(s.handle(Input::StreamOpened, 0.5), vec![Effect::ProbeIn(Duration::from_secs(5))]);
        assert_eq!(s.status(), ConnectionStatus::LiveSse);
        assert_eq!(delivered_offsets(&s.handle(update("w", "e", 42), 0.5)), vec![42]);
        s.handle(Input::StreamCursor("c42".into()), 0.5);

        assert_eq!(s.handle(Input::ProbeDue, 0.5), vec![Effect::Open], "the WebSocket is tried in the background");
        assert_eq!(s.handle(closed(ABNORMAL), 0.5), vec![Effect::ProbeIn(Duration::from_secs(10))]);
        assert_eq!(s.status(), ConnectionStatus::LiveSse, "a failed probe changes nothing");
        assert_eq!(s.handle(Input::ProbeDue, 0.5), vec![Effect::Open]);
        let switched = s.handle(Input::Opened, 0.5);
        assert_eq!(
            switched,
            vec![
                Effect::CloseStream,
                Effect::Send(ClientMessage::Subscribe {
                    widget_id: "w".into(),
                    topic: "t".into(),
                    resume_token: Some("e.42".into())
                })
            ]
        );
        assert_eq!(s.status(), ConnectionStatus::Live);
        assert!(delivered_offsets(&s.handle(update("w", "e", 42), 0.5)).is_empty(), "a replayed duplicate");
        assert_eq!(delivered_offsets(&s.handle(update("w", "e", 43), 0.5)), vec![43]);
    }

    #[test]
    fn when_the_stream_fails_too_it_polls_from_the_same_positions_and_climbs_back_through_the_stream() {
        let (mut s, _) = refused_websocket();
        let poll = s.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
        let first = Effect::Poll { dashboard: 7, query: q(&[("positions", "w:e.41")]), purpose: PollPurpose::Regular };
        assert_eq!(poll, vec![first]);
        let polled = s.handle(
            Input::Polled {
                dashboard: 7,
                purpose: PollPurpose::Regular,
                answer: answer("c1", vec![message(update("w", "e", 42))]),
            },
            0.5,
        );
        assert_eq!(s.status(), ConnectionStatus::Polling { every_secs: 30 });
        assert!(polled.contains(&Effect::ProbeIn(Duration::from_secs(5))));
        assert!(polled.contains(&Effect::PollIn(Duration::from_secs(30))));
        assert_eq!(delivered_offsets(&polled), vec![42]);
        let next = Effect::Poll { dashboard: 7, query: q(&[("since", "c1")]), purpose: PollPurpose::Regular };
        assert_eq!(s.handle(Input::PollDue, 0.5), vec![next], "the server's cursor from then on");

        assert_eq!(s.handle(Input::ProbeDue, 0.5), vec![Effect::Open]);
        let stream = s.handle(closed(ABNORMAL), 0.5);
        assert_eq!(stream, vec![Effect::OpenStream { dashboard: 7, query: q(&[("lastEventId", "c1")]) }]);
        assert_eq!(s.handle(Input::StreamOpened, 0.5), vec![Effect::ProbeIn(Duration::from_secs(5))]);
        assert_eq!(s.status(), ConnectionStatus::LiveSse);
        let late = Input::Polled { dashboard: 7, purpose: PollPurpose::Regular, answer: answer("c2", vec![]) };
        assert!(s.handle(late, 0.5).is_empty(), "a poll of the transport it left is ignored");
        assert!(s.handle(Input::PollDue, 0.5).is_empty());
    }

    #[test]
    fn only_when_every_transport_fails_does_the_attempt_fail_and_the_next_starts_with_the_websocket() {
        let (mut s, _) = refused_websocket();
        s.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
        let failed = Input::Polled { dashboard: 7, purpose: PollPurpose::Regular, answer: Err(failure(None, None)) };
        assert_eq!(s.handle(failed, 0.5), vec![Effect::RetryIn(Duration::from_secs(1))]);
        assert_eq!(s.status(), ConnectionStatus::Reconnecting { attempt: 1, retry_in_secs: 1 });
        assert_eq!(s.handle(Input::RetryDue, 0.5), vec![Effect::Open]);
        assert_eq!(s.transport(), Transport::WebSocket);
    }

    #[test]
    fn a_websocket_that_drops_twice_before_delivering_anything_counts_as_blocked() {
        let (mut s, _) = Session::start(SessionConfig::default());
        s.handle(Input::SetDashboard(Some(7)), 0.5);
        s.handle(Input::Subscribe { widget: "w".into(), topic: "t".into(), position: None }, 0.5);
        s.handle(Input::Opened, 0.5);
        assert!(matches!(s.handle(closed(ABNORMAL), 0.5)[..], [Effect::RetryIn(_)]), "once may be bad luck");
        s.handle(Input::RetryDue, 0.5);
        s.handle(Input::Opened, 0.5);
        assert!(matches!(s.handle(closed(ABNORMAL), 0.5)[..], [Effect::OpenStream { dashboard: 7, .. }]));

        let mut healthy = live_with("w");
        healthy.handle(Input::SetDashboard(Some(7)), 0.5);
        healthy.handle(snapshot("w", "e", 1), 0.5);
        assert!(matches!(healthy.handle(closed(ABNORMAL), 0.5)[..], [Effect::RetryIn(_)]));
        healthy.handle(Input::RetryDue, 0.5);
        healthy.handle(Input::Opened, 0.5);
        healthy.handle(update("w", "e", 2), 0.5);
        assert!(matches!(healthy.handle(closed(ABNORMAL), 0.5)[..], [Effect::RetryIn(_)]), "it delivered");
    }

    #[test]
    fn on_a_fallback_subscriptions_refreshes_and_holes_fetch_their_widgets_and_reports_wait() {
        let (mut s, _) = refused_websocket();
        s.handle(Input::StreamOpened, 0.5);
        let new = s.handle(Input::Subscribe { widget: "x".into(), topic: "u".into(), position: None }, 0.5);
        assert_eq!(new, vec![fetch(&["x"], &[("widgets", "x")])]);
        assert!(delivered_offsets(&s.handle(update("x", "e", 5), 0.5)).is_empty(), "held until its snapshot");
        let got = Input::Polled {
            dashboard: 7,
            purpose: PollPurpose::Widgets(vec!["x".into()]),
            answer: answer("c", vec![]),
        };
        assert_eq!(s.handle(got, 0.5), vec![Effect::FetchIn(Duration::from_secs(1))], "no snapshot yet: later");
        assert_eq!(s.handle(Input::FetchDue, 0.5), vec![fetch(&["x"], &[("widgets", "x")])]);
        assert_eq!(s.handle(Input::Refresh { widget: "w".into() }, 0.5), vec![fetch(&["w"], &[("widgets", "w")])]);
        let report = Input::Report { action: ActivityAction::OpenDashboard, detail: "Ops".into() };
        assert!(s.handle(report, 0.5).is_empty(), "kept for the WebSocket");
        assert!(s.handle(Input::Unsubscribe { widget: "x".into() }, 0.5).is_empty());
    }

    fn fetch(widgets: &[&str], query: &[(&str, &str)]) -> Effect {
        Effect::Poll {
            dashboard: 7,
            query: q(query),
            purpose: PollPurpose::Widgets(widgets.iter().map(|w| (*w).to_owned()).collect()),
        }
    }

    fn fetched(widget: &str, messages: Vec<Input>) -> Input {
        let messages = messages.into_iter().map(message).collect();
        let widgets = vec![crate::protocol::PollWidget { widget_id: widget.into(), messages }];
        Input::Polled {
            dashboard: 7,
            purpose: PollPurpose::Widgets(vec![widget.into()]),
            answer: Ok(PollAnswer { cursor: "c".into(), widgets }),
        }
    }

    /// A session on SSE (dashboard 7) with `w` at `e.41`.
    fn on_sse() -> Session {
        let (mut s, _) = refused_websocket();
        s.handle(Input::StreamOpened, 0.5);
        s
    }

    #[test]
    fn a_refresh_asked_during_an_outage_is_made_when_the_socket_opens() {
        // Before: the refresh was dropped while Reconnecting and the socket resumed from the
        // token; a tab's widget that the hub had marked as waiting for a snapshot froze for good.
        let mut s = live_with("w");
        s.handle(snapshot("w", "e", 1), 0.5);
        s.handle(closed(ABNORMAL), 0.5);
        assert!(s.handle(Input::Refresh { widget: "w".into() }, 0.5).is_empty());
        s.handle(Input::RetryDue, 0.5);
        let fresh = ClientMessage::Subscribe { widget_id: "w".into(), topic: "t".into(), resume_token: None };
        assert_eq!(s.handle(Input::Opened, 0.5), vec![Effect::Send(fresh.clone())]);
        assert_eq!(delivered_offsets(&s.handle(snapshot("w", "e", 9), 0.5)), vec![9]);
        s.handle(closed(ABNORMAL), 0.5);
        s.handle(Input::RetryDue, 0.5);
        let resumed = s.handle(Input::Opened, 0.5);
        assert!(matches!(&resumed[..], [Effect::Send(ClientMessage::Subscribe { resume_token: Some(_), .. })]));
    }

    #[test]
    fn a_snapshot_lost_with_the_socket_is_asked_for_again_whether_a_gap_or_a_refresh_wanted_it() {
        let mut s = live_with("w");
        s.handle(snapshot("w", "e", 1), 0.5);
        let gap = Input::Received(ServerMessage::Control(ControlMessage::Gap {
            widget_id: "w".into(),
            reason: "lagged".into(),
        }));
        s.handle(gap, 0.5);
        s.handle(closed(ABNORMAL), 0.5);
        s.handle(Input::RetryDue, 0.5);
        let fresh =
            Effect::Send(ClientMessage::Subscribe { widget_id: "w".into(), topic: "t".into(), resume_token: None });
        assert_eq!(s.handle(Input::Opened, 0.5), vec![fresh.clone()], "resuming would replay updates it skips");

        let mut t = live_with("w");
        t.handle(snapshot("w", "e", 1), 0.5);
        let asked = t.handle(Input::Refresh { widget: "w".into() }, 0.5);
        assert_eq!(asked, vec![Effect::Send(ClientMessage::RequestUpdate { widget_id: "w".into() })]);
        assert_eq!(delivered_offsets(&t.handle(update("w", "e", 2), 0.5)), vec![2], "the view stays live meanwhile");
        t.handle(closed(ABNORMAL), 0.5);
        t.handle(Input::RetryDue, 0.5);
        assert_eq!(t.handle(Input::Opened, 0.5), vec![fresh]);
        // A refresh the server refuses (too many) asks for nothing more.
        let mut u = live_with("w");
        u.handle(snapshot("w", "e", 1), 0.5);
        u.handle(Input::Refresh { widget: "w".into() }, 0.5);
        let refused = ServerMessage::Control(ControlMessage::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            widget_id: Some("w".into()),
        });
        u.handle(Input::Received(refused), 0.5);
        u.handle(closed(ABNORMAL), 0.5);
        u.handle(Input::RetryDue, 0.5);
        assert!(matches!(
            &u.handle(Input::Opened, 0.5)[..],
            [Effect::Send(ClientMessage::Subscribe { resume_token: Some(_), .. })]
        ));
    }

    #[test]
    fn on_a_fallback_what_the_stream_brings_while_a_snapshot_is_fetched_follows_it() {
        // Before: those updates were dropped, and the next one looked like a hole: gap, fetch, gap.
        let mut s = on_sse();
        assert_eq!(s.handle(Input::Refresh { widget: "w".into() }, 0.5), vec![fetch(&["w"], &[("widgets", "w")])]);
        for offset in 42..=44 {
            assert!(s.handle(update("w", "e", offset), 0.5).is_empty());
        }
        let healed = s.handle(fetched("w", vec![snapshot("w", "e", 42)]), 0.5);
        assert_eq!(delivered_offsets(&healed), vec![42, 43, 44]);
        assert_eq!(delivered_offsets(&s.handle(update("w", "e", 45), 0.5)), vec![45]);
    }

    #[test]
    fn on_a_fallback_a_hole_fetches_the_missed_updates_and_the_held_ones_follow_them() {
        let mut s = on_sse();
        let hole = s.handle(update("w", "e", 45), 0.5);
        assert_eq!(hole, vec![fetch(&["w"], &[("widgets", "w"), ("positions", "w:e.41")])], "no gap: only a fetch");
        assert!(s.handle(update("w", "e", 46), 0.5).is_empty(), "one fetch at a time");
        let missed = (42..=44).map(|o| update("w", "e", o)).collect();
        assert_eq!(delivered_offsets(&s.handle(fetched("w", missed), 0.5)), vec![42, 43, 44, 45, 46]);
        // A snapshot the fetch brought late, older than what the stream applied since, is dropped.
        assert!(delivered_offsets(&s.handle(snapshot("w", "e", 45), 0.5)).is_empty());
        assert_eq!(delivered_offsets(&s.handle(update("w", "e", 47), 0.5)), vec![47]);
    }

    #[test]
    fn on_a_fallback_what_is_held_is_bounded_and_a_failed_fetch_is_tried_again() {
        let mut s = on_sse();
        s.handle(Input::Refresh { widget: "w".into() }, 0.5);
        for offset in 100..100 + 2 * AHEAD_MAX as u64 {
            s.handle(update("w", "e", offset), 0.5);
        }
        assert_eq!(s.subscriptions()["w"].ahead.len(), AHEAD_MAX);
        let failed = Input::Polled {
            dashboard: 7,
            purpose: PollPurpose::Widgets(vec!["w".into()]),
            answer: Err(failure(None, None)),
        };
        assert_eq!(s.handle(failed.clone(), 0.5), vec![Effect::FetchIn(Duration::from_secs(1))]);
        assert_eq!(s.handle(Input::FetchDue, 0.5), vec![fetch(&["w"], &[("widgets", "w")])]);
        assert_eq!(s.handle(failed, 0.5), vec![Effect::FetchIn(Duration::from_secs(2))], "spaced out");
        let healed = s.handle(fetched("w", vec![snapshot("w", "e", 99)]), 0.5);
        assert_eq!(delivered_offsets(&healed).len(), 1 + AHEAD_MAX);
    }

    #[test]
    fn a_dashboard_switch_while_the_stream_opens_opens_the_new_dashboards_stream() {
        let (mut s, effects) = refused_websocket();
        assert!(matches!(effects[..], [Effect::OpenStream { dashboard: 7, .. }]));
        let moved = s.handle(Input::SetDashboard(Some(8)), 0.5);
        assert_eq!(
            moved,
            vec![Effect::CloseStream, Effect::OpenStream { dashboard: 8, query: q(&[("positions", "w:e.41")]) }]
        );
        // A poll of the old dashboard that answers late is not taken for the new one.
        let (mut p, _) = refused_websocket();
        p.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
        p.handle(Input::SetDashboard(Some(8)), 0.5);
        let late = Input::Polled { dashboard: 7, purpose: PollPurpose::Regular, answer: answer("c1", vec![]) };
        assert!(p.handle(late, 0.5).is_empty());
        assert_eq!(p.status(), ConnectionStatus::Connecting);
    }

    #[test]
    fn a_hub_hears_when_the_websocket_does_not_get_through() {
        let config = SessionConfig { report_refusals: true, ..SessionConfig::default() };
        let (mut s, _) = Session::start(config);
        s.handle(Input::Opened, 0.5);
        s.handle(snapshot("w", "e", 1), 0.5);
        assert!(matches!(s.handle(closed(ABNORMAL), 0.5)[..], [Effect::RetryIn(_)]), "a drop of a live socket");
        s.handle(Input::RetryDue, 0.5);
        assert!(matches!(s.handle(closed(ABNORMAL), 0.5)[..], [Effect::RetryIn(_), Effect::WebSocketRefused]));
    }

    #[test]
    fn polling_follows_widget_intervals_and_the_answers_status() {
        let (mut s, _) = refused_websocket();
        s.handle(Input::SetInterval { widget: "w".into(), secs: Some(5) }, 0.5);
        s.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
        let polled =
            s.handle(Input::Polled { dashboard: 7, purpose: PollPurpose::Regular, answer: answer("c1", vec![]) }, 0.5);
        assert!(polled.contains(&Effect::PollIn(Duration::from_secs(5))));
        assert_eq!(s.status(), ConnectionStatus::Polling { every_secs: 5 });
        let limited = Input::Polled {
            dashboard: 7,
            purpose: PollPurpose::Regular,
            answer: Err(failure(Some(429), Some("limit_exceeded"))),
        };
        assert_eq!(s.handle(limited, 0.5), vec![Effect::PollIn(Duration::from_secs(12))], "waits as told");
        let off = Input::Polled {
            dashboard: 7,
            purpose: PollPurpose::Regular,
            answer: Err(failure(Some(403), Some("live_dashboards_off"))),
        };
        assert!(s.handle(off, 0.5).is_empty());
        assert_eq!(s.status(), ConnectionStatus::LiveOff);

        let (mut t, _) = refused_websocket();
        t.handle(Input::StreamClosed { code: ABNORMAL }, 0.5);
        let signed_out =
            Input::Polled { dashboard: 7, purpose: PollPurpose::Regular, answer: Err(failure(Some(401), None)) };
        assert_eq!(t.handle(signed_out, 0.5), vec![Effect::SignIn]);
    }

    #[test]
    fn the_streams_close_event_means_what_the_websockets_close_code_means() {
        let (mut s, _) = refused_websocket();
        s.handle(Input::StreamOpened, 0.5);
        let [Effect::RetryIn(delay)] = s.handle(Input::StreamClosed { code: GOING_AWAY }, 0.3)[..] else { panic!() };
        assert!(delay <= Duration::from_secs(1));
        assert_eq!(s.handle(Input::RetryDue, 0.5), vec![Effect::Open]);
        s.handle(closed(ABNORMAL), 0.5);
        s.handle(Input::StreamOpened, 0.5);
        assert_eq!(s.handle(Input::StreamClosed { code: SESSION_ENDED }, 0.5), vec![Effect::SignIn]);
        assert_eq!(s.status(), ConnectionStatus::SignedOut);
    }

    #[test]
    fn another_dashboard_on_a_fallback_reopens_the_stream_and_pausing_closes_it() {
        let (mut s, _) = refused_websocket();
        s.handle(Input::StreamOpened, 0.5);
        s.handle(Input::StreamCursor("c7".into()), 0.5);
        let moved = s.handle(Input::SetDashboard(Some(8)), 0.5);
        assert_eq!(
            moved,
            vec![Effect::CloseStream, Effect::OpenStream { dashboard: 8, query: q(&[("positions", "w:e.41")]) }],
            "the old dashboard's cursor means nothing here"
        );
        s.handle(Input::StreamOpened, 0.5);
        assert_eq!(s.handle(Input::SetLive(false), 0.5), vec![Effect::CloseStream]);
        assert_eq!(s.status(), ConnectionStatus::Paused);
        assert!(s.handle(Input::StreamClosed { code: ABNORMAL }, 0.5).is_empty(), "its own close");
        assert_eq!(s.handle(Input::SetLive(true), 0.5), vec![Effect::Open], "the WebSocket first again");
    }
}
