//! How a tenant's dashboards get their updates: the operator's choice, per tenant.
//!
//! `live` is the normal state: WebSocket first, SSE and polling as fallbacks. `polling` is the
//! rollback plan for a realtime layer in trouble: the server refuses WebSockets and SSE streams
//! (close code [`crate::close::POLLING_ONLY`]) and pages poll at their widgets' intervals, from the
//! positions they hold, without probing faster transports. `off` refuses every transport, polls
//! included: pages show what they had, marked as not live.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How a tenant's dashboards get their updates: `live` (WebSocket, SSE and polling), `polling` (polls
/// only: WebSockets and SSE streams are refused) or `off` (every transport refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LiveMode {
    Live,
    Polling,
    Off,
}

impl LiveMode {
    /// Every mode, for the documentation check and the admin control.
    pub const ALL: [LiveMode; 3] = [LiveMode::Live, LiveMode::Polling, LiveMode::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            LiveMode::Live => "live",
            LiveMode::Polling => "polling",
            LiveMode::Off => "off",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == text)
    }

    /// Whether WebSockets and SSE streams are let in.
    pub fn pushes(self) -> bool {
        self == LiveMode::Live
    }

    /// Whether polls are answered.
    pub fn polls(self) -> bool {
        self != LiveMode::Off
    }
}

impl fmt::Display for LiveMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_reads_back_from_its_name_and_its_json() {
        for mode in LiveMode::ALL {
            assert_eq!(LiveMode::parse(mode.as_str()), Some(mode));
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{mode}\""));
            assert_eq!(serde_json::from_str::<LiveMode>(&json).unwrap(), mode);
        }
        assert_eq!(LiveMode::parse("fast"), None);
    }

    #[test]
    fn only_live_pushes_and_only_off_refuses_polls() {
        let pushes: Vec<_> = LiveMode::ALL.into_iter().filter(|m| m.pushes()).collect();
        let polls: Vec<_> = LiveMode::ALL.into_iter().filter(|m| m.polls()).collect();
        assert_eq!(pushes, [LiveMode::Live]);
        assert_eq!(polls, [LiveMode::Live, LiveMode::Polling]);
    }
}
