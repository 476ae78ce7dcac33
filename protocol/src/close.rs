//! How a live connection ends, and what each ending tells a client to do.
//!
//! WebSocket close codes (RFC 6455 §7.4.1, and livedash's own in the 4000s). The SSE streams end
//! with a `close` event carrying the same code ([`Disconnect`]), and the browser client maps a
//! polling failure onto them too, so one rule ([`Reconnect::after`]) decides for every transport.

use serde::{Deserialize, Serialize};

/// The idle timeout: nothing arrived from the client for `idleTimeoutMs`.
pub const NORMAL: u16 = 1000;
/// The server is shutting down.
pub const GOING_AWAY: u16 = 1001;
/// The connection was lost without a close frame (set by the browser, never sent).
pub const ABNORMAL: u16 = 1006;
/// The client sent a frame over the size limit.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The server could not check the session (its database failed).
pub const SERVER_ERROR: u16 = 1011;
/// Try again later: something this node needs (Redis) cannot be reached just now.
pub const TRY_AGAIN: u16 = 1013;
/// No session, or it is forged, expired or logged out.
pub const SESSION_ENDED: u16 = 4401;
/// Live dashboards are off for the tenant.
pub const LIVE_OFF: u16 = 4403;
/// The tenant's dashboards poll, an administrator's choice ([`crate::LiveMode::Polling`]): do not
/// come back over this transport, poll. (405 is HTTP's "method not allowed"; an older client that
/// does not know the code walks its usual fallback down to polling.)
pub const POLLING_ONLY: u16 = 4405;
/// A job stream's topic is no longer the user's to read (the tenant's topic rules changed): do not
/// come back. (A dashboard's streams end only the subscription, with an error naming the topic.)
pub const TOPIC_FORBIDDEN: u16 = 4406;
/// A limit was reached: connections per user, or connection attempts per address and minute.
pub const LIMIT: u16 = 4429;

/// Every code a client may see, for the documentation check.
pub const ALL: [u16; 11] = [
    NORMAL,
    GOING_AWAY,
    ABNORMAL,
    MESSAGE_TOO_BIG,
    SERVER_ERROR,
    TRY_AGAIN,
    SESSION_ENDED,
    LIVE_OFF,
    POLLING_ONLY,
    TOPIC_FORBIDDEN,
    LIMIT,
];

/// What a client does after a connection ended with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// The server is going away: come back after a short random delay (so that a restarted
    /// node's clients do not return in the same millisecond), and resume.
    Spread,
    /// Come back with the usual backoff.
    WithBackoff,
    /// Do not come back: the user must sign in again.
    SignIn,
    /// Do not come back: live updates are off (refresh by hand), or the topic is not the user's to
    /// read.
    Stop,
    /// Do not come back over this transport: poll instead.
    Poll,
}

impl Reconnect {
    /// The one rule, for every transport.
    pub fn after(code: u16) -> Self {
        match code {
            GOING_AWAY => Reconnect::Spread,
            SESSION_ENDED => Reconnect::SignIn,
            LIVE_OFF | TOPIC_FORBIDDEN => Reconnect::Stop,
            POLLING_ONLY => Reconnect::Poll,
            _ => Reconnect::WithBackoff,
        }
    }

    /// Whether a client comes back on its own.
    pub fn comes_back(self) -> bool {
        matches!(self, Reconnect::Spread | Reconnect::WithBackoff)
    }
}

/// Why the server ends a connection: the WebSocket's close frame (code and reason), and the data of
/// an SSE stream's `close` event (`{"code", "reason", "reconnect"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    pub code: u16,
    pub reason: String,
    /// Whether the client should come back on its own ([`Reconnect::comes_back`]); a client that
    /// knows the code may decide for itself.
    pub reconnect: bool,
}

impl Disconnect {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into(), reconnect: Reconnect::after(code).comes_back() }
    }

    /// The server is shutting down.
    pub fn shutdown() -> Self {
        Self::new(GOING_AWAY, "server shutting down")
    }

    /// The user's session ended (logout, expiry, removal).
    pub fn session_ended(reason: impl Into<String>) -> Self {
        Self::new(SESSION_ENDED, reason)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a disconnect always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_session_end_live_off_polling_and_a_forbidden_topic_keep_a_client_away() {
        let away: Vec<u16> = ALL.into_iter().filter(|&code| !Reconnect::after(code).comes_back()).collect();
        assert_eq!(away, [SESSION_ENDED, LIVE_OFF, POLLING_ONLY, TOPIC_FORBIDDEN]);
        assert_eq!(Reconnect::after(TOPIC_FORBIDDEN), Reconnect::Stop);
        assert_eq!(Reconnect::after(POLLING_ONLY), Reconnect::Poll);
        assert_eq!(Reconnect::after(GOING_AWAY), Reconnect::Spread);
        assert_eq!(Reconnect::after(4999), Reconnect::WithBackoff, "an unknown code is a failure");
    }

    #[test]
    fn the_close_event_says_whether_to_come_back() {
        let json = Disconnect::new(LIMIT, "at most 10").to_json();
        assert_eq!(json, r#"{"code":4429,"reason":"at most 10","reconnect":true}"#);
        let read: Disconnect = serde_json::from_str(&Disconnect::session_ended("logged out").to_json()).unwrap();
        assert_eq!((read.code, read.reconnect), (SESSION_ENDED, false));
    }
}
