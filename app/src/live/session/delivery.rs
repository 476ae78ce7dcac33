//! The delivery half of [`LiveSession`]: what reaches a widget, in order and exactly once
//! (offsets, duplicates, gaps, snapshots asked for), and on a fallback the fetches that heal a
//! widget and the updates held while they run.

use super::*;

impl LiveSession {
    /// A widget fetch answered: widgets it left with a hole are fetched again a little later.
    pub(super) fn fetched(&mut self, widgets: &[String]) -> Vec<Effect> {
        let mut unhealed = false;
        for widget in widgets {
            if let Some(sub) = self.subscriptions.get_mut(widget) {
                sub.fetching = false;
                unhealed |= sub.needs_healing();
            }
        }
        if unhealed {
            self.failed_fetches += 1;
            self.schedule_fetch()
        } else {
            self.failed_fetches = 0;
            vec![]
        }
    }

    pub(super) fn schedule_fetch(&mut self) -> Vec<Effect> {
        if self.fetch_scheduled || !self.on_fallback() {
            return vec![];
        }
        self.fetch_scheduled = true;
        vec![Effect::FetchIn(self.config.backoff.delay(self.failed_fetches.max(1), 0.5))]
    }

    /// Fetches every widget that has a hole to fill and no fetch under way.
    pub(super) fn heal(&mut self) -> Vec<Effect> {
        let widgets: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|(_, sub)| sub.needs_healing() && !sub.fetching)
            .map(|(widget, _)| widget.clone())
            .collect();
        widgets.iter().flat_map(|widget| self.fetch(widget)).collect()
    }

    /// On a fallback: the widget's snapshot when it waits for one, else the updates it missed since
    /// its position.
    pub(super) fn fetch(&mut self, widget: &str) -> Vec<Effect> {
        let Some(dashboard) = self.dashboard else { return vec![] };
        let Some(sub) = self.subscriptions.get_mut(widget) else { return vec![] };
        if sub.snapshot_asked {
            sub.awaiting_snapshot = true; // asked during the outage that led to this fallback
        }
        let from = sub.position.as_ref().filter(|_| !sub.awaiting_snapshot);
        let widgets = vec![widget.to_owned()];
        let query = fallback::widget_query(&widgets, from.map(|p| (widget, p.resume_token.as_str())));
        sub.fetching = true;
        vec![Effect::Poll { dashboard, query, purpose: PollPurpose::Widgets(widgets) }]
    }

    pub(super) fn on_message(&mut self, message: ServerMessage) -> Vec<Effect> {
        let deliver = |widget: String, delivery| vec![Effect::Deliver { widget, delivery }];
        match message {
            ServerMessage::Control(ControlMessage::Snapshot { widget_id, series, meta, .. }) => {
                let Some(sub) = self.subscriptions.get_mut(&widget_id) else { return vec![] };
                let stale = !sub.awaiting_snapshot
                    && sub.position.as_ref().is_some_and(|p| p.epoch == meta.epoch && p.offset > meta.offset);
                if stale {
                    // A fallback's fetch answered after the stream had brought newer updates: what
                    // the widget shows already follows on from it.
                    return vec![];
                }
                sub.position = Some(WidgetPosition::from(&meta));
                sub.awaiting_snapshot = false;
                sub.snapshot_asked = false;
                self.socket_delivered = true;
                let mut effects = deliver(widget_id.clone(), Delivery::Snapshot { series, meta });
                effects.extend(self.apply_ahead(&widget_id));
                effects
            }
            ServerMessage::Control(ControlMessage::Gap { widget_id, .. }) => {
                let Some(sub) = self.subscriptions.get_mut(&widget_id) else { return vec![] };
                sub.awaiting_snapshot = true;
                deliver(widget_id, Delivery::Gap)
            }
            ServerMessage::Control(ControlMessage::Error { code, message, widget_id: Some(widget_id) }) => {
                let Some(sub) = self.subscriptions.get_mut(&widget_id) else { return vec![] };
                if code == ErrorCode::RateLimited {
                    sub.snapshot_asked = false; // refused: no snapshot is coming, the view stays live
                }
                if code == ErrorCode::Forbidden {
                    // The server ended the subscription (the topic rules): a later subscription
                    // starts afresh, and nothing held for it is applied.
                    sub.position = None;
                    sub.snapshot_asked = false;
                }
                deliver(widget_id, Delivery::Error { code, message })
            }
            ServerMessage::Update(update) => self.on_update(update),
            ServerMessage::Control(_) => vec![],
        }
    }

    pub(super) fn on_update(&mut self, update: Update) -> Vec<Effect> {
        let on_fallback = self.on_fallback();
        let widget = update.widget_id.clone();
        let Some(sub) = self.subscriptions.get_mut(&widget) else { return vec![] };
        if sub.awaiting_snapshot {
            if on_fallback {
                hold(sub, update); // what follows the snapshot being fetched
            }
            return vec![];
        }
        let next = sub.position.as_ref().filter(|p| p.epoch == update.meta.epoch).map(|p| p.offset + 1);
        match next {
            Some(next) if update.meta.offset < next => vec![], // a duplicate
            Some(next) if update.meta.offset == next => {
                sub.position = Some(WidgetPosition::from(&update.meta));
                self.socket_delivered = true;
                let mut effects = vec![Effect::Deliver { widget: widget.clone(), delivery: delivery_of(update) }];
                effects.extend(self.apply_ahead(&widget));
                effects
            }
            // On a fallback the stream and the fetches overlap: an update ahead of the position
            // waits while what came before it is fetched.
            Some(_) if on_fallback => {
                hold(sub, update);
                if sub.fetching { vec![] } else { self.fetch(&widget) }
            }
            // A hole, another epoch, or an update before any snapshot: the server should have said
            // `gap`; heal it anyway with a fresh snapshot.
            _ => {
                sub.awaiting_snapshot = true;
                sub.position = None;
                let mut effects = vec![Effect::Deliver { widget: widget.clone(), delivery: Delivery::Gap }];
                if on_fallback {
                    hold(sub, update);
                    effects.extend(self.fetch(&widget));
                } else {
                    let resubscribe = subscribe(&widget, sub);
                    let unsubscribe = ClientMessage::Unsubscribe { widget_id: widget };
                    effects.extend([Effect::Send(unsubscribe), Effect::Send(resubscribe)]);
                }
                effects
            }
        }
    }

    /// Applies the held updates that now follow on from the widget's position; asks for what is
    /// still missing before the rest.
    pub(super) fn apply_ahead(&mut self, widget: &str) -> Vec<Effect> {
        let Some(sub) = self.subscriptions.get_mut(widget) else { return vec![] };
        let mut effects = Vec::new();
        while let Some(position) = &sub.position
            && let Some(entry) = sub.ahead.first_entry()
        {
            let update = entry.get();
            if update.meta.epoch == position.epoch && update.meta.offset <= position.offset {
                entry.remove(); // brought by the snapshot or the fetch already
            } else if update.meta.epoch == position.epoch && update.meta.offset == position.offset + 1 {
                let update = entry.remove();
                sub.position = Some(WidgetPosition::from(&update.meta));
                effects.push(Effect::Deliver { widget: widget.to_owned(), delivery: delivery_of(update) });
            } else {
                break;
            }
        }
        if sub.needs_healing() && !sub.fetching && self.on_fallback() {
            effects.extend(self.fetch(widget));
        }
        effects
    }
}

/// Keeps an out-of-order update on a fallback, within [`AHEAD_MAX`] (the newest go first: the
/// fetch under way brings them again).
pub(super) fn hold(sub: &mut WidgetSubscription, update: Update) {
    sub.ahead.insert(update.meta.offset, update);
    if sub.ahead.len() > AHEAD_MAX {
        sub.ahead.pop_last();
    }
}

pub(super) fn delivery_of(update: Update) -> Delivery {
    Delivery::Update { series: update.series, meta: update.meta, ts: update.ts }
}

/// Resumes from the subscription's position, unless it waits for a snapshot (a gap, a refresh):
/// then it asks afresh, which starts with one.
pub(super) fn subscribe(widget: &str, sub: &WidgetSubscription) -> ClientMessage {
    ClientMessage::Subscribe {
        widget_id: widget.to_owned(),
        topic: sub.topic.clone(),
        resume_token: sub.position.as_ref().filter(|_| !sub.wants_snapshot()).map(|p| p.resume_token.clone()),
    }
}
