//! What one connection subscribed to, as one audit row instead of one per subscribe.
//!
//! A client that subscribes and unsubscribes 40,000 times wrote 40,000 rows, and the audit queue
//! dropped some. The connection now counts, and writes one summary when it ends (and one every
//! [`SUMMARY_EVERY`] while it lasts, so a long-lived connection is not silent until it closes):
//! how many subscriptions it made, refused and ended, and which topics, the first few by name.
//! Pure: the connection calls it and records what it returns.

use std::{collections::BTreeSet, time::Duration};

/// How often a connection that keeps subscribing writes its summary.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(600);
/// Topics named in a summary; the rest are counted.
const NAMED_TOPICS: usize = 20;
/// Longest topic written as the client sent it (a refused one may be anything).
const TOPIC_CHARS: usize = 100;

#[derive(Debug, Default)]
pub struct SubscriptionLog {
    subscribed: u64,
    refused: u64,
    unsubscribed: u64,
    topics: BTreeSet<String>,
    other_topics: u64,
    refusals: BTreeSet<String>,
}

impl SubscriptionLog {
    pub fn subscribed(&mut self, topic: &str) {
        self.subscribed += 1;
        self.name(topic, false);
    }

    /// A refused subscription, `why` (the topic as the client wrote it is quoted if odd).
    pub fn refused(&mut self, topic: &str, why: &str) {
        self.refused += 1;
        self.name(topic, true);
        if self.refusals.len() < 5 {
            self.refusals.insert(why.chars().take(200).collect());
        }
    }

    pub fn unsubscribed(&mut self) {
        self.unsubscribed += 1;
    }

    fn name(&mut self, topic: &str, refused: bool) {
        let shown = if topic.len() <= TOPIC_CHARS && topic.chars().all(|c| c.is_ascii_graphic()) {
            topic.to_owned()
        } else {
            format!("{:?}", topic.chars().take(TOPIC_CHARS).collect::<String>())
        };
        let shown = if refused { format!("{shown} (refused)") } else { shown };
        if self.topics.contains(&shown) {
            return;
        }
        if self.topics.len() < NAMED_TOPICS {
            self.topics.insert(shown);
        } else {
            self.other_topics += 1;
        }
    }

    /// The summary of what happened since the last one, or `None` if nothing did.
    pub fn take_summary(&mut self) -> Option<String> {
        if self.subscribed + self.refused + self.unsubscribed == 0 {
            return None;
        }
        let log = std::mem::take(self);
        let mut text = format!(
            "{} subscribed, {} refused, {} unsubscribed; topics: {}",
            log.subscribed,
            log.refused,
            log.unsubscribed,
            log.topics.into_iter().collect::<Vec<_>>().join(", ")
        );
        if log.other_topics > 0 {
            text.push_str(&format!(" and {} more", log.other_topics));
        }
        if !log.refusals.is_empty() {
            text.push_str(&format!("; refused because: {}", log.refusals.into_iter().collect::<Vec<_>>().join("; ")));
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_thousand_subscriptions_are_one_line() {
        let mut log = SubscriptionLog::default();
        for i in 0..40_000 {
            log.subscribed(&format!("t/{}", i % 3));
            log.unsubscribed();
        }
        let text = log.take_summary().unwrap();
        assert_eq!(text, "40000 subscribed, 0 refused, 40000 unsubscribed; topics: t/0, t/1, t/2");
        assert_eq!(log.take_summary(), None, "taken");
    }

    #[test]
    fn topics_and_reasons_are_bounded_and_odd_ones_quoted() {
        let mut log = SubscriptionLog::default();
        for i in 0..100 {
            log.subscribed(&format!("t/{i:03}"));
        }
        log.refused("../\u{0}evil", "bad topic name");
        let text = log.take_summary().unwrap();
        assert!(text.contains("1 refused"), "{text}");
        assert!(text.contains("t/000") && text.contains(" and 81 more"), "{text}");
        assert!(text.contains("refused because: bad topic name"), "{text}");
        assert!(text.len() < 2_000, "{} bytes", text.len());

        let mut odd = SubscriptionLog::default();
        odd.refused(&"x".repeat(10_000), "too long");
        let text = odd.take_summary().unwrap();
        assert!(text.contains("(refused)") && text.len() < 400, "{text}");
    }
}
