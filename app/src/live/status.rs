//! The connection state the header's status pill shows.

use protocol::close::ABNORMAL;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a `Reconnecting` of an earlier version (without a cause) reads as.
fn dropped() -> u16 {
    ABNORMAL
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// A connection attempt is in progress.
    Connecting,
    /// Open socket, subscriptions flowing.
    Live,
    /// WebSockets do not get through: updates arrive over Server-Sent Events.
    LiveSse,
    /// The page asks for updates every `every_secs`: neither WebSockets nor SSE get through, or
    /// (`by_operator`) an administrator set the tenant's dashboards to polling.
    Polling {
        every_secs: u32,
        #[serde(default)]
        by_operator: bool,
    },
    /// Lost the socket; retry `attempt` is due in `retry_in_secs`. `cause` is the close code of
    /// what failed (1006 when the network dropped it or nothing answered), for the connection
    /// events (see `connection_events`).
    Reconnecting {
        attempt: u32,
        retry_in_secs: u32,
        #[serde(default = "dropped")]
        cause: u16,
    },
    /// The user switched live updates off.
    Paused,
    /// Gave up after too many failed attempts; a Retry button starts again.
    Offline,
    /// The tenant's live mode is `off` (close code 4403): manual refresh only; the page checks the
    /// mode again every half minute and comes back on its own when an administrator turns it on.
    LiveOff,
    /// The session ended (close code 4401): the user must sign in again.
    SignedOut,
}

impl ConnectionStatus {
    /// A stable token for CSS classes and test selectors.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::LiveSse => "live-sse",
            Self::Polling { .. } => "polling",
            Self::Reconnecting { .. } => "reconnecting",
            Self::Paused => "paused",
            Self::Offline => "offline",
            Self::LiveOff => "live-off",
            Self::SignedOut => "signed-out",
        }
    }

    /// Updates are arriving, over whichever transport.
    pub fn is_receiving(&self) -> bool {
        matches!(self, Self::Live | Self::LiveSse | Self::Polling { .. })
    }

    /// Why the pill says what it says, for its tooltip; `None` when the label says it all.
    pub fn explanation(&self) -> Option<String> {
        match self {
            Self::LiveSse => Some(
                "WebSocket connections do not get through this network, so updates arrive as Server-Sent \
                 Events. WebSockets are tried again in the background."
                    .into(),
            ),
            Self::Polling { every_secs, by_operator: true } => Some(format!(
                "An administrator set this workspace's dashboards to polling: the page asks for updates \
                 every {every_secs} s, and goes live again on its own when they switch live updates back on."
            )),
            Self::Polling { every_secs, by_operator: false } => Some(format!(
                "Neither WebSockets nor Server-Sent Events get through this network, so the page asks for \
                 updates every {every_secs} s. The faster ways are tried again in the background."
            )),
            Self::Reconnecting { attempt, cause, .. } => Some(format!(
                "The connection was lost: {}. Attempt {attempt} to reconnect; what the page shows \
                 may be out of date until it is back.",
                super::connection_events::reason_of(*cause)
            )),
            Self::LiveOff => Some(
                "An administrator turned live updates off for this workspace: refresh a widget by hand. The \
                 page checks every half minute and goes live again on its own when they are back on."
                    .into(),
            ),
            _ => None,
        }
    }

    /// Whether faster transports are tried in the background (the pill shows when the next try is).
    pub fn probes(&self) -> bool {
        matches!(self, Self::LiveSse | Self::Polling { by_operator: false, .. })
    }

    /// While reconnecting: which retry is next and how many seconds away it is, as the pill says.
    pub fn pending_retry(&self) -> Option<(u32, u32)> {
        match *self {
            Self::Reconnecting { attempt, retry_in_secs, .. } => Some((attempt, retry_in_secs)),
            _ => None,
        }
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connecting => f.write_str("Connecting"),
            Self::Live => f.write_str("Live"),
            Self::LiveSse => f.write_str("Live (SSE)"),
            Self::Polling { .. } => f.write_str("Polling"),
            Self::Reconnecting { retry_in_secs: 0, .. } => f.write_str("Reconnecting"),
            Self::Reconnecting { retry_in_secs, .. } => write!(f, "Reconnecting in {retry_in_secs} s"),
            Self::Paused => f.write_str("Paused"),
            Self::Offline => f.write_str("Offline"),
            Self::LiveOff => f.write_str("Live updates off"),
            Self::SignedOut => f.write_str("Signed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_a_person_would_say_them() {
        assert_eq!(ConnectionStatus::Live.to_string(), "Live");
        let waiting = ConnectionStatus::Reconnecting { attempt: 2, retry_in_secs: 4, cause: ABNORMAL };
        assert_eq!(waiting.to_string(), "Reconnecting in 4 s");
        assert_eq!(waiting.slug(), "reconnecting");
        assert_eq!(
            waiting.explanation().unwrap(),
            "The connection was lost: the network dropped the connection. Attempt 2 to reconnect; what the page \
             shows may be out of date until it is back."
        );
        let now = ConnectionStatus::Reconnecting { attempt: 2, retry_in_secs: 0, cause: ABNORMAL };
        assert_eq!(now.to_string(), "Reconnecting");
        assert_eq!(ConnectionStatus::LiveOff.to_string(), "Live updates off");
        assert_eq!(ConnectionStatus::Offline.slug(), "offline");
        assert_eq!(waiting.pending_retry(), Some((2, 4)));
        assert_eq!(ConnectionStatus::Connecting.pending_retry(), None);
        assert_eq!(ConnectionStatus::LiveSse.to_string(), "Live (SSE)");
        let polling = ConnectionStatus::Polling { every_secs: 30, by_operator: false };
        assert_eq!((polling.to_string().as_str(), polling.slug()), ("Polling", "polling"));
        assert!(polling.explanation().unwrap().contains("every 30 s"));
        assert!(polling.probes() && ConnectionStatus::LiveSse.probes() && !ConnectionStatus::Live.probes());
        let chosen = ConnectionStatus::Polling { every_secs: 30, by_operator: true };
        assert_eq!((chosen.to_string().as_str(), chosen.slug()), ("Polling", "polling"));
        let why = chosen.explanation().unwrap();
        assert!(why.contains("administrator") && why.contains("every 30 s"), "{why}");
        assert!(!chosen.probes(), "the operator's choice is not second-guessed");
        assert!(ConnectionStatus::LiveOff.explanation().unwrap().contains("administrator"));
        let older: ConnectionStatus = serde_json::from_str(r#"{"state":"polling","every_secs":30}"#).unwrap();
        assert_eq!(older, polling, "what a tab of the previous release relays");
        assert!(polling.is_receiving() && ConnectionStatus::Live.is_receiving());
        assert!(!ConnectionStatus::Offline.is_receiving() && ConnectionStatus::Live.explanation().is_none());
    }
}
