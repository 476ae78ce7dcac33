//! The one API widgets use: [`use_topic`] follows a topic for a widget and returns signals — the
//! widget's view of the data, what happened to it (updates applied, gaps, last offset, an error),
//! and its mode — and unsubscribes when the widget unmounts.
//!
//! The mode decides what reaches the view and when (see [`ModeGate`](super::mode_gate::ModeGate)):
//! Live applies at once, the interval modes stay subscribed and apply what arrived at each tick,
//! Manual unsubscribes and fetches a fresh snapshot when refreshed.

use super::{status::ConnectionStatus, topic_view::TopicView};
use leptos::prelude::*;
use protocol::dashboard::WidgetMode;

/// A widget's live data and its state. Cheap to copy; every field is a signal.
pub struct TopicFeed<V: TopicView> {
    /// What the widget draws.
    pub data: RwSignal<V>,
    pub state: FeedState,
    #[cfg(feature = "hydrate")]
    control: StoredValue<Option<std::rc::Rc<browser::Feed<V>>>, LocalStorage>,
}

/// What happened to a widget's feed, whatever its data: shown on the widget's frame.
#[derive(Clone, Copy)]
pub struct FeedState {
    /// The page's connection status (shared by every widget).
    pub status: RwSignal<ConnectionStatus>,
    pub mode: RwSignal<WidgetMode>,
    /// Live updates applied (snapshots not counted).
    pub updates: RwSignal<u64>,
    /// Times data was lost and the view resynced from a snapshot.
    pub gaps: RwSignal<u64>,
    /// Offset of the last applied message.
    pub offset: RwSignal<Option<u64>>,
    /// Deliveries waiting for the interval's next tick.
    pub held: RwSignal<usize>,
    /// When data was last applied (ms since the epoch).
    pub last_update: RwSignal<Option<f64>>,
    /// The server refused the subscription (e.g. a bad topic name).
    pub error: RwSignal<Option<String>>,
    /// The topic rules do not let this user read the topic: the view was emptied and stays so
    /// (until a later subscription is let in).
    pub denied: RwSignal<bool>,
}

impl<V: TopicView> Clone for TopicFeed<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V: TopicView> Copy for TopicFeed<V> {}

/// Follows `topic` as `widget_id` (unique on the page) in `mode`, until the calling component
/// unmounts. In the browser, a view the previous page saved comes back at once and the subscription
/// resumes from where it stopped.
pub fn use_topic<V: TopicView>(widget_id: &str, topic: &str, mode: WidgetMode) -> TopicFeed<V> {
    let feed = TopicFeed {
        data: RwSignal::new(V::default()),
        state: FeedState {
            status: super::Live::expect().status,
            mode: RwSignal::new(mode),
            updates: RwSignal::new(0),
            gaps: RwSignal::new(0),
            offset: RwSignal::new(None),
            held: RwSignal::new(0),
            last_update: RwSignal::new(None),
            error: RwSignal::new(None),
            denied: RwSignal::new(false),
        },
        #[cfg(feature = "hydrate")]
        control: StoredValue::new_local(None),
    };
    #[cfg(feature = "hydrate")]
    feed.control.set_value(Some(browser::Feed::start(widget_id, topic, feed)));
    #[cfg(not(feature = "hydrate"))]
    let _ = (widget_id, topic);
    feed
}

impl<V: TopicView> TopicFeed<V> {
    /// Shows the latest now: releases what an interval held and asks for a fresh snapshot (in Manual
    /// mode, subscribes just long enough to receive it).
    pub fn refresh(&self) {
        #[cfg(feature = "hydrate")]
        self.control.with_value(|c| c.as_ref().map(|c| c.refresh()));
    }

