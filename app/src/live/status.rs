//! The connection state the header's status pill shows.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// First connection attempt in progress.
    Connecting,
    /// Open socket, subscriptions flowing.
    Live,
    /// Lost the socket; retry `attempt` is due in `retry_in_secs`.
    Reconnecting { attempt: u32, retry_in_secs: u32 },
}

impl ConnectionStatus {
    /// A stable token for CSS classes and test selectors.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Reconnecting { .. } => "reconnecting",
        }
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connecting => f.write_str("Connecting"),
            Self::Live => f.write_str("Live"),
            Self::Reconnecting { retry_in_secs: 0, .. } => f.write_str("Reconnecting"),
            Self::Reconnecting { retry_in_secs, .. } => {
                write!(f, "Reconnecting in {retry_in_secs} s")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_a_person_would_say_them() {
        assert_eq!(ConnectionStatus::Live.to_string(), "Live");
        let waiting = ConnectionStatus::Reconnecting { attempt: 2, retry_in_secs: 4 };
        assert_eq!(waiting.to_string(), "Reconnecting in 4 s");
        assert_eq!(waiting.slug(), "reconnecting");
        let now = ConnectionStatus::Reconnecting { attempt: 2, retry_in_secs: 0 };
        assert_eq!(now.to_string(), "Reconnecting");
    }
}
