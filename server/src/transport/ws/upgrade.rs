//! Admitting a WebSocket: the checks made before the upgrade (Origin, connection rate, session,
//! live mode), then the seat in the user's limit once upgraded; a refusal after the upgrade is a
//! close code, because a browser cannot read the HTTP status of a refused upgrade.

use super::*;
use crate::auth::Session;
use crate::connections::live_mode_gate::Carrier;
use protocol::ErrorBody;

/// Socket buffers are kept small on purpose: with thousands of mostly idle dashboards, per-socket
/// buffers dominate server memory. What a client sends is small (a subscription is about 150
/// bytes): one read takes it, and a larger frame grows the buffer to fit. Writes are gathered up to
/// the write size before they go out.
const READ_BUFFER_BYTES: usize = 256;
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// Checks the Origin (403 before the upgrade: such a request is not from our page), then the
/// address's connection rate, the session and the tenant's live mode. Those refusals happen after the
/// upgrade, as close codes, because a browser's WebSocket cannot see an HTTP status (it only reports
/// 1006).
#[utoipa::path(
    get, path = "/api/ws", tag = "live",
    description = "The WebSocket (RFC 6455) every dashboard page uses: subscribe, resume, updates, snapshots, gaps and errors as JSON text frames. The messages, close codes and delivery guarantee are in docs/protocol.md; this document describes only the HTTP side of the upgrade.",
    responses(
        (status = 101, description = "Switching protocols: the WebSocket is open"),
        (status = 400, description = "Not a WebSocket upgrade request", body = String, content_type = "text/plain"),
        (status = 403, description = "A foreign `Origin` (a missing session, the live mode or a limit close the socket instead, with 4401, 4403, 4405 or 4429: a browser cannot read the status of a refused upgrade)", body = ErrorBody),
        (status = 426, description = "Upgrade required: a `Sec-WebSocket-Version` other than 13", body = String, content_type = "text/plain"),
    )
)]
pub async fn upgrade(
    upgrade: WebSocketUpgrade,
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = admission::check_origin(&state, &headers, OriginRule::Required) {
        admission::deny(&state, None, peer, &refusal);
        return ApiError::forbidden("this origin may not open live connections").into_response();
    }
    let verdict = match admission::check_connect_rate(&state, peer) {
        Ok(()) => admission::check_session(&state, &headers, Carrier::Push).await.map(|(session, _)| session),
        Err(refusal) => Err(refusal),
    };
    if let Err(refusal) = &verdict {
        admission::deny(&state, None, peer, refusal);
    }
    let max = state.config.max_frame_bytes;
    let upgrade = upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(max)
        .max_frame_size(max);
    match verdict {
        Ok(session) => {
            let admitted = Box::new(Admitted { session, state, headers, peer });
            // Boxed before the future is made, so that the socket's task holds two pointers, not
            // copies of them (rust-lang/rust#62958: an async fn keeps its arguments beside what
            // it moves them into). That task lives as long as the socket.
            upgrade.on_upgrade(move |socket| admitted.open(Box::new(socket)))
        }
        Err(refusal) => {
            upgrade.on_upgrade(move |mut socket| async move { close(&mut socket, refusal.disconnect()).await })
        }
    }
}

/// A connection that passed the checks made before the upgrade.
struct Admitted {
    session: Session,
    state: AppState,
    headers: HeaderMap,
    peer: IpAddr,
}

impl Admitted {
    /// Takes a seat in the user's connection limit, then serves the socket.
    async fn open(self: Box<Self>, mut socket: Box<WebSocket>) {
        // Boxed, as are the other steps taken once (the goodbye, leaving the roster): the task's
        // future is as large as its largest step.
        let opened = Box::pin(async move {
            let Admitted { session, state, peer, headers } = *self;
            let detail = format!("websocket from {peer}");
            let opened = LiveConnection::open(&state, session, &headers, "websocket", detail).await;
            // Header values share the request's whole read buffer (8 KB): kept for the socket's
            // life, they would more than double what an idle connection holds.
            drop(headers);
            match opened {
                Ok(live) => Ok(Connection::new(live, state)),
                Err((session, refusal)) => {
                    admission::deny(&state, Some(&session), peer, &refusal);
                    Err(refusal)
                }
            }
        })
        .await;
        match opened {
            Ok(connection) => Box::new(connection).run(socket).await,
            Err(refusal) => close(&mut socket, refusal.disconnect()).await,
        }
    }
}
