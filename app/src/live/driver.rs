//! The browser driver of the live session: it performs the [`LiveSession`]'s effects with a real
//! WebSocket, SSE stream (`stream.rs`), `fetch` polls and timers, and feeds back what happens. No
//! decisions are made here.
//!
//! Browser callbacks run on one thread, so the state is `Rc<RefCell<_>>`. Callbacks hold a `Weak`
//! to it, and every borrow ends before a widget's handler runs or an effect is performed, because
//! either may feed the session again.

use super::session::{
    Delivery, Effect, Input, LiveSession, LiveSessionConfig, ModeCheck, PollFailure, PollPurpose, WidgetPosition,
};
use super::status::ConnectionStatus;
use super::stream::{EventStream, Heard};
use leptos::prelude::*;
use protocol::close::ABNORMAL;
use protocol::{ClientMessage, ControlMessage, ErrorBody, LiveMode, PollAnswer, ServerMessage};
use std::{
    cell::RefCell,
    collections::BTreeMap,
    rc::{Rc, Weak},
    time::Duration,
};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

/// Receives everything addressed to one widget.
pub type Handler = Rc<dyn Fn(&Delivery)>;

/// What the connection tells whoever runs it besides its widgets' data (the hub of shared tabs
/// passes the status on to them, and hands each tab a connection of its own when told).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Notice {
    Status(ConnectionStatus),
    WebSocketRefused,
    /// The tenant polls, an administrator's choice, and this connection cannot (see
    /// [`Effect::PollingChosen`]).
    PollingChosen,
}

pub type NoticeHook = Rc<dyn Fn(Notice)>;

/// How long the answer to a ping may take (any message counts) before the path counts as dead.
const PONG_TIMEOUT: Duration = protocol::SILENCE_SLACK;
/// How long a WebSocket may take to open: an upgrade a middlebox holds open counts as refused.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pings go out this often from the moment the socket opens; the server's `welcome` then says how
/// often it wants them. (A path that dies before the welcome must not stay Live.)
const FIRST_HEARTBEAT: Duration = protocol::DEFAULT_HEARTBEAT_INTERVAL;
/// How long a poll may take, answer body included: one that hangs counts as failed.
pub(super) const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// JS callbacks of the current socket; dropping a `Closure` would detach it.
struct Callbacks {
    _open: Closure<dyn FnMut(Event)>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

pub(super) struct Driver {
    session: LiveSession,
    status: RwSignal<ConnectionStatus>,
    last_update: RwSignal<Option<f64>>,
    next_probe: RwSignal<Option<f64>>,
    on_notice: Option<NoticeHook>,
    socket: Option<WebSocket>,
    callbacks: Option<Callbacks>,
    heartbeat: Option<IntervalHandle>,
    pong_deadline: Option<TimeoutHandle>,
    handlers: BTreeMap<String, Handler>,
    /// Counts scheduled retries, so a countdown left over from an earlier one stops by itself.
    retry_generation: u64,
    open_deadline: Option<TimeoutHandle>,
    stream: Option<EventStream>,
    poll_timer: Option<TimeoutHandle>,
    probe_timer: Option<TimeoutHandle>,
    fetch_timer: Option<TimeoutHandle>,
    mode_timer: Option<TimeoutHandle>,
    /// Set when the page closes the client: answers of polls in flight are dropped.
    closed: bool,
}

#[derive(Clone)]
pub(super) struct LiveClient(Rc<RefCell<Driver>>);

impl LiveClient {
    pub(super) fn connect(
        config: LiveSessionConfig,
        status: RwSignal<ConnectionStatus>,
        last_update: RwSignal<Option<f64>>,
        next_probe: RwSignal<Option<f64>>,
        on_notice: Option<NoticeHook>,
    ) -> Self {
        let (session, effects) = LiveSession::start(config);
        let driver = Driver {
            session,
            status,
            last_update,
            next_probe,
            on_notice,
            socket: None,
            callbacks: None,
            heartbeat: None,
            pong_deadline: None,
            handlers: BTreeMap::new(),
            retry_generation: 0,
            open_deadline: None,
            stream: None,
            poll_timer: None,
            probe_timer: None,
            fetch_timer: None,
            mode_timer: None,
            closed: false,
        };
        let client = Self(Rc::new(RefCell::new(driver)));
        perform(&client.0, effects);
        client
    }

