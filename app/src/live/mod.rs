//! The live-client library: what a Leptos component uses to receive a topic.
//!
//! Widgets call [`use_topic`] and draw its signals. Underneath, one [`Live`] connection per page
//! runs the pure session state machine (`session`) through the browser driver (`driver`, with
//! `stream` for SSE) — in one tab for all tabs of the user where the browser allows (`shared`, with
//! the pure fan-out rules in `relay` and the vote without Web Locks in `election`). The pure
//! parts — session, mode gate, saved session and every [`TopicView`] (the backoff is the
//! `protocol` crate's) — compile everywhere
//! and are tested on the host; the browser parts exist only in the hydrate build. On the server the
//! same components render their initial HTML with the status `Connecting`.

pub mod connection_events;
pub mod documents;
pub mod election;
pub mod fallback;
pub mod feed;
pub mod job_board;
pub mod job_detail;
pub mod kpi_values;
pub mod mode_gate;
pub mod notifications;
pub mod page_kind;
pub mod relay;
pub mod saved_session;
pub mod series_buffer;
pub mod session;
pub mod status;
pub mod tab_id;
pub mod tab_locks;
pub mod topic_view;

#[cfg(all(test, feature = "hydrate", target_arch = "wasm32"))]
mod browser_tests;
#[cfg(feature = "hydrate")]
mod driver;
#[cfg(feature = "hydrate")]
mod shared;
#[cfg(feature = "hydrate")]
mod stream;

pub use connection_events::ConnectionEvent;
pub use feed::{TopicFeed, use_topic};
pub use session::WidgetPosition;
pub use topic_view::TopicView;

use leptos::prelude::*;
use protocol::ActivityAction;
use serde::Deserialize;
use status::ConnectionStatus;

/// The signed-in user, as `/api/auth/me` tells.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Account {
    pub email: String,
    pub tenant: String,
    pub role: String,
}

impl Account {
    /// What a saved session is keyed by.
    pub fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.email)
    }
}

/// Who the page belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Still asking the server.
    Pending,
    Known(Account),
    /// The server could not say (then nothing saved is restored).
    Unknown,
}

/// One live connection per page, shared by every widget on it (found through Leptos context).
#[derive(Clone, Copy)]
pub struct Live {
    pub status: RwSignal<ConnectionStatus>,
    /// When data last arrived (ms since the Unix epoch), for "updated 3 s ago".
    pub last_update: RwSignal<Option<f64>>,
    /// On a fallback transport: when the next try of a faster one is due (ms since the Unix epoch).
    pub next_probe: RwSignal<Option<f64>>,
    pub identity: RwSignal<Identity>,
    #[cfg(feature = "hydrate")]
    page: StoredValue<std::rc::Rc<browser::Page>, LocalStorage>,
    #[cfg(feature = "hydrate")]
    listeners: StoredValue<Vec<ConnectionListener>, LocalStorage>,
}

/// What [`Live::on_connection_event`] calls.
pub type ConnectionListener = std::rc::Rc<dyn Fn(&ConnectionEvent)>;

impl Live {
    /// Creates the page's connection (opening the socket in the browser) and provides it as context;
    /// closes it when the providing component unmounts.
    pub fn provide() -> Self {
        let status = RwSignal::new(ConnectionStatus::Connecting);
        let last_update = RwSignal::new(None);
        let next_probe = RwSignal::new(None);
        let identity = RwSignal::new(Identity::Pending);
        #[cfg(feature = "hydrate")]
        let page = browser::Page::open(status, last_update, next_probe, identity);
        #[cfg(feature = "hydrate")]
        {
            let page = send_wrapper::SendWrapper::new(page.clone());
            on_cleanup(move || page.take().close());
        }
        let live = Self {
            status,
            last_update,
            next_probe,
            identity,
            #[cfg(feature = "hydrate")]
            page: StoredValue::new_local(page),
            #[cfg(feature = "hydrate")]
            listeners: StoredValue::new_local(Vec::new()),
        };
        #[cfg(feature = "hydrate")]
        browser::raise_connection_events(status, live.listeners);
        provide_context(live);
        live
    }

