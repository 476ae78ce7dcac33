//! One benchmark client's account of what it received: latencies, and every offset checked, so a
//! lost or repeated message is counted, never assumed away. Pure, so the host tests check it.

use crate::scan::{Kind, Seen};

#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Publish→receive of every message, in µs.
    pub latencies_us: Vec<u32>,
    pub deliveries: u64,
    pub bytes: u64,
    /// Offsets skipped: by a jump, a `gap` and its snapshot, or never received by the end.
    pub lost: u64,
    /// Messages at or before an offset already seen.
    pub repeated: u64,
    pub gaps: u64,
    /// The last offset of each topic (`bench/0`…) this client stands at.
    pub last: Vec<u64>,
    /// When the last message came, in µs since the run's epoch.
    pub last_at_us: u64,
}

impl Tally {
    /// A client subscribed to `bench/0`…`bench/{n-1}` at these offsets.
    pub fn starting_at(last: Vec<u64>) -> Self {
        Self { last, ..Self::default() }
    }

    /// Accounts for one message received at `now_us`, `bytes` long.
    pub fn record(&mut self, seen: &Seen, bytes: usize, now_us: u64) {
        if seen.kind == Kind::Gap {
            // It names the widget, not the topic; the snapshot that follows says what was skipped.
            self.gaps += 1;
            return;
        }
        let Some(topic) = seen.topic.and_then(topic_index).filter(|t| *t < self.last.len()) else { return };
        let Some(offset) = seen.offset else { return };
        let last = &mut self.last[topic];
        match seen.kind {
            Kind::Update => {
                if offset <= *last {
                    self.repeated += 1;
                    return;
                }
                self.lost += offset - *last - 1;
                *last = offset;
                self.deliveries += 1;
                self.bytes += bytes as u64;
                self.last_at_us = now_us;
                if let Some(sent) = seen.value {
                    self.latencies_us.push(now_us.saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
                }
            }
            // A snapshot after a gap stands for the messages up to its offset: they were not
            // delivered one by one.
            Kind::Start if offset > *last => {
                self.lost += offset - *last;
                *last = offset;
            }
            Kind::Start | Kind::Gap | Kind::Other => {}
        }
    }

    /// Whether this client has every topic up to `finals`.
    pub fn caught_up(&self, finals: &[u64]) -> bool {
        behind(&self.last, finals) == 0
    }

    /// Counts what never came as lost.
    pub fn close(&mut self, finals: &[u64]) {
        self.lost += behind(&self.last, finals);
    }
}

/// How many updates a client standing at `last` (an offset per topic) has yet to receive once each
/// topic has reached `finals`.
fn behind(last: &[u64], finals: &[u64]) -> u64 {
    last.iter().zip(finals).map(|(last, last_published)| last_published.saturating_sub(*last)).sum()
}

/// How many updates clients standing at `starts` (one list of topic offsets per client) are owed
/// once each topic has reached `finals`.
pub fn owed<'a>(starts: impl IntoIterator<Item = &'a [u64]>, finals: &[u64]) -> u64 {
    starts.into_iter().map(|start| behind(start, finals)).sum()
}

/// `bench/7` → 7.
pub fn topic_index(topic: &[u8]) -> Option<usize> {
    std::str::from_utf8(topic.strip_prefix(b"bench/")?).ok()?.parse().ok()
}

pub fn topic_name(index: usize) -> String {
    format!("bench/{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(kind: Kind, topic: &'static str, offset: u64, value: Option<u64>) -> Seen<'static> {
        Seen { kind, topic: Some(topic.as_bytes()), offset: Some(offset), value }
    }

    #[test]
    fn in_order_messages_are_delivered_with_their_latency() {
        let mut tally = Tally::starting_at(vec![3, 0]);
        tally.record(&seen(Kind::Update, "bench/0", 4, Some(100)), 50, 150);
        tally.record(&seen(Kind::Update, "bench/1", 1, Some(120)), 50, 160);
        assert_eq!((tally.deliveries, tally.lost, tally.repeated), (2, 0, 0));
        assert_eq!(tally.latencies_us, vec![50, 40]);
        assert_eq!((tally.bytes, tally.last_at_us), (100, 160));
        assert!(tally.caught_up(&[4, 1]));
        assert!(!tally.caught_up(&[5, 1]));
    }

    #[test]
    fn jumps_repeats_gaps_and_a_missing_tail_are_counted() {
        let mut tally = Tally::starting_at(vec![0]);
        tally.record(&seen(Kind::Update, "bench/0", 1, Some(0)), 1, 1);
        tally.record(&seen(Kind::Update, "bench/0", 4, Some(0)), 1, 1); // 2 and 3 lost
        tally.record(&seen(Kind::Update, "bench/0", 4, Some(0)), 1, 1); // repeated
        tally.record(&Seen { kind: Kind::Gap, topic: None, offset: None, value: None }, 1, 1);
        tally.record(&seen(Kind::Start, "bench/0", 9, None), 1, 1); // 5 to 9 skipped by the snapshot
        assert_eq!((tally.deliveries, tally.lost, tally.repeated, tally.gaps), (2, 7, 1, 1));
        tally.close(&[12]);
        assert_eq!(tally.lost, 10);
    }

    #[test]
    fn messages_of_other_topics_are_ignored() {
        let mut tally = Tally::starting_at(vec![0]);
        tally.record(&seen(Kind::Update, "bench/5", 1, Some(0)), 1, 1);
        tally.record(&seen(Kind::Update, "sales/orders", 1, Some(0)), 1, 1);
        assert_eq!(tally.deliveries, 0);
        assert_eq!(topic_index(b"bench/12"), Some(12));
        assert_eq!(topic_name(3), "bench/3");
    }
    #[test]
    fn clients_are_owed_every_offset_past_where_each_stood() {
        let starts = [vec![3, 0], vec![5, 2]];
        assert_eq!(owed(starts.iter().map(Vec::as_slice), &[10, 4]), (7 + 4) + (5 + 2));
        // A client already past the end is owed nothing, not a negative count.
        assert_eq!(owed([[12_u64].as_slice()], &[10]), 0);
    }
}
