//! The write tick shared by every paced outbox (WebSockets, `LIVEDASH_WRITE_COALESCE_MS`).
//!
//! A connection writes at most once per `window`: what arrives sooner waits and goes out in the
//! same write, one syscall and one wake-up of the browser for several updates. Waiting used to
//! mean a timer per socket: the socket's task woke on the first update, armed its timer, and woke
//! again when it fired (two wake-ups and two timer-wheel operations a write, the largest item of
//! the server's own CPU in a profile at 1,000 sockets × 100 messages a second). Now an outbox that
//! must wait books itself here, without waking anyone, and one task wakes every booked writer at
//! the next tick: a busy socket costs one wake-up a write, and none touches the timer wheel.
//!
//! A socket that has not written for a window is woken at once (see [`crate::outbox`]), so quiet
//! dashboards never wait for a tick.

use crate::outbox::Outbox;
use std::{
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

#[derive(Debug)]
pub struct WriteTick {
    window: Duration,
    booked: Mutex<Vec<Arc<Outbox>>>,
}

impl WriteTick {
    /// Starts ticking every `window` (not zero) on the current runtime, for as long as the tick is
    /// held.
    pub fn start(window: Duration) -> Arc<Self> {
        assert!(!window.is_zero(), "a zero window writes at once and needs no tick");
        let tick = Arc::new(Self { window, booked: Mutex::default() });
        tokio::spawn(run(Arc::downgrade(&tick), window));
        tick
    }

    /// The shortest time between two writes of one connection.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Has `outbox`'s writer woken at the next tick. The outbox books itself at most once a write.
    pub fn book(&self, outbox: Arc<Outbox>) {
        self.booked.lock().expect("write tick lock").push(outbox);
    }
}

async fn run(tick: Weak<WriteTick>, window: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + window, window);
    // A late tick is not caught up with a burst of them: the next one is a window after it.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Two lists swapped in turn, so a tick allocates nothing.
    let mut due = Vec::new();
    loop {
        ticks.tick().await;
        let Some(tick) = tick.upgrade() else { return };
        std::mem::swap(&mut due, &mut *tick.booked.lock().expect("write tick lock"));
        drop(tick);
        for outbox in due.drain(..) {
            outbox.wake();
        }
    }
}
