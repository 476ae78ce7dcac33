//! The points a chart shows: the newest N, oldest first.
//!
//! Ordering, duplicates and gaps are the session's business (`session.rs`); by the time points get
//! here they are to be shown, so this is only a bounded window.

use super::{session::Delivery, topic_view::TopicView};
use protocol::{Item, Point};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Points a chart keeps on screen.
pub const WINDOW: usize = 120;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesBuffer {
    window: usize,
    points: VecDeque<Point>,
}

impl SeriesBuffer {
    /// A buffer that keeps at most `window` points (at least one).
    pub fn new(window: usize) -> Self {
        Self { window: window.max(1), points: VecDeque::new() }
    }

    /// Replaces everything (a snapshot).
    pub fn replace(&mut self, points: impl IntoIterator<Item = Point>) {
        self.points.clear();
        self.append(points);
    }

    /// Appends, dropping the oldest beyond the window (an update).
    pub fn append(&mut self, points: impl IntoIterator<Item = Point>) {
        self.points.extend(points);
        let excess = self.points.len().saturating_sub(self.window);
        self.points.drain(..excess);
    }

    pub fn points(&self) -> impl ExactSizeIterator<Item = &Point> {
        self.points.iter()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

impl Default for SeriesBuffer {
    fn default() -> Self {
        Self::new(WINDOW)
    }
}

impl TopicView for SeriesBuffer {
    fn apply(&mut self, delivery: &Delivery) {
        let points = |items: &[Item]| items.iter().filter_map(Item::as_point).copied().collect::<Vec<_>>();
        match delivery {
            Delivery::Snapshot { series, .. } => self.replace(points(series)),
            Delivery::Update { series, .. } => self.append(points(series)),
            Delivery::Gap | Delivery::Error { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(values: &[f64]) -> Vec<Point> {
        values.iter().map(|&v| Point { ts: v as i64, value: v }).collect()
    }

    fn values(b: &SeriesBuffer) -> Vec<f64> {
        b.points().map(|p| p.value).collect()
    }

    #[test]
    fn a_snapshot_replaces_and_updates_append_within_the_window() {
        let mut b = SeriesBuffer::new(3);
        b.append(pts(&[9.0]));
        b.replace(pts(&[1.0, 2.0, 3.0, 4.0]));
        assert_eq!(values(&b), vec![2.0, 3.0, 4.0]);
        b.append(pts(&[5.0, 6.0]));
        assert_eq!(values(&b), vec![4.0, 5.0, 6.0]);
        assert_eq!(b.len(), 3);
        b.replace(Vec::new());
        assert!(b.is_empty());
    }

    #[test]
    fn as_a_view_it_takes_points_from_snapshots_and_updates_and_ignores_the_rest() {
        use crate::live::{session::Delivery, topic_view::TopicView};
        use protocol::{Item, Meta, TopicKind};
        let meta = Meta {
            topic: "t".into(),
            kind: TopicKind::Series,
            epoch: "e".into(),
            offset: 1,
            resume_token: "e.1".into(),
        };
        let items = |v: &[f64]| pts(v).into_iter().map(Item::Point).collect::<Vec<_>>();
        let mut b = SeriesBuffer::default();
        b.apply(&Delivery::Snapshot { series: items(&[1.0, 2.0]), meta: meta.clone() });
        b.apply(&Delivery::Update { series: items(&[3.0]), meta, ts: 0 });
        b.apply(&Delivery::Gap);
        assert_eq!(values(&b), vec![1.0, 2.0, 3.0]);
        let restored: SeriesBuffer = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(restored, b, "kept across a page refresh as it was");
    }
}
