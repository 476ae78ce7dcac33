//! A chart's view of a `series` topic: the last N points and the log position they reach.
//!
//! This is where "no loss, no duplicate" is enforced on the client: an update is applied only if it
//! is the very next offset of the same epoch. An older offset is a duplicate (dropped); a later one
//! or another epoch means something was missed, and the caller must resynchronise from a snapshot.

use crate::protocol::{Meta, Point};
use std::collections::VecDeque;

/// What applying an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The points were appended.
    Appended,
    /// Already applied (same epoch, offset not newer): ignored.
    Duplicate,
    /// Offsets were skipped or the epoch changed: the buffer is stale until the next snapshot.
    Missed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub epoch: String,
    pub offset: u64,
}

#[derive(Debug, Clone)]
pub struct SeriesBuffer {
    window: usize,
    points: VecDeque<Point>,
    position: Option<Position>,
}

impl SeriesBuffer {
    /// A buffer that keeps at most `window` points (at least one).
    pub fn new(window: usize) -> Self {
        Self { window: window.max(1), points: VecDeque::new(), position: None }
    }

    /// Replaces everything with a snapshot's points and position.
    pub fn apply_snapshot(&mut self, points: &[Point], meta: &Meta) {
        self.points.clear();
        self.points.extend(points.iter().skip(points.len().saturating_sub(self.window)));
        self.position = Some(Position { epoch: meta.epoch.clone(), offset: meta.offset });
    }

    /// Appends an update if it is the next one in the log.
    pub fn apply_update(&mut self, points: &[Point], meta: &Meta) -> Applied {
        let Some(position) = &mut self.position else {
            return Applied::Missed;
        };
        if position.epoch != meta.epoch {
            return Applied::Missed;
        }
        if meta.offset <= position.offset {
            return Applied::Duplicate;
        }
        if meta.offset != position.offset + 1 {
            return Applied::Missed;
        }
        position.offset = meta.offset;
        self.points.extend(points.iter().copied());
        let excess = self.points.len().saturating_sub(self.window);
        self.points.drain(..excess);
        Applied::Appended
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

    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TopicKind;

    fn meta(epoch: &str, offset: u64) -> Meta {
        Meta { topic: "t".into(), kind: TopicKind::Series, epoch: epoch.into(), offset, resume_token: String::new() }
    }

    fn pts(values: &[f64]) -> Vec<Point> {
        values.iter().map(|&v| Point { ts: v as i64, value: v }).collect()
    }

    fn values(b: &SeriesBuffer) -> Vec<f64> {
        b.points().map(|p| p.value).collect()
    }

    #[test]
    fn snapshot_then_consecutive_updates_append() {
        let mut b = SeriesBuffer::new(10);
        b.apply_snapshot(&pts(&[1.0, 2.0]), &meta("e", 2));
        assert_eq!(b.apply_update(&pts(&[3.0]), &meta("e", 3)), Applied::Appended);
        assert_eq!(b.apply_update(&pts(&[4.0]), &meta("e", 4)), Applied::Appended);
        assert_eq!(values(&b), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(b.position(), Some(&Position { epoch: "e".into(), offset: 4 }));
    }

    #[test]
    fn replayed_offsets_are_dropped() {
        let mut b = SeriesBuffer::new(10);
        b.apply_snapshot(&pts(&[1.0]), &meta("e", 5));
        assert_eq!(b.apply_update(&pts(&[9.0]), &meta("e", 5)), Applied::Duplicate);
        assert_eq!(b.apply_update(&pts(&[9.0]), &meta("e", 2)), Applied::Duplicate);
        assert_eq!(values(&b), vec![1.0]);
    }

    #[test]
    fn a_skipped_offset_or_new_epoch_is_reported_not_applied() {
        let mut b = SeriesBuffer::new(10);
        b.apply_snapshot(&pts(&[1.0]), &meta("e", 1));
        assert_eq!(b.apply_update(&pts(&[3.0]), &meta("e", 3)), Applied::Missed);
        assert_eq!(b.apply_update(&pts(&[2.0]), &meta("other", 2)), Applied::Missed);
        assert_eq!(values(&b), vec![1.0]);
        b.apply_snapshot(&pts(&[7.0, 8.0]), &meta("other", 9));
        assert_eq!(b.apply_update(&pts(&[10.0]), &meta("other", 10)), Applied::Appended);
        assert_eq!(values(&b), vec![7.0, 8.0, 10.0]);
    }

    #[test]
    fn updates_before_any_snapshot_are_missed() {
        let mut b = SeriesBuffer::new(3);
        assert_eq!(b.apply_update(&pts(&[1.0]), &meta("e", 1)), Applied::Missed);
        assert!(b.is_empty());
    }

    #[test]
    fn the_window_keeps_only_the_newest_points() {
        let mut b = SeriesBuffer::new(3);
        b.apply_snapshot(&pts(&[1.0, 2.0, 3.0, 4.0]), &meta("e", 4));
        assert_eq!(values(&b), vec![2.0, 3.0, 4.0]);
        b.apply_update(&pts(&[5.0, 6.0]), &meta("e", 5));
        assert_eq!(values(&b), vec![4.0, 5.0, 6.0]);
        assert_eq!(b.len(), 3);
    }
}
