//! A connection's write queue: bounded, shared by all its subscriptions, drained by one writer.
//! The broker fills it and the transports drain it, so neither depends on the other.
//!
//! Publishers push into it from the broker without awaiting (a plain mutex, held for a push), and
//! the connection task drains everything queued in one go and writes it with a single flush. A
//! client that stops reading cannot make it grow: when it is full, the subscription owning the oldest
//! queued update loses all its queued updates and is marked lagging; the connection then sends that
//! subscription a `gap` and a fresh snapshot. Control frames (snapshots, errors, pongs) are never
//! dropped; there is at most a handful per subscription.
//!
//! The outbox also decides when its writer is called, so that a burst of updates costs one wake-up,
//! not one per update: only the first frame after a write calls it. A paced outbox (a WebSocket's,
//! see [`crate::write_tick`]) calls it at once only when it last wrote a window ago or more, or when
//! updates fill half the queue (holding must never make a subscription lag); otherwise it books the
//! next write tick. Control frames always call at once.

use crate::{telemetry, write_tick::WriteTick};
use axum::extract::ws::Utf8Bytes;
use protocol::TopicKind;
use std::time::{Duration, Instant};
use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex},
};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub enum Frame {
    /// A complete message: welcome, error, pong.
    Whole(String),
    /// A subscription lost updates; its snapshot follows.
    Gap { widget: Arc<str>, text: String },
    /// An update: the subscription's `{"widgetId":…,` prefix and the message's body, glued once
    /// and shared by reference count with every subscriber of the same widget id and fields (all the
    /// viewers of one dashboard). `published_at` is when a live publish was accepted (for the
    /// push-latency metric); replayed history has none. `position` is its resume token.
    Update { widget: Arc<str>, kind: TopicKind, text: Utf8Bytes, published_at: Option<Instant>, position: Arc<str> },
    /// A subscription's snapshot, and the position it stands at.
    Snapshot { widget: Arc<str>, kind: TopicKind, text: String, position: Arc<str> },
    /// A subscription ended by the server: the error that says why (a topic the user may no
    /// longer read), after which nothing more of it comes.
    Refused { widget: Arc<str>, text: String },
}

impl Frame {
    /// The message, as a WebSocket sends it: an update's shared text is not copied.
    pub fn into_text(self) -> Utf8Bytes {
        match self {
            Frame::Whole(text)
            | Frame::Gap { text, .. }
            | Frame::Snapshot { text, .. }
            | Frame::Refused { text, .. } => text.into(),
            Frame::Update { text, .. } => text,
        }
    }

    /// The message's text.
    pub fn text(&self) -> &str {
        match self {
            Frame::Whole(text)
            | Frame::Gap { text, .. }
            | Frame::Snapshot { text, .. }
            | Frame::Refused { text, .. } => text,
            Frame::Update { text, .. } => text,
        }
    }

    /// The subscription an update belongs to; `None` for frames that are never dropped.
    fn widget(&self) -> Option<&Arc<str>> {
        match self {
            Frame::Update { widget, .. } => Some(widget),
            Frame::Whole(_) | Frame::Gap { .. } | Frame::Snapshot { .. } | Frame::Refused { .. } => None,
        }
    }

    /// The subscription a frame is about, if any.
    pub fn subscription(&self) -> Option<&Arc<str>> {
        match self {
            Frame::Update { widget, .. }
            | Frame::Gap { widget, .. }
            | Frame::Snapshot { widget, .. }
            | Frame::Refused { widget, .. } => Some(widget),
            Frame::Whole(_) => None,
        }
    }

    /// Whether this is a live event message (a notification, a job's step, an activity): what the
    /// delivery metric (`livedash_event_deliveries_total`) follows on its way.
    pub fn is_live_event(&self) -> bool {
        matches!(self, Frame::Update { kind: TopicKind::Events, published_at: Some(_), .. })
    }

    /// The subscription and resume token a delivered frame moves forward.
    pub fn position(&self) -> Option<(&Arc<str>, &Arc<str>)> {
        match self {
            Frame::Update { widget, position, .. } | Frame::Snapshot { widget, position, .. } => {
                Some((widget, position))
            }
            Frame::Whole(_) | Frame::Gap { .. } | Frame::Refused { .. } => None,
        }
    }
}

/// An update's message: the subscription's prefix and the shared body, glued.
pub fn update_text(prefix: &str, body: &str) -> String {
    let mut text = String::with_capacity(prefix.len() + body.len());
    text.push_str(prefix);
    text.push_str(body);
    text
}

