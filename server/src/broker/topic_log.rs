//! One topic's log: an epoch, a monotonically increasing offset and a bounded history.
//!
//! Pure data structure, no locks and no I/O: the broker wraps it. Every entry keeps its update
//! already encoded, so a message is serialised once, whether it goes to a thousand live subscribers
//! or is replayed later to a client that resumes. History is bounded by count, by bytes and by age;
//! the broker can trim further ([`TopicLog::drop_oldest`]) when the tenant as a whole holds too much,
//! and age is also enforced by a periodic sweep ([`TopicLog::expire`]) so that a topic that went
//! quiet gives its memory back.

use super::position::Position;
use std::{collections::VecDeque, sync::Arc};

#[derive(Debug)]
pub struct Entry {
    pub offset: u64,
    /// When the broker accepted the message, ms since the Unix epoch.
    pub ts: i64,
    /// The update with every field but `widgetId`, encoded (see `encode`).
    pub body: Arc<str>,
    /// This entry's resume token (`epoch.offset`), shared by every frame that carries it.
    pub position: Arc<str>,
}

/// What a subscriber that stopped at some position needs to catch up.
#[derive(Debug)]
pub enum Catchup {
    /// Every entry after the position, in order (possibly none).
    Replay(Vec<Arc<Entry>>),
    /// The history cannot bridge the gap (other epoch, too old, or not ours): start from a snapshot.
    Gap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Most entries kept (at least one).
    pub max_entries: usize,
    /// Entries older than this are forgotten, in ms.
    pub max_age_ms: i64,
    /// Most bytes the entries may hold together (see [`Entry::bytes`]).
    pub max_bytes: usize,
}

/// What an entry costs beyond its two strings: the `Arc`, the offset and the queue slot.
pub const ENTRY_OVERHEAD: usize = 96;

impl Entry {
    /// What keeping this entry costs, about.
    pub fn bytes(&self) -> usize {
        self.body.len() + self.position.len() + ENTRY_OVERHEAD
    }
}

#[derive(Debug)]
pub struct TopicLog {
    epoch: String,
    /// Offset of the newest entry; 0 before the first (offsets start at 1).
    last_offset: u64,
    entries: VecDeque<Arc<Entry>>,
    limits: HistoryLimits,
    /// What the entries cost together.
    bytes: usize,
    /// When the newest entry trimmed away was accepted: history before it is incomplete.
    newest_trimmed_ts: Option<i64>,
}

impl TopicLog {
    pub fn new(epoch: String, limits: HistoryLimits) -> Self {
        Self { epoch, last_offset: 0, entries: VecDeque::new(), limits, bytes: 0, newest_trimmed_ts: None }
    }

    /// A log that continues a history kept elsewhere: its first entry will be `offset + 1`, and
    /// what came before, accepted up to `trimmed_ts`, is not here.
    pub fn starting_after(mut self, offset: u64, trimmed_ts: Option<i64>) -> Self {
        self.last_offset = offset;
        self.newest_trimmed_ts = trimmed_ts;
        self
    }

    /// What the history costs now, about.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Where the log stands now: a snapshot taken now continues from here.
    pub fn position(&self) -> Position {
        Position { epoch: self.epoch.clone(), offset: self.last_offset }
    }

    /// Appends a message at time `ts`; `encode` turns its position into the shared update body.
    pub fn append(&mut self, ts: i64, encode: impl FnOnce(&Position) -> String) -> Arc<Entry> {
        self.last_offset += 1;
        let position = self.position();
        let body = encode(&position).into();
        let entry = Arc::new(Entry { offset: self.last_offset, ts, body, position: position.token().into() });
        self.bytes += entry.bytes();
        self.entries.push_back(entry.clone());
        while self.entries.len() > self.limits.max_entries.max(1)
            || (self.bytes > self.limits.max_bytes && self.entries.len() > 1)
        {
            self.drop_oldest();
        }
        self.expire(ts);
        entry
    }

