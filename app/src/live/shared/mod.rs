//! The page's connection: one shared by every tab of the user in this browser, or the tab's own.
//!
//! Every tab of a signed-in user asks for one Web Lock; the tab holding it runs the hub — the one
//! WebSocket, subscribed once per topic — and the others follow it over a BroadcastChannel (the
//! rules of that conversation are in `relay`). The lock passes to a waiting tab the moment the
//! leading one closes or reloads, and the new hub asks every tab to subscribe again from where it
//! stands, so a handover loses and repeats nothing. Each tab keeps its own live switch and pill.
//! Without Web Locks (they need a secure context: HTTPS or localhost) the tabs choose the leader
//! by voting on the same channel (`election`).
//!
//! A tab runs its own connection (`driver`, with the SSE and polling fallbacks) when the browser
//! lacks BroadcastChannel, when the user is not known, and when the shared WebSocket never gets
//! through: the fallbacks serve one dashboard per connection, so they cannot be shared.

use super::{
    driver::{Handler, LiveClient, Notice, NoticeHook},
    election::Vote,
    election::{Decision, Election, TICK_MS},
    relay::{Fanout, HubAction, Relay, Roll, Subscriber, Take, ToHub, ToTabs, advance, take},
    session::{Delivery, Input, LiveSessionConfig, WidgetPosition},
    status::ConnectionStatus,
    tab_id::{TabId, new_tab_id},
    tab_locks::{self, lock_name},
};
use leptos::prelude::*;
use protocol::ActivityAction;
use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, BTreeSet},
    rc::{Rc, Weak},
    time::Duration,
};
use wasm_bindgen::{JsCast, JsValue, closure::Closure, prelude::wasm_bindgen};
use web_sys::{BroadcastChannel, MessageEvent};

mod hub;
mod leadership;
mod web_locks;

use hub::Hub;
use leadership::*;
use web_locks::{HeldLock, held_locks, lock_manager};

/// How often the hub looks for tabs that went without a word (a crashed tab), and for widgets
/// whose snapshot never came.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How long the hub's check that the server answers plain HTTP may take.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);
/// WebSocket attempts in a row that failed while plain HTTP got through, after which the hub hands
/// each tab a connection of its own (with the fallbacks): one may be a server just coming back.
const REFUSALS_BEFORE_SOLO: u32 = 2;

/// What the page's feeds talk to (see [`super::Live`]).
#[derive(Clone)]
pub(super) struct Connection(Rc<RefCell<Tab>>);

struct Widget {
    topic: String,
    /// Where the widget stands, to subscribe again from there with another hub or connection.
    position: Option<WidgetPosition>,
    handler: Handler,
    interval: Option<u32>,
}

/// The tab's side: what its widgets follow and where each stands, whichever connection serves them.
struct Tab {
    id: TabId,
    status: RwSignal<ConnectionStatus>,
    last_update: RwSignal<Option<f64>>,
    next_probe: RwSignal<Option<f64>>,
    widgets: BTreeMap<String, Widget>,
    dashboard: Option<i64>,
    /// This tab's live switch (another tab's does not touch it).
    live: bool,
    report: Option<(ActivityAction, String)>,
    mode: Mode,
    left_on_hide: bool,
}

enum Mode {
    /// The user is not known yet.
    Waiting,
    /// A connection of the tab's own: the user could not be told, the browser cannot share, or
    /// the hub sent the tab off on its own.
    Solo(LiveClient),
    Shared(HubLink),
    Closed,
}

struct HubLink {
    user: String,
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    /// What the hub last said of the shared connection.
    hub_status: ConnectionStatus,
    /// Set while this tab leads.
    hub: Option<Rc<Hub>>,
    leadership: Leadership,
}

