//! What a tenant's live mode lets in, in one place: admission asks it before a connection opens,
//! the registry when the mode changes under open connections (here or on another node) and when it
//! checks them again after a lost link. The same mode therefore refuses a new connection and closes
//! an open one with the same code and reason.

use protocol::LiveMode;
use protocol::close::{LIVE_OFF, POLLING_ONLY};

/// How a connection carries updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// A WebSocket or an SSE stream: the server pushes.
    Push,
    /// A poll: the page asks.
    Poll,
}

/// Why a mode keeps a carrier out: the close code, the reason a client is told, and the label of
/// the denial metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutOut {
    pub code: u16,
    pub reason: &'static str,
    pub metric: &'static str,
}

const OFF: ShutOut = ShutOut { code: LIVE_OFF, reason: "live dashboards are off for this tenant", metric: "live_off" };
const POLLING: ShutOut = ShutOut {
    code: POLLING_ONLY,
    reason: "an administrator set this tenant's dashboards to polling",
    metric: "polling_only",
};

/// `None` when `mode` lets `carrier` in.
pub fn shut_out(mode: LiveMode, carrier: Carrier) -> Option<ShutOut> {
    match (mode, carrier) {
        (LiveMode::Live, _) | (LiveMode::Polling, Carrier::Poll) => None,
        (LiveMode::Polling, Carrier::Push) => Some(POLLING),
        (LiveMode::Off, _) => Some(OFF),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_keeps_out_pushes_and_off_keeps_out_everything() {
        let codes = |carrier| LiveMode::ALL.map(|mode| shut_out(mode, carrier).map(|s| s.code));
        assert_eq!(codes(Carrier::Push), [None, Some(POLLING_ONLY), Some(LIVE_OFF)]);
        assert_eq!(codes(Carrier::Poll), [None, None, Some(LIVE_OFF)]);
    }
}