    /// Calls `listener` with each of the page's connection events from now on
    /// ([`connection_events`]): `established`, `lost {reason}`, `restored {downtime}`, once each
    /// per outage. The same events are dispatched on `window` as `CustomEvent`s named
    /// `connection:established`, `connection:lost` (`detail: {reason}`) and `connection:restored`
    /// (`detail: {downtimeMs}`), for scripts outside the app.
    pub fn on_connection_event(&self, listener: impl Fn(&ConnectionEvent) + 'static) {
        #[cfg(feature = "hydrate")]
        self.listeners.update_value(|listeners| listeners.push(std::rc::Rc::new(listener)));
        #[cfg(not(feature = "hydrate"))]
        let _ = listener;
    }

    /// The page's connection; panics outside a component tree that called [`Live::provide`].
    pub fn expect() -> Self {
        expect_context()
    }

    /// Manual refresh of every widget on the page, whatever its mode.
    pub fn refresh_all(&self) {
        #[cfg(feature = "hydrate")]
        self.page.try_with_value(|p| p.refresh_all());
    }

    /// The global live switch: off closes the connection (Paused), on reconnects.
    pub fn set_live(&self, on: bool) {
        #[cfg(feature = "hydrate")]
        self.page.try_with_value(|p| p.client.input(session::Input::SetLive(on)));
        #[cfg(not(feature = "hydrate"))]
        let _ = on;
    }

    /// The Retry button, when Offline or waiting to reconnect.
    pub fn retry(&self) {
        #[cfg(feature = "hydrate")]
        self.page.try_with_value(|p| p.client.input(session::Input::RetryNow));
    }

    /// The page now shows this stored dashboard: the fallback transports serve its feeds.
    pub fn show_dashboard(&self, id: i64) {
        #[cfg(feature = "hydrate")]
        self.page.try_with_value(|p| p.client.input(session::Input::SetDashboard(Some(id))));
        #[cfg(not(feature = "hydrate"))]
        let _ = id;
    }

    /// Tells the server what the user is doing (for the tenant's active-users view).
    pub fn report(&self, action: ActivityAction, detail: String) {
        #[cfg(feature = "hydrate")]
        self.page.try_with_value(|p| p.client.input(session::Input::Report { action, detail }));
        #[cfg(not(feature = "hydrate"))]
        let _ = (action, detail);
    }
}

