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
    relay::{Fanout, HubAction, Relay, Roll, Subscriber, TabId, Take, ToHub, ToTabs, advance, take},
    session::{Delivery, Input, Position, SessionConfig},
    status::ConnectionStatus,
    tab_locks::{self, lock_name},
};
use crate::protocol::ActivityAction;
use leptos::prelude::*;
use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, BTreeSet},
    rc::{Rc, Weak},
    time::Duration,
};
use wasm_bindgen::{JsCast, JsValue, closure::Closure, prelude::wasm_bindgen};
use web_sys::{BroadcastChannel, MessageEvent};

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
    position: Option<Position>,
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
    Own(LiveClient),
    Shared(Link),
    Closed,
}

struct Link {
    user: String,
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    /// What the hub last said of the shared connection.
    hub_status: ConnectionStatus,
    /// Set while this tab leads.
    hub: Option<Rc<Hub>>,
    leadership: Leadership,
}

/// How the tabs agree on the leader.
enum Leadership {
    /// The lead is a Web Lock, which passes to a waiting tab by itself.
    Locks {
        leading: HeldLock,
        /// Held as long as the tab lives: the hub tells a crashed tab by its missing lock.
        alive: HeldLock,
    },
    /// No Web Locks: the tabs vote on the channel.
    Votes { election: Election, ticker: Option<IntervalHandle> },
}

impl Link {
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
        let id = format!("{:x}{:x}", js_sys::Date::now() as u64, (js_sys::Math::random() * 1e12) as u64);
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

    pub(super) fn subscribe(&self, widget: &str, topic: &str, position: Option<Position>, handler: Handler) {
        let widget_state =
            Widget { topic: topic.to_owned(), position: position.clone(), handler: handler.clone(), interval: None };
        let next = {
            let mut tab = self.0.borrow_mut();
            tab.widgets.insert(widget.to_owned(), widget_state);
            match &tab.mode {
                Mode::Own(client) => Next::Client(client.clone()),
                Mode::Shared(_) if tab.live => Next::Hub(ToHub::Subscribe {
                    tab: tab.id.clone(),
                    widget: widget.to_owned(),
                    topic: topic.to_owned(),
                    position: position.clone(),
                }),
                _ => Next::Nothing,
            }
        };
        match next {
            Next::Client(client) => client.subscribe(widget, topic, position, handler),
            Next::Hub(message) => to_hub(&self.0, message),
            Next::Shared | Next::Nothing => {}
        }
    }

    pub(super) fn unsubscribe(&self, widget: &str) {
        let next = {
            let mut tab = self.0.borrow_mut();
            let existed = tab.widgets.remove(widget).is_some();
            match &tab.mode {
                Mode::Own(client) => Next::Client(client.clone()),
                Mode::Shared(_) if tab.live && existed => {
                    Next::Hub(ToHub::Unsubscribe { tab: tab.id.clone(), widget: widget.to_owned() })
                }
                _ => Next::Nothing,
            }
        };
        match next {
            Next::Client(client) => client.unsubscribe(widget),
            Next::Hub(message) => to_hub(&self.0, message),
            Next::Shared | Next::Nothing => {}
        }
    }

    /// Everything else a page asks of its connection.
    pub(super) fn input(&self, input: Input) {
        let next = {
            let mut tab = self.0.borrow_mut();
            tab.remember(&input);
            match &tab.mode {
                Mode::Own(client) => Next::Client(client.clone()),
                Mode::Shared(_) => Next::Shared,
                Mode::Waiting => {
                    // No connection yet, but the switch holds: the connection the tab gets once its
                    // user is known starts paused (`join`, `go_solo`), and the pill says so now.
                    if let Input::SetLive(on) = input {
                        tab.live = on;
                        tab.show(if on { ConnectionStatus::Connecting } else { ConnectionStatus::Paused });
                    }
                    Next::Nothing
                }
                Mode::Closed => Next::Nothing,
            }
        };
        match next {
            Next::Client(client) => client.input(input),
            Next::Shared => shared_input(&self.0, input),
            _ => {}
        }
    }

