//! The browser's WebSocket to `/api/ws`: connect, route messages to widgets, reconnect with backoff.
//!
//! Browser callbacks run on one thread, so shared state is `Rc<RefCell<_>>`. Callbacks hold a `Weak`
//! to it, and every borrow ends before a widget's handler runs, because a handler may call back into
//! the client (to resync, say).

use super::{backoff::Backoff, status::ConnectionStatus};
use crate::protocol::{ClientMessage, ControlMessage, ServerMessage};
use leptos::prelude::*;
use std::{
    cell::RefCell,
    collections::BTreeMap,
    rc::{Rc, Weak},
    time::Duration,
};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

/// Receives every message addressed to one widget.
pub type Handler = Rc<dyn Fn(&ServerMessage)>;

/// Close code the server sends when it shuts down; clients come back soon, not after backoff.
const GOING_AWAY: u16 = 1001;

struct Subscription {
    topic: String,
    handler: Handler,
}

/// JS callbacks of the current socket; dropping a `Closure` would detach it.
struct Callbacks {
    _open: Closure<dyn FnMut(Event)>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

struct State {
    url: String,
    socket: Option<WebSocket>,
    callbacks: Option<Callbacks>,
    heartbeat: Option<IntervalHandle>,
    subscriptions: BTreeMap<String, Subscription>,
    failed_attempts: u32,
    backoff: Backoff,
    status: RwSignal<ConnectionStatus>,
}

#[derive(Clone)]
pub(super) struct LiveClient(Rc<RefCell<State>>);

impl LiveClient {
    pub(super) fn connect(status: RwSignal<ConnectionStatus>) -> Self {
        let client = Self(Rc::new(RefCell::new(State {
            url: socket_url(),
            socket: None,
            callbacks: None,
            heartbeat: None,
            subscriptions: BTreeMap::new(),
            failed_attempts: 0,
            backoff: Backoff::default(),
            status,
        })));
        open(&client.0);
        client
    }

    pub(super) fn subscribe(&self, widget_id: &str, topic: &str, handler: Handler) {
        let mut state = self.0.borrow_mut();
        let subscription = Subscription { topic: topic.to_owned(), handler };
        state.subscriptions.insert(widget_id.to_owned(), subscription);
        state.send(&subscribe_message(widget_id, topic));
    }

    pub(super) fn unsubscribe(&self, widget_id: &str) {
        let mut state = self.0.borrow_mut();
        if state.subscriptions.remove(widget_id).is_some() {
            state.send(&ClientMessage::Unsubscribe { widget_id: widget_id.to_owned() });
        }
    }

    pub(super) fn resync(&self, widget_id: &str) {
        let state = self.0.borrow();
        if let Some(sub) = state.subscriptions.get(widget_id) {
            state.send(&ClientMessage::Unsubscribe { widget_id: widget_id.to_owned() });
            state.send(&subscribe_message(widget_id, &sub.topic));
        }
    }
}

impl State {
    fn send(&self, message: &ClientMessage) {
        if let Some(socket) = self.socket.as_ref().filter(|s| s.ready_state() == WebSocket::OPEN) {
            // A failed send surfaces as a close event, which reconnects; nothing to do here.
            let _ = socket.send_with_str(&message.to_json());
        }
    }
}

fn subscribe_message(widget_id: &str, topic: &str) -> ClientMessage {
    ClientMessage::Subscribe { widget_id: widget_id.to_owned(), topic: topic.to_owned(), resume_token: None }
}

fn socket_url() -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_default();
    format!("{scheme}://{host}/api/ws")
}

fn open(state_rc: &Rc<RefCell<State>>) {
    let url = state_rc.borrow().url.clone();
    let socket = match WebSocket::new(&url) {
        Ok(socket) => socket,
        Err(_) => return schedule_reconnect(state_rc, None),
    };
    let weak = Rc::downgrade(state_rc);

    let on_open = Closure::<dyn FnMut(Event)>::new({
        let weak = weak.clone();
        move |_| {
            if let Some(rc) = weak.upgrade() {
                on_open(&rc);
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
            on_close(&rc, event.code());
        }
    });
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));

    let mut state = state_rc.borrow_mut();
    state.socket = Some(socket);
    state.callbacks = Some(Callbacks { _open: on_open, _message: on_message, _close: on_close });
}

