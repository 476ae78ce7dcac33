//! The browser half of the live client, in a real browser: headless Chromium driven by
//! `wasm-bindgen-test-runner`, against a real livedash server that `scripts/browser-tests` starts on
//! the port after the test page's own, letting the page's origin in (CORS, WebSocket origin).
//!
//! They test what the host tests of `session` and `relay` cannot: the driver's sockets and timers,
//! the SSE stream's `EventSource`, and the session, relay and hub working together over Web Locks
//! and a BroadcastChannel. Two [`Connection`]s in one page are two tabs to the browser: each has its
//! own channel object and its own lock requests.

use super::{
    driver::{Handler, LiveClient},
    session::{Delivery, Input, LiveSessionConfig},
    shared::Connection,
    status::ConnectionStatus,
};
use leptos::prelude::*;
use std::{cell::RefCell, rc::Rc, time::Duration};
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// The demo tenant's orders chart: the demo feed adds a point every second.
const TOPIC: &str = "sales/orders";
const USER: &str = "acme/ops@acme.test";
const PATIENCE: Duration = Duration::from_secs(20);

/// Signs in to the server beside the test page (once per page; the cookie stays).
async fn sign_in() {
    let location = window().location();
    let port: u16 = location.port().expect("a port").parse().expect("a number");
    let server = format!("{}//{}:{}", location.protocol().unwrap(), location.hostname().unwrap(), port + 1);
    crate::http::use_server(&server);
    let body = r#"{"email":"ops@acme.test","password":"livedash-demo"}"#;
    let (status, text) = crate::http::call("POST", "/api/auth/login", Some(body)).await.expect("the server answers");
    assert_eq!(status, 200, "{text}");
}

async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms).expect("a timer");
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.expect("a timer fires");
}

/// Waits until `done` holds (checked every 50 ms); fails naming `what` after `limit`.
async fn until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = js_sys::Date::now();
    while !done() {
        assert!(js_sys::Date::now() - start < limit.as_millis() as f64, "gave up waiting for {what}");
        sleep(50).await;
    }
}

/// Every delivery a widget received, in order.
#[derive(Clone, Default)]
struct Seen(Rc<RefCell<Vec<Delivery>>>);

impl Seen {
    fn handler(&self) -> Handler {
        let seen = self.0.clone();
        Rc::new(move |delivery: &Delivery| seen.borrow_mut().push(delivery.clone()))
    }

    fn len(&self) -> usize {
        self.0.borrow().len()
    }

    fn updates_since(&self, from: usize) -> usize {
        self.0.borrow()[from.min(self.len())..].iter().filter(|d| matches!(d, Delivery::Update { .. })).count()
    }

    fn snapshots_since(&self, from: usize) -> usize {
        self.0.borrow()[from.min(self.len())..].iter().filter(|d| matches!(d, Delivery::Snapshot { .. })).count()
    }

    /// Every update follows on from what came before it (the snapshot or the previous update):
    /// nothing applied twice, no hole left unannounced.
    fn assert_in_order(&self) {
        let mut at: Option<(String, u64)> = None;
        for delivery in self.0.borrow().iter() {
            match delivery {
                Delivery::Snapshot { meta, .. } => at = Some((meta.epoch.clone(), meta.offset)),
                Delivery::Update { meta, .. } => {
                    let (epoch, offset) = at.clone().expect("a snapshot comes first");
                    assert_eq!((meta.epoch.as_str(), meta.offset), (epoch.as_str(), offset + 1), "out of order");
                    at = Some((epoch, meta.offset));
                }
                Delivery::Gap => at = None,
                Delivery::Error { message, .. } => panic!("the server refused: {message}"),
            }
        }
    }
}

fn signals() -> (RwSignal<ConnectionStatus>, RwSignal<Option<f64>>, RwSignal<Option<f64>>) {
    (RwSignal::new(ConnectionStatus::Connecting), RwSignal::new(None), RwSignal::new(None))
}

#[wasm_bindgen_test]
async fn the_driver_delivers_in_order_and_a_refresh_asked_while_paused_is_made_when_live_again() {
    sign_in().await;
    let (status, last_update, next_probe) = signals();
    let client = LiveClient::connect(LiveSessionConfig::default(), status, last_update, next_probe, None);
    let seen = Seen::default();
    client.subscribe("w", TOPIC, None, seen.handler());
    until("Live", PATIENCE, || status.get_untracked() == ConnectionStatus::Live).await;
    until("a snapshot and two updates", PATIENCE, || seen.updates_since(0) >= 2).await;
    assert!(last_update.get_untracked().is_some(), "the header's \"updated\" time moves");

    client.input(Input::SetLive(false));
    until("Paused", PATIENCE, || status.get_untracked() == ConnectionStatus::Paused).await;
    client.input(Input::Refresh { widget: "w".into() });
    let resumed = seen.len();
    client.input(Input::SetLive(true));
    until("the snapshot the refresh asked for", PATIENCE, || seen.snapshots_since(resumed) >= 1).await;
    until("updates after it", PATIENCE, || seen.updates_since(resumed) >= 2).await;
    seen.assert_in_order();
    client.close();
}