/// What the writer takes out in one go.
#[derive(Debug, Default)]
pub struct Batch {
    /// The queue itself, handed over whole: an idle connection then holds no queue at all.
    pub frames: VecDeque<Frame>,
    /// Subscriptions that lost updates since the last batch and need a gap and a snapshot.
    pub lagging: Vec<Arc<str>>,
}

#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
    /// Paced: at most one write a window, late writers woken by this tick.
    tick: Option<Arc<WriteTick>>,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Frame>,
    queued_updates: usize,
    lagging: HashSet<Arc<str>>,
    to_report: Vec<Arc<str>>,
    /// The writer has been called (woken, or booked on the tick) since it last took: what is
    /// pushed now goes out with what it takes then.
    called: bool,
    /// When the writer last took something to write.
    /// (The runtime's clock, which tests can pause.)
    took_at: Option<tokio::time::Instant>,
}

/// How a push calls the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// It has been called already.
    Not,
    Now,
    /// At the next write tick.
    Tick,
}

impl Outbox {
    /// A queue that holds at most `capacity` updates (at least one), whose writer is called as soon
    /// as something arrives.
    pub fn new(capacity: usize) -> Self {
        Self { state: Mutex::default(), ready: Notify::new(), capacity: capacity.max(1), tick: None }
    }

    /// A queue whose writer writes at most once per `tick`'s window (see the module docs).
    pub fn paced(capacity: usize, tick: Arc<WriteTick>) -> Self {
        Self { tick: Some(tick), ..Self::new(capacity) }
    }

    pub fn push(&self, frame: Frame) {
        let mut state = self.state.lock().expect("outbox lock");
        state.frames.push_back(frame);
        state.called = true;
        drop(state);
        self.ready.notify_one();
    }

    /// Queues an update unless its subscription is lagging (its coming snapshot covers it).
    pub fn push_update(self: &Arc<Self>, frame: Frame) {
        let event = usize::from(frame.is_live_event());
        telemetry::event_deliveries("queued", event);
        let mut state = self.state.lock().expect("outbox lock");
        let widget = frame.widget().expect("push_update takes updates");
        // Nearly always empty: skip hashing the widget id on every update.
        if !state.lagging.is_empty() && state.lagging.contains(widget) {
            drop(state);
            return telemetry::event_deliveries("dropped", event);
        }
        if state.queued_updates >= self.capacity {
            state.drop_oldest_subscription();
            if state.lagging.contains(frame.widget().expect("update")) {
                state.called = true;
                drop(state);
                telemetry::event_deliveries("dropped", event);
                return self.ready.notify_one();
            }
        }
        state.queued_updates += 1;
        state.frames.push_back(frame);
        let half_full = state.queued_updates == self.capacity.div_ceil(2);
        let call = state.call(self.tick.as_ref().map(|tick| tick.window()), half_full);
        drop(state);
        match call {
            Call::Now => self.ready.notify_one(),
            Call::Tick => self.tick.as_ref().expect("only a paced outbox books the tick").book(self.clone()),
            Call::Not => {}
        }
    }

    /// Ends a lag: queues `frames` (gap, snapshot) and accepts the subscription's updates again.
    /// Called under the topic's lock so no update can slip in before the snapshot.
    pub fn end_lag(&self, widget: &Arc<str>, frames: impl IntoIterator<Item = Frame>) {
        let mut state = self.state.lock().expect("outbox lock");
        state.lagging.remove(widget);
        state.frames.extend(frames);
        state.called = true;
        drop(state);
        self.ready.notify_one();
    }

    /// Drops everything queued for a subscription that has ended: its updates, and its snapshot
    /// and gap too (encoded for what it could read before; it may start again under other rules).
    pub fn forget(&self, widget: &Arc<str>) {
        let mut state = self.state.lock().expect("outbox lock");
        let withdrawn = state.remove_updates_of(widget);
        telemetry::event_deliveries("withdrawn", withdrawn);
        state.frames.retain(|f| f.subscription() != Some(widget));
        state.lagging.remove(widget);
        state.to_report.retain(|w| w != widget);
    }

    pub fn take(&self) -> Batch {
        let mut state = self.state.lock().expect("outbox lock");
        state.queued_updates = 0;
        state.called = false;
        let batch = Batch { frames: std::mem::take(&mut state.frames), lagging: std::mem::take(&mut state.to_report) };
        if !batch.frames.is_empty() || !batch.lagging.is_empty() {
            state.took_at = Some(tokio::time::Instant::now());
        }
        batch
    }

    /// Has the writer take what is queued (perhaps nothing) now: its connection has something to
    /// check before it writes more (see `LiveConnection::take`).
    pub fn wake(&self) {
        self.ready.notify_one();
    }