    /// Where each widget stands now (to save on page unload).
    pub(super) fn positions(&self) -> BTreeMap<String, (String, Option<Position>)> {
        let tab = self.0.borrow();
        match &tab.mode {
            Mode::Own(client) => client.positions(),
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
            Mode::Own(client) => client.close(),
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
enum Next {
    Client(LiveClient),
    Hub(ToHub),
    Shared,
    Nothing,
}

impl Tab {
    /// Keeps what a connection opened later (on its own, after sharing) must be told again.
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
        tab.mode = Mode::Shared(Link {
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

/// A follower tells the hub it is still there (see `Roll`).
fn answer_heartbeat(rc: &Rc<RefCell<Tab>>) {
    let id = {
        let tab = rc.borrow();
        match &tab.mode {
            Mode::Shared(link) if link.hub.is_none() => tab.id.clone(),
            _ => return,
        }
    };
    to_hub(rc, ToHub::Alive { tab: id });
}

/// Feeds the tab's election (when the tabs vote) and does what it decides.
fn decide(rc: &Rc<RefCell<Tab>>, step: impl FnOnce(&mut Election, f64) -> Vec<Decision>) {
    let decisions = {
        let mut tab = rc.borrow_mut();
        let Mode::Shared(Link { leadership: Leadership::Votes { election, .. }, .. }) = &mut tab.mode else {
            return;
        };
        step(election, js_sys::Date::now())
    };
    perform_votes(rc, decisions);
}

fn perform_votes(rc: &Rc<RefCell<Tab>>, decisions: Vec<Decision>) {
    for decision in decisions {
        let (channel, user, hub) = match &rc.borrow().mode {
            Mode::Shared(link) => (link.channel.clone(), link.user.clone(), link.hub.clone()),
            _ => return,
        };
        match decision {
            Decision::Send(vote) => {
                if let (Vote::Heartbeat { .. }, Some(hub)) = (&vote, &hub) {
                    hub.beat();
                }
                post(&channel, &Relay::Vote(vote));
            }
            Decision::Lead => {
                lead(rc, &user);
            }
            Decision::StepDown => {
                if let Mode::Shared(link) = &mut rc.borrow_mut().mode {
                    link.hub = None;
                }
                if let Some(hub) = hub {
                    hub.close();
                }
            }
            Decision::Reannounce => {
                if let Some(hub) = hub {
                    hub.broadcast(ToTabs::HubUp);
                }
            }
        }
    }
}

/// The tab got the lead: it runs the hub. False (let go of the lock) when it no longer shares.
fn lead(rc: &Rc<RefCell<Tab>>, user: &str) -> bool {
    let (channel, voting) = match &rc.borrow().mode {
        Mode::Shared(link) if link.hub.is_none() => {
            (link.channel.clone(), matches!(link.leadership, Leadership::Votes { .. }))
        }
        _ => return false,
    };
    let hub = Hub::start(user, channel, Rc::downgrade(rc), voting);
    if let Mode::Shared(link) = &mut rc.borrow_mut().mode {
        link.hub = Some(hub.clone());
    }
    hub.broadcast(ToTabs::HubUp);
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
            later(move || {
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
                crate::http::go_to(crate::pages::LOGIN_PATH);
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
        let client = LiveClient::connect(SessionConfig::default(), tab.status, tab.last_update, tab.next_probe, None);
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
    rc.borrow_mut().mode = Mode::Own(client);
}

/// The leading tab's one connection, subscribed once per topic, and its fan-out to every tab.
struct Hub {
    user: String,
    channel: BroadcastChannel,
    /// The leading tab itself, which hears the hub without the channel.
    local: Weak<RefCell<Tab>>,
    client: RefCell<Option<LiveClient>>,
    fanout: RefCell<Fanout>,
    /// Which tabs answer heartbeats, when the tabs vote (with Web Locks, their locks tell).
    roll: Option<RefCell<Roll>>,
    status: RwSignal<ConnectionStatus>,
    /// The shared WebSocket opened at least once: from then on a drop is waited out, not a
    /// reason to connect tab by tab, unless plain HTTP gets through where the WebSocket does not.
    ever_live: Cell<bool>,
    /// WebSocket attempts in a row that failed while the server answered plain HTTP.
    refusals: Cell<u32>,
    sweep: RefCell<Option<IntervalHandle>>,
}

impl Hub {
    fn start(user: &str, channel: BroadcastChannel, local: Weak<RefCell<Tab>>, voting: bool) -> Rc<Self> {
        let status = RwSignal::new(ConnectionStatus::Connecting);
        let hub = Rc::new(Self {
            user: user.to_owned(),
            channel,
            local,
            client: RefCell::new(None),
            fanout: RefCell::default(),
            roll: voting.then(RefCell::default),
            status,
            ever_live: Cell::new(false),
            refusals: Cell::new(0),
            sweep: RefCell::new(None),
        });
        let weak = Rc::downgrade(&hub);
        let hook: NoticeHook = Rc::new({
            let weak = weak.clone();
            move |notice| {
                if let Some(hub) = weak.upgrade() {
                    match notice {
                        Notice::Status(status) => hub.on_status(status),
                        Notice::WebSocketRefused => hub.on_refused(),
                    }
                }
            }
        });
        // The hub's connection has no fallback of its own (it serves every dashboard of every
        // tab, and the fallbacks serve one): it says when the WebSocket does not get through.
        let config = SessionConfig { report_refusals: true, ..SessionConfig::default() };
        let client = LiveClient::connect(config, status, RwSignal::new(None), RwSignal::new(None), Some(hook));
        *hub.client.borrow_mut() = Some(client);
        *hub.sweep.borrow_mut() = set_interval_with_handle(
            move || {
                if let Some(hub) = weak.upgrade() {
                    hub.sweep();
                }
            },
            SWEEP_EVERY,
        )
        .ok();
        hub
    }

    fn client(&self) -> Option<LiveClient> {
        self.client.borrow().clone()
    }

    fn on_status(&self, status: ConnectionStatus) {
        if status == ConnectionStatus::Live {
            self.ever_live.set(true);
            self.refusals.set(0);
        }
        self.broadcast(ToTabs::Status { status, next_probe: None });
    }

    /// The WebSocket did not get through. If it never has, each tab tries the fallbacks on its
    /// own at once; if it has, the network may have started refusing it (or the server is down,
    /// which the fallbacks would not help): only when plain HTTP gets through, twice, do the tabs
    /// go their own ways.
    fn on_refused(self: &Rc<Self>) {
        if !self.ever_live.get() {
            self.broadcast(ToTabs::Solo);
            return;
        }
        let hub = Rc::downgrade(self);
        leptos::task::spawn_local(async move {
            let reply = crate::http::fetch_within("GET", "/healthz", None, REACH_TIMEOUT).await;
            let Some(hub) = hub.upgrade().filter(|hub| hub.client.borrow().is_some()) else { return };
            if !reply.is_ok_and(|reply| reply.status == 200) {
                hub.refusals.set(0); // the server is not there: waiting it out is all anyone can do
                return;
            }
            hub.refusals.set(hub.refusals.get() + 1);
            if hub.refusals.get() >= REFUSALS_BEFORE_SOLO {
                hub.broadcast(ToTabs::Solo);
            }
        });
    }

    fn receive(self: &Rc<Self>, message: ToHub) {
        let unknown = match (&self.roll, message.tab()) {
            (Some(roll), Some(tab)) => roll.borrow_mut().heard(tab),
            _ => false,
        };
        if let ToHub::Alive { .. } = message {
            if unknown {
                // Swept while it did not answer (frozen): every tab says again what it follows.
                self.broadcast(ToTabs::HubUp);
            }
            return;
        }
        let actions = {
            let mut fanout = self.fanout.borrow_mut();
            match message {
                ToHub::Hello { .. } => {
                    drop(fanout);
                    self.broadcast(ToTabs::Status { status: self.status.get_untracked(), next_probe: None });
                    return;
                }
                ToHub::Subscribe { tab, widget, topic, position } => {
                    fanout.subscribe(Subscriber { tab, widget }, topic, position)
                }
                ToHub::Unsubscribe { tab, widget } => fanout.unsubscribe(&Subscriber { tab, widget }),
                ToHub::Refresh { tab, widget } => fanout.refresh(&Subscriber { tab, widget }),
                ToHub::Leave { tab } => fanout.leave(&tab),
                ToHub::Alive { .. } => return,
                ToHub::Report { action, detail } => {
                    drop(fanout);
                    if let Some(client) = self.client() {
                        client.input(Input::Report { action, detail });
                    }
                    return;
                }
                ToHub::RetryNow => {
                    drop(fanout);
                    if let Some(client) = self.client() {
                        client.input(Input::RetryNow);
                    }
                    return;
                }
            }
        };
        self.perform(actions);
    }

    fn perform(self: &Rc<Self>, actions: Vec<HubAction>) {
        let Some(client) = self.client() else { return };
        for action in actions {
            match action {
                HubAction::Subscribe { topic, position } => {
                    client.subscribe(&topic, &topic, position, self.handler(&topic))
                }
                HubAction::Unsubscribe { topic } => client.unsubscribe(&topic),
                HubAction::Refresh { topic } => client.input(Input::Refresh { widget: topic }),
                HubAction::Deliver { topic, to, delivery } => {
                    self.broadcast(ToTabs::Deliver { topic, to, delivery });
                }
            }
        }
    }

    /// Receives the hub's subscription to `topic` (keyed by the topic itself) and fans it out.
    fn handler(self: &Rc<Self>, topic: &str) -> Handler {
        let weak = Rc::downgrade(self);
        let topic = topic.to_owned();
        Rc::new(move |delivery: &Delivery| {
            let Some(hub) = weak.upgrade() else { return };
            let fanned = hub.fanout.borrow_mut().deliver(&topic, delivery);
            if let Delivery::Update { .. } = delivery {
                // Its size on the channel bounds what the hub keeps: encoded once, for both.
                let bytes = if fanned.to.is_empty() {
                    serde_json::to_string(delivery).map_or(0, |json| json.len())
                } else {
                    hub.broadcast(ToTabs::Deliver { topic: topic.clone(), to: fanned.to, delivery: delivery.clone() })
                };
                hub.fanout.borrow_mut().keep(&topic, delivery, bytes);
            } else if !fanned.to.is_empty() {
                hub.broadcast(ToTabs::Deliver { topic: topic.clone(), to: fanned.to, delivery: delivery.clone() });
            }
            if fanned.refresh {
                let topic = topic.clone();
                later(move || hub.perform(vec![HubAction::Refresh { topic }]));
            }
        })
    }

    /// To every tab: the others over the channel, the leading one directly (after this call).
    /// Returns the message's size on the channel.
    fn broadcast(&self, message: ToTabs) -> usize {
        let bytes = post(&self.channel, &Relay::Tabs(message.clone()));
        let local = self.local.clone();
        later(move || {
            if let Some(rc) = local.upgrade() {
                from_hub(&rc, message);
            }
        });
        bytes
    }

    /// A heartbeat goes out (the tabs vote): lets go of what tabs that stopped answering followed.
    fn beat(self: &Rc<Self>) {
        let Some(roll) = &self.roll else { return };
        let gone = {
            let mut roll = roll.borrow_mut();
            if let Some(tab) = self.local.upgrade() {
                roll.heard(&tab.borrow().id); // the leading tab hears no heartbeat of its own
            }
            roll.beat(&self.fanout.borrow().tabs())
        };
        for tab in gone {
            let actions = self.fanout.borrow_mut().leave(&tab);
            self.perform(actions);
        }
    }

    /// Asks again for the snapshots that never came, and lets go of what tabs that are gone
    /// without a word (no `leave`, no lock) followed.
    fn sweep(self: &Rc<Self>) {
        let stalled = self.fanout.borrow_mut().stalled();
        self.perform(stalled.into_iter().map(|topic| HubAction::Refresh { topic }).collect());
        if self.roll.is_some() {
            return; // the tabs vote: heartbeats tell who is gone
        }
        let Some(locks) = lock_manager() else { return };
        let hub = Rc::clone(self);
        // Only tabs known before the locks are read: one that joins meanwhile may hold no lock yet.
        let known = self.fanout.borrow().tabs();
        leptos::task::spawn_local(async move {
            let Some(held) = held_locks(&locks).await else { return };
            let now = hub.fanout.borrow().tabs();
            let gone = tab_locks::gone(&hub.user, known, &now, &held);
            for tab in gone {
                let actions = hub.fanout.borrow_mut().leave(&tab);
                hub.perform(actions);
            }
        });
    }

    fn close(&self) {
        if let Some(client) = self.client.borrow_mut().take() {
            client.close();
        }
        if let Some(sweep) = self.sweep.borrow_mut().take() {
            sweep.clear();
        }
    }
}

/// Returns the message's size (bytes of JSON).
fn post(channel: &BroadcastChannel, message: &Relay) -> usize {
    let json = message.to_json();
    // A closed channel fails; the tab is going anyway.
    let _ = channel.post_message(&JsValue::from_str(&json));
    json.len()
}

/// Runs `f` after the current call, before anything else happens (a microtask).
fn later(f: impl FnOnce() + 'static) {
    let callback = Closure::once_into_js(f);
    window().queue_microtask(callback.unchecked_ref());
}

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (Web Locks API). web-sys offers it only behind `web_sys_unstable_apis`,
    /// which would change the build flags of every crate; these two calls are all that is used.
    type LockManager;

    #[wasm_bindgen(method)]
    fn request(this: &LockManager, name: &str, callback: &JsValue) -> js_sys::Promise;

    #[wasm_bindgen(method)]
    fn query(this: &LockManager) -> js_sys::Promise;
}

fn lock_manager() -> Option<LockManager> {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok()?;
    let locks = js_sys::Reflect::get(&navigator, &JsValue::from_str("locks")).ok()?;
    (locks.is_object()).then(|| locks.unchecked_into())
}

/// Names of the locks held or asked for now, in any tab of this origin (a tab that just opened may
/// not have been granted its own yet).
async fn held_locks(locks: &LockManager) -> Option<BTreeSet<String>> {
    let snapshot = wasm_bindgen_futures::JsFuture::from(locks.query()).await.ok()?;
    let mut names = BTreeSet::new();
    for list in ["held", "pending"] {
        let infos = js_sys::Reflect::get(&snapshot, &JsValue::from_str(list)).ok()?;
        names.extend(
            js_sys::Array::from(&infos)
                .iter()
                .filter_map(|info| js_sys::Reflect::get(&info, &JsValue::from_str("name")).ok()?.as_string()),
        );
    }
    Some(names)
}

/// A Web Lock asked for, held from when it is granted until released (or the page goes).
struct HeldLock {
    release: Rc<RefCell<Option<js_sys::Function>>>,
    released: Rc<Cell<bool>>,
}

impl HeldLock {
    /// Asks for `name`; `granted` runs once it is this tab's and says whether to keep it.
    fn request(locks: &LockManager, name: &str, granted: impl FnOnce() -> bool + 'static) -> Self {
        let release: Rc<RefCell<Option<js_sys::Function>>> = Rc::default();
        let released = Rc::new(Cell::new(false));
        let callback = Closure::once_into_js({
            let release = release.clone();
            let released = released.clone();
            move |_lock: JsValue| -> JsValue {
                if released.get() || !granted() {
                    return JsValue::UNDEFINED; // lets go at once
                }
                // The lock is held until this promise settles.
                js_sys::Promise::new(&mut |resolve, _reject| {
                    release.borrow_mut().replace(resolve);
                })
                .into()
            }
        });
        // Rejected only when the page goes, which releases everything anyway.
        let _ = locks.request(name, &callback);
        Self { release, released }
    }

    fn release(&self) {
        self.released.set(true);
        if let Some(resolve) = self.release.borrow_mut().take() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}
