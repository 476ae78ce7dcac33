//! Keeps a flood of denials from flooding the audit log: each source (an action and who attempted
//! it, e.g. `connect` from one address) has its first `per_window` denials of a window written one by
//! one; the rest are only counted, and written as one summary line when the window ends. Sources are
//! bounded too: past [`MAX_SOURCES`], new ones share one "other sources" entry. Pure: the auditor
//! calls it with the time.

use super::{AuditEntry, Outcome};
use std::collections::HashMap;

/// Distinct sources tracked at once.
pub const MAX_SOURCES: usize = 10_000;
const OTHERS: &str = "(other sources)";

#[derive(Debug)]
pub struct DenialDigest {
    per_window: usize,
    window_ms: i64,
    sources: HashMap<(&'static str, String), Window>,
}

#[derive(Debug)]
struct Window {
    started: i64,
    written: usize,
    suppressed: usize,
    tenant: Option<String>,
}

impl DenialDigest {
    pub fn new(per_window: usize, window_ms: i64) -> Self {
        Self { per_window, window_ms, sources: HashMap::new() }
    }

    /// Whether this denial is written on its own (else it is counted for the summary).
    pub fn admit(&mut self, entry: &AuditEntry, now: i64) -> bool {
        let actor = entry.actor.clone().unwrap_or_default();
        let mut key = (entry.action, actor);
        if !self.sources.contains_key(&key) && self.sources.len() >= MAX_SOURCES {
            key.1 = OTHERS.to_owned();
        }
        let window = self.sources.entry(key).or_insert_with(|| Window {
            started: now,
            written: 0,
            suppressed: 0,
            tenant: entry.tenant.clone(),
        });
        if window.written < self.per_window {
            window.written += 1;
            true
        } else {
            window.suppressed += 1;
            false
        }
    }

    /// Ends the windows that are over as of `now`: one summary entry for each that suppressed any.
    pub fn summaries(&mut self, now: i64) -> Vec<AuditEntry> {
        let mut summaries = Vec::new();
        self.sources.retain(|(action, actor), window| {
            if now - window.started < self.window_ms {
                return true;
            }
            if window.suppressed > 0 {
                summaries.push(AuditEntry {
                    tenant: window.tenant.clone(),
                    actor: Some(actor.clone()),
                    action,
                    outcome: Outcome::Denied,
                    detail: Some(format!(
                        "{} more denials in {} s not recorded one by one",
                        window.suppressed,
                        self.window_ms / 1000
                    )),
                });
            }
            false
        });
        summaries
    }

    pub fn sources(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(actor: &str) -> AuditEntry {
        AuditEntry { tenant: None, actor: Some(actor.into()), action: "login", outcome: Outcome::Denied, detail: None }
    }

    #[test]
    fn a_flood_from_one_source_is_written_as_a_few_lines_and_a_summary() {
        let mut digest = DenialDigest::new(3, 60_000);
        let written = (0..1000).filter(|_| digest.admit(&denial("6.6.6.6"), 0)).count();
        assert_eq!(written, 3);
        assert!(digest.admit(&denial("1.2.3.4"), 0), "another source is not held back");
        assert!(digest.summaries(59_999).is_empty(), "the window is not over");
        let summaries = digest.summaries(60_000);
        assert_eq!(summaries.len(), 1, "only the source that was held back");
        assert_eq!(summaries[0].actor.as_deref(), Some("6.6.6.6"));
        assert_eq!(summaries[0].detail.as_deref(), Some("997 more denials in 60 s not recorded one by one"));
        assert_eq!(digest.sources(), 0);
        assert!(digest.admit(&denial("6.6.6.6"), 60_001), "a new window");
    }

    #[test]
    fn sources_are_bounded() {
        let mut digest = DenialDigest::new(1, 60_000);
        for i in 0..(MAX_SOURCES + 5000) {
            digest.admit(&denial(&format!("10.0.{}.{}", i / 256, i % 256)), 0);
        }
        assert_eq!(digest.sources(), MAX_SOURCES + 1, "the rest share one entry");
        let others = digest.summaries(60_000).into_iter().find(|s| s.actor.as_deref() == Some(OTHERS)).unwrap();
        assert!(others.detail.unwrap().starts_with("4999 more"));
    }
}
