//! `/api/ws`: one task per WebSocket, reading client messages and writing its outbox.
//!
//! Everything a connection sends goes through its [`Outbox`], so replies (snapshots, errors,
//! pongs) and updates reach the client in the order they were produced. The task writes each batch
//! with one flush when the outbox calls it, at most once per `write_coalesce` (what arrives in
//! between waits for the next write tick, so a busy connection costs one syscall and one wake-up for
//! several updates: [`crate::write_tick`]), pings the client, and closes the socket after
//! `idle_timeout` of silence or with 1001 when the server shuts down.

use super::admission::{self, OriginRule};
use super::endings::Ending;
use super::live_connection::{FollowError, LiveConnection};
use crate::connections::registry::Kick;
use crate::outbox::{Batch, Frame};
use crate::topic_name::{TopicKey, TopicName};
use crate::{
    AppState,
    auth::{Auth, resume_token::ResumedSubscription},
    broker::ReadFrom,
    client_addr::ClientAddr,
    config::Config,
    http_error::ApiError,
    limits::TokenBucket,
    presence, telemetry,
};
use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    },
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use futures_util::SinkExt;
use protocol::close::{Disconnect, MESSAGE_TOO_BIG, NORMAL};
use protocol::{ClientMessage, ControlMessage, ErrorCode, Limits, MAX_WIDGET_ID_LEN, ServerMessage};
use std::{net::IpAddr, sync::Arc, time::Duration};
use tokio::time::Instant;

mod connection;
mod requests;
pub mod upgrade;

use connection::close;
pub use upgrade::upgrade;

/// What a WebSocket keeps per subscription: the resume token of the last snapshot or update it
/// wrote, for the resume token it hands out.
type LastWritten = Option<Arc<str>>;

/// A WebSocket's connection: its [`LiveConnection`] (seat, subscriptions, endings, audit) and what
/// only a WebSocket has (the client's messages, their limits, the welcome's copy of them).
struct Connection {
    live: LiveConnection<LastWritten>,
    auth: Arc<Auth>,
    limits: Limits,
    /// Timeouts, read from here rather than copied into each of thousands of connections (`limits`
    /// is the welcome message's copy).
    config: Arc<Config>,
    /// The client's message rate limit.
    inbound: TokenBucket,
    /// Its manual refreshes: each costs a snapshot, so they have a limit of their own.
    refreshes: TokenBucket,
}

/// Metric handles, looked up once for the process: a look-up by name hashes the name, and a
/// handle per connection costs memory per connection.
struct Meters {
    backlog: metrics::Histogram,
    messages_out: metrics::Counter,
    push_latency: metrics::Histogram,
}

fn meters() -> &'static Meters {
    static METERS: std::sync::OnceLock<Meters> = std::sync::OnceLock::new();
    METERS.get_or_init(|| Meters {
        backlog: metrics::histogram!(telemetry::OUTBOX_BACKLOG),
        messages_out: metrics::counter!(telemetry::MESSAGES_OUT),
        push_latency: metrics::histogram!(telemetry::PUSH_LATENCY),
    })
}

/// How long a close frame may take to go out before the socket is dropped without it.
const CLOSE_WRITE_LIMIT: Duration = Duration::from_secs(1);
