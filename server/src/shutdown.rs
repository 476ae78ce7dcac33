//! Graceful shutdown: tell every long-lived task to stop, then wait (bounded) until they have.
//!
//! axum's own graceful shutdown does not cover upgraded WebSockets (hyper hands their socket over),
//! so connections and feeds each hold a [`ShutdownSignal`]. Every clone carries a sender of a channel
//! nobody writes to; when the last clone is dropped the channel closes, and that is how
//! [`Shutdown::finish`] knows that everyone has stopped (the mini-redis pattern).

use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub struct Shutdown {
    notify: watch::Sender<bool>,
    signal: Option<ShutdownSignal>,
    all_done: mpsc::Receiver<()>,
}

#[derive(Clone, Debug)]
pub struct ShutdownSignal {
    stopping: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl Shutdown {
    pub fn new() -> Self {
        let (notify, stopping) = watch::channel(false);
        let (alive, all_done) = mpsc::channel(1);
        Self { notify, signal: Some(ShutdownSignal { stopping, _alive: alive }), all_done }
    }

    /// A handle for a task that must stop on shutdown.
    pub fn signal(&self) -> ShutdownSignal {
        self.signal.clone().expect("signal() before finish()")
    }

    /// Tells every task to stop.
    pub fn begin(&self) {
        self.notify.send_replace(true);
    }

    /// Waits until every `ShutdownSignal` is gone, or `grace` has passed; false on time-out.
    pub async fn finish(mut self, grace: Duration) -> bool {
        self.begin();
        self.signal = None;
        tokio::time::timeout(grace, self.all_done.recv()).await.is_ok()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownSignal {
    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Completes once shutdown has begun (at once if it already has).
    pub async fn stopping(&mut self) {
        // An error means the `Shutdown` is gone, which is a shutdown too.
        let _ = self.stopping.wait_for(|stopping| *stopping).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finish_waits_for_every_task_to_drop_its_signal() {
        let shutdown = Shutdown::new();
        let mut signal = shutdown.signal();
        let task = tokio::spawn(async move {
            signal.stopping().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
        assert!(shutdown.finish(Duration::from_secs(60)).await);
        assert!(task.is_finished());
    }

    #[tokio::test]
    async fn finish_gives_up_after_the_grace_period() {
        let shutdown = Shutdown::new();
        let stuck = shutdown.signal();
        assert!(!shutdown.finish(Duration::from_millis(20)).await);
        drop(stuck);
    }
}