    /// The entry at `offset`, while history still holds it.
    pub fn entry_at(&self, offset: u64) -> Option<&Arc<Entry>> {
        let first = self.entries.front()?.offset;
        self.entries.get(usize::try_from(offset.checked_sub(first)?).ok()?)
    }

    /// Forgets the oldest entry, if there is one.
    pub fn drop_oldest(&mut self) -> bool {
        let Some(trimmed) = self.entries.pop_front() else { return false };
        self.bytes -= trimmed.bytes();
        self.newest_trimmed_ts = Some(trimmed.ts);
        true
    }

    /// Forgets the entries that are too old at time `now`; returns how many.
    pub fn expire(&mut self, now: i64) -> usize {
        let mut expired = 0;
        while self.entries.front().is_some_and(|e| self.too_old(e, now)) {
            self.drop_oldest();
            expired += 1;
        }
        expired
    }

    /// What a subscriber at `from` missed, as of time `now`.
    pub fn catch_up(&self, from: &Position, now: i64) -> Catchup {
        if from.epoch != self.epoch || from.offset > self.last_offset {
            return Catchup::Gap;
        }
        let fresh = self.entries.iter().skip_while(|e| self.too_old(e, now));
        let missed: Vec<Arc<Entry>> = fresh.filter(|e| e.offset > from.offset).cloned().collect();
        let first_needed = from.offset + 1;
        match missed.first() {
            Some(first) if first.offset != first_needed => Catchup::Gap,
            None if first_needed <= self.last_offset => Catchup::Gap,
            _ => Catchup::Replay(missed),
        }
    }

