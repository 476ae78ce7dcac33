//! Whose page holds the connection: a person's, or a wall display's. They differ in two things
//! only. A person's page goes Offline after [`LiveSessionConfig::max_attempts`] failed attempts in a
//! row (the pill offers Retry) and, when its session ends, goes to the sign-in page. A display's
//! never gives up (it runs unattended: it retries, at most the backoff's 30 s apart, for as long as
//! it is on), and a session that ends means the display was revoked: the page says so and stays.

use super::session::LiveSessionConfig;
use std::cell::Cell;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageKind {
    #[default]
    Person,
    Display,
}

thread_local! {
    static KIND: Cell<PageKind> = const { Cell::new(PageKind::Person) };
}

/// Dispatched on `window` when a display page's session ends (it was revoked).
pub const SESSION_ENDED_EVENT: &str = "livedash:display-revoked";

/// Set by the display page before it opens its connection.
pub fn set(kind: PageKind) {
    KIND.with(|k| k.set(kind));
}

pub fn get() -> PageKind {
    KIND.with(Cell::get)
}

/// The session settings for this page's kind.
pub fn session_config() -> LiveSessionConfig {
    match get() {
        PageKind::Person => LiveSessionConfig::default(),
        PageKind::Display => LiveSessionConfig::display(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::session::{Effect, Input, LiveSession};
    use super::*;

    #[test]
    fn a_display_never_goes_offline_and_waits_at_most_the_backoffs_cap() {
        let (mut session, _) = LiveSession::start(LiveSessionConfig::display());
        let mut longest = 0.0f64;
        for _ in 0..500 {
            for effect in session.handle(Input::Closed { code: 1006, reason: String::new() }, 0.5) {
                if let Effect::RetryIn(delay) = effect {
                    longest = longest.max(delay.as_secs_f64());
                }
            }
            session.handle(Input::RetryDue, 0.5);
        }
        assert_ne!(session.status(), crate::live::status::ConnectionStatus::Offline);
        assert!(longest <= 30.0 * 1.2 + 1e-9, "waited {longest} s");
        let (mut person, _) = LiveSession::start(LiveSessionConfig::default());
        for _ in 0..20 {
            person.handle(Input::Closed { code: 1006, reason: String::new() }, 0.5);
            person.handle(Input::RetryDue, 0.5);
        }
        assert_eq!(person.status(), crate::live::status::ConnectionStatus::Offline);
    }
}
