//! One server connection for all tabs of a browser: what the tabs and the leading tab (the hub)
//! say to each other over a BroadcastChannel, and how the hub fans one subscription per topic out
//! to every tab's widgets. Pure, so the host tests cover it; the browser part (`shared.rs`) elects
//! the leader and carries the messages.
//!
//! The hub subscribes to each topic once, with the position of the first tab that asked for it.
//! A tab that asks later may stand elsewhere — it was paused, reloaded from a saved page, or the
//! hub it followed closed and this is a new one — and must neither miss what it has not seen nor
//! apply again what it has. So the fan-out tracks where every subscriber stands: an update goes on
//! only to those for which it is the next; a subscriber that stands elsewhere waits for a fresh
//! snapshot, which the hub asks for and passes on only to those that need it — unless what it
//! missed is among the updates the hub keeps of each topic (a few hundred, a few dozen KiB: enough
//! for a tab that reloads), which it then gets instead, so that its view stays whole.

use super::tab_id::TabId;
use super::{
    election::Vote,
    session::{Delivery, WidgetPosition},
    status::ConnectionStatus,
};
use protocol::{ActivityAction, ErrorCode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Updates the hub keeps per topic, to catch up a tab that stands a little behind.
pub const RECENT_UPDATES: usize = 256;
/// Bytes (as JSON) of kept updates per topic.
pub const RECENT_BYTES: usize = 64 * 1024;

/// One widget of one tab: two tabs showing the same dashboard never collide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subscriber {
    pub tab: TabId,
    pub widget: String,
}

/// Everything on the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Relay {
    Hub(ToHub),
    Tabs(ToTabs),
    /// Choosing the leader without Web Locks (`election`).
    Vote(Vote),
}

impl Relay {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("relay messages serialise")
    }

    pub fn parse(json: &str) -> Option<Self> {
        serde_json::from_str(json).ok()
    }
}

/// From a tab to the hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToHub {
    /// The tab is there (it opened, or answers [`ToTabs::HubUp`]): the hub answers with its status.
    Hello {
        tab: TabId,
    },
    Subscribe {
        tab: TabId,
        widget: String,
        topic: String,
        position: Option<WidgetPosition>,
    },
    Unsubscribe {
        tab: TabId,
        widget: String,
    },
    /// A fresh snapshot for this widget (manual refresh).
    Refresh {
        tab: TabId,
        widget: String,
    },
    Report {
        action: ActivityAction,
        detail: String,
    },
    /// The Retry button of some tab.
    RetryNow,
    /// The tab closes: whatever it followed is let go.
    Leave {
        tab: TabId,
    },
    /// The tab heard the leader's heartbeat (when the tabs vote): it is still there.
    Alive {
        tab: TabId,
    },
}

impl ToHub {
    /// The tab that sent it, where it names one.
    pub fn tab(&self) -> Option<&str> {
        match self {
            Self::Hello { tab }
            | Self::Subscribe { tab, .. }
            | Self::Unsubscribe { tab, .. }
            | Self::Refresh { tab, .. }
            | Self::Leave { tab }
            | Self::Alive { tab } => Some(tab),
            Self::Report { .. } | Self::RetryNow => None,
        }
    }
}

/// From the hub to the tabs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToTabs {
    /// A new hub leads: every tab says hello and subscribes its widgets again, from where each stands.
    HubUp,
    /// The shared connection's state, for every tab's pill.
    Status { status: ConnectionStatus, next_probe: Option<f64> },
    /// One delivery of the hub's subscription to `topic`, for these subscribers (a tab whose widget
    /// follows another topic by now drops it).
    Deliver { topic: String, to: Vec<Subscriber>, delivery: Delivery },
    /// The shared WebSocket never got through: every tab connects on its own, with the fallback
    /// transports (SSE, polling) that serve one dashboard each.
    Solo,
}

/// What the hub does with its connection (keyed by topic) after a tab's message.
#[derive(Debug, Clone, PartialEq)]
pub enum HubAction {
    Subscribe {
        topic: String,
        position: Option<WidgetPosition>,
    },
    Unsubscribe {
        topic: String,
    },
    /// Ask the server for a fresh snapshot of the topic.
    Refresh {
        topic: String,
    },
    /// Pass this on to these subscribers now (an error the topic already had, missed updates).
    Deliver {
        topic: String,
        to: Vec<Subscriber>,
        delivery: Delivery,
    },
}