    /// Every entry accepted after `since` (ms since the Unix epoch), as of time `now`; a gap when
    /// history no longer holds all of them (an entry after `since` was trimmed or has aged out).
    pub fn catch_up_since(&self, since: i64, now: i64) -> Catchup {
        let aged_out = self.entries.iter().take_while(|e| self.too_old(e, now)).last().map(|e| e.ts);
        if self.newest_trimmed_ts.max(aged_out).is_some_and(|ts| ts > since) {
            return Catchup::Gap;
        }
        Catchup::Replay(self.entries.iter().filter(|e| e.ts > since).cloned().collect())
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn too_old(&self, entry: &Entry, now: i64) -> bool {
        entry.ts < now.saturating_sub(self.limits.max_age_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HistoryLimits = HistoryLimits { max_entries: 100, max_age_ms: 60_000, max_bytes: 1 << 20 };

    fn log_with(n: u64, limits: HistoryLimits) -> TopicLog {
        let mut log = TopicLog::new("ab".into(), limits);
        for i in 1..=n {
            log.append(i as i64 * 1000, |p| p.offset.to_string());
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
        Position { epoch: "ab".into(), offset }
    }

    #[test]
    fn offsets_start_at_one_and_increase() {
        let log = log_with(3, LIMITS);
        assert_eq!(log.position(), at(3));
        assert_eq!(offsets(log.catch_up(&at(0), 3000)), Some(vec![1, 2, 3]));
    }

    #[test]
    fn body_is_encoded_with_the_entrys_own_position() {
        let log = log_with(2, LIMITS);
        let Catchup::Replay(entries) = log.catch_up(&at(0), 0) else { panic!() };
        assert_eq!(&*entries[1].body, "2");
    }

    #[test]
    fn replays_exactly_what_was_missed() {
        let log = log_with(10, LIMITS);
        assert_eq!(offsets(log.catch_up(&at(7), 10_000)), Some(vec![8, 9, 10]));
        assert_eq!(offsets(log.catch_up(&at(10), 10_000)), Some(vec![]));
    }

    #[test]
    fn history_beyond_the_count_is_a_gap() {
        let log = log_with(10, HistoryLimits { max_entries: 4, ..LIMITS }); // keeps 7..=10
        assert_eq!(log.len(), 4);
        assert_eq!(offsets(log.catch_up(&at(6), 10_000)), Some(vec![7, 8, 9, 10]));
        assert_eq!(offsets(log.catch_up(&at(5), 10_000)), None);
    }

    #[test]
    fn history_beyond_the_age_is_a_gap() {
        let log = log_with(10, HistoryLimits { max_age_ms: 3_500, ..LIMITS }); // at t=10 s keeps 7..=10
        assert_eq!(log.len(), 4);
        assert_eq!(offsets(log.catch_up(&at(6), 10_000)), Some(vec![7, 8, 9, 10]));
        assert_eq!(offsets(log.catch_up(&at(5), 10_000)), None);
        // Time passes without publishes: what has aged out no longer counts.
        assert_eq!(offsets(log.catch_up(&at(6), 11_000)), None);
        assert_eq!(offsets(log.catch_up(&at(10), 60_000)), Some(vec![]), "up to date needs nothing");
    }

    #[test]
    fn catching_up_from_a_time_replays_what_came_after_it_or_says_gap() {
        let log = log_with(10, HistoryLimits { max_entries: 4, ..LIMITS }); // keeps 7..=10 (ts 7000..)
        assert_eq!(offsets(log.catch_up_since(8_500, 10_000)), Some(vec![9, 10]));
        assert_eq!(offsets(log.catch_up_since(6_000, 10_000)), Some(vec![7, 8, 9, 10]), "6 is no loss");
        assert_eq!(offsets(log.catch_up_since(5_999, 10_000)), None, "entry 6 was trimmed");
        assert_eq!(offsets(log.catch_up_since(20_000, 10_000)), Some(vec![]));
        let aging = log_with(10, HistoryLimits { max_age_ms: 3_500, ..LIMITS });
        assert_eq!(offsets(aging.catch_up_since(8_000, 11_000)), Some(vec![9, 10]));
        assert_eq!(offsets(aging.catch_up_since(6_000, 11_000)), None, "entry 7 aged out by now");
    }

    #[test]
    fn history_is_bounded_by_bytes() {
        let mut log = TopicLog::new("ab".into(), HistoryLimits { max_bytes: 2_000, ..LIMITS });
        for i in 1..=50 {
            log.append(i, |_| "x".repeat(300));
        }
        assert!(log.bytes() <= 2_000, "{}", log.bytes());
        assert_eq!(log.len(), 4, "entries of 401 bytes");
        assert_eq!(log.bytes(), log.entries.iter().map(|e| e.bytes()).sum::<usize>());
        assert_eq!(offsets(log.catch_up(&at(40), 50)), None, "what was trimmed is a gap");
        log.append(51, |_| "y".repeat(5_000));
        assert_eq!(log.len(), 1, "one entry over the budget is kept alone: the newest is never refused");
    }

    #[test]
    fn expiring_gives_the_memory_of_a_quiet_topic_back() {
        let mut log = log_with(10, HistoryLimits { max_age_ms: 5_000, ..LIMITS }); // keeps 5..=10
        assert_eq!(log.expire(12_000), 2, "5 and 6 are older than 5 s at t=12 s");
        assert_eq!(log.expire(12_000), 0);
        assert_eq!(log.expire(100_000), 4);
        assert!(log.is_empty());
        assert_eq!(log.bytes(), 0);
        assert_eq!(offsets(log.catch_up(&at(10), 100_000)), Some(vec![]), "up to date still needs nothing");
        assert_eq!(offsets(log.catch_up(&at(9), 100_000)), None);
    }

    #[test]
    fn another_epoch_or_a_future_offset_is_a_gap() {
        let log = log_with(3, LIMITS);
        assert!(matches!(log.catch_up(&Position { epoch: "cd".into(), offset: 1 }, 0), Catchup::Gap));
        assert!(matches!(log.catch_up(&at(4), 0), Catchup::Gap));
    }
}
