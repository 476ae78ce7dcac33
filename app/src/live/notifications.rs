//! The notification centre's model: history with read state, and which events raise a toast.
//!
//! Events in a snapshot are history (shown, already read, never toasted: a reload must not replay
//! old alarms); events in updates are new. A `system:error` is shown at the level its severity
//! implies (low → info, medium → warning, high → error).
//!
//! Beside the topic's events the centre keeps local entries this page made itself (its connection
//! lost and restored, see [`super::connection_events`]): shown and toasted like the others, kept
//! when a snapshot replaces the topic's history.
//!
//! What the user does in one tab (marking read, clearing, choosing which levels pop up) is told to
//! their other tabs of the browser as a [`CentreChange`], naming the events it touched, so a tab
//! that has fewer or more of them changes exactly those.

use super::{connection_events::ConnectionEvent, session::Delivery, topic_view::TopicView};
use protocol::{Event, Item, Level, Severity};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Notifications kept in the centre.
pub const HISTORY: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub event: Event,
    /// The level it is shown at.
    pub level: Level,
    pub read: bool,
    /// Made by this page, not from the topic.
    #[serde(default)]
    pub local: bool,
}

/// The level an event is shown at.
pub fn shown_level(event: &Event) -> Level {
    match (event.event_type.as_str(), event.severity) {
        ("system:error", Some(Severity::Low)) => Level::Info,
        ("system:error", Some(Severity::Medium)) => Level::Warning,
        ("system:error", Some(Severity::High)) => Level::Error,
        _ => event.level,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notifications {
    items: VecDeque<Notification>,
    /// Levels that raise a toast (the user's preference, loaded from the server).
    #[serde(skip, default = "default_toast_levels")]
    pub toast_levels: Vec<Level>,
    /// Toasts the last update raised, for the page to show and take.
    #[serde(skip)]
    pub fresh_toasts: Vec<Notification>,
}

fn default_toast_levels() -> Vec<Level> {
    protocol::dashboard::Preferences::default().toast_levels
}

impl Default for Notifications {
    fn default() -> Self {
        Self { items: VecDeque::new(), toast_levels: default_toast_levels(), fresh_toasts: Vec::new() }
    }
}

impl TopicView for Notifications {
    fn apply(&mut self, delivery: &Delivery) {
        match delivery {
            Delivery::Snapshot { series, .. } => self.replace(series),
            Delivery::Update { series, .. } => {
                let toasts = self.add(series);
                self.fresh_toasts.extend(toasts);
                // Bounded even where nobody takes them (a feed widget shows no toasts).
                let excess = self.fresh_toasts.len().saturating_sub(HISTORY);
                self.fresh_toasts.drain(..excess);
            }
            Delivery::Gap | Delivery::Error { .. } => {}
        }
    }
}

impl Notifications {
    /// History from a snapshot: replaces what is shown, all of it read; local entries stay, in
    /// their place in time.
    pub fn replace(&mut self, items: &[Item]) {
        let local: Vec<Notification> = self.items.drain(..).filter(|n| n.local).collect();
        for event in events(items) {
            self.push(Notification { level: shown_level(event), event: event.clone(), read: true, local: false });
        }
        for n in local {
            let at = self.items.iter().rposition(|kept| kept.event.ts <= n.event.ts).map_or(0, |i| i + 1);
            self.items.insert(at, n);
            if self.items.len() > HISTORY {
                self.items.pop_front();
            }
        }
    }

    /// Records what happened to the page's connection at `now` (ms since the Unix epoch), as the
    /// user reads it; returns it when it should raise a toast. The page's first connection is not
    /// news.
    pub fn connection(&mut self, event: &ConnectionEvent, now: i64) -> Option<Notification> {
        let (title, level) = match event {
            ConnectionEvent::Established => return None,
            ConnectionEvent::Lost { reason } => (format!("Connection lost ({reason})"), Level::Warning),
            ConnectionEvent::Restored { downtime_ms } => {
                (format!("Connection restored after {}", duration(*downtime_ms)), Level::Success)
            }
        };
        let id = format!("local-{}-{now}-{}", event.name(), self.items.len());
        let event = Event::titled(id, now, event.name(), level, title);
        let n = Notification { level, event, read: false, local: true };
        self.push(n.clone());
        self.toast_levels.contains(&level).then_some(n)
    }

    /// New events; returns those that should raise a toast.
    pub fn add(&mut self, items: &[Item]) -> Vec<Notification> {
        let mut toasts = Vec::new();
        for event in events(items) {
            let n = Notification { level: shown_level(event), event: event.clone(), read: false, local: false };
            if self.toast_levels.contains(&n.level) {
                toasts.push(n.clone());
            }
            self.push(n);
        }
        toasts
    }

    pub fn unread(&self) -> usize {
        self.items.iter().filter(|n| !n.read).count()
    }

    /// Marks everything read; returns what the user's other tabs should do the same to.
    pub fn mark_all_read(&mut self) -> CentreChange {
        self.items.iter_mut().for_each(|n| n.read = true);
        CentreChange::Read { events: self.ids() }
    }

    /// Forgets everything; returns what the user's other tabs should forget too.
    pub fn clear(&mut self) -> CentreChange {
        let events = self.ids();
        self.items.clear();
        CentreChange::Cleared { events }
    }

    /// Applies what another tab of the user did; whatever names no event here changes nothing.
    pub fn apply_change(&mut self, change: &CentreChange) {
        match change {
            CentreChange::Read { events } => {
                self.items.iter_mut().filter(|n| events.contains(&n.event.id)).for_each(|n| n.read = true)
            }
            CentreChange::Cleared { events } => self.items.retain(|n| !events.contains(&n.event.id)),
            CentreChange::ToastLevels { levels } => self.toast_levels = levels.clone(),
        }
    }

    fn ids(&self) -> Vec<String> {
        self.items.iter().map(|n| n.event.id.clone()).collect()
    }

    /// Newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &Notification> {
        self.items.iter().rev()
    }

    fn push(&mut self, n: Notification) {
        if self.items.len() == HISTORY {
            self.items.pop_front();
        }
        self.items.push_back(n);
    }
}

/// What one tab of a user tells the others about the notification centre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CentreChange {
    /// These events were marked read.
    Read { events: Vec<String> },
    /// These events were cleared away.
    Cleared { events: Vec<String> },
    /// The levels that raise a toast now.
    ToastLevels { levels: Vec<Level> },
}

