//! A widget's mode applied to what arrives: Live passes everything on at once; the interval modes
//! hold deliveries and release them, in order, at each tick (the widget stays subscribed);
//! Manual passes on the snapshot its refresh asked for.
//!
//! Two exceptions keep an interval widget honest: the first snapshot is shown at once (a
//! one-minute widget is not blank for a minute after the page loads), and what is held is bounded
//! ([`HELD_MAX`]): a hidden tab whose timers the browser throttles would otherwise hold updates
//! without end. Past the bound the held updates are dropped and the next tick asks for a fresh
//! snapshot instead, shown as soon as it comes.

use super::session::Delivery;
use protocol::dashboard::WidgetMode;

/// Deliveries an interval widget holds at most between two ticks.
pub const HELD_MAX: usize = 512;

#[derive(Debug, Clone, Default)]
pub struct ModeGate {
    mode: WidgetMode,
    held: Vec<Delivery>,
    /// A refresh asked for a snapshot: it is shown when it comes, not at the next tick.
    snapshot_due: bool,
    /// Nothing has been shown yet: the first snapshot passes at once.
    blank: bool,
    /// More arrived than may be held: the next tick asks for a snapshot instead.
    overflowed: bool,
}

/// What an interval's tick does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tick {
    /// Apply these, in order.
    pub apply: Vec<Delivery>,
    /// Ask for a fresh snapshot (what was held overflowed and was dropped).
    pub ask_snapshot: bool,
}

impl ModeGate {
    pub fn new(mode: WidgetMode) -> Self {
        Self { mode, held: Vec::new(), snapshot_due: false, blank: true, overflowed: false }
    }

    pub fn mode(&self) -> WidgetMode {
        self.mode
    }

    /// What to apply now of `delivery`.
    pub fn offer(&mut self, delivery: Delivery) -> Vec<Delivery> {
        let data = matches!(delivery, Delivery::Snapshot { .. } | Delivery::Update { .. });
        if self.mode.interval_secs().is_none() || matches!(delivery, Delivery::Error { .. }) {
            self.blank &= !data;
            return vec![delivery];
        }
        if matches!(delivery, Delivery::Snapshot { .. }) {
            // It replaces the widget's state: what was held before it no longer matters.
            self.held.retain(|d| matches!(d, Delivery::Gap));
            self.overflowed = false;
            if std::mem::take(&mut self.snapshot_due) || std::mem::take(&mut self.blank) {
                self.held.push(delivery);
                return self.release();
            }
        }
        if self.overflowed {
            return Vec::new(); // the snapshot the next tick asks for replaces it
        }
        self.held.push(delivery);
        if self.held.len() > HELD_MAX {
            self.held.retain(|d| matches!(d, Delivery::Gap));
            self.overflowed = true;
        }
        Vec::new()
    }

    /// The interval's tick.
    pub fn tick(&mut self) -> Tick {
        let ask_snapshot = std::mem::take(&mut self.overflowed);
        if ask_snapshot {
            self.snapshot_due = true;
        }
        Tick { apply: self.release(), ask_snapshot }
    }

    /// The user asked for the latest now: everything held, and the snapshot the caller requests
    /// will be passed on as soon as it arrives.
    pub fn refresh(&mut self) -> Vec<Delivery> {
        self.snapshot_due = self.mode.interval_secs().is_some();
        self.release()
    }

    /// Everything held, in arrival order (a manual refresh, a mode change, the page saving).
    pub fn release(&mut self) -> Vec<Delivery> {
        let held = std::mem::take(&mut self.held);
        self.blank &= !held.iter().any(|d| matches!(d, Delivery::Snapshot { .. } | Delivery::Update { .. }));
        held
    }

    /// Switches mode; what was held is released at once (or, when it overflowed, a snapshot asked
    /// for).
    pub fn set_mode(&mut self, mode: WidgetMode) -> Tick {
        self.mode = mode;
        self.tick()
    }

    /// Deliveries waiting for the next tick.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Meta;

    fn meta(offset: u64) -> Meta {
        Meta::at("e", offset)
    }

