//! Figures out of samples: percentiles of latencies. Pure, so the host tests check it.

use std::time::Duration;

/// Sorted samples.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    /// Several runs' samples as one.
    pub fn pooled(runs: Vec<Samples>) -> Self {
        Self::new(runs.into_iter().flat_map(|run| run.0).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The sample below which `p` (0–100) per cent of them lie (nearest rank); zero when empty.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.0.last().copied().unwrap_or_default()
    }

    /// `p50 … p95 … p99 … max …` in milliseconds.
    pub fn summary(&self) -> String {
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
        format!(
            "p50 {} ms, p95 {} ms, p99 {} ms, max {} ms ({} samples)",
            ms(self.percentile(50.0)),
            ms(self.percentile(95.0)),
            ms(self.percentile(99.0)),
            ms(self.max()),
            self.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let s = Samples::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(s.percentile(50.0), Duration::from_millis(50));
        assert_eq!(s.percentile(99.0), Duration::from_millis(99));
        assert_eq!(s.percentile(100.0), Duration::from_millis(100));
        assert_eq!(s.percentile(0.0), Duration::from_millis(1));
        assert_eq!(Samples::default().percentile(99.0), Duration::ZERO);
        assert_eq!(Samples::new(vec![Duration::from_millis(7)]).percentile(99.0), Duration::from_millis(7));
    }
}