/// `12 s`, `3 min 5 s`, `2 h 4 min`.
fn duration(ms: u64) -> String {
    let secs = (ms + 500) / 1000;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 if secs.is_multiple_of(60) => format!("{} min", secs / 60),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

fn events(items: &[Item]) -> impl Iterator<Item = &Event> {
    items.iter().filter_map(|item| match item {
        Item::Event(e) => Some(e),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, event_type: &str, level: Level, severity: Option<Severity>) -> Item {
        Item::Event(Event {
            id: id.into(),
            ts: 0,
            event_type: event_type.into(),
            level,
            title: id.into(),
            body: None,
            severity,
            scheduled_at: None,
            data: None,
        })
    }

    #[test]
    fn severity_decides_how_a_system_error_is_shown() {
        let Item::Event(low) = event("a", "system:error", Level::Error, Some(Severity::Low)) else { panic!() };
        assert_eq!(shown_level(&low), Level::Info);
        let Item::Event(high) = event("b", "system:error", Level::Info, Some(Severity::High)) else { panic!() };
        assert_eq!(shown_level(&high), Level::Error);
        let Item::Event(plain) = event("c", "notification", Level::Success, None) else { panic!() };
        assert_eq!(shown_level(&plain), Level::Success);
    }

    #[test]
    fn history_is_read_and_silent_new_warnings_toast_and_count() {
        let mut n = Notifications::default();
        n.replace(&[event("old", "notification", Level::Error, None)]);
        assert_eq!(n.unread(), 0, "a reload does not replay old alarms");
        let toasts = n.add(&[
            event("i", "notification", Level::Info, None),
            event("w", "notification", Level::Warning, None),
            event("e", "system:error", Level::Info, Some(Severity::Medium)),
        ]);
        let ids: Vec<&str> = toasts.iter().map(|t| t.event.id.as_str()).collect();
        assert_eq!(ids, vec!["w", "e"]);
        assert_eq!(n.unread(), 3);
        let newest: Vec<&str> = n.newest_first().map(|x| x.event.id.as_str()).collect();
        assert_eq!(newest, vec!["e", "w", "i", "old"]);
        n.mark_all_read();
        assert_eq!(n.unread(), 0);
        n.clear();
        assert_eq!(n.newest_first().count(), 0);
    }

    #[test]
    fn preferences_choose_which_levels_toast_and_history_is_bounded() {
        let mut n = Notifications { toast_levels: vec![Level::Error], ..Default::default() };
        assert!(n.add(&[event("w", "notification", Level::Warning, None)]).is_empty());
        for i in 0..HISTORY + 5 {
            n.add(&[event(&i.to_string(), "notification", Level::Info, None)]);
        }
        assert_eq!(n.newest_first().count(), HISTORY);
    }

    #[test]
    fn connection_losses_and_restores_are_local_entries_that_outlive_a_snapshot() {
        let mut n = Notifications { toast_levels: vec![Level::Warning], ..Default::default() };
        assert_eq!(n.connection(&ConnectionEvent::Established, 1), None);
        assert_eq!(n.newest_first().count(), 0, "the first connection is not news");
        n.replace(&[event("a", "notification", Level::Info, None)]);
        let lost = ConnectionEvent::Lost { reason: "the network dropped the connection".into() };
        let toast = n.connection(&lost, 10).expect("warnings toast");
        assert_eq!(toast.event.title, "Connection lost (the network dropped the connection)");
        let restored = ConnectionEvent::Restored { downtime_ms: 12_400 };
        assert_eq!(n.connection(&restored, 20), None, "successes do not toast for this user");
        let titles = |n: &Notifications| n.newest_first().map(|x| x.event.title.clone()).collect::<Vec<_>>();
        assert_eq!(titles(&n)[0], "Connection restored after 12 s");
        assert_eq!(n.unread(), 2);
        // A snapshot after the outage replaces the topic's history, not the page's own entries.
        let Item::Event(mut late) = event("b", "notification", Level::Info, None) else { panic!() };
        late.ts = 15;
        n.replace(&[event("a", "notification", Level::Info, None), Item::Event(late)]);
        assert_eq!(
            titles(&n),
            ["Connection restored after 12 s", "b", "Connection lost (the network dropped the connection)", "a"]
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(400), "0 s");
        assert_eq!(duration(12_400), "12 s");
        assert_eq!(duration(185_000), "3 min 5 s");
        assert_eq!(duration(120_000), "2 min");
        assert_eq!(duration(7_440_000), "2 h 4 min");
    }

    #[test]
    fn another_tab_changes_exactly_the_events_it_names() {
        let [a, b, c] = ["a", "b", "c"].map(|id| event(id, "notification", Level::Info, None));
        let mut here = Notifications::default();
        here.add(&[a.clone(), b.clone()]);
        let mut there = Notifications::default();
        there.add(&[a, b, c]);
        let read = here.mark_all_read();
        assert_eq!(read, CentreChange::Read { events: vec!["a".into(), "b".into()] });
        there.apply_change(&read);
        let unread: Vec<&str> = there.newest_first().filter(|n| !n.read).map(|n| n.event.id.as_str()).collect();
        assert_eq!(unread, ["c"], "what arrived after the other tab marked read stays unread");
        there.apply_change(&here.clear());
        let left: Vec<&str> = there.newest_first().map(|n| n.event.id.as_str()).collect();
        assert_eq!(left, ["c"]);
        there.apply_change(&CentreChange::ToastLevels { levels: vec![Level::Error] });
        assert_eq!(there.toast_levels, [Level::Error]);
        let wire = serde_json::to_string(&read).unwrap();
        assert_eq!(wire, r#"{"kind":"read","events":["a","b"]}"#);
        assert_eq!(serde_json::from_str::<CentreChange>(&wire).unwrap(), read);
    }
}