    pub(super) fn subscribe(&self, widget: &str, topic: &str, position: Option<WidgetPosition>, handler: Handler) {
        self.0.borrow_mut().handlers.insert(widget.to_owned(), handler);
        dispatch(&self.0, Input::Subscribe { widget: widget.to_owned(), topic: topic.to_owned(), position });
    }

    /// Where each subscription stands now (to save on page unload).
    pub(super) fn positions(&self) -> BTreeMap<String, (String, Option<WidgetPosition>)> {
        let driver = self.0.borrow();
        driver
            .session
            .subscriptions()
            .iter()
            .map(|(widget, sub)| (widget.clone(), (sub.topic.clone(), sub.position.clone())))
            .collect()
    }

    pub(super) fn unsubscribe(&self, widget: &str) {
        self.0.borrow_mut().handlers.remove(widget);
        dispatch(&self.0, Input::Unsubscribe { widget: widget.to_owned() });
    }

    pub(super) fn input(&self, input: Input) {
        dispatch(&self.0, input);
    }

    /// Closes the socket for good: no handler runs, no retry or heartbeat fires after this.
    pub(super) fn close(&self) {
        let mut driver = self.0.borrow_mut();
        driver.closed = true;
        driver.stop_heartbeat();
        driver.retry_generation += 1; // stops a countdown in flight
        driver.handlers.clear();
        driver.drop_socket();
        driver.stream = None;
        let timers = [driver.poll_timer.take(), driver.probe_timer.take(), driver.fetch_timer.take()];
        for timer in timers.into_iter().chain([driver.mode_timer.take()]).flatten() {
            timer.clear();
        }
    }
}

/// Feeds the session and performs what it decides.
pub(super) fn dispatch(rc: &Rc<RefCell<Driver>>, input: Input) {
    let effects = {
        let mut driver = rc.borrow_mut();
        if driver.closed {
            return;
        }
        let effects = driver.session.handle(input, js_sys::Math::random());
        let status = driver.session.status();
        driver.show(status);
        effects
    };
    perform(rc, effects);
}

fn perform(rc: &Rc<RefCell<Driver>>, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Open => open(rc),
            Effect::Close => {
                if let Some(socket) = &rc.borrow().socket {
                    let _ = socket.close();
                }
            }
            Effect::DropSocket => {
                let mut driver = rc.borrow_mut();
                driver.stop_heartbeat();
                driver.drop_socket();
            }
            Effect::OpenStream { dashboard, query } => {
                let url = format!("/api/stream/dashboard/{dashboard}{}", query_string(&query));
                let stream = EventStream::open(&url, stream_listener(Rc::downgrade(rc)));
                // Replacing the old one (if any) closes it without a word to the session.
                rc.borrow_mut().stream = stream;
                if rc.borrow().stream.is_none() {
                    dispatch(rc, Input::StreamClosed { code: ABNORMAL });
                }
            }
            Effect::CloseStream => rc.borrow_mut().stream = None,
            Effect::Poll { dashboard, query, purpose } => {
                let url = format!("/api/v1/dashboards/{dashboard}/updates{}", query_string(&query));
                poll(Rc::downgrade(rc), url, dashboard, purpose);
            }
            Effect::PollIn(delay) => feed_after(rc, Timer::Poll, delay, Input::PollDue),
            Effect::FetchIn(delay) => feed_after(rc, Timer::Fetch, delay, Input::FetchDue),
            Effect::ProbeIn(delay) => {
                rc.borrow().next_probe.set(Some(js_sys::Date::now() + delay.as_millis() as f64));
                feed_after(rc, Timer::Probe, delay, Input::ProbeDue);
            }
            Effect::Send(message) => rc.borrow().send(&message),
            Effect::Deliver { widget, delivery } => {
                if matches!(delivery, Delivery::Snapshot { .. } | Delivery::Update { .. }) {
                    rc.borrow().last_update.set(Some(js_sys::Date::now()));
                }
                let handler = rc.borrow().handlers.get(&widget).cloned();
                if let Some(handler) = handler {
                    handler(&delivery);
                }
            }
            Effect::RetryIn(delay) => {
                let generation = {
                    let mut driver = rc.borrow_mut();
                    driver.retry_generation += 1;
                    driver.retry_generation
                };
                count_down(Rc::downgrade(rc), generation, delay)
            }
            Effect::SignIn => {
                super::forget_saved_session();
                match super::page_kind::get() {
                    super::page_kind::PageKind::Person => crate::http::go_to(crate::routes::LOGIN_PATH),
                    // A display's session ends only when it is revoked: its page says so.
                    super::page_kind::PageKind::Display => {
                        if let Ok(event) = web_sys::CustomEvent::new(super::page_kind::SESSION_ENDED_EVENT) {
                            let _ = window().dispatch_event(&event);
                        }
                    }
                }
            }
            Effect::WebSocketRefused => tell(rc, Notice::WebSocketRefused),
            Effect::PollingChosen => tell(rc, Notice::PollingChosen),
            Effect::CheckModeIn(delay) => feed_after(rc, Timer::Mode, delay, Input::ModeCheckDue),
            Effect::CheckMode => check_mode(Rc::downgrade(rc)),
        }
    }
}

