//! How a live connection ends, whatever its transport. The WebSocket and both SSE streams wait for
//! the same things from outside (the server shutting down, a kick after a logout or with live
//! updates turned off, the session's expiry) and end the same ways; both are here once.

use crate::connections::registry::Kick;
use crate::shutdown::ShutdownSignal;
use protocol::close::Disconnect;
use std::{future::Future, sync::Arc, time::Duration};

/// Why a connection ended.
#[derive(Debug)]
pub enum Ending {
    /// The client went away (closed, stopped reading, dropped the response).
    ClientLeft,
    /// The server ends it and tells the client why: a close frame, or an SSE `close` event.
    Close(Disconnect),
    /// It said all it had to say (a job stream after the job's end).
    Finished,
    /// A write was blocked when the connection had to end: it was hung up on, and nothing more
    /// can be written.
    HungUp,
}

/// Completes with what ends the connection from outside it: the server shutting down, a kick
/// (logout, live updates off, a session revoked) or the session's expiry at `expires_at` (Unix
/// seconds). Made once per connection and polled on every turn of its loop: made again on each
/// turn, its waits (a lock, a waiter list entry, a timer) would cost more than an update.
pub fn from_outside(
    mut shutdown: ShutdownSignal,
    kick: Arc<Kick>,
    expires_at: i64,
) -> impl Future<Output = Disconnect> + Send + 'static {
    let left = Duration::from_secs((expires_at - crate::clock::now_secs()).max(0) as u64);
    async move {
        tokio::select! {
            biased;
            () = shutdown.stopping() => Disconnect::shutdown(),
            disconnect = kick.received() => disconnect,
            () = tokio::time::sleep(left) => Disconnect::session_ended("session expired"),
        }
    }
}