#[derive(Debug, Clone)]
struct Topic {
    /// Where the hub's one subscription stands.
    position: Option<WidgetPosition>,
    /// The server refused the subscription: later subscribers hear it at once.
    refused: Option<Delivery>,
    subscribers: BTreeSet<Subscriber>,
    /// The latest updates, in order and without a hole, ending at `position`.
    recent: Recent,
}

#[derive(Debug, Clone, Default)]
struct Recent {
    updates: VecDeque<(Delivery, usize)>,
    bytes: usize,
}

impl Recent {
    fn push(&mut self, update: Delivery, bytes: usize) {
        let follows = match (self.updates.back(), &update) {
            (Some((Delivery::Update { meta: last, .. }, _)), Delivery::Update { meta, .. }) => {
                last.epoch == meta.epoch && last.offset + 1 == meta.offset
            }
            _ => true,
        };
        if !follows {
            self.clear(); // kept updates are without a hole, or they could not catch anyone up
        }
        self.bytes += bytes;
        self.updates.push_back((update, bytes));
        while self.updates.len() > RECENT_UPDATES || self.bytes > RECENT_BYTES {
            let Some((_, gone)) = self.updates.pop_front() else { break };
            self.bytes -= gone;
        }
    }

    fn clear(&mut self) {
        *self = Self::default();
    }

    /// The kept updates after `from`, if they are all there (`from` is not older than the oldest
    /// kept update's predecessor).
    fn after(&self, from: &WidgetPosition) -> Option<Vec<Delivery>> {
        let first = match self.updates.front() {
            Some((Delivery::Update { meta, .. }, _)) => meta,
            _ => return None,
        };
        if first.epoch != from.epoch || first.offset > from.offset + 1 {
            return None;
        }
        Some(
            self.updates
                .iter()
                .filter(|(update, _)| matches!(update, Delivery::Update { meta, .. } if meta.offset > from.offset))
                .map(|(update, _)| update.clone())
                .collect(),
        )
    }
}

#[derive(Debug, Clone)]
struct Standing {
    topic: String,
    position: Option<WidgetPosition>,
    /// Stands elsewhere than the hub: takes nothing until a snapshot.
    awaiting_snapshot: bool,
    /// Looks for stalls ([`Fanout::stalled`]) that found it still awaiting its snapshot.
    stalled_looks: u8,
}

impl Standing {
    fn new(topic: String, position: Option<WidgetPosition>, awaiting_snapshot: bool) -> Self {
        Self { topic, position, awaiting_snapshot, stalled_looks: 0 }
    }

    fn got_snapshot(&mut self, position: WidgetPosition) {
        self.position = Some(position);
        self.awaiting_snapshot = false;
        self.stalled_looks = 0;
    }
}

/// The hub's subscriptions, one per topic, and every tab's widgets on them.
#[derive(Debug, Clone, Default)]
pub struct Fanout {
    topics: BTreeMap<String, Topic>,
    subscribers: BTreeMap<Subscriber, Standing>,
}

impl Fanout {
    pub fn subscribe(&mut self, who: Subscriber, topic: String, position: Option<WidgetPosition>) -> Vec<HubAction> {
        let mut actions = Vec::new();
        if let Some(standing) = self.subscribers.get(&who) {
            if standing.topic == topic {
                // Said again (a hello crossed the hub's delivery): what the hub sent is what counts.
                return actions;
            }
            actions.extend(self.unsubscribe(&who));
        }
        match self.topics.get_mut(&topic) {
            None => {
                self.topics.insert(
                    topic.clone(),
                    Topic {
                        position: position.clone(),
                        refused: None,
                        subscribers: BTreeSet::from([who.clone()]),
                        recent: Recent::default(),
                    },
                );
                actions.push(HubAction::Subscribe { topic: topic.clone(), position: position.clone() });
                self.subscribers.insert(who, Standing::new(topic, position, false));
            }
            Some(shared) => {
                shared.subscribers.insert(who.clone());
                if let Some(refusal) = &shared.refused {
                    actions.push(HubAction::Deliver {
                        topic: topic.clone(),
                        to: vec![who.clone()],
                        delivery: refusal.clone(),
                    });
                }
                let (position, awaiting_snapshot) = match (position, &shared.position) {
                    // Where the hub stands, or ahead of it (a tab whose updates came from the
                    // previous hub just before the handover): the coming updates tell.
                    (Some(from), Some(hub)) if from.epoch == hub.epoch && from.offset >= hub.offset => {
                        (Some(from), false)
                    }
                    (Some(from), Some(hub)) => match shared.recent.after(&from) {
                        Some(missed) => {
                            actions.extend(missed.into_iter().map(|update| HubAction::Deliver {
                                topic: topic.clone(),
                                to: vec![who.clone()],
                                delivery: update,
                            }));
                            (Some(hub.clone()), false)
                        }
                        None => (Some(from), true),
                    },
                    (position, Some(_)) => (position, true),
                    // The hub's own first snapshot is on its way.
                    (position, None) => (position, true),
                };
                if awaiting_snapshot && shared.position.is_some() && shared.refused.is_none() {
                    actions.push(HubAction::Refresh { topic: topic.clone() });
                }
                self.subscribers.insert(who, Standing::new(topic, position, awaiting_snapshot));
            }
        }
        actions
    }