impl Driver {
    /// Most inputs are messages that leave the status as it is: only a change re-renders.
    fn show(&self, status: ConnectionStatus) {
        if self.status.get_untracked() != status {
            self.status.set(status);
            if let Some(hook) = &self.on_notice {
                hook(Notice::Status(status));
            }
        }
    }

    fn send(&self, message: &ClientMessage) {
        if let Some(socket) = self.socket.as_ref().filter(|s| s.ready_state() == WebSocket::OPEN) {
            // A failed send surfaces as a close event, which the session handles.
            let _ = socket.send_with_str(&message.to_json());
        }
    }

    pub(super) fn take_stream(&mut self) -> Option<EventStream> {
        self.stream.take()
    }

    /// Forgets the socket without a word to the session (it has moved on, or the page closed).
    fn drop_socket(&mut self) {
        self.callbacks = None;
        if let Some(deadline) = self.open_deadline.take() {
            deadline.clear();
        }
        if let Some(socket) = self.socket.take() {
            socket.set_onopen(None);
            socket.set_onmessage(None);
            socket.set_onclose(None);
            let _ = socket.close();
        }
    }

    fn stop_heartbeat(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.clear();
        }
        if let Some(deadline) = self.pong_deadline.take() {
            deadline.clear();
        }
    }
}

fn open(rc: &Rc<RefCell<Driver>>) {
    rc.borrow_mut().drop_socket();
    let socket = match WebSocket::new(&crate::http::socket_url("/api/ws")) {
        Ok(socket) => socket,
        Err(_) => return dispatch(rc, Input::Closed { code: 1006, reason: "could not open a socket".into() }),
    };
    let weak = Rc::downgrade(rc);
    let on_open = Closure::<dyn FnMut(Event)>::new({
        let weak = weak.clone();
        move |_| {
            if let Some(rc) = weak.upgrade() {
                if let Some(deadline) = rc.borrow_mut().open_deadline.take() {
                    deadline.clear();
                }
                start_heartbeat(&rc, FIRST_HEARTBEAT);
                dispatch(&rc, Input::Opened);
            }
        }
    });
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
        let weak = weak.clone();
        move |event: MessageEvent| {
            if let (Some(rc), Some(text)) = (weak.upgrade(), event.data().as_string()) {
                on_message(&rc, &text);
            }
        }
    });
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
        if let Some(rc) = weak.upgrade() {
            {
                let mut driver = rc.borrow_mut();
                driver.socket = None;
                driver.callbacks = None;
                driver.stop_heartbeat();
                if let Some(deadline) = driver.open_deadline.take() {
                    deadline.clear();
                }
            }
            dispatch(&rc, Input::Closed { code: event.code(), reason: event.reason() });
        }
    });
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    // An upgrade that hangs counts as refused: closing a connecting socket fires its close event.
    let deadline = set_timeout_with_handle(
        {
            let socket = socket.clone();
            move || {
                if socket.ready_state() == WebSocket::CONNECTING {
                    let _ = socket.close();
                }
            }
        },
        OPEN_TIMEOUT,
    )
    .ok();
    let mut driver = rc.borrow_mut();
    driver.socket = Some(socket);
    driver.callbacks = Some(Callbacks { _open: on_open, _message: on_message, _close: on_close });
    driver.open_deadline = deadline;
}