impl HubLink {
    fn close(mut self) {
        if let Some(hub) = &self.hub {
            hub.close();
        }
        match &mut self.leadership {
            Leadership::Locks { leading, alive } => {
                leading.release();
                alive.release();
            }
            Leadership::Votes { election, ticker } => {
                if let Some(ticker) = ticker.take() {
                    ticker.clear();
                }
                for decision in election.resign(js_sys::Date::now()) {
                    if let Decision::Send(vote) = decision {
                        post(&self.channel, &Relay::Vote(vote));
                    }
                }
            }
        }
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

impl Connection {
    pub(super) fn new(
        status: RwSignal<ConnectionStatus>,
        last_update: RwSignal<Option<f64>>,
        next_probe: RwSignal<Option<f64>>,
    ) -> Self {
        let id = new_tab_id(js_sys::Date::now(), js_sys::Math::random());
        Self(Rc::new(RefCell::new(Tab {
            id,
            status,
            last_update,
            next_probe,
            widgets: BTreeMap::new(),
            dashboard: None,
            live: true,
            report: None,
            mode: Mode::Waiting,
            left_on_hide: false,
        })))
    }

    /// The user is known (`Some(tenant/email)`) or not: shares the user's connection where the
    /// browser can, connects alone otherwise.
    pub(super) fn start(&self, user: Option<String>) {
        match user {
            Some(user) if join(&self.0, &user) => {}
            _ => go_solo(&self.0),
        }
    }

    pub(super) fn subscribe(&self, widget: &str, topic: &str, position: Option<WidgetPosition>, handler: Handler) {
        let widget_state =
            Widget { topic: topic.to_owned(), position: position.clone(), handler: handler.clone(), interval: None };
        let route = {
            let mut tab = self.0.borrow_mut();
            tab.widgets.insert(widget.to_owned(), widget_state);
            match &tab.mode {
                Mode::Solo(client) => Route::Client(client.clone()),
                Mode::Shared(_) if tab.live => Route::Hub(ToHub::Subscribe {
                    tab: tab.id.clone(),
                    widget: widget.to_owned(),
                    topic: topic.to_owned(),
                    position: position.clone(),
                }),
                _ => Route::Nothing,
            }
        };
        match route {
            Route::Client(client) => client.subscribe(widget, topic, position, handler),
            Route::Hub(message) => to_hub(&self.0, message),
            Route::Shared | Route::Nothing => {}
        }
    }

    pub(super) fn unsubscribe(&self, widget: &str) {
        let route = {
            let mut tab = self.0.borrow_mut();
            let existed = tab.widgets.remove(widget).is_some();
            match &tab.mode {
                Mode::Solo(client) => Route::Client(client.clone()),
                Mode::Shared(_) if tab.live && existed => {
                    Route::Hub(ToHub::Unsubscribe { tab: tab.id.clone(), widget: widget.to_owned() })
                }
                _ => Route::Nothing,
            }
        };
        match route {
            Route::Client(client) => client.unsubscribe(widget),
            Route::Hub(message) => to_hub(&self.0, message),
            Route::Shared | Route::Nothing => {}
        }
    }

    /// Everything else a page asks of its connection.
    pub(super) fn input(&self, input: Input) {
        let route = {
            let mut tab = self.0.borrow_mut();
            tab.remember(&input);
            match &tab.mode {
                Mode::Solo(client) => Route::Client(client.clone()),
                Mode::Shared(_) => Route::Shared,
                Mode::Waiting => {
                    // No connection yet, but the switch holds: the connection the tab gets once its
                    // user is known starts paused (`join`, `go_solo`), and the pill says so now.
                    if let Input::SetLive(on) = input {
                        tab.live = on;
                        tab.show(if on { ConnectionStatus::Connecting } else { ConnectionStatus::Paused });
                    }
                    Route::Nothing
                }
                Mode::Closed => Route::Nothing,
            }
        };
        match route {
            Route::Client(client) => client.input(input),
            Route::Shared => shared_input(&self.0, input),
            _ => {}
        }
    }

    /// Where each widget stands now (to save on page unload).
    pub(super) fn positions(&self) -> BTreeMap<String, (String, Option<WidgetPosition>)> {
        let tab = self.0.borrow();
        match &tab.mode {
            Mode::Solo(client) => client.positions(),
            _ => tab.widgets.iter().map(|(id, w)| (id.clone(), (w.topic.clone(), w.position.clone()))).collect(),
        }
    }

    /// The page is going: a sharing tab lets the hub know at once. (A page on its own connection
    /// keeps it: should the page come back from the back-forward cache, it is still live.)
    pub(super) fn page_hidden(&self) {
        if matches!(self.0.borrow().mode, Mode::Shared(_)) {
            self.close();
            self.0.borrow_mut().left_on_hide = true;
        }
    }

    /// The page left its shared connection when it was hidden (it must start afresh if it comes
    /// back from the back-forward cache).
    pub(super) fn left_on_hide(&self) -> bool {
        self.0.borrow().left_on_hide
    }

    /// The tab goes (page hidden for good, or the live part unmounted): the hub lets go of its
    /// widgets; a leading tab's lock passes to another tab.
    pub(super) fn close(&self) {
        let mode = {
            let mut tab = self.0.borrow_mut();
            tab.widgets.clear();
            std::mem::replace(&mut tab.mode, Mode::Closed)
        };
        match mode {
            Mode::Solo(client) => client.close(),
            Mode::Shared(link) => {
                let id = self.0.borrow().id.clone();
                if link.hub.is_none() {
                    post(&link.channel, &Relay::Hub(ToHub::Leave { tab: id }));
                }
                link.close();
            }
            Mode::Waiting | Mode::Closed => {}
        }
    }
}

/// What to do once the tab's borrow has ended.
enum Route {
    Client(LiveClient),
    Hub(ToHub),
    Shared,
    Nothing,
}

impl Tab {
    /// Keeps what a connection opened in_a_microtask (on its own, after sharing) must be told again.
    fn remember(&mut self, input: &Input) {
        match input {
            Input::SetDashboard(dashboard) => self.dashboard = dashboard.or(self.dashboard),
            Input::SetInterval { widget, secs } => {
                if let Some(w) = self.widgets.get_mut(widget) {
                    w.interval = *secs;
                }
            }
            Input::Report { action, detail } => self.report = Some((*action, detail.clone())),
            _ => {}
        }
    }

    /// The tab says hello and subscribes every widget, from where it stands.
    fn announcement(&self) -> Vec<ToHub> {
        let mut messages = vec![ToHub::Hello { tab: self.id.clone() }];
        if self.live {
            messages.extend(self.widgets.iter().map(|(widget, w)| ToHub::Subscribe {
                tab: self.id.clone(),
                widget: widget.clone(),
                topic: w.topic.clone(),
                position: w.position.clone(),
            }));
            if let Some((action, detail)) = &self.report {
                messages.push(ToHub::Report { action: *action, detail: detail.clone() });
            }
        }
        messages
    }

    fn show(&self, status: ConnectionStatus) {
        if self.status.get_untracked() != status {
            self.status.set(status);
        }
    }
}

/// The tab's inputs while it shares: its live switch is its own, the rest goes to the hub.
fn shared_input(rc: &Rc<RefCell<Tab>>, input: Input) {
    let messages = {
        let mut tab = rc.borrow_mut();
        let Mode::Shared(link) = &tab.mode else { return };
        let hub_status = link.hub_status;
        let id = tab.id.clone();
        match input {
            Input::SetLive(on) if on != tab.live => {
                tab.live = on;
                if on {
                    tab.show(hub_status);
                    tab.announcement()
                } else {
                    tab.show(ConnectionStatus::Paused);
                    tab.widgets
                        .keys()
                        .map(|widget| ToHub::Unsubscribe { tab: id.clone(), widget: widget.clone() })
                        .collect()
                }
            }
            Input::Refresh { widget } if tab.live && tab.widgets.contains_key(&widget) => {
                vec![ToHub::Refresh { tab: id, widget }]
            }
            Input::RetryNow if tab.live => vec![ToHub::RetryNow],
            Input::Report { action, detail } if tab.live => vec![ToHub::Report { action, detail }],
            // Intervals and the dashboard matter only to the fallbacks, which a shared
            // connection does not use; they are remembered for a connection of the tab's own.
            _ => vec![],
        }
    };
    for message in messages {
        to_hub(rc, message);
    }
}

/// Joins the user's tabs: listens on their channel and asks for the lead. False when the browser
/// has no BroadcastChannel.
fn join(rc: &Rc<RefCell<Tab>>, user: &str) -> bool {
    let Ok(channel) = BroadcastChannel::new(&format!("livedash-live:{user}")) else { return false };
    let weak = Rc::downgrade(rc);
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
        let weak = weak.clone();
        move |event: MessageEvent| {
            let (Some(rc), Some(text)) = (weak.upgrade(), event.data().as_string()) else { return };
            match Relay::parse(&text) {
                Some(Relay::Hub(message)) => {
                    let hub = match &rc.borrow().mode {
                        Mode::Shared(link) => link.hub.clone(),
                        _ => None,
                    };
                    if let Some(hub) = hub {
                        hub.receive(message);
                    }
                }
                Some(Relay::Tabs(message)) => from_hub(&rc, message),
                Some(Relay::Vote(vote)) => {
                    if matches!(vote, Vote::Heartbeat { .. }) {
                        answer_heartbeat(&rc);
                    }
                    decide(&rc, |election, now| election.heard(vote, now))
                }
                None => leptos::logging::warn!("livedash: ignoring an undecodable message from another tab"),
            }
        }
    });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let id = rc.borrow().id.clone();
    let (leadership, first_votes) = match lock_manager() {
        Some(locks) => {
            let alive = HeldLock::request(&locks, &lock_name(user, &id), || true);
            let leading = HeldLock::request(&locks, &format!("livedash-lead:{user}"), {
                let user = user.to_owned();
                move || weak.upgrade().is_some_and(|rc| lead(&rc, &user))
            });
            (Leadership::Locks { leading, alive }, vec![])
        }
        None => {
            let (election, votes) = Election::start(id.clone(), js_sys::Date::now());
            let ticker = set_interval_with_handle(
                move || {
                    if let Some(rc) = weak.upgrade() {
                        decide(&rc, |election, now| election.tick(now));
                    }
                },
                Duration::from_millis(TICK_MS.into()),
            )
            .ok();
            (Leadership::Votes { election, ticker }, votes)
        }
    };
    {
        let mut tab = rc.borrow_mut();
        // What the tab shows is the hub's state, unless the tab is paused: the hub says soon.
        let hub_status = if tab.live { tab.status.get_untracked() } else { ConnectionStatus::Connecting };
        tab.mode = Mode::Shared(HubLink {
            user: user.to_owned(),
            channel,
            _on_message: on_message,
            hub_status,
            hub: None,
            leadership,
        });
    }
    perform_votes(rc, first_votes);
    // A hub already leading hears this; otherwise the one about to lead asks again.
    let messages = rc.borrow().announcement();
    for message in messages {
        to_hub(rc, message);
    }
    true
}