    pub fn unsubscribe(&mut self, who: &Subscriber) -> Vec<HubAction> {
        let Some(standing) = self.subscribers.remove(who) else { return vec![] };
        let Some(shared) = self.topics.get_mut(&standing.topic) else { return vec![] };
        shared.subscribers.remove(who);
        if !shared.subscribers.is_empty() {
            return vec![];
        }
        self.topics.remove(&standing.topic);
        vec![HubAction::Unsubscribe { topic: standing.topic }]
    }

    /// A manual refresh: the widget takes the next snapshot (as does every other tab on the topic:
    /// see [`Self::deliver`]).
    pub fn refresh(&mut self, who: &Subscriber) -> Vec<HubAction> {
        let Some(standing) = self.subscribers.get_mut(who) else { return vec![] };
        standing.awaiting_snapshot = true;
        vec![HubAction::Refresh { topic: standing.topic.clone() }]
    }

    /// Everything a tab followed (it closed, or its lock is gone).
    pub fn leave(&mut self, tab: &str) -> Vec<HubAction> {
        let gone: Vec<Subscriber> = self.subscribers.keys().filter(|s| s.tab == tab).cloned().collect();
        gone.iter().flat_map(|who| self.unsubscribe(who)).collect()
    }

    /// Tabs with a widget here.
    pub fn tabs(&self) -> BTreeSet<TabId> {
        self.subscribers.keys().map(|s| s.tab.clone()).collect()
    }

    /// Topics the hub follows.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.topics.keys().map(String::as_str)
    }

    /// Who gets this delivery of the hub's subscription to `topic` (the hub's session already
    /// dropped duplicates and out-of-order updates of its own subscription). An update is then
    /// [kept](Self::keep) once the hub knows its size on the channel.
    pub fn deliver(&mut self, topic: &str, delivery: &Delivery) -> Fanned {
        let mut fanned = Fanned::default();
        let Some(shared) = self.topics.get_mut(topic) else { return fanned };
        let to = &mut fanned.to;
        match delivery {
            Delivery::Snapshot { meta, .. } => {
                let position = WidgetPosition::from(meta);
                if shared.position.as_ref() != Some(&position) {
                    shared.recent.clear(); // what is kept no longer ends where the topic stands
                }
                shared.position = Some(position.clone());
                shared.refused = None;
                // Every tab takes it, even one that stands at the same position: what a position
                // shows can change without a new message (the topic rules now hide a field, and
                // the server sent this snapshot to say so).
                for who in &shared.subscribers {
                    let Some(standing) = self.subscribers.get_mut(who) else { continue };
                    to.push(who.clone());
                    standing.got_snapshot(position.clone());
                }
            }
            Delivery::Update { meta, .. } => {
                let position = WidgetPosition::from(meta);
                shared.position = Some(position.clone());
                for who in &shared.subscribers {
                    let Some(standing) = self.subscribers.get_mut(who) else { continue };
                    if standing.awaiting_snapshot {
                        continue;
                    }
                    match standing.position.as_ref().filter(|p| p.epoch == meta.epoch) {
                        // It has this one already (it stood ahead of the hub).
                        Some(p) if meta.offset <= p.offset => {}
                        Some(p) if meta.offset == p.offset + 1 => {
                            to.push(who.clone());
                            standing.position = Some(position.clone());
                        }
                        // A hole or another epoch: it takes a snapshot instead.
                        _ => {
                            standing.awaiting_snapshot = true;
                            fanned.refresh = true;
                        }
                    }
                }
            }
            Delivery::Gap => {
                shared.recent.clear();
                for who in &shared.subscribers {
                    let Some(standing) = self.subscribers.get_mut(who) else { continue };
                    if !standing.awaiting_snapshot {
                        to.push(who.clone());
                        standing.awaiting_snapshot = true;
                    }
                }
            }
            Delivery::Error { code, .. } => {
                if *code == ErrorCode::Forbidden {
                    // The topic rules took the topic away: the hub's subscription ended, and
                    // nothing kept of it may be shown again.
                    shared.position = None;
                    shared.recent.clear();
                }
                if shared.position.is_none() {
                    shared.refused = Some(delivery.clone());
                }
                to.extend(shared.subscribers.iter().cloned());
            }
        }
        fanned
    }

    /// Topics with a subscriber that was already waiting for its snapshot the last time this was
    /// asked: the snapshot asked for was lost (refused as too many refreshes, the topic had none
    /// yet, the socket dropped before it). Called every few seconds, the hub asks again for these,
    /// so that no widget waits for ever.
    pub fn stalled(&mut self) -> Vec<String> {
        let mut topics = BTreeSet::new();
        for standing in self.subscribers.values_mut().filter(|s| s.awaiting_snapshot) {
            standing.stalled_looks = standing.stalled_looks.saturating_add(1);
            if standing.stalled_looks >= 2 {
                topics.insert(standing.topic.clone());
            }
        }
        topics.into_iter().filter(|t| self.topics.get(t).is_some_and(|t| t.refused.is_none())).collect()
    }

    /// Keeps an update just delivered, `bytes` long on the channel (which bounds what is kept), to
    /// catch up a tab that stands a little behind.
    pub fn keep(&mut self, topic: &str, update: &Delivery, bytes: usize) {
        if let (Some(shared), Delivery::Update { .. }) = (self.topics.get_mut(topic), update) {
            shared.recent.push(update.clone(), bytes);
        }
    }
}