    /// Waits until the writer is called: something to write (see the module docs on when), or
    /// `wake`.
    pub async fn ready(&self) {
        self.ready.notified().await
    }

    /// Updates queued now.
    #[cfg(test)]
    fn backlog(&self) -> usize {
        self.state.lock().expect("outbox lock").queued_updates
    }
}

impl State {
    /// How an update pushed now calls the writer, which writes at most once per `window` (if
    /// paced).
    fn call(&mut self, window: Option<Duration>, half_full: bool) -> Call {
        // Holding must never make a subscription lag: half a queue goes out at once, even if the
        // writer is booked on the tick.
        if half_full {
            self.called = true;
            return Call::Now;
        }
        if self.called {
            return Call::Not;
        }
        self.called = true;
        match (window, self.took_at) {
            (Some(window), Some(took_at)) if took_at.elapsed() < window => Call::Tick,
            _ => Call::Now,
        }
    }

    fn drop_oldest_subscription(&mut self) {
        let Some(victim) = self.frames.iter().find_map(|f| f.widget().cloned()) else {
            return;
        };
        let dropped = self.remove_updates_of(&victim);
        telemetry::event_deliveries("dropped", dropped);
        metrics::counter!(telemetry::DROPS, "reason" => "slow_subscriber").increment(1);
        self.lagging.insert(victim.clone());
        self.to_report.push(victim);
    }

    /// Removes the subscription's queued updates; returns how many were live events.
    fn remove_updates_of(&mut self, widget: &Arc<str>) -> usize {
        let before = self.frames.len();
        let mut events = 0;
        self.frames.retain(|f| {
            let keep = f.widget() != Some(widget);
            events += usize::from(!keep && f.is_live_event());
            keep
        });
        self.queued_updates -= before - self.frames.len();
        events
    }
}

