//! Connection events: what the live-client library tells an app about its connection, once per
//! change that matters to a person. `established` the first time data flows; `lost {reason}` when
//! it stops through no choice of the user's or an administrator's (the pill shows Reconnecting or
//! Offline); `restored {downtime}` when it flows again. A retry, or a switch to a fallback transport
//! that keeps data flowing, is not an event: one outage is one `lost` and one `restored`.
//!
//! Pure: [`ConnectionEvents::observe`] takes each status the pill shows, with the time.

use super::status::ConnectionStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// Data flows for the first time on this page.
    Established,
    /// Data stopped flowing; `reason` says why, as a person reads it.
    Lost { reason: String },
    /// Data flows again after a loss that lasted `downtime_ms`.
    Restored { downtime_ms: u64 },
}

impl ConnectionEvent {
    /// The event's name in the client API (`connection:lost`).
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionEvent::Established => "connection:established",
            ConnectionEvent::Lost { .. } => "connection:lost",
            ConnectionEvent::Restored { .. } => "connection:restored",
        }
    }
}

/// Why a connection ended, from its close code, as a person reads it.
pub fn reason_of(code: u16) -> String {
    use protocol::close::*;
    match code {
        NORMAL => "the server closed an idle connection".into(),
        GOING_AWAY => "the server restarted".into(),
        ABNORMAL => "the network dropped the connection".into(),
        MESSAGE_TOO_BIG => "a message was too big".into(),
        SERVER_ERROR => "a server error".into(),
        TRY_AGAIN => "the server is busy".into(),
        LIMIT => "a connection limit was reached".into(),
        code => format!("closed with code {code}"),
    }
}

/// Where a page stands, for its events.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum Phase {
    /// Data has never flowed.
    #[default]
    Never,
    /// Data flows.
    Up,
    /// Data stopped flowing at `since` (ms), and the page is finding another way (not yet lost:
    /// a fallback that takes over is no outage).
    Switching { since: f64 },
    /// Lost since `since` (ms).
    Down { since: f64 },
    /// Stopped by a choice (paused, live updates off, signed out): no outage.
    Chosen,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectionEvents {
    phase: Phase,
    established: bool,
}

impl ConnectionEvents {
    /// The event `status`, shown at `now` (ms since the Unix epoch), raises, if any.
    pub fn observe(&mut self, status: ConnectionStatus, now: f64) -> Option<ConnectionEvent> {
        use ConnectionStatus as S;
        let (next, event) = match (self.phase, status) {
            (_, S::Live | S::LiveSse | S::Polling { .. }) => {
                let event = match self.phase {
                    _ if !self.established => Some(ConnectionEvent::Established),
                    Phase::Down { since } => {
                        Some(ConnectionEvent::Restored { downtime_ms: (now - since).max(0.0).round() as u64 })
                    }
                    _ => None,
                };
                self.established = true;
                (Phase::Up, event)
            }
            (_, S::Paused | S::LiveOff | S::SignedOut) => (Phase::Chosen, None),
            (Phase::Up, S::Connecting) => (Phase::Switching { since: now }, None),
            (Phase::Up | Phase::Switching { .. }, S::Reconnecting { cause, .. }) => {
                let since = match self.phase {
                    Phase::Switching { since } => since,
                    _ => now,
                };
                (Phase::Down { since }, Some(ConnectionEvent::Lost { reason: reason_of(cause) }))
            }
            (Phase::Up | Phase::Switching { .. }, S::Offline) => {
                let since = match self.phase {
                    Phase::Switching { since } => since,
                    _ => now,
                };
                (Phase::Down { since }, Some(ConnectionEvent::Lost { reason: "the server cannot be reached".into() }))
            }
            (phase, _) => (phase, None),
        };
        self.phase = next;
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::close::{ABNORMAL, GOING_AWAY};

    fn reconnecting(attempt: u32, cause: u16) -> ConnectionStatus {
        ConnectionStatus::Reconnecting { attempt, retry_in_secs: 1, cause }
    }

    /// The events a run of statuses raises, each shown at its time (ms).
    fn events(run: &[(f64, ConnectionStatus)]) -> Vec<ConnectionEvent> {
        let mut tracker = ConnectionEvents::default();
        run.iter().filter_map(|(at, status)| tracker.observe(*status, *at)).collect()
    }

    #[test]
    fn one_outage_is_one_loss_and_one_restore_however_many_retries_it_takes() {
        use ConnectionStatus::*;
        let run = [
            (0.0, Connecting),
            (100.0, Live),
            (5_000.0, reconnecting(1, ABNORMAL)),
            (6_000.0, Connecting),
            (7_000.0, reconnecting(2, ABNORMAL)),
            (9_000.0, Connecting),
            (9_500.0, reconnecting(3, ABNORMAL)),
            (17_000.0, Live),
            (30_000.0, Live),
        ];
        assert_eq!(
            events(&run),
            [
                ConnectionEvent::Established,
                ConnectionEvent::Lost { reason: "the network dropped the connection".into() },
                ConnectionEvent::Restored { downtime_ms: 12_000 },
            ]
        );
    }

    #[test]
    fn a_fallback_that_keeps_data_flowing_is_no_outage() {
        use ConnectionStatus::*;
        let polling = Polling { every_secs: 30, by_operator: false };
        let run = [(0.0, Live), (1_000.0, Connecting), (1_400.0, LiveSse), (9_000.0, Connecting), (9_300.0, polling)];
        assert_eq!(events(&run), [ConnectionEvent::Established]);
    }

    #[test]
    fn the_outage_counts_from_when_data_stopped_and_says_why() {
        use ConnectionStatus::*;
        // The socket dropped, the stream was tried and failed too: lost since the drop.
        let run = [(0.0, Live), (1_000.0, Connecting), (4_000.0, reconnecting(1, GOING_AWAY)), (6_000.0, LiveSse)];
        assert_eq!(
            events(&run)[1..],
            [
                ConnectionEvent::Lost { reason: "the server restarted".into() },
                ConnectionEvent::Restored { downtime_ms: 5_000 }
            ]
        );
        let gave_up = [(0.0, Live), (1_000.0, reconnecting(1, ABNORMAL)), (60_000.0, Offline), (90_000.0, Live)];
        assert_eq!(events(&gave_up)[2], ConnectionEvent::Restored { downtime_ms: 89_000 });
    }

    #[test]
    fn choices_are_not_outages() {
        use ConnectionStatus::*;
        // Paused by the user, live updates turned off by an administrator, signed out: no loss,
        // and nothing restored when it comes back.
        for chosen in [Paused, LiveOff, SignedOut] {
            let run = [(0.0, Live), (1_000.0, chosen), (2_000.0, Connecting), (3_000.0, Live)];
            assert_eq!(events(&run), [ConnectionEvent::Established], "{chosen:?}");
        }
        // A page that never got through has nothing to lose: the pill says so.
        assert_eq!(events(&[(0.0, Connecting), (1_000.0, reconnecting(1, ABNORMAL)), (9_000.0, Offline)]), []);
    }

    #[test]
    fn reasons_read_as_people_say_them() {
        assert_eq!(reason_of(ABNORMAL), "the network dropped the connection");
        assert_eq!(reason_of(protocol::close::SERVER_ERROR), "a server error");
        assert_eq!(reason_of(4999), "closed with code 4999");
        assert_eq!(ConnectionEvent::Restored { downtime_ms: 1 }.name(), "connection:restored");
    }
}