/// The outcome of one delivery at the hub.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fanned {
    /// Who gets it.
    pub to: Vec<Subscriber>,
    /// A subscriber just fell out of step: ask the server for a fresh snapshot of the topic.
    pub refresh: bool,
}

/// Which tabs are still there when the tabs vote (there are no locks to tell): each tab answers
/// every heartbeat of the leader from its message handler, which browsers do not throttle, so a
/// tab that left two heartbeats unanswered is gone — however seldom a background leader beats.
#[derive(Debug, Clone, Default)]
pub struct Roll {
    beat: u64,
    /// tab → the beat it was last heard at
    heard: BTreeMap<TabId, u64>,
}

impl Roll {
    /// The tab said something; true when the hub did not know it (it was swept while frozen, say,
    /// and must subscribe again).
    pub fn heard(&mut self, tab: &str) -> bool {
        self.heard.insert(tab.to_owned(), self.beat).is_none()
    }

    /// A heartbeat goes out: which of the tabs with widgets at the hub are gone.
    pub fn beat(&mut self, with_widgets: &BTreeSet<TabId>) -> Vec<TabId> {
        self.beat += 1;
        let beat = self.beat;
        let gone: Vec<TabId> = with_widgets
            .iter()
            .filter(|tab| self.heard.get(*tab).is_none_or(|&heard| heard + 2 < beat))
            .cloned()
            .collect();
        // Forget whoever went silent, with widgets or without (a closed tab's last word).
        self.heard.retain(|_, heard| *heard + 2 >= beat);
        gone
    }
}

/// What a tab does with a delivery from the hub for one of its widgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    Apply,
    /// The widget has it already (it came from the previous hub just before a handover).
    Skip,
    /// It does not follow on from where the widget stands: skip it and ask for a snapshot.
    OutOfStep,
}

/// Whether a tab's widget standing at `position` takes `delivery`: the hub fans out by where it
/// believes each widget stands, and a handover can leave it behind the truth.
pub fn take(position: &Option<WidgetPosition>, delivery: &Delivery) -> Take {
    let Delivery::Update { meta, .. } = delivery else { return Take::Apply };
    match position.as_ref().filter(|p| p.epoch == meta.epoch) {
        Some(p) if meta.offset <= p.offset => Take::Skip,
        Some(p) if meta.offset == p.offset + 1 => Take::Apply,
        _ => Take::OutOfStep,
    }
}