fn on_open(rc: &Rc<RefCell<State>>) {
    let mut state = rc.borrow_mut();
    state.failed_attempts = 0;
    state.status.set(ConnectionStatus::Live);
    for (widget_id, sub) in &state.subscriptions {
        state.send(&subscribe_message(widget_id, &sub.topic));
    }
}

fn on_message(rc: &Rc<RefCell<State>>, text: &str) {
    let Ok(message) = serde_json::from_str::<ServerMessage>(text) else {
        leptos::logging::warn!("livedash: ignoring an undecodable server message");
        return;
    };
    let widget_id = match &message {
        ServerMessage::Update(update) => Some(update.widget_id.as_str()),
        ServerMessage::Control(ControlMessage::Snapshot { widget_id, .. })
        | ServerMessage::Control(ControlMessage::Gap { widget_id, .. }) => Some(widget_id.as_str()),
        ServerMessage::Control(ControlMessage::Error { widget_id, code, message: text }) => {
            leptos::logging::warn!("livedash: server error {code:?}: {text}");
            widget_id.as_deref()
        }
        ServerMessage::Control(ControlMessage::Welcome { heartbeat_interval_ms, .. }) => {
            start_heartbeat(rc, Duration::from_millis(*heartbeat_interval_ms));
            None
        }
        ServerMessage::Control(ControlMessage::Pong { .. }) => None,
    };
    let handler = widget_id.and_then(|id| rc.borrow().subscriptions.get(id).map(|s| s.handler.clone()));
    if let Some(handler) = handler {
        handler(&message);
    }
}

fn start_heartbeat(rc: &Rc<RefCell<State>>, every: Duration) {
    let weak = Rc::downgrade(rc);
    let handle = set_interval_with_handle(
        move || {
            if let Some(rc) = weak.upgrade() {
                rc.borrow().send(&ClientMessage::Ping);
            }
        },
        every,
    )
    .ok();
    if let Some(old) = std::mem::replace(&mut rc.borrow_mut().heartbeat, handle) {
        old.clear();
    }
}

fn on_close(rc: &Rc<RefCell<State>>, code: u16) {
    {
        let mut state = rc.borrow_mut();
        state.socket = None;
        state.callbacks = None;
        if let Some(heartbeat) = state.heartbeat.take() {
            heartbeat.clear();
        }
    }
    // A server that is going away asks for a prompt return, spread over a second.
    let prompt = (code == GOING_AWAY).then(|| Duration::from_secs_f64(js_sys::Math::random()));
    schedule_reconnect(rc, prompt);
}

fn schedule_reconnect(rc: &Rc<RefCell<State>>, delay: Option<Duration>) {
    let (attempt, delay) = {
        let mut state = rc.borrow_mut();
        state.failed_attempts += 1;
        let attempt = state.failed_attempts;
        let delay = delay.unwrap_or_else(|| state.backoff.delay(attempt, js_sys::Math::random()));
        (attempt, delay)
    };
    count_down(Rc::downgrade(rc), attempt, delay);
}

/// Shows the remaining wait in whole seconds, then reconnects.
fn count_down(weak: Weak<RefCell<State>>, attempt: u32, remaining: Duration) {
    let Some(rc) = weak.upgrade() else { return };
    let retry_in_secs = remaining.as_secs_f64().ceil() as u32;
    rc.borrow().status.set(ConnectionStatus::Reconnecting { attempt, retry_in_secs });
    if remaining.is_zero() {
        return open(&rc);
    }
    let step = remaining.min(Duration::from_secs(1));
    set_timeout(move || count_down(weak, attempt, remaining - step), step);
}