    /// Changes the widget's mode (the caller saves the choice).
    pub fn set_mode(&self, mode: WidgetMode) {
        #[cfg(feature = "hydrate")]
        self.control.with_value(|c| c.as_ref().map(|c| c.set_mode(mode)));
        #[cfg(not(feature = "hydrate"))]
        self.state.mode.set(mode);
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::TopicFeed;
    use crate::live::{
        Identity, Live, WidgetPosition,
        driver::Handler,
        mode_gate::{ModeGate, Tick},
        session::Delivery,
        topic_view::TopicView,
    };
    use leptos::prelude::*;
    use protocol::ErrorCode;
    use protocol::dashboard::WidgetMode;
    use std::{
        cell::{Cell, RefCell},
        rc::{Rc, Weak},
        time::Duration,
    };

    /// What [`Live`] needs of every feed on the page: refresh it, and save it on unload.
    pub trait FeedControl {
        fn topic(&self) -> &str;
        fn refresh(&self);
        /// The view, with anything an interval held applied first (the saved position is past it).
        fn saved_view(&self) -> Option<serde_json::Value>;
    }

    pub struct Feed<V: TopicView> {
        widget: String,
        topic: String,
        live: Live,
        /// The widget's signals (its `control` is not used from here).
        signals: TopicFeed<V>,
        gate: RefCell<ModeGate>,
        /// Manual mode's refresh: unsubscribe again once the snapshot is in.
        one_shot: Cell<bool>,
        /// The first subscription (or Manual fetch) was made; until then a mode change only
        /// changes the mode.
        started: Cell<bool>,
        ticker: RefCell<Option<IntervalHandle>>,
        handler: RefCell<Option<Handler>>,
    }

    impl<V: TopicView> Feed<V> {
        pub fn start(widget: &str, topic: &str, signals: TopicFeed<V>) -> Rc<Self> {
            let live = Live::expect();
            let mode = signals.state.mode.get_untracked();
            let feed = Rc::new(Self {
                widget: widget.to_owned(),
                topic: topic.to_owned(),
                live,
                signals,
                gate: RefCell::new(ModeGate::new(mode)),
                one_shot: Cell::new(false),
                started: Cell::new(false),
                ticker: RefCell::new(None),
                handler: RefCell::new(None),
            });
            let weak = Rc::downgrade(&feed);
            let handler: Handler = Rc::new(move |delivery: &Delivery| {
                if let Some(feed) = weak.upgrade() {
                    feed.on_delivery(delivery);
                }
            });
            *feed.handler.borrow_mut() = Some(handler);

            // Once the server has said who is signed in (a saved view is only ever restored to its
            // own user), and after hydration: a restored view must not change what the server
            // rendered. No message can arrive before this runs: nothing is subscribed yet.
            let weak = Rc::downgrade(&feed);
            Effect::new(move |_| {
                let identity = live.identity.get();
                if identity != Identity::Pending
                    && let Some(feed) = weak.upgrade()
                    && !feed.started.replace(true)
                {
                    untrack(|| feed.begin(&identity));
                }
            });
            feed.start_ticker();
            live.register(widget, feed.clone());

            let weak = send_wrapper::SendWrapper::new(Rc::downgrade(&feed));
            on_cleanup(move || {
                if let Some(feed) = weak.take().upgrade() {
                    feed.stop_ticker();
                    let live = feed.live;
                    live.unregister(&feed.widget);
                    if feed.gate.borrow().mode().subscribed() || feed.one_shot.get() {
                        live.unsubscribe(&feed.widget);
                    }
                }
            });
            feed
        }

        /// Shows what this user's previous page saved for the widget, then subscribes from there
        /// (in Manual mode: fetches a first snapshot once, unless something was restored).
        fn begin(&self, identity: &Identity) {
            let mut restored = None;
            if let Identity::Known(account) = identity
                && let Some(saved) = self.live.restore(&account.key(), &self.widget, &self.topic)
                && let Ok(view) = serde_json::from_value::<V>(saved.view)
            {
                self.signals.data.set(view);
                restored = Some(saved.position);
            }
            if self.gate.borrow().mode().subscribed() {
                self.subscribe(restored.flatten());
            } else if restored.is_none() {
                self.refresh();
            }
        }

        fn subscribe(&self, position: Option<WidgetPosition>) {
            let handler = self.handler.borrow().clone().expect("started");
            self.live.subscribe(&self.widget, &self.topic, position, handler);
            self.live.set_interval(&self.widget, self.gate.borrow().mode().interval_secs());
        }

        fn on_delivery(&self, delivery: &Delivery) {
            let ready = self.gate.borrow_mut().offer(delivery.clone());
            self.apply(ready);
            // Manual mode's refresh is over when its snapshot (or a refusal) arrives.
            if self.one_shot.get() && matches!(delivery, Delivery::Snapshot { .. } | Delivery::Error { .. }) {
                self.one_shot.set(false);
                self.live.unsubscribe(&self.widget);
            }
        }

        fn apply(&self, deliveries: Vec<Delivery>) {
            let (data, s) = (self.signals.data, self.signals.state);
            for delivery in deliveries {
                match &delivery {
                    Delivery::Snapshot { meta, .. } | Delivery::Update { meta, .. } => {
                        data.update(|view| view.apply(&delivery));
                        s.offset.set(Some(meta.offset));
                        s.last_update.set(Some(js_sys::Date::now()));
                        s.error.set(None);
                        s.denied.set(false);
                        if matches!(delivery, Delivery::Update { .. }) {
                            s.updates.update(|n| *n += 1);
                        }
                    }
                    Delivery::Gap => s.gaps.update(|n| *n += 1),
                    Delivery::Error { code: ErrorCode::Forbidden, message } => {
                        // What it showed is no longer the user's to see, nor current.
                        data.set(V::default());
                        s.offset.set(None);
                        s.last_update.set(None);
                        s.denied.set(true);
                        s.error.set(Some(message.clone()));
                    }
                    Delivery::Error { message, .. } => s.error.set(Some(message.clone())),
                }
            }
            s.held.set(self.gate.borrow().held());
        }

        fn release(&self) {
            let held = self.gate.borrow_mut().release();
            self.apply(held);
        }

        /// The interval's tick: what was held, or (when too much arrived) a fresh snapshot.
        fn tick(&self, tick: Tick) {
            self.apply(tick.apply);
            if tick.ask_snapshot {
                self.live.refresh(&self.widget);
            }
        }

        pub fn set_mode(self: &Rc<Self>, mode: WidgetMode) {
            let before = self.gate.borrow().mode();
            if before == mode {
                return;
            }
            let tick = self.gate.borrow_mut().set_mode(mode);
            self.tick(tick);
            self.signals.state.mode.set(mode);
            self.live.set_interval(&self.widget, mode.interval_secs());
            self.start_ticker();
            if !self.started.get() {
                return; // `begin` subscribes as the mode then says
            }
            match (before.subscribed(), mode.subscribed()) {
                (true, false) => self.live.unsubscribe(&self.widget),
                (false, true) => {
                    if self.one_shot.replace(false) {
                        self.live.unsubscribe(&self.widget);
                    }
                    self.subscribe(None);
                }
                _ => {}
            }
        }

        pub fn refresh(&self) {
            if !self.started.get() {
                return; // the first data is on its way
            }
            if self.gate.borrow().mode().subscribed() {
                let ready = self.gate.borrow_mut().refresh();
                self.apply(ready);
                self.live.refresh(&self.widget);
            } else if !self.one_shot.replace(true) {
                self.subscribe(None);
            } else {
                // The snapshot asked for before has not come (an outage, say): ask again.
                self.live.refresh(&self.widget);
            }
        }

        fn start_ticker(self: &Rc<Self>) {
            self.stop_ticker();
            let Some(secs) = self.gate.borrow().mode().interval_secs() else { return };
            let weak = Rc::downgrade(self);
            let handle = set_interval_with_handle(
                move || {
                    if let Some(feed) = Weak::upgrade(&weak) {
                        let tick = feed.gate.borrow_mut().tick();
                        feed.tick(tick);
                    }
                },
                Duration::from_secs(u64::from(secs)),
            );
            *self.ticker.borrow_mut() = handle.ok();
        }

        fn stop_ticker(&self) {
            if let Some(ticker) = self.ticker.borrow_mut().take() {
                ticker.clear();
            }
        }
    }

    impl<V: TopicView> FeedControl for Feed<V> {
        fn topic(&self) -> &str {
            &self.topic
        }

        fn refresh(&self) {
            Feed::refresh(self);
        }

        fn saved_view(&self) -> Option<serde_json::Value> {
            self.release();
            self.signals.data.with_untracked(|view| serde_json::to_value(view).ok())
        }
    }
}

#[cfg(feature = "hydrate")]
pub(super) use browser::FeedControl;
