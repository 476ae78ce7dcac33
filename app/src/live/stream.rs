//! The SSE transport in the browser: an `EventSource` on a dashboard's stream whose events feed
//! the session (hydrate only). Like the WebSocket's driver, it decides nothing.
//!
//! The `EventSource` would reconnect by itself after an error, every second and for ever; the
//! session reconnects with backoff and the right transport instead, so on any error the source is
//! closed and the session told. A stream that goes silent for longer than its heartbeat interval
//! plus [`SILENCE_SLACK`] counts as dropped too: on a half-open path no error ever comes, and the pill must
//! not say Live (SSE) while nothing can arrive. The server says the interval in the `heartbeat` event
//! it opens the stream with.

use leptos::prelude::*;
use protocol::SILENCE_SLACK;
use protocol::close::{ABNORMAL, Disconnect};
use protocol::sse::{self, Heartbeat};
use std::{cell::Cell, rc::Rc, time::Duration};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{Event, EventSource, MessageEvent};

/// How often the watchdog looks: a silence is noticed up to this much after [`SILENCE_SLACK`]
/// has passed, so the watchdog allows that much less.
const TICK: Duration = Duration::from_secs(1);
/// How long the stream may take to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the stream tells whoever opened it (the driver): it decides nothing itself.
pub enum Heard {
    /// A data event's message, as the WebSocket would carry it.
    Message(String),
    /// The cursor after that message (its `id:`).
    Cursor(String),
    Opened,
    /// The stream is over, with the close code it ended with (the server's, or 1006): whoever
    /// opened it drops it.
    Ended(u16),
}

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
    pub fn open(url: &str, heard: Rc<dyn Fn(Heard)>) -> Option<Self> {
        let source = crate::http::event_source(url)?;
        let last_heard = Rc::new(Cell::new(js_sys::Date::now()));
        let opened = Rc::new(Cell::new(false));
        let silence_ms = Rc::new(Cell::new(silence_limit(sse::DEFAULT_HEARTBEAT)));

        let data = Closure::<dyn FnMut(MessageEvent)>::new({
            let (heard, last_heard) = (heard.clone(), last_heard.clone());
            move |event: MessageEvent| {
                last_heard.set(js_sys::Date::now());
                let Some(text) = event.data().as_string() else { return };
                heard(Heard::Message(text));
                let cursor = event.last_event_id();
                if !cursor.is_empty() {
                    heard(Heard::Cursor(cursor));
                }
            }
        });
        let control = Closure::<dyn FnMut(MessageEvent)>::new({
            let (heard, last_heard, silence_ms) = (heard.clone(), last_heard.clone(), silence_ms.clone());
            move |event: MessageEvent| {
                last_heard.set(js_sys::Date::now());
                let text = event.data().as_string().unwrap_or_default();
                if event.type_() != sse::event::CLOSE {
                    // A heartbeat: being heard is what it says, and how often it comes.
                    if let Ok(beat) = serde_json::from_str::<Heartbeat>(&text) {
                        silence_ms.set(silence_limit(Duration::from_millis(beat.every_ms)));
                    }
                    return;
                }
                let code = serde_json::from_str::<Disconnect>(&text).map_or(ABNORMAL, |d| d.code);
                heard(Heard::Ended(code));
            }
        });
        let open = Closure::<dyn FnMut(Event)>::new({
            let (heard, last_heard, opened) = (heard.clone(), last_heard.clone(), opened.clone());
            move |_| {
                last_heard.set(js_sys::Date::now());
                opened.set(true);
                heard(Heard::Opened);
            }
        });
        let error = Closure::<dyn FnMut(Event)>::new({
            let heard = heard.clone();
            move |_| heard(Heard::Ended(ABNORMAL))
        });
        for name in sse::DATA_EVENTS {
            let _ = source.add_event_listener_with_callback(name, data.as_ref().unchecked_ref());
        }
        for name in sse::CONTROL_EVENTS {
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
                    heard(Heard::Ended(ABNORMAL));
                }
            },
            TICK,
        )
        .ok();
        Some(Self { source, _data: data, _control: control, _open: open, _error: error, watchdog })
    }
}

/// How long the stream may stay silent, in milliseconds, when heartbeats come `every`.
fn silence_limit(every: Duration) -> f64 {
    (every + SILENCE_SLACK - TICK).as_millis() as f64
}
