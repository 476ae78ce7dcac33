//! The livedash server: SSR pages, the JSON API, the topic broker, the WebSocket transport, the
//! store, and the demo feed.
//!
//! `main.rs` only reads configuration and calls [`Livedash::start`] and [`Livedash::serve`];
//! integration tests call the same functions on an ephemeral port, so they exercise exactly what
//! runs in production.

pub mod api;
pub mod assets;
pub mod auth;
pub mod bridge;
pub mod broker;
pub mod client_addr;
pub mod clock;
pub mod config;
pub mod connections;
pub mod cors;
pub mod credentials;
pub mod csrf;
pub mod dashboard_edits;
pub mod demo;
pub mod extract;
pub mod http_error;
pub mod ingest;
pub mod limits;
pub mod listener;
pub mod memory;
pub mod notifying;
pub mod outbox;
pub mod pages;
pub mod permissions;
pub mod presence;
pub mod redact;
pub mod roster;
mod router;
pub mod shutdown;
mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod topic_name;
pub mod transport;
pub mod vitals;
pub mod write_tick;

pub use state::{AppState, Limiters, broker_config};

use app::SiteUrls;
use assets::Assets;
use broker::{Broker, engine::Engine};
use credentials::api_key::ApiKey;
use listener::ListenerLimits;
use shutdown::Shutdown;
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use store::Store;
use tokio::{net::TcpListener, task::JoinHandle};
use topic_name::TenantId;

/// One node: what its handlers share, and what only starting and stopping it needs.
pub struct Livedash {
    state: AppState,
    assets: Assets,
    site_urls: SiteUrls,
    shutdown: Shutdown,
    audit_writer: JoinHandle<()>,
    demo_keys: Vec<(TenantId, ApiKey)>,
    /// `/metrics` on a listener of its own (`LIVEDASH_METRICS_ADDR`).
    metrics_listener: Option<TcpListener>,
}

impl Livedash {
    pub fn broker(&self) -> Arc<Broker> {
        self.state.broker.clone()
    }

    pub fn engine(&self) -> Arc<dyn Engine> {
        self.state.engine.clone()
    }

    pub fn store(&self) -> Store {
        self.state.store.clone()
    }

    /// Where `/metrics` is served when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The API keys demo mode issued at start-up, one per demo tenant.
    pub fn demo_keys(&self) -> &[(TenantId, ApiKey)] {
        &self.demo_keys
    }

    /// What every request handler reaches (tests use it to look inside: sockets, presence).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `stop` completes, then closes every socket with 1001 and waits, at most
    /// `LIVEDASH_SHUTDOWN_GRACE_SECS` whatever clients do, for sockets, feeds and requests in flight
    /// to finish, and then for the audit writer.
    pub async fn serve(mut self, listener: TcpListener, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        if self.state.config.demo {
            let feed = ingest::demo_feed::run(
                self.state.engine.clone(),
                self.state.cluster.clone(),
                Duration::from_secs(1),
                self.shutdown.signal(),
            );
            tokio::spawn(feed);
        }
        let keep = |key: &topic_name::TopicKey| key.name.is_server_owned();
        let sweeper = broker::sweep::run(
            self.state.broker.clone(),
            self.state.config.sweep_interval,
            keep,
            self.shutdown.signal(),
        );
        tokio::spawn(sweeper);
        tokio::spawn(memory::run(self.state.sockets.clone(), self.shutdown.signal()));
        let limits = ListenerLimits {
            header_read_timeout: self.state.config.header_read_timeout,
            max_connections: self.state.config.max_http_connections,
            write_timeout: self.state.config.write_timeout,
            shutdown_grace: self.state.config.shutdown_grace,
        };
        let (stop_listening, stopped) = tokio::sync::watch::channel(false);
        let metrics = self.metrics_listener.take().map(|metrics_listener| {
            let router = telemetry::router::<()>(self.state.config.metrics_token.clone());
            tokio::spawn(listener::serve(metrics_listener, router, limits, stopped.clone()))
        });
        let main = tokio::spawn(listener::serve(listener, self.router(), limits, stopped));
        stop.await;
        tracing::info!("shutting down");
        // Sockets hear of it through their signal; the listeners stop accepting and finish requests.
        self.shutdown.begin();
        stop_listening.send_replace(true);
        let listeners = async {
            main.await?;
            if let Some(metrics) = metrics {
                metrics.await?;
            }
            Ok::<_, tokio::task::JoinError>(())
        };
        let (all_closed, served) = tokio::join!(self.shutdown.finish(self.state.config.shutdown_grace), listeners);
        if !all_closed {
            tracing::warn!("some connections did not close within the grace period");
        }
        // The writer drains what is queued once the last auditor handle (the state's) is gone.
        let Livedash { state, audit_writer, .. } = self;
        drop(state);
        let _ = tokio::time::timeout(Duration::from_secs(5), audit_writer).await;
        served.map_err(Into::into)
    }
}