/// Replaces `window.WebSocket` with a constructor that throws (a browser or network where the
/// WebSocket cannot be used) until the returned guard is dropped.
struct NoWebSocket(JsValue);

impl NoWebSocket {
    fn install() -> Self {
        let original = js_sys::Reflect::get(&window(), &"WebSocket".into()).expect("WebSocket exists");
        let refusing = Closure::<dyn Fn() -> Result<JsValue, JsValue>>::new(|| Err(JsValue::from_str("refused")));
        js_sys::Reflect::set(&window(), &"WebSocket".into(), refusing.as_ref().unchecked_ref()).unwrap();
        refusing.forget();
        Self(original)
    }
}

impl Drop for NoWebSocket {
    fn drop(&mut self) {
        let _ = js_sys::Reflect::set(&window(), &"WebSocket".into(), &self.0);
    }
}

/// The tenant's first dashboard (the demo makes one with the orders chart as widget `w1`).
async fn first_dashboard() -> (i64, String) {
    let (status, body) = crate::http::call("GET", "/api/dashboards", None).await.expect("the server answers");
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = list[0]["id"].as_i64().expect("a dashboard");
    let (_, body) = crate::http::call("GET", &format!("/api/dashboards/{id}"), None).await.unwrap();
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    let widgets = view["widgets"].as_array().expect("widgets");
    let orders = widgets.iter().find(|w| w["topic"] == TOPIC).expect("an orders widget");
    (id, format!("w{}", orders["id"]))
}

#[wasm_bindgen_test]
async fn without_a_websocket_the_stream_serves_the_dashboard_and_the_socket_takes_over_when_it_works() {
    sign_in().await;
    let (dashboard, widget) = first_dashboard().await;
    let (status, last_update, next_probe) = signals();
    let blocked = NoWebSocket::install();
    let client = LiveClient::connect(LiveSessionConfig::default(), status, last_update, next_probe, None);
    client.input(Input::SetDashboard(Some(dashboard)));
    let seen = Seen::default();
    client.subscribe(&widget, TOPIC, None, seen.handler());
    until("Live (SSE)", PATIENCE, || status.get_untracked() == ConnectionStatus::LiveSse).await;
    until("updates over the stream", PATIENCE, || seen.updates_since(0) >= 2).await;
    assert!(next_probe.get_untracked().is_some(), "the pill says when the WebSocket is tried again");

    drop(blocked);
    let switched = seen.len();
    until("the WebSocket's probe takes over", Duration::from_secs(30), || {
        status.get_untracked() == ConnectionStatus::Live
    })
    .await;
    until("updates over the socket", PATIENCE, || seen.updates_since(switched) >= 2).await;
    seen.assert_in_order();
    client.close();
}

/// One tab of the user: its connection and what its one widget received.
struct Tab {
    connection: Connection,
    status: RwSignal<ConnectionStatus>,
    seen: Seen,
}

fn open_tab() -> Tab {
    let (status, last_update, next_probe) = signals();
    let connection = Connection::new(status, last_update, next_probe);
    connection.start(Some(USER.to_owned()));
    let seen = Seen::default();
    connection.subscribe("w", TOPIC, None, seen.handler());
    Tab { connection, status, seen }
}

#[wasm_bindgen_test]
async fn two_tabs_share_the_leaders_connection_and_a_handover_repeats_and_loses_nothing() {
    sign_in().await;
    let a = open_tab();
    until("tab a Live", PATIENCE, || a.status.get_untracked() == ConnectionStatus::Live).await;
    let b = open_tab();
    until("tab b Live", PATIENCE, || b.status.get_untracked() == ConnectionStatus::Live).await;
    until("both tabs receive", PATIENCE, || a.seen.updates_since(0) >= 2 && b.seen.updates_since(0) >= 2).await;

    // The leader goes: its lock passes to b, whose new hub resumes every widget from where it stood.
    a.connection.close();
    let handed = b.seen.len();
    until("tab b goes on receiving", PATIENCE, || b.seen.updates_since(handed) >= 3).await;
    assert_eq!(b.status.get_untracked(), ConnectionStatus::Live);
    assert_eq!(b.seen.snapshots_since(handed), 0, "resumed, not started over");
    b.seen.assert_in_order();
    a.seen.assert_in_order();

    // A tab switched off and on again while the others stay live catches up without a hole.
    let c = open_tab();
    until("tab c receives", PATIENCE, || c.seen.updates_since(0) >= 1).await;
    c.connection.input(Input::SetLive(false));
    let before = c.seen.len();
    until("tab b receives while c is off", PATIENCE, || b.seen.updates_since(handed) >= 5).await;
    c.connection.input(Input::SetLive(true));
    until("tab c catches up", PATIENCE, || c.seen.updates_since(before) >= 2).await;
    c.seen.assert_in_order();
    b.connection.close();
    c.connection.close();
}
