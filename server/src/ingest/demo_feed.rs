//! A built-in source of plausible data, so a fresh install shows a moving dashboard at once.

use crate::{broker::Broker, shutdown::ShutdownSignal};
use app::pages::DEMO_ORDERS_TOPIC;
use app::protocol::{Point, TopicKind};
use std::{sync::Arc, time::Duration};

/// Orders per second hover around this value.
const ORDERS_MEAN: f64 = 40.0;

/// Declares the demo topics and publishes one point per `every` until shutdown.
pub async fn run(broker: Arc<Broker>, every: Duration, mut shutdown: ShutdownSignal) {
    broker.declare(DEMO_ORDERS_TOPIC, TopicKind::Series);
    let mut ticker = tokio::time::interval(every);
    let mut orders = ORDERS_MEAN;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.stopping() => return,
        }
        orders = next_orders(orders, rand::random());
        let point = Point {
            ts: crate::broker::now_ms(),
            value: orders,
        };
        if let Err(e) = broker.publish(DEMO_ORDERS_TOPIC, vec![point]) {
            tracing::error!(error = %e, "demo feed could not publish");
        }
    }
}

/// A mean-reverting random walk: moves up to ±4 per step and is pulled back towards the mean, so it
/// wanders like real traffic but never runs off or below zero. `random` is uniform in `[0, 1)`.
pub fn next_orders(previous: f64, random: f64) -> f64 {
    let step = (random - 0.5) * 8.0;
    let pull = (ORDERS_MEAN - previous) * 0.1;
    ((previous + step + pull) * 10.0).round().max(0.0) / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_stays_in_a_plausible_band() {
        let mut v = ORDERS_MEAN;
        for i in 0..10_000 {
            // A deterministic, adversarial input: always pushes the same way for long stretches.
            let r = if (i / 500) % 2 == 0 { 0.999 } else { 0.0 };
            v = next_orders(v, r);
            assert!((0.0..=100.0).contains(&v), "{v}");
        }
    }

    #[test]
    fn the_walk_moves() {
        assert_ne!(next_orders(40.0, 0.9), next_orders(40.0, 0.1));
    }
}