/// What a closed connection had not yet taken is withdrawn, not lost: its subscriber left first.
impl Drop for State {
    fn drop(&mut self) {
        telemetry::event_deliveries("withdrawn", self.frames.iter().filter(|f| f.is_live_event()).count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(widget: &str, n: u32) -> Frame {
        Frame::Update {
            widget: widget.into(),
            kind: TopicKind::Series,
            text: format!("{widget}:{n}").into(),
            published_at: None,
            position: n.to_string().into(),
        }
    }

    fn texts(batch: Batch) -> Vec<String> {
        batch.frames.iter().map(|frame| frame.text().to_owned()).collect()
    }

    #[test]
    fn frames_come_out_in_order() {
        let outbox = Arc::new(Outbox::new(10));
        outbox.push(Frame::Whole("welcome".into()));
        outbox.push_update(update("a", 1));
        outbox.push_update(update("b", 2));
        assert_eq!(texts(outbox.take()), vec!["welcome", "a:1", "b:2"]);
        assert!(outbox.take().frames.is_empty());
    }

    #[test]
    fn when_full_the_oldest_subscription_lags_and_is_reported_once() {
        let outbox = Arc::new(Outbox::new(3));
        outbox.push_update(update("a", 1));
        outbox.push_update(update("b", 1));
        outbox.push_update(update("a", 2));
        outbox.push_update(update("b", 2)); // full: "a" owns the oldest update
        outbox.push_update(update("a", 3)); // ignored while "a" lags
        assert_eq!(outbox.backlog(), 2);
        let batch = outbox.take();
        assert_eq!(batch.lagging, vec![Arc::<str>::from("a")]);
        assert_eq!(texts(batch), vec!["b:1", "b:2"]);

        outbox.push_update(update("a", 4));
        assert!(outbox.take().frames.is_empty(), "still lagging until its snapshot");
        outbox.end_lag(&"a".into(), [Frame::Whole("gap".into()), Frame::Whole("snap".into())]);
        outbox.push_update(update("a", 5));
        let batch = outbox.take();
        assert!(batch.lagging.is_empty());
        assert_eq!(texts(batch), vec!["gap", "snap", "a:5"]);
    }

    #[test]
    fn a_lone_subscription_that_overflows_lags_itself() {
        let outbox = Arc::new(Outbox::new(2));
        for n in 1..=5 {
            outbox.push_update(update("a", n));
        }
        let batch = outbox.take();
        assert_eq!(batch.lagging.len(), 1);
        assert!(batch.frames.is_empty());
    }

    #[test]
    fn memory_stays_bounded_however_much_is_pushed() {
        let outbox = Arc::new(Outbox::new(8));
        for n in 0..10_000 {
            outbox.push_update(update(["a", "b", "c"][n as usize % 3], n));
            assert!(outbox.backlog() <= 8);
        }
    }

    /// Whether the writer has been called (and the call is used up).
    async fn called(outbox: &Outbox) -> bool {
        tokio::time::timeout(Duration::ZERO, outbox.ready()).await.is_ok()
    }

    #[tokio::test]
    async fn the_writer_is_called_once_for_everything_pushed_until_it_takes() {
        let outbox = Arc::new(Outbox::new(10));
        outbox.push_update(update("a", 1));
        outbox.push_update(update("a", 2));
        outbox.push_update(update("b", 1));
        assert!(called(&outbox).await);
        assert!(!called(&outbox).await, "one call for the three");
        assert_eq!(texts(outbox.take()), vec!["a:1", "a:2", "b:1"]);
        outbox.push_update(update("a", 3));
        assert!(called(&outbox).await, "an unpaced writer is called at once after its write");
        outbox.take();
        outbox.push(Frame::Whole("pong".into()));
        assert!(called(&outbox).await, "and for a control frame");
    }

    #[tokio::test]
    async fn a_paced_writer_is_held_after_a_write_and_called_at_once_for_control_frames() {
        // A window no test run outlasts: whatever the machine's load, "under a window ago" holds.
        let outbox = Arc::new(Outbox::paced(10, WriteTick::start(Duration::from_secs(3600))));
        outbox.push_update(update("a", 1));
        assert!(called(&outbox).await, "the first update of a connection that never wrote goes at once");
        outbox.take();
        outbox.push_update(update("a", 2));
        outbox.push_update(update("a", 3));
        assert!(!called(&outbox).await, "written under a window ago: held for the tick");
        outbox.push(Frame::Whole("pong".into()));
        assert!(called(&outbox).await, "a control frame is never held");
        assert_eq!(texts(outbox.take()), vec!["a:2", "a:3", "pong"], "in one write");
    }

    #[tokio::test]
    async fn a_held_writer_is_called_by_the_tick_and_a_quiet_one_at_once() {
        let window = Duration::from_millis(5);
        let outbox = Arc::new(Outbox::paced(10, WriteTick::start(window)));
        outbox.push_update(update("a", 1));
        assert!(called(&outbox).await);
        outbox.take();
        outbox.push_update(update("a", 2));
        // Called at the next tick (or at once, if this machine took a window to get here).
        tokio::time::timeout(Duration::from_secs(60), outbox.ready()).await.expect("the tick calls the writer");
        assert_eq!(texts(outbox.take()), vec!["a:2"]);
        tokio::time::sleep(2 * window).await;
        outbox.push_update(update("a", 3));
        assert!(called(&outbox).await, "quiet for a window: at once again");
    }

    #[tokio::test]
    async fn a_held_writer_is_called_at_once_when_updates_fill_half_its_queue() {
        let outbox = Arc::new(Outbox::paced(4, WriteTick::start(Duration::from_secs(3600))));
        outbox.push_update(update("a", 1));
        assert!(called(&outbox).await);
        outbox.take();
        outbox.push_update(update("a", 2));
        assert!(!called(&outbox).await, "one update of four: held for the tick");
        outbox.push_update(update("a", 3));
        assert!(called(&outbox).await, "half full: holding longer could make it lag");
    }

    #[test]
    fn forgetting_a_subscription_drops_its_queue() {
        let outbox = Arc::new(Outbox::new(4));
        outbox.push_update(update("a", 1));
        outbox.push_update(update("b", 1));
        outbox.forget(&"a".into());
        assert_eq!(texts(outbox.take()), vec!["b:1"]);
    }

    #[test]
    fn forgetting_a_subscription_drops_its_snapshot_and_gap_too() {
        let outbox = Arc::new(Outbox::new(4));
        let widget: Arc<str> = "a".into();
        outbox.push(Frame::Gap { widget: widget.clone(), text: "gap".into() });
        let snapshot = Frame::Snapshot {
            widget: widget.clone(),
            kind: TopicKind::Metrics,
            text: "all".into(),
            position: "p".into(),
        };
        outbox.push(snapshot);
        outbox.push(Frame::Whole("pong".into()));
        outbox.push_update(update("a", 1));
        outbox.forget(&widget);
        outbox.push(Frame::Refused { widget, text: "forbidden".into() });
        assert_eq!(texts(outbox.take()), vec!["pong", "forbidden"]);
        outbox.push_update(update("a", 2));
        assert_eq!(outbox.backlog(), 1, "the count of queued updates stayed right");
    }
}