    fn update(offset: u64) -> Delivery {
        Delivery::Update { series: vec![], meta: meta(offset), ts: 0 }
    }

    fn offsets(deliveries: &[Delivery]) -> Vec<u64> {
        deliveries
            .iter()
            .filter_map(|d| match d {
                Delivery::Update { meta, .. } | Delivery::Snapshot { meta, .. } => Some(meta.offset),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn live_passes_everything_at_once() {
        let mut gate = ModeGate::new(WidgetMode::Live);
        assert_eq!(offsets(&gate.offer(update(1))), [1]);
        assert_eq!(gate.held(), 0);
    }

    fn shown_once() -> ModeGate {
        let mut gate = ModeGate::new(WidgetMode::Every30s);
        gate.offer(Delivery::Snapshot { series: vec![], meta: meta(0) });
        gate
    }

    #[test]
    fn an_interval_shows_the_first_snapshot_at_once() {
        // Before: a one-minute widget stayed blank for up to a minute after the page loaded.
        let mut gate = ModeGate::new(WidgetMode::Every1min);
        assert_eq!(offsets(&gate.offer(Delivery::Snapshot { series: vec![], meta: meta(4) })), [4]);
        assert!(gate.offer(update(5)).is_empty(), "then it holds");
        assert!(gate.offer(Delivery::Snapshot { series: vec![], meta: meta(9) }).is_empty());
    }

    #[test]
    fn what_an_interval_holds_is_bounded_and_the_tick_after_an_overflow_asks_for_a_snapshot() {
        // Before: a hidden tab (timers throttled to once a minute) held every update in between.
        let mut gate = shown_once();
        for offset in 1..=3 * HELD_MAX as u64 {
            gate.offer(update(offset));
            assert!(gate.held() <= HELD_MAX);
        }
        let tick = gate.tick();
        assert!(tick.ask_snapshot && tick.apply.is_empty(), "nothing that no longer follows on is applied");
        assert_eq!(offsets(&gate.offer(Delivery::Snapshot { series: vec![], meta: meta(2000) })), [2000], "at once");
        assert_eq!(gate.tick(), Tick::default());
    }

    #[test]
    fn an_interval_holds_everything_until_the_tick_and_loses_nothing() {
        let mut gate = shown_once();
        for offset in 1..=3 {
            assert!(gate.offer(update(offset)).is_empty());
        }
        assert_eq!(gate.held(), 3);
        assert_eq!(offsets(&gate.release()), [1, 2, 3]);
        assert!(gate.release().is_empty());
        let error = Delivery::Error { code: protocol::ErrorCode::BadTopic, message: "x".into() };
        assert_eq!(gate.offer(error.clone()), [error], "errors are shown at once");
    }

    #[test]
    fn a_refresh_shows_the_snapshot_it_asked_for_at_once() {
        let mut gate = ModeGate::new(WidgetMode::Every1min);
        gate.offer(update(1));
        assert_eq!(offsets(&gate.refresh()), [1]);
        assert_eq!(offsets(&gate.offer(Delivery::Snapshot { series: vec![], meta: meta(5) })), [5]);
        assert!(gate.offer(update(6)).is_empty(), "then the interval holds again");
        assert!(gate.offer(Delivery::Snapshot { series: vec![], meta: meta(9) }).is_empty(), "only one snapshot");
    }

    #[test]
    fn a_snapshot_supersedes_what_was_held_and_switching_mode_releases() {
        let mut gate = ModeGate::new(WidgetMode::Every5s);
        gate.offer(Delivery::Snapshot { series: vec![], meta: meta(0) });
        gate.offer(update(1));
        gate.offer(Delivery::Gap);
        gate.offer(Delivery::Snapshot { series: vec![], meta: meta(9) });
        gate.offer(update(10));
        let released = gate.set_mode(WidgetMode::Live).apply;
        assert_eq!(released[0], Delivery::Gap, "the gap is still announced");
        assert_eq!(offsets(&released), [9, 10]);
        assert_eq!(gate.mode(), WidgetMode::Live);
    }
}
