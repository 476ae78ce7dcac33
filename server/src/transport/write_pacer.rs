//! When a WebSocket may write next: at most once per `window`. A connection fed faster than that
//! holds what arrives until the window has passed and sends it in one write (one syscall, one
//! wake-up of the browser, for several updates); a connection fed slower never waits. (The
//! WebSocket task also writes at once when its outbox is half full, so holding never makes a
//! subscription lag.) Pure, so the decision is tested apart from the socket.

use tokio::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct WritePacer {
    window: Duration,
    next_write: Instant,
}

impl WritePacer {
    pub fn new(window: Duration, now: Instant) -> Self {
        Self { window, next_write: now }
    }

    /// Something is queued at `now`: `None` to write it now, or the time to hold it until.
    pub fn hold_until(&self, now: Instant) -> Option<Instant> {
        (now < self.next_write).then_some(self.next_write)
    }

    /// A write started at `now`.
    pub fn wrote(&mut self, now: Instant) {
        self.next_write = now + self.window;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_connection_never_waits_and_a_busy_one_waits_out_the_window() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut pacer = WritePacer::new(ms(20), start);
        assert_eq!(pacer.hold_until(start), None, "the first write goes at once");
        pacer.wrote(start);
        assert_eq!(pacer.hold_until(start + ms(5)), Some(start + ms(20)), "sooner waits for the window");
        pacer.wrote(start + ms(20));
        assert_eq!(pacer.hold_until(start + ms(50)), None, "later than the window goes at once");
    }

    #[test]
    fn a_zero_window_writes_every_batch_at_once() {
        let start = Instant::now();
        let mut pacer = WritePacer::new(Duration::ZERO, start);
        pacer.wrote(start);
        assert_eq!(pacer.hold_until(start), None);
    }
}
