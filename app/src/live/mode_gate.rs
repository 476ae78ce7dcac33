//! A widget's mode applied to what arrives: Live passes everything on at once; the interval modes
//! hold deliveries and release them, in order, at each tick (nothing is dropped: the widget stays
//! subscribed); Manual passes on the snapshot its refresh asked for.

use super::session::Delivery;
use crate::dashboard::WidgetMode;

#[derive(Debug, Clone, Default)]
pub struct ModeGate {
    mode: WidgetMode,
    held: Vec<Delivery>,
    /// A refresh asked for a snapshot: it is shown when it comes, not at the next tick.
    snapshot_due: bool,
}

impl ModeGate {
    pub fn new(mode: WidgetMode) -> Self {
        Self { mode, held: Vec::new(), snapshot_due: false }
    }

    pub fn mode(&self) -> WidgetMode {
        self.mode
    }

    /// What to apply now of `delivery`.
    pub fn offer(&mut self, delivery: Delivery) -> Vec<Delivery> {
        if self.mode.interval_secs().is_none() || matches!(delivery, Delivery::Error { .. }) {
            return vec![delivery];
        }
        if matches!(delivery, Delivery::Snapshot { .. }) {
            // It replaces the widget's state: what was held before it no longer matters.
            self.held.retain(|d| matches!(d, Delivery::Gap));
            if std::mem::take(&mut self.snapshot_due) {
                self.held.push(delivery);
                return self.release();
            }
        }
        self.held.push(delivery);
        Vec::new()
    }

    /// The user asked for the latest now: everything held, and the snapshot the caller requests
    /// will be passed on as soon as it arrives.
    pub fn refresh(&mut self) -> Vec<Delivery> {
        self.snapshot_due = self.mode.interval_secs().is_some();
        self.release()
    }

    /// The interval's tick, or a manual refresh: everything held, in arrival order.
    pub fn release(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.held)
    }

    /// Switches mode; what was held is released at once.
    pub fn set_mode(&mut self, mode: WidgetMode) -> Vec<Delivery> {
        self.mode = mode;
        self.release()
    }

    /// Deliveries waiting for the next tick.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Meta;

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

    #[test]
    fn an_interval_holds_everything_until_the_tick_and_loses_nothing() {
        let mut gate = ModeGate::new(WidgetMode::Every30s);
        for offset in 1..=3 {
            assert!(gate.offer(update(offset)).is_empty());
        }
        assert_eq!(gate.held(), 3);
        assert_eq!(offsets(&gate.release()), [1, 2, 3]);
        assert!(gate.release().is_empty());
        let error = Delivery::Error { code: crate::protocol::ErrorCode::BadTopic, message: "x".into() };
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
        gate.offer(update(1));
        gate.offer(Delivery::Gap);
        gate.offer(Delivery::Snapshot { series: vec![], meta: meta(9) });
        gate.offer(update(10));
        let released = gate.set_mode(WidgetMode::Live);
        assert_eq!(released[0], Delivery::Gap, "the gap is still announced");
        assert_eq!(offsets(&released), [9, 10]);
        assert_eq!(gate.mode(), WidgetMode::Live);
    }
}
