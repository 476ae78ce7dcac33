//! One topic's log: an epoch, a monotonically increasing offset and a bounded history.
//!
//! Pure data structure, no locks and no I/O: the broker wraps it. Every entry keeps its update
//! already encoded, so a message is serialised once, whether it goes to a thousand live subscribers
//! or is replayed later to a client that resumes.

use super::position::Position;
use app::protocol::Point;
use std::{collections::VecDeque, sync::Arc};

#[derive(Debug)]
pub struct Entry {
    pub offset: u64,
    pub ts: i64,
    pub points: Vec<Point>,
    /// The update with every field but `widgetId`, encoded (see `encode`).
    pub body: Arc<str>,
}

/// What a subscriber that stopped at some position needs to catch up.
#[derive(Debug)]
pub enum Catchup {
    /// Every entry after the position, in order (possibly none).
    Replay(Vec<Arc<Entry>>),
    /// The history cannot bridge the gap (other epoch, or too old): start from a snapshot.
    Gap,
}

#[derive(Debug)]
pub struct TopicLog {
    epoch: String,
    /// Offset of the newest entry; 0 before the first (offsets start at 1).
    last_offset: u64,
    entries: VecDeque<Arc<Entry>>,
    capacity: usize,
}

impl TopicLog {
    /// An empty log that keeps the newest `capacity` entries (at least one).
    pub fn new(epoch: String, capacity: usize) -> Self {
        Self {
            epoch,
            last_offset: 0,
            entries: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Where the log stands now: a snapshot taken now continues from here.
    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch.clone(),
            offset: self.last_offset,
        }
    }

    /// Appends a message; `encode` turns (its position, ts, points) into the shared update body.
    pub fn append(
        &mut self,
        ts: i64,
        points: Vec<Point>,
        encode: impl FnOnce(&Position, i64, &[Point]) -> String,
    ) -> Arc<Entry> {
        self.last_offset += 1;
        let body = encode(&self.position(), ts, &points).into();
        let entry = Arc::new(Entry {
            offset: self.last_offset,
            ts,
            points,
            body,
        });
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry.clone());
        entry
    }

    /// What a subscriber at `from` missed.
    pub fn catch_up(&self, from: &Position) -> Catchup {
        if from.epoch != self.epoch || from.offset > self.last_offset {
            return Catchup::Gap;
        }
        let oldest_kept = self
            .entries
            .front()
            .map_or(self.last_offset + 1, |e| e.offset);
        if from.offset + 1 < oldest_kept {
            return Catchup::Gap;
        }
        let skip = (from.offset + 1 - oldest_kept) as usize;
        Catchup::Replay(self.entries.iter().skip(skip).cloned().collect())
    }

    /// The newest `max` points, oldest first.
    pub fn recent_points(&self, max: usize) -> Vec<Point> {
        let mut points: Vec<Point> = self
            .entries
            .iter()
            .rev()
            .flat_map(|e| e.points.iter().rev())
            .take(max)
            .copied()
            .collect();
        points.reverse();
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(n: u64, capacity: usize) -> TopicLog {
        let mut log = TopicLog::new("ab".into(), capacity);
        for i in 1..=n {
            log.append(
                i as i64,
                vec![Point {
                    ts: i as i64,
                    value: i as f64,
                }],
                |p, _, _| p.offset.to_string(),
            );
        }
        log
    }

    fn offsets(c: Catchup) -> Option<Vec<u64>> {
        match c {
            Catchup::Replay(entries) => Some(entries.iter().map(|e| e.offset).collect()),
            Catchup::Gap => None,
        }
    }

    fn at(offset: u64) -> Position {
        Position {
            epoch: "ab".into(),
            offset,
        }
    }

    #[test]
    fn offsets_start_at_one_and_increase() {
        let log = log_with(3, 10);
        assert_eq!(log.position(), at(3));
        assert_eq!(offsets(log.catch_up(&at(0))), Some(vec![1, 2, 3]));
    }

    #[test]
    fn body_is_encoded_with_the_entrys_own_position() {
        let log = log_with(2, 10);
        let Catchup::Replay(entries) = log.catch_up(&at(0)) else {
            panic!()
        };
        assert_eq!(&*entries[1].body, "2");
    }

    #[test]
    fn replays_exactly_what_was_missed() {
        let log = log_with(10, 10);
        assert_eq!(offsets(log.catch_up(&at(7))), Some(vec![8, 9, 10]));
        assert_eq!(offsets(log.catch_up(&at(10))), Some(vec![]));
    }

    #[test]
    fn history_beyond_capacity_is_a_gap() {
        let log = log_with(10, 4); // keeps 7..=10
        assert_eq!(offsets(log.catch_up(&at(6))), Some(vec![7, 8, 9, 10]));
        assert_eq!(offsets(log.catch_up(&at(5))), None);
    }

    #[test]
    fn another_epoch_or_a_future_offset_is_a_gap() {
        let log = log_with(3, 10);
        assert!(matches!(
            log.catch_up(&Position {
                epoch: "cd".into(),
                offset: 1
            }),
            Catchup::Gap
        ));
        assert!(matches!(log.catch_up(&at(4)), Catchup::Gap));
    }

    #[test]
    fn recent_points_are_the_newest_in_order() {
        let log = log_with(5, 10);
        let values: Vec<f64> = log.recent_points(3).iter().map(|p| p.value).collect();
        assert_eq!(values, vec![3.0, 4.0, 5.0]);
        assert_eq!(log.recent_points(100).len(), 5);
    }
}
