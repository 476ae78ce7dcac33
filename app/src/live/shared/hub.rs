//! The hub: the leading tab's one connection, subscribed once per topic, and its fan-out to every
//! tab (the rules are `relay`'s; this is their I/O).

use super::*;

/// The leading tab's one connection, subscribed once per topic, and its fan-out to every tab.
pub(super) struct Hub {
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
    pub(super) fn start(user: &str, channel: BroadcastChannel, local: Weak<RefCell<Tab>>, voting: bool) -> Rc<Self> {
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
                        // The operator's choice, not a network's: every tab polls on its own now.
                        Notice::PollingChosen => {
                            hub.broadcast(ToTabs::Solo);
                        }
                    }
                }
            }
        });
        // The hub's connection has no fallback of its own (it serves every dashboard of every
        // tab, and the fallbacks serve one): it says when the WebSocket does not get through.
        let config = LiveSessionConfig { report_refusals: true, ..crate::live::page_kind::session_config() };
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

    pub(super) fn client(&self) -> Option<LiveClient> {
        self.client.borrow().clone()
    }

    pub(super) fn on_status(&self, status: ConnectionStatus) {
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
    pub(super) fn on_refused(self: &Rc<Self>) {
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

    pub(super) fn receive(self: &Rc<Self>, message: ToHub) {
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
                    let status = self.status.get_untracked();
                    if matches!(status, ConnectionStatus::Polling { by_operator: true, .. }) {
                        // The hub handed its tabs over to polling (it has no dashboard to poll):
                        // a tab that comes later polls on its own too, rather than wait on it.
                        self.broadcast(ToTabs::Solo);
                    } else {
                        self.broadcast(ToTabs::Status { status, next_probe: None });
                    }
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

    pub(super) fn perform(self: &Rc<Self>, actions: Vec<HubAction>) {
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
    pub(super) fn handler(self: &Rc<Self>, topic: &str) -> Handler {
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
                in_a_microtask(move || hub.perform(vec![HubAction::Refresh { topic }]));
            }
        })
    }

    /// To every tab: the others over the channel, the leading one directly (after this call).
    /// Returns the message's size on the channel.
    pub(super) fn broadcast(&self, message: ToTabs) -> usize {
        let bytes = post(&self.channel, &Relay::Tabs(message.clone()));
        let local = self.local.clone();
        in_a_microtask(move || {
            if let Some(rc) = local.upgrade() {
                from_hub(&rc, message);
            }
        });
        bytes
    }

    /// A heartbeat goes out (the tabs vote): lets go of what tabs that stopped answering followed.
    pub(super) fn beat(self: &Rc<Self>) {
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
    pub(super) fn sweep(self: &Rc<Self>) {
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

    pub(super) fn close(&self) {
        if let Some(client) = self.client.borrow_mut().take() {
            client.close();
        }
        if let Some(sweep) = self.sweep.borrow_mut().take() {
            sweep.clear();
        }
    }
}