/// Sends to the hub: over the channel, or to this tab's own hub (after the current call, as the
/// channel would, so neither side is ever re-entered).
fn to_hub(rc: &Rc<RefCell<Tab>>, message: ToHub) {
    let tab = rc.borrow();
    let Mode::Shared(link) = &tab.mode else { return };
    match &link.hub {
        Some(hub) => {
            let hub = Rc::downgrade(hub);
            in_a_microtask(move || {
                if let Some(hub) = hub.upgrade() {
                    hub.receive(message);
                }
            });
        }
        None => {
            post(&link.channel, &Relay::Hub(message));
        }
    }
}

/// What the hub said.
fn from_hub(rc: &Rc<RefCell<Tab>>, message: ToTabs) {
    match message {
        ToTabs::HubUp => {
            let messages = match &rc.borrow().mode {
                Mode::Shared(_) => rc.borrow().announcement(),
                _ => return,
            };
            for message in messages {
                to_hub(rc, message);
            }
        }
        ToTabs::Status { status, .. } => {
            let follower = {
                let mut tab = rc.borrow_mut();
                let live = tab.live;
                let Mode::Shared(link) = &mut tab.mode else { return };
                link.hub_status = status;
                let follower = link.hub.is_none();
                if live {
                    tab.show(status);
                }
                follower
            };
            // The leading tab's own connection sends it to sign in.
            if follower && status == ConnectionStatus::SignedOut {
                super::forget_saved_session();
                crate::http::go_to(crate::routes::LOGIN_PATH);
            }
        }
        ToTabs::Deliver { topic, to, delivery } => {
            let handlers: (Vec<Handler>, Vec<ToHub>) = {
                let mut tab = rc.borrow_mut();
                if !matches!(tab.mode, Mode::Shared(_)) || !tab.live {
                    return; // sent before the tab paused: it subscribes again from where it stands
                }
                let me = tab.id.clone();
                let mut handlers = Vec::new();
                let mut out_of_step = Vec::new();
                for who in to.iter().filter(|who| who.tab == me) {
                    let Some(w) = tab.widgets.get_mut(&who.widget).filter(|w| w.topic == topic) else { continue };
                    match take(&w.position, &delivery) {
                        Take::Apply => {
                            advance(&mut w.position, &delivery);
                            handlers.push(w.handler.clone());
                        }
                        Take::Skip => {}
                        Take::OutOfStep => {
                            out_of_step.push(ToHub::Refresh { tab: me.clone(), widget: who.widget.clone() })
                        }
                    }
                }
                if !handlers.is_empty() && matches!(delivery, Delivery::Snapshot { .. } | Delivery::Update { .. }) {
                    tab.last_update.set(Some(js_sys::Date::now()));
                }
                (handlers, out_of_step)
            };
            let (handlers, out_of_step) = handlers;
            for handler in handlers {
                handler(&delivery);
            }
            for message in out_of_step {
                to_hub(rc, message);
            }
        }
        ToTabs::Solo => go_solo(rc),
    }
}

