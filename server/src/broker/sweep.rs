//! The broker's housekeeping task: every `interval` it ages history out of quiet topics and retires
//! idle ones (see [`Broker::sweep`]). Without it a topic's age limit would only be applied when the
//! topic receives a message, and a topic that went quiet would keep its memory for ever.

use super::Broker;
use crate::clock::now_ms;
use crate::shutdown::ShutdownSignal;
use crate::topic_name::TopicKey;
use std::{sync::Arc, time::Duration};

/// Sweeps until shutdown; `keep` names the topics that are never retired (the server's own).
pub async fn run(
    broker: Arc<Broker>,
    interval: Duration,
    keep: impl Fn(&TopicKey) -> bool + Send + 'static,
    mut shutdown: ShutdownSignal,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let swept = broker.sweep(now_ms(), &keep);
                if swept.retired > 0 || swept.expired > 0 {
                    tracing::debug!(expired = swept.expired, retired = swept.retired, "broker swept");
                }
            }
            () = shutdown.stopping() => return,
        }
    }
}