/// Where one of a tab's widgets stands after a delivery: the tab keeps it to subscribe again, from
/// there, with whichever hub leads next.
pub fn advance(position: &mut Option<WidgetPosition>, delivery: &Delivery) {
    match delivery {
        Delivery::Snapshot { meta, .. } | Delivery::Update { meta, .. } => *position = Some(WidgetPosition::from(meta)),
        Delivery::Gap | Delivery::Error { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{ErrorCode, Meta};

    fn meta(offset: u64) -> Meta {
        Meta::at("e1", offset)
    }

    fn at(offset: u64) -> Option<WidgetPosition> {
        Some(WidgetPosition::from(&meta(offset)))
    }

    fn snapshot(offset: u64) -> Delivery {
        Delivery::Snapshot { series: vec![], meta: meta(offset) }
    }

    fn update(offset: u64) -> Delivery {
        Delivery::Update { series: vec![], meta: meta(offset), ts: 0 }
    }

    /// Delivers and keeps, as the hub does.
    fn fan(f: &mut Fanout, topic: &str, delivery: &Delivery, bytes: usize) -> Fanned {
        let fanned = f.deliver(topic, delivery);
        f.keep(topic, delivery, bytes);
        fanned
    }

    fn sub(tab: &str, widget: &str) -> Subscriber {
        Subscriber { tab: tab.into(), widget: widget.into() }
    }

    #[test]
    fn two_tabs_on_one_topic_share_one_subscription() {
        let mut f = Fanout::default();
        assert_eq!(
            f.subscribe(sub("a", "w"), "kpi/x".into(), None),
            vec![HubAction::Subscribe { topic: "kpi/x".into(), position: None }]
        );
        // The hub's snapshot is on its way: the second tab waits for it, no second request.
        assert!(f.subscribe(sub("b", "w"), "kpi/x".into(), None).is_empty());
        assert_eq!(fan(&mut f, "kpi/x", &snapshot(3), 100).to, vec![sub("a", "w"), sub("b", "w")]);
        assert_eq!(fan(&mut f, "kpi/x", &update(4), 100).to, vec![sub("a", "w"), sub("b", "w")]);
        // One tab going does not starve the other; the last one lets the topic go.
        assert!(f.unsubscribe(&sub("a", "w")).is_empty());
        assert_eq!(fan(&mut f, "kpi/x", &update(5), 100).to, vec![sub("b", "w")]);
        assert_eq!(f.unsubscribe(&sub("b", "w")), vec![HubAction::Unsubscribe { topic: "kpi/x".into() }]);
        assert!(fan(&mut f, "kpi/x", &update(6), 100).to.is_empty());
    }

    #[test]
    fn a_late_tab_in_step_takes_updates_and_one_elsewhere_takes_a_snapshot_alone() {
        let mut f = Fanout::default();
        f.subscribe(sub("a", "w"), "t".into(), None);
        fan(&mut f, "t", &snapshot(3), 100);
        fan(&mut f, "t", &update(4), 100);
        // Tab b stands where the hub stands (it followed the same hub before a reload of a).
        assert!(f.subscribe(sub("b", "w"), "t".into(), at(4)).is_empty());
        // Tab c stands behind (it was paused): a fresh snapshot, for it only.
        assert_eq!(f.subscribe(sub("c", "w"), "t".into(), at(2)), vec![HubAction::Refresh { topic: "t".into() }]);
        assert_eq!(
            fan(&mut f, "t", &update(5), 100).to,
            vec![sub("a", "w"), sub("b", "w")],
            "c waits for its snapshot"
        );
        assert_eq!(fan(&mut f, "t", &snapshot(5), 100).to.len(), 3, "a snapshot replaces what every tab shows");
        assert_eq!(fan(&mut f, "t", &update(6), 100).to.len(), 3);
    }

    #[test]
    fn a_new_hub_resumes_from_the_first_tab_and_the_rest_follow_without_a_repeat() {
        let mut f = Fanout::default();
        // After a handover both tabs say where they stand: b's position is where the hub subscribes.
        assert_eq!(
            f.subscribe(sub("b", "w"), "t".into(), at(7)),
            vec![HubAction::Subscribe { topic: "t".into(), position: at(7) }]
        );
        assert!(f.subscribe(sub("c", "w"), "t".into(), at(7)).is_empty());
        // The server replays what came after 7.
        assert_eq!(fan(&mut f, "t", &update(8), 100).to, vec![sub("b", "w"), sub("c", "w")]);
        // A tab that stood elsewhere and said so only now falls out of step, asks and waits.
        let mut g = Fanout::default();
        g.subscribe(sub("b", "w"), "t".into(), at(7));
        assert_eq!(g.subscribe(sub("c", "w"), "t".into(), at(6)), vec![HubAction::Refresh { topic: "t".into() }]);
        assert_eq!(fan(&mut g, "t", &update(8), 100), Fanned { to: vec![sub("b", "w")], refresh: false });
        assert_eq!(
            fan(&mut g, "t", &snapshot(8), 100).to,
            vec![sub("b", "w"), sub("c", "w")],
            "a snapshot reaches all"
        );
    }

    #[test]
    fn a_tab_without_a_position_joining_a_resumed_topic_asks_for_a_snapshot() {
        let mut f = Fanout::default();
        f.subscribe(sub("a", "w"), "t".into(), at(3));
        // The hub resumed from 3; the second tab never had a position.
        assert_eq!(f.subscribe(sub("b", "w"), "t".into(), None), vec![HubAction::Refresh { topic: "t".into() }]);
        assert_eq!(fan(&mut f, "t", &update(4), 100), Fanned { to: vec![sub("a", "w")], refresh: false });
        assert_eq!(fan(&mut f, "t", &snapshot(4), 100).to, vec![sub("a", "w"), sub("b", "w")]);
    }

    #[test]
    fn a_tab_ahead_of_a_new_hub_skips_what_it_has_and_one_with_a_hole_asks_for_a_snapshot() {
        let mut f = Fanout::default();
        // The new hub resumed from b's position; c had two more from the old hub.
        f.subscribe(sub("b", "w"), "t".into(), at(3));
        assert!(f.subscribe(sub("c", "w"), "t".into(), at(5)).is_empty());
        assert_eq!(fan(&mut f, "t", &update(4), 100).to, vec![sub("b", "w")]);
        assert_eq!(fan(&mut f, "t", &update(5), 100).to, vec![sub("b", "w")]);
        assert_eq!(fan(&mut f, "t", &update(6), 100).to, vec![sub("b", "w"), sub("c", "w")]);
        // An update the subscriber cannot follow from (another epoch here) means a snapshot.
        let other = Delivery::Update { series: vec![], meta: Meta { epoch: "e2".into(), ..meta(7) }, ts: 0 };
        let mut g = Fanout::default();
        g.subscribe(sub("a", "w"), "t".into(), at(6));
        assert_eq!(fan(&mut g, "t", &other, 100), Fanned { to: vec![], refresh: true });
        assert_eq!(fan(&mut g, "t", &snapshot(8), 100).to, vec![sub("a", "w")]);
    }

    #[test]
    fn a_tab_a_little_behind_catches_up_from_the_kept_updates_and_one_far_behind_takes_a_snapshot() {
        let mut f = Fanout::default();
        f.subscribe(sub("a", "w"), "t".into(), None);
        fan(&mut f, "t", &snapshot(1), 100);
        for offset in 2..=5 {
            fan(&mut f, "t", &update(offset), 100);
        }
        // Tab b reloaded: its saved page stood at 3.
        assert_eq!(
            f.subscribe(sub("b", "w"), "t".into(), at(3)),
            vec![
                HubAction::Deliver { topic: "t".into(), to: vec![sub("b", "w")], delivery: update(4) },
                HubAction::Deliver { topic: "t".into(), to: vec![sub("b", "w")], delivery: update(5) },
            ]
        );
        assert_eq!(fan(&mut f, "t", &update(6), 100).to, vec![sub("a", "w"), sub("b", "w")]);
        // What is kept is bounded: a tab further behind than that takes a snapshot.
        for offset in 7..7 + RECENT_UPDATES as u64 {
            fan(&mut f, "t", &update(offset), 100);
        }
        assert_eq!(f.subscribe(sub("c", "w"), "t".into(), at(5)), vec![HubAction::Refresh { topic: "t".into() }]);
        let mut big = Fanout::default();
        big.subscribe(sub("a", "w"), "t".into(), None);
        fan(&mut big, "t", &snapshot(1), 100);
        fan(&mut big, "t", &update(2), RECENT_BYTES / 2 + 1);
        fan(&mut big, "t", &update(3), RECENT_BYTES / 2 + 1);
        assert_eq!(big.subscribe(sub("b", "w"), "t".into(), at(1)), vec![HubAction::Refresh { topic: "t".into() }]);
        assert_eq!(
            big.subscribe(sub("c", "w"), "t".into(), at(2)),
            vec![HubAction::Deliver { topic: "t".into(), to: vec![sub("c", "w")], delivery: update(3) }]
        );
    }

    #[test]
    fn gaps_reach_everyone_in_step_and_the_following_snapshot_heals_them() {
        let mut f = Fanout::default();
        f.subscribe(sub("a", "w"), "t".into(), None);
        f.subscribe(sub("b", "w"), "t".into(), None);
        fan(&mut f, "t", &snapshot(1), 100);
        assert_eq!(fan(&mut f, "t", &Delivery::Gap, 10).to, vec![sub("a", "w"), sub("b", "w")]);
        assert!(fan(&mut f, "t", &update(9), 100).to.is_empty(), "nothing until the snapshot");
        assert_eq!(fan(&mut f, "t", &snapshot(9), 100).to, vec![sub("a", "w"), sub("b", "w")]);
    }

    #[test]
    fn a_snapshot_at_the_position_every_tab_stands_at_still_reaches_them_all() {
        let mut f = Fanout::default();
        f.subscribe(sub("a", "w"), "t".into(), None);
        f.subscribe(sub("b", "w"), "t".into(), None);
        fan(&mut f, "t", &snapshot(1), 100);
        fan(&mut f, "t", &update(2), 100);
        // The topic rules now hide a field: the server sends the same position filtered anew, and a
        // tab that kept the old one would go on showing the field.
        assert_eq!(fan(&mut f, "t", &snapshot(2), 100).to, vec![sub("a", "w"), sub("b", "w")]);
        // A manual refresh asks for one the same way.
        assert_eq!(f.refresh(&sub("a", "w")), vec![HubAction::Refresh { topic: "t".into() }]);
        assert_eq!(fan(&mut f, "t", &snapshot(2), 100).to, vec![sub("a", "w"), sub("b", "w")]);
        assert_eq!(fan(&mut f, "t", &update(3), 100).to.len(), 2, "both in step again");
        assert!(f.refresh(&sub("z", "w")).is_empty());
    }

    #[test]
    fn a_refused_topic_tells_later_subscribers_at_once() {
        let mut f = Fanout::default();
        f.subscribe(sub("a", "w"), "bad".into(), None);
        let refusal = Delivery::Error { code: ErrorCode::BadTopic, message: "no".into() };
        assert_eq!(fan(&mut f, "bad", &refusal, 10).to, vec![sub("a", "w")]);
        assert_eq!(
            f.subscribe(sub("b", "w"), "bad".into(), None),
            vec![HubAction::Deliver { topic: "bad".into(), to: vec![sub("b", "w")], delivery: refusal }]
        );
    }

    #[test]
    fn a_topic_the_rules_take_away_is_refused_to_later_tabs_and_forgotten() {
        let mut f = Fanout::default();
        f.subscribe(sub("a", "w"), "finance".into(), None);
        fan(&mut f, "finance", &snapshot(1), 10);
        let forbidden = Delivery::Error { code: ErrorCode::Forbidden, message: "a viewer may not read".into() };
        assert_eq!(fan(&mut f, "finance", &forbidden, 10).to, vec![sub("a", "w")]);
        assert_eq!(
            f.subscribe(sub("b", "w"), "finance".into(), None),
            vec![HubAction::Deliver { topic: "finance".into(), to: vec![sub("b", "w")], delivery: forbidden }],
            "a tab that joins later is told at once, and given nothing the topic had"
        );
    }

    #[test]
    fn a_closed_tab_lets_go_of_what_only_it_followed() {
        let mut f = Fanout::default();
        f.subscribe(sub("a", "w1"), "t1".into(), None);
        f.subscribe(sub("a", "w2"), "t2".into(), None);
        f.subscribe(sub("b", "w1"), "t1".into(), None);
        assert_eq!(f.leave("a"), vec![HubAction::Unsubscribe { topic: "t2".into() }]);
        assert_eq!(f.tabs(), BTreeSet::from(["b".to_owned()]));
        assert_eq!(f.topics().collect::<Vec<_>>(), vec!["t1"]);
    }

    #[test]
    fn a_widget_moved_to_another_topic_lets_the_old_one_go() {
        let mut f = Fanout::default();
        f.subscribe(sub("a", "w"), "t1".into(), None);
        assert_eq!(
            f.subscribe(sub("a", "w"), "t2".into(), None),
            vec![
                HubAction::Unsubscribe { topic: "t1".into() },
                HubAction::Subscribe { topic: "t2".into(), position: None }
            ]
        );
        assert!(f.subscribe(sub("a", "w"), "t2".into(), None).is_empty(), "said twice is said once");
    }

    #[test]
    fn messages_survive_the_channel() {
        let messages = [
            Relay::Hub(ToHub::Subscribe { tab: "a".into(), widget: "w".into(), topic: "t".into(), position: at(3) }),
            Relay::Tabs(ToTabs::Deliver { topic: "t".into(), to: vec![sub("a", "w")], delivery: update(4) }),
            Relay::Tabs(ToTabs::Status {
                status: ConnectionStatus::Reconnecting { attempt: 2, retry_in_secs: 3, cause: 1006 },
                next_probe: None,
            }),
            Relay::Tabs(ToTabs::Solo),
            Relay::Vote(Vote::Query),
            Relay::Vote(Vote::Claim { tab: "a".into(), term: 2 }),
        ];
        for message in messages {
            assert_eq!(Relay::parse(&message.to_json()), Some(message));
        }
        assert_eq!(Relay::parse("{\"for\":\"nobody\"}"), None);
    }

    #[test]
    fn a_tab_that_leaves_two_heartbeats_unanswered_is_gone_and_is_known_again_when_it_speaks() {
        let mut roll = Roll::default();
        let tabs = BTreeSet::from(["a".to_owned(), "b".to_owned()]);
        assert!(roll.heard("a") && roll.heard("b"), "new tabs");
        for _ in 0..5 {
            assert!(roll.beat(&tabs).is_empty(), "both answer");
            assert!(!roll.heard("a") && !roll.heard("b"));
        }
        // b stops answering (it crashed, or froze).
        assert!(roll.beat(&tabs).is_empty());
        roll.heard("a");
        assert!(roll.beat(&tabs).is_empty(), "one beat missed is not enough");
        roll.heard("a");
        assert_eq!(roll.beat(&tabs), vec!["b".to_owned()]);
        assert!(roll.heard("b"), "a swept tab that speaks again is news: it must subscribe again");
        // A tab that left says nothing more: it is forgotten, widgets or not.
        roll.heard("c");
        for _ in 0..3 {
            roll.heard("a");
            roll.heard("b");
            roll.beat(&tabs);
        }
        assert!(roll.heard("c"), "forgotten");
    }

    #[test]
    fn a_tab_skips_what_it_has_and_asks_again_when_out_of_step() {
        // A handover: the old hub's last updates reached the tab after it told the new hub where
        // it stood, and the new hub sends them again. Before, the tab applied them twice.
        assert_eq!(take(&at(9), &update(8)), Take::Skip);
        assert_eq!(take(&at(9), &update(9)), Take::Skip);
        assert_eq!(take(&at(9), &update(10)), Take::Apply);
        assert_eq!(take(&at(9), &update(12)), Take::OutOfStep);
        assert_eq!(take(&None, &update(1)), Take::OutOfStep);
        assert_eq!(take(&at(9), &snapshot(3)), Take::Apply, "a snapshot replaces whatever stood");
        assert_eq!(take(&at(9), &Delivery::Gap), Take::Apply);
    }

    #[test]
    fn a_subscriber_whose_snapshot_never_comes_is_asked_for_again() {
        // Before: a refresh refused as too many, or lost with the socket, left the tab's widget
        // waiting for ever while the pill said Live.
        let mut f = Fanout::default();
        f.subscribe(sub("a", "w"), "t".into(), None);
        fan(&mut f, "t", &snapshot(1), 100);
        assert_eq!(f.subscribe(sub("b", "w"), "t".into(), None), vec![HubAction::Refresh { topic: "t".into() }]);
        assert!(f.stalled().is_empty(), "the first look: its snapshot may be on its way");
        let refused = Delivery::Error { code: ErrorCode::RateLimited, message: "too many".into() };
        fan(&mut f, "t", &refused, 10);
        fan(&mut f, "t", &update(2), 100);
        assert_eq!(f.stalled(), vec!["t".to_owned()]);
        assert_eq!(fan(&mut f, "t", &snapshot(2), 100).to, vec![sub("a", "w"), sub("b", "w")]);
        assert!(f.stalled().is_empty() && f.stalled().is_empty(), "healed");
        // A topic the server refused is not asked for again and again.
        f.subscribe(sub("a", "x"), "bad".into(), None);
        fan(&mut f, "bad", &Delivery::Error { code: ErrorCode::BadTopic, message: "no".into() }, 10);
        f.subscribe(sub("b", "x"), "bad".into(), None);
        f.stalled();
        assert!(f.stalled().is_empty());
    }

    #[test]
    fn a_tab_remembers_where_each_widget_stands() {
        let mut position = None;
        advance(&mut position, &snapshot(2));
        advance(&mut position, &Delivery::Gap);
        assert_eq!(position, at(2));
        advance(&mut position, &update(3));
        assert_eq!(position, at(3));
    }
}
