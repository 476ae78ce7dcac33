//! The HTTP listener: accepts TCP connections and serves the router on each.
//!
//! `axum::serve` would do, but it cannot bound what a hostile or unlucky client holds: it has no
//! header-read timeout, no cap on connections, and its graceful shutdown waits for every request
//! however long a client takes to send its body. This is the same loop (hyper's HTTP/1 connection
//! with upgrades, for WebSockets) with those three added; body-read timeouts are a layer on the
//! router (`tower_http::timeout`).

use crate::telemetry;
use axum::{Router, extract::ConnectInfo};
use hyper::{Request, body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
    task::JoinSet,
};
use tower::Service;

/// Ends one HTTP connection at once, whatever it is doing. A stream whose session ended uses it when
/// its client is not reading: its response cannot finish, and the write would hold the connection
/// until TCP gives up. Each request finds its connection's in its extensions.
#[derive(Debug, Clone, Default)]
pub struct Hangup(Arc<tokio::sync::Notify>);

impl Hangup {
    pub fn now(&self) {
        // A permit: the connection sees it even if it is not listening at this instant.
        self.0.notify_one();
    }

    async fn heard(&self) {
        self.0.notified().await;
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// Longest a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Longest the kernel keeps unacknowledged data for a peer (TCP_USER_TIMEOUT).
    pub write_timeout: Duration,
    /// How long connections may take to finish once the listener stops.
    pub shutdown_grace: Duration,
}

/// What a client over the connection cap is told before the connection is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
connection: close\r\ncontent-length: 79\r\n\r\n\
{\"error\":\"limit_exceeded\",\"message\":\"the server has too many connections open\"}";

/// Serves `router` on `listener` until `stop` turns true; then stops accepting, asks every
/// connection to finish its request, and after `shutdown_grace` drops those that have not.
pub async fn serve(listener: TcpListener, router: Router, limits: ListenerLimits, stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let mut stopping = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        refuse_busy(&tcp, peer);
                        continue;
                    };
                    tune_socket(&tcp, limits.write_timeout);
                    let (router, stop) = (router.clone(), stop.clone());
                    connections.spawn(async move {
                        let open = metrics::gauge!(telemetry::HTTP_CONNECTIONS_OPEN);
                        open.increment(1.0);
                        serve_connection(tcp, peer, router, limits.header_read_timeout, stop).await;
                        open.decrement(1.0);
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Most often out of file descriptors: wait for connections to close, do not spin.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut stopping) => break,
        }
    }
    drop(listener);
    let drained =
        tokio::time::timeout(limits.shutdown_grace, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!(left = connections.len(), "HTTP connections still open after the grace period; dropping them");
        connections.shutdown().await;
    }
}

/// Serves one connection until it ends, or until shutdown and its request in flight finish.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let hangup = Hangup::default();
    let service = hyper::service::service_fn({
        let hangup = hangup.clone();
        move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(hangup.clone());
            router.clone().call(request)
        }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(tcp), service).with_upgrades();
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = hangup.heard() => {
            tracing::debug!(%peer, "connection hung up on");
            return;
        }
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                served = connection => served,
                () = hangup.heard() => return,
            }
        }
    };
    if let Err(e) = served {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which is a stop too.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Tells a client over the connection cap why it is turned away, without waiting on it: the answer
/// fits in an empty socket buffer, and whatever does not go out is dropped with the socket.
fn refuse_busy(tcp: &TcpStream, peer: SocketAddr) {
    telemetry::denied("http_connections");
    tracing::debug!(%peer, "connection refused: too many open");
    let _ = tcp.try_write(BUSY);
}

/// Small frames go out at once (no Nagle delay), and the kernel drops a connection whose peer has
/// not taken data for `write_timeout` (TCP_USER_TIMEOUT): a response the client stopped reading
/// cannot hold its socket and buffers for ever.
fn tune_socket(tcp: &TcpStream, write_timeout: Duration) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(write_timeout)) {
        tracing::debug!(error = %e, "could not set TCP_USER_TIMEOUT");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = write_timeout;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_answer_is_well_formed() {
        let text = std::str::from_utf8(BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "limit_exceeded");
    }
}