/// `?a=1&b=2`, encoded; empty for no parameters.
fn query_string(query: &[(String, String)]) -> String {
    let Ok(params) = web_sys::UrlSearchParams::new() else { return String::new() };
    for (name, value) in query {
        params.append(name, value);
    }
    let text: String = params.to_string().into();
    if text.is_empty() { text } else { format!("?{text}") }
}

/// Performs one poll and feeds its answer back (a poll that takes longer than [`POLL_TIMEOUT`]
/// fails).
fn poll(weak: Weak<RefCell<Driver>>, url: String, dashboard: i64, purpose: PollPurpose) {
    leptos::task::spawn_local(async move {
        let answer = match crate::http::fetch_within("GET", &url, None, POLL_TIMEOUT).await {
            Ok(reply) if reply.status == 200 => serde_json::from_str::<PollAnswer>(&reply.text)
                .map_err(|_| PollFailure { status: Some(200), code: None, retry_after: None }),
            Ok(reply) => Err(PollFailure {
                status: Some(reply.status),
                code: serde_json::from_str::<ErrorBody>(&reply.text).ok().map(|body| body.error),
                retry_after: reply.retry_after,
            }),
            Err(_) => Err(PollFailure { status: None, code: None, retry_after: None }),
        };
        if let Some(rc) = weak.upgrade() {
            dispatch(&rc, Input::Polled { dashboard, purpose, answer });
        }
    });
}

/// Tells whoever runs the connection (the hub of shared tabs) what it asked to hear.
fn tell(rc: &Rc<RefCell<Driver>>, notice: Notice) {
    let hook = rc.borrow().on_notice.clone();
    if let Some(hook) = hook {
        hook(notice);
    }
}

/// Asks the tenant's live mode (`/api/auth/me` says it) and feeds the answer back.
fn check_mode(weak: Weak<RefCell<Driver>>) {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Me {
        live_mode: LiveMode,
    }
    leptos::task::spawn_local(async move {
        let check = match crate::http::fetch_within("GET", "/api/auth/me", None, POLL_TIMEOUT).await {
            Ok(reply) if reply.status == 200 => {
                serde_json::from_str::<Me>(&reply.text).map_or(ModeCheck::Unknown, |me| ModeCheck::Mode(me.live_mode))
            }
            Ok(reply) if reply.status == 401 => ModeCheck::SignedOut,
            _ => ModeCheck::Unknown,
        };
        if let Some(rc) = weak.upgrade() {
            dispatch(&rc, Input::ModeIs(check));
        }
    });
}

pub(super) fn on_message(rc: &Rc<RefCell<Driver>>, text: &str) {
    // Whatever arrives proves the path works: the answer to a ping is overdue no more.
    if let Some(deadline) = rc.borrow_mut().pong_deadline.take() {
        deadline.clear();
    }
    let Ok(message) = serde_json::from_str::<ServerMessage>(text) else {
        leptos::logging::warn!("livedash: ignoring an undecodable server message");
        return;
    };
    match &message {
        ServerMessage::Control(ControlMessage::Welcome { heartbeat_interval_ms, .. }) => {
            start_heartbeat(rc, Duration::from_millis(*heartbeat_interval_ms));
        }
        ServerMessage::Control(ControlMessage::Error { widget_id: None, code, message }) => {
            leptos::logging::warn!("livedash: server error {code:?}: {message}");
        }
        _ => {}
    }
    dispatch(rc, Input::Received(message));
}