/// Leaves the shared connection for one of the tab's own, telling it everything the tab follows.
fn go_solo(rc: &Rc<RefCell<Tab>>) {
    let link = {
        let mut tab = rc.borrow_mut();
        match std::mem::replace(&mut tab.mode, Mode::Waiting) {
            Mode::Shared(link) => Some(link),
            Mode::Waiting => None,
            other => {
                tab.mode = other;
                return;
            }
        }
    };
    if let Some(link) = link {
        link.close();
    }
    let (client, replay) = {
        let tab = rc.borrow();
        tab.show(ConnectionStatus::Connecting);
        let client =
            LiveClient::connect(super::page_kind::session_config(), tab.status, tab.last_update, tab.next_probe, None);
        let mut replay: Vec<Input> = tab.dashboard.map(|d| Input::SetDashboard(Some(d))).into_iter().collect();
        let subscriptions: Vec<_> = tab
            .widgets
            .iter()
            .map(|(widget, w)| (widget.clone(), w.topic.clone(), w.position.clone(), w.handler.clone(), w.interval))
            .collect();
        for (widget, _, _, _, interval) in &subscriptions {
            if interval.is_some() {
                replay.push(Input::SetInterval { widget: widget.clone(), secs: *interval });
            }
        }
        if !tab.live {
            replay.push(Input::SetLive(false));
        }
        if let Some((action, detail)) = &tab.report {
            replay.push(Input::Report { action: *action, detail: detail.clone() });
        }
        (client, (subscriptions, replay))
    };
    let (subscriptions, inputs) = replay;
    for (widget, topic, position, handler, _) in subscriptions {
        client.subscribe(&widget, &topic, position, handler);
    }
    for input in inputs {
        client.input(input);
    }
    rc.borrow_mut().mode = Mode::Solo(client);
}

/// Returns the message's size (bytes of JSON).
fn post(channel: &BroadcastChannel, message: &Relay) -> usize {
    let json = message.to_json();
    // A closed channel fails; the tab is going anyway.
    let _ = channel.post_message(&JsValue::from_str(&json));
    json.len()
}

/// Runs `f` after the current call, before anything else happens (a microtask).
fn in_a_microtask(f: impl FnOnce() + 'static) {
    let callback = Closure::once_into_js(f);
    window().queue_microtask(callback.unchecked_ref());
}
