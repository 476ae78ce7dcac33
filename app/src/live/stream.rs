//! The SSE transport in the browser: an `EventSource` on a dashboard's stream whose events feed
//! the session (hydrate only). Like the WebSocket's driver, it decides nothing.
//!
//! The `EventSource` would reconnect by itself after an error, every second and for ever; the
//! session reconnects with backoff and the right transport instead, so on any error the source is
//! closed and the session told. A stream that goes silent for longer than its heartbeat interval
//! plus [`SLACK`] counts as dropped too: on a half-open path no error ever comes, and the pill must
//! not say Live (SSE) while nothing can arrive. The server says the interval in the `heartbeat` event
//! it opens the stream with.

use super::driver::{Driver, dispatch, on_message};
use super::session::{ABNORMAL, Input};
use leptos::prelude::*;
use std::{
    cell::{Cell, RefCell},
    rc::{Rc, Weak},
    time::Duration,
};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{Event, EventSource, MessageEvent};

/// The stream's data events (docs/protocol.md).
const DATA_EVENTS: [&str; 6] =
    ["snapshot", "series_update", "metric_update", "events_update", "collection_update", "gap"];
/// How late a heartbeat may be before the stream counts as dropped (the watchdog's tick adds up to
/// one more second: heartbeat + 10 s in all).
const SLACK: Duration = Duration::from_secs(9);
/// The server's heartbeat interval until it says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
/// How long the stream may take to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// An open (or opening) stream; dropping it closes the source and stops its timers.
pub struct EventStream {
    source: EventSource,
    _data: Closure<dyn FnMut(MessageEvent)>,
    _control: Closure<dyn FnMut(MessageEvent)>,
    _open: Closure<dyn FnMut(Event)>,
    _error: Closure<dyn FnMut(Event)>,
    watchdog: Option<IntervalHandle>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.source.set_onopen(None);
        self.source.set_onerror(None);
        self.source.close();
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.clear();
        }
    }
}

impl EventStream {
    /// Opens `url`; `None` when the browser refuses to (the caller reports it as a failure).
    pub fn open(weak: Weak<RefCell<Driver>>, url: &str) -> Option<Self> {
        let source = crate::http::event_source(url)?;
        let last_heard = Rc::new(Cell::new(js_sys::Date::now()));
        let opened = Rc::new(Cell::new(false));
        let silence_ms = Rc::new(Cell::new((DEFAULT_HEARTBEAT + SLACK).as_millis() as f64));

        let data = Closure::<dyn FnMut(MessageEvent)>::new({
            let (weak, last_heard) = (weak.clone(), last_heard.clone());
            move |event: MessageEvent| {
                last_heard.set(js_sys::Date::now());
                let (Some(rc), Some(text)) = (weak.upgrade(), event.data().as_string()) else { return };
                on_message(&rc, &text);
                let cursor = event.last_event_id();
                if !cursor.is_empty() {
                    dispatch(&rc, Input::StreamCursor(cursor));
                }
            }
        });
        let control = Closure::<dyn FnMut(MessageEvent)>::new({
            let (weak, last_heard, silence_ms) = (weak.clone(), last_heard.clone(), silence_ms.clone());
            move |event: MessageEvent| {
                last_heard.set(js_sys::Date::now());
                let data =
                    event.data().as_string().and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
                let data = data.unwrap_or_default();
                if event.type_() != "close" {
                    // A heartbeat: being heard is what it says, and how often it comes.
                    if let Some(every) = data["everyMs"].as_f64() {
                        silence_ms.set(every + SLACK.as_millis() as f64);
                    }
                    return;
                }
                let code = data["code"].as_u64().map_or(ABNORMAL, |code| code as u16);
                ended(&weak, code);
            }
        });
        let open = Closure::<dyn FnMut(Event)>::new({
            let (weak, last_heard, opened) = (weak.clone(), last_heard.clone(), opened.clone());
            move |_| {
                last_heard.set(js_sys::Date::now());
                opened.set(true);
                if let Some(rc) = weak.upgrade() {
                    dispatch(&rc, Input::StreamOpened);
                }
            }
        });
        let error = Closure::<dyn FnMut(Event)>::new({
            let weak = weak.clone();
            move |_| ended(&weak, ABNORMAL)
        });
        for name in DATA_EVENTS {
            let _ = source.add_event_listener_with_callback(name, data.as_ref().unchecked_ref());
        }
        for name in ["heartbeat", "close"] {
            let _ = source.add_event_listener_with_callback(name, control.as_ref().unchecked_ref());
        }
        source.set_onopen(Some(open.as_ref().unchecked_ref()));
        source.set_onerror(Some(error.as_ref().unchecked_ref()));

        let opened_at = js_sys::Date::now();
        let watchdog = set_interval_with_handle(
            move || {
                let now = js_sys::Date::now();
                let silent = now - last_heard.get() > silence_ms.get();
                let stuck = !opened.get() && now - opened_at > OPEN_TIMEOUT.as_millis() as f64;
                if silent || stuck {
                    ended(&weak, ABNORMAL);
                }
            },
            Duration::from_secs(1),
        )
        .ok();
        Some(Self { source, _data: data, _control: control, _open: open, _error: error, watchdog })
    }
}

/// The stream is over: close it (dropping it from the driver) and tell the session how it ended.
fn ended(weak: &Weak<RefCell<Driver>>, code: u16) {
    let Some(rc) = weak.upgrade() else { return };
    let stream = rc.borrow_mut().take_stream();
    if stream.is_some() {
        drop(stream);
        dispatch(&rc, Input::StreamClosed { code });
    }
}