/// Forgets what this tab saved for the next page (on sign-in and sign-out: another user must never
/// see it).
pub fn forget_saved_session() {
    #[cfg(feature = "hydrate")]
    browser::forget_saved();
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::{
        Account, Identity, Live, WidgetPosition,
        driver::Handler,
        feed::FeedControl,
        saved_session::{STORAGE_KEY, SavedSession, SavedWidget},
        session::Input,
        shared::Connection,
        status::ConnectionStatus,
    };
    use leptos::prelude::*;
    use std::{cell::RefCell, collections::BTreeMap, rc::Rc};
    use wasm_bindgen::{JsCast, closure::Closure};

    type Listener = Closure<dyn FnMut(web_sys::Event)>;

    /// Turns the statuses the pill shows into connection events, for the listeners and `window`.
    pub fn raise_connection_events(
        status: RwSignal<ConnectionStatus>,
        listeners: StoredValue<Vec<super::ConnectionListener>, LocalStorage>,
    ) {
        let tracker = StoredValue::new_local(super::connection_events::ConnectionEvents::default());
        Effect::new(move |_| {
            let now = status.get();
            let mut raised = None;
            tracker.update_value(|t| raised = t.observe(now, js_sys::Date::now()));
            let Some(event) = raised else { return };
            if let super::ConnectionEvent::Restored { downtime_ms } = &event {
                report_recovery(*downtime_ms);
            }
            dispatch(&event);
            for listener in listeners.try_with_value(Clone::clone).unwrap_or_default() {
                listener(&event);
            }
        });
    }

    /// Tells the server how long this page was without data (`POST /api/me/recovery`), for its
    /// recovery-time histogram. Best effort: a report that does not arrive costs one sample.
    fn report_recovery(downtime_ms: u64) {
        let report = protocol::dashboard::RecoveryReport { downtime_ms };
        leptos::task::spawn_local(async move {
            if let Err(e) = crate::http::send_json("POST", "/api/me/recovery", Some(&report)).await {
                leptos::logging::warn!("could not report the connection's recovery: {e}");
            }
        });
    }

    /// The event as a `CustomEvent` on `window`.
    fn dispatch(event: &super::ConnectionEvent) {
        let detail = js_sys::Object::new();
        let set = |key: &str, value: wasm_bindgen::JsValue| js_sys::Reflect::set(&detail, &key.into(), &value);
        let _ = match event {
            super::ConnectionEvent::Established => Ok(true),
            super::ConnectionEvent::Lost { reason } => set("reason", reason.into()),
            super::ConnectionEvent::Restored { downtime_ms } => set("downtimeMs", (*downtime_ms as f64).into()),
        };
        let init = web_sys::CustomEventInit::new();
        init.set_detail(&detail);
        if let Ok(custom) = web_sys::CustomEvent::new_with_event_init_dict(event.name(), &init) {
            let _ = window().dispatch_event(&custom);
        }
    }

    /// The page's connection, its widgets' feeds, and what the previous page saved.
    pub struct Page {
        pub client: Connection,
        identity: RwSignal<Identity>,
        feeds: RefCell<BTreeMap<String, Rc<dyn FeedControl>>>,
        saved: RefCell<SavedSession>,
        /// `pagehide` and `pageshow`, removed when the page closes.
        listeners: Vec<(&'static str, Listener)>,
    }

    fn storage() -> Option<web_sys::Storage> {
        window().session_storage().ok().flatten()
    }

    pub fn forget_saved() {
        if let Some(storage) = storage() {
            let _ = storage.remove_item(STORAGE_KEY);
        }
    }

    impl Page {
        pub fn open(
            status: RwSignal<ConnectionStatus>,
            last_update: RwSignal<Option<f64>>,
            next_probe: RwSignal<Option<f64>>,
            identity: RwSignal<Identity>,
        ) -> Rc<Self> {
            let client = Connection::new(status, last_update, next_probe);
            let starting = client.clone();
            leptos::task::spawn_local(async move {
                #[derive(serde::Deserialize)]
                struct Me {
                    user: Account,
                }
                // Bounded like a poll: on a path that swallows the request the tab would otherwise
                // wait for its user, and say Connecting, for as long as the browser keeps it open.
                // Unanswered, the tab connects on its own (its cookie is enough).
                let known = match crate::http::fetch_within("GET", "/api/auth/me", None, super::driver::POLL_TIMEOUT)
                    .await
                {
                    Ok(reply) if reply.status == 200 => serde_json::from_str::<Me>(&reply.text).ok().map(|me| me.user),
                    _ => None,
                };
                // What the previous page saved is read (below) and now forgotten: a later page saves
                // afresh. Not before: a reload before this answer must find it still there.
                forget_saved();
                // The user's tabs share one connection (keyed by who they are).
                starting.start(known.as_ref().map(Account::key));
                identity.try_set(known.map_or(Identity::Unknown, Identity::Known));
            });
            let saved = storage()
                .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
                .map(|json| SavedSession::parse(&json))
                .unwrap_or_default();
            Rc::new_cyclic(|weak: &std::rc::Weak<Page>| {
                let on_pagehide = Listener::new({
                    let weak = weak.clone();
                    move |_| {
                        if let Some(page) = weak.upgrade() {
                            page.save();
                            page.client.page_hidden();
                        }
                    }
                });
                // Back from the back-forward cache after the tab left its shared connection: a
                // fresh page joins again, restoring what the hidden one saved.
                let on_pageshow = Listener::new({
                    let weak = weak.clone();
                    move |event: web_sys::Event| {
                        let persisted = js_sys::Reflect::get(&event, &"persisted".into()).is_ok_and(|p| p.is_truthy());
                        if persisted && weak.upgrade().is_some_and(|page| page.client.left_on_hide()) {
                            let _ = window().location().reload();
                        }
                    }
                });
                let listeners: Vec<_> = [("pagehide", on_pagehide), ("pageshow", on_pageshow)]
                    .into_iter()
                    .filter(|(name, listener)| {
                        window().add_event_listener_with_callback(name, listener.as_ref().unchecked_ref()).is_ok()
                    })
                    .collect();
                Page { client, identity, feeds: RefCell::default(), saved: RefCell::new(saved), listeners }
            })
        }

        pub fn refresh_all(&self) {
            let feeds: Vec<_> = self.feeds.borrow().values().cloned().collect();
            for feed in feeds {
                feed.refresh();
            }
        }

        /// Closes the connection and stops listening (the live part of the page went away).
        pub fn close(&self) {
            self.client.close();
            for (name, listener) in &self.listeners {
                let _ = window().remove_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            }
        }

        /// Every widget's topic, position and view, for the next page in this tab, under the
        /// signed-in user's name (nothing is saved while it is not known).
        fn save(&self) {
            let Some(Identity::Known(account)) = self.identity.try_get_untracked() else { return };
            let positions = self.client.positions();
            let mut saved = SavedSession { user: account.key(), ..SavedSession::default() };
            for (widget, feed) in self.feeds.borrow().iter() {
                let Some(view) = feed.saved_view() else { continue };
                let position =
                    positions.get(widget).filter(|(topic, _)| topic == feed.topic()).and_then(|(_, p)| p.clone());
                saved.widgets.insert(widget.clone(), SavedWidget { topic: feed.topic().to_owned(), position, view });
            }
            if let Some(storage) = storage()
                && storage.set_item(STORAGE_KEY, &saved.to_json()).is_err()
            {
                // Full, or refused: an older save must not be restored in its place.
                leptos::logging::warn!("livedash: could not save this page's positions; the next page starts afresh");
                let _ = storage.remove_item(STORAGE_KEY);
            }
        }
    }

    impl Live {
        pub(crate) fn restore(&self, user: &str, widget: &str, topic: &str) -> Option<SavedWidget> {
            self.page.try_with_value(|p| p.saved.borrow_mut().take(user, widget, topic)).flatten()
        }

        pub(crate) fn register(&self, widget: &str, feed: Rc<dyn FeedControl>) {
            self.page.try_with_value(|p| p.feeds.borrow_mut().insert(widget.to_owned(), feed));
        }

        pub(crate) fn unregister(&self, widget: &str) {
            self.page.try_with_value(|p| p.feeds.borrow_mut().remove(widget));
        }

        pub(crate) fn subscribe(&self, widget: &str, topic: &str, position: Option<WidgetPosition>, handler: Handler) {
            self.page.try_with_value(|p| p.client.subscribe(widget, topic, position, handler));
        }

        pub(crate) fn unsubscribe(&self, widget: &str) {
            self.page.try_with_value(|p| p.client.unsubscribe(widget));
        }

        pub(crate) fn refresh(&self, widget: &str) {
            self.page.try_with_value(|p| p.client.input(Input::Refresh { widget: widget.to_owned() }));
        }

        /// The widget's interval, which polling honours.
        pub(crate) fn set_interval(&self, widget: &str, secs: Option<u32>) {
            self.page.try_with_value(|p| p.client.input(Input::SetInterval { widget: widget.to_owned(), secs }));
        }
    }
}
