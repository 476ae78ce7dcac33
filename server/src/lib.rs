//! The livedash server: SSR pages, the topic broker, the WebSocket transport and the demo feed.
//!
//! `main.rs` only reads configuration and calls [`Livedash::serve`]; integration tests call the same
//! function on an ephemeral port, so they exercise exactly what runs in production.

pub mod broker;
pub mod config;
pub mod ingest;
pub mod shutdown;
pub mod transport;

use app::{App, shell};
use axum::{Router, extract::FromRef, routing::get};
use broker::{Broker, BrokerConfig, topic_name::TenantId, topic_state::StateLimits};
use config::Config;
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use shutdown::{Shutdown, ShutdownSignal};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub broker: Arc<Broker>,
    pub shutdown: ShutdownSignal,
    /// Until sessions exist, every socket belongs to this tenant (the first demo tenant).
    pub anonymous_tenant: TenantId,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

pub struct Livedash {
    config: Arc<Config>,
    leptos_options: LeptosOptions,
    broker: Arc<Broker>,
    shutdown: Shutdown,
}

impl Livedash {
    pub fn new(config: Config, leptos_options: LeptosOptions) -> Self {
        let broker = Broker::new(BrokerConfig {
            history_len: config.history_len,
            history_max_age: config.history_max_age,
            state: StateLimits {
                series_points: config.snapshot_points,
                events: config.snapshot_events,
                metric_keys: config.max_metric_keys,
                documents: config.max_documents,
            },
            max_topics_per_tenant: config.max_topics_per_tenant,
        });
        Self { config: Arc::new(config), leptos_options, broker: Arc::new(broker), shutdown: Shutdown::new() }
    }

    pub fn broker(&self) -> Arc<Broker> {
        self.broker.clone()
    }

    pub fn router(&self) -> Router {
        let state = AppState {
            leptos_options: self.leptos_options.clone(),
            config: self.config.clone(),
            broker: self.broker.clone(),
            shutdown: self.shutdown.signal(),
            anonymous_tenant: ingest::demo_feed::tenants()[0].clone(),
        };
        let routes = generate_route_list(App);
        let options = state.leptos_options.clone();
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/api/ws", get(transport::ws::upgrade))
            .leptos_routes(&state, routes, move || shell(options.clone()))
            .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
            .with_state(state)
    }

    /// Serves until `stop` completes, then closes every socket with 1001 and waits (bounded) for
    /// sockets, feeds and in-flight requests to finish.
    pub async fn serve(self, listener: TcpListener, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        if self.config.demo_feed {
            let feed = ingest::demo_feed::run(self.broker.clone(), Duration::from_secs(1), self.shutdown.signal());
            tokio::spawn(feed);
        }
        let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, self.router()).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        let server = tokio::spawn(server.into_future());
        stop.await;
        tracing::info!("shutting down");
        // Sockets hear of it through their signal; axum only tracks plain HTTP requests.
        self.shutdown.begin();
        let _ = stop_accepting.send(());
        if !self.shutdown.finish(self.config.shutdown_grace).await {
            tracing::warn!("some connections did not close within the grace period");
        }
        server.await?.map_err(Into::into)
    }
}