/// The driver's one-shot timers, each of which feeds the session an input when it fires.
#[derive(Clone, Copy)]
enum Timer {
    Poll,
    Probe,
    Fetch,
    /// A ping's answer is overdue.
    Pong,
    /// The tenant's live mode is due to be asked again (while live updates are off).
    Mode,
}

impl Driver {
    fn timer(&mut self, timer: Timer) -> &mut Option<TimeoutHandle> {
        match timer {
            Timer::Poll => &mut self.poll_timer,
            Timer::Probe => &mut self.probe_timer,
            Timer::Fetch => &mut self.fetch_timer,
            Timer::Pong => &mut self.pong_deadline,
            Timer::Mode => &mut self.mode_timer,
        }
    }
}

/// Feeds `input` after `delay`, replacing the pending timer of the same kind.
fn feed_after(rc: &Rc<RefCell<Driver>>, timer: Timer, delay: Duration, input: Input) {
    let weak = Rc::downgrade(rc);
    let handle = set_timeout_with_handle(
        move || {
            if let Some(rc) = weak.upgrade() {
                *rc.borrow_mut().timer(timer) = None;
                if matches!(timer, Timer::Probe) {
                    rc.borrow().next_probe.set(None);
                }
                dispatch(&rc, input);
            }
        },
        delay,
    )
    .ok();
    if let Some(old) = std::mem::replace(rc.borrow_mut().timer(timer), handle) {
        old.clear();
    }
}

/// Pings every `every`; nothing heard for [`PONG_TIMEOUT`] after a ping means the path is dead.
/// The deadline is that of the oldest unanswered ping: a later ping never postpones it (with
/// pings every 10 s or less it would otherwise never fire).
fn start_heartbeat(rc: &Rc<RefCell<Driver>>, every: Duration) {
    let weak = Rc::downgrade(rc);
    let handle = set_interval_with_handle(
        move || {
            let Some(rc) = weak.upgrade() else { return };
            rc.borrow().send(&ClientMessage::Ping);
            if rc.borrow().pong_deadline.is_none() {
                feed_after(&rc, Timer::Pong, PONG_TIMEOUT, Input::HeartbeatLost);
            }
        },
        every,
    )
    .ok();
    let mut driver = rc.borrow_mut();
    driver.stop_heartbeat();
    driver.heartbeat = handle;
}

/// Shows the remaining wait in whole seconds on the pill, then tells the session the retry is due.
fn count_down(weak: Weak<RefCell<Driver>>, generation: u64, remaining: Duration) {
    let Some(rc) = weak.upgrade() else { return };
    {
        let driver = rc.borrow();
        let ConnectionStatus::Reconnecting { attempt, cause, .. } = driver.session.status() else { return };
        if driver.retry_generation != generation {
            return; // a newer retry is scheduled
        }
        if !remaining.is_zero() {
            let retry_in_secs = remaining.as_secs_f64().ceil() as u32;
            driver.show(ConnectionStatus::Reconnecting { attempt, retry_in_secs, cause });
        }
    }
    if remaining.is_zero() {
        return dispatch(&rc, Input::RetryDue);
    }
    let step = remaining.min(Duration::from_secs(1));
    set_timeout(move || count_down(weak, generation, remaining - step), step);
}

/// What the SSE stream hears, fed to the session: messages as the WebSocket's, the cursor, its
/// opening, and its end (the stream is then dropped from the driver).
fn stream_listener(weak: Weak<RefCell<Driver>>) -> Rc<dyn Fn(Heard)> {
    Rc::new(move |heard| {
        let Some(rc) = weak.upgrade() else { return };
        match heard {
            Heard::Message(text) => on_message(&rc, &text),
            Heard::Cursor(cursor) => dispatch(&rc, Input::StreamCursor(cursor)),
            Heard::Opened => dispatch(&rc, Input::StreamOpened),
            Heard::Ended(code) => {
                let stream = rc.borrow_mut().take_stream();
                if stream.is_some() {
                    drop(stream);
                    dispatch(&rc, Input::StreamClosed { code });
                }
            }
        }
    })
}
