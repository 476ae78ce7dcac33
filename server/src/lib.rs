//! The livedash server: SSR pages, the JSON API, the topic broker, the WebSocket transport, the
//! store, and the demo feed.
//!
//! `main.rs` only reads configuration and calls [`Livedash::start`] and [`Livedash::serve`];
//! integration tests call the same functions on an ephemeral port, so they exercise exactly what
//! runs in production.

pub mod api;
pub mod auth;
pub mod broker;
pub mod config;
pub mod dashboard_edits;
pub mod demo;
pub mod ingest;
pub mod limits;
pub mod pages;
pub mod presence;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod transport;

use anyhow::Context;
use app::{App, shell};
use auth::{Auth, api_key::ApiKey};
use axum::{Router, extract::FromRef, routing::get, serve::ListenerExt};
use broker::{Broker, BrokerConfig, topic_name::TenantId, topic_state::StateLimits};
use config::Config;
use dashboard_edits::DashboardEdits;
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use limits::KeyedLimiter;
use presence::Presence;
use shutdown::{Shutdown, ShutdownSignal};
use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};
use store::{Store, audit::Auditor};
use tokio::{net::TcpListener, task::JoinHandle};
use transport::{cursor::CursorKeys, job_stream::JobStreamCounts, registry::Registry};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub broker: Arc<Broker>,
    pub store: Store,
    pub auth: Arc<Auth>,
    pub auditor: Auditor,
    pub sockets: Arc<Registry>,
    pub limiters: Arc<Limiters>,
    pub presence: Arc<Presence>,
    pub edits: Arc<DashboardEdits>,
    pub cursors: Arc<CursorKeys>,
    pub job_streams: Arc<JobStreamCounts>,
    pub shutdown: ShutdownSignal,
}

/// Rate limits shared by all requests.
#[derive(Debug)]
pub struct Limiters {
    pub connects_by_ip: KeyedLimiter<IpAddr>,
    pub publishes_by_key: KeyedLimiter<String>,
    pub polls_by_user: KeyedLimiter<i64>,
}

impl Limiters {
    fn new(config: &Config) -> Self {
        let per_min = config.connect_attempts_per_min as f64;
        let per_sec = config.publishes_per_sec as f64;
        let polls = config.polls_per_min as f64;
        Self {
            connects_by_ip: KeyedLimiter::new(per_min / 60.0, per_min),
            publishes_by_key: KeyedLimiter::new(per_sec, 2.0 * per_sec),
            polls_by_user: KeyedLimiter::new(polls / 60.0, polls),
        }
    }
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
    store: Store,
    auth: Arc<Auth>,
    auditor: Auditor,
    audit_writer: JoinHandle<()>,
    sockets: Arc<Registry>,
    limiters: Arc<Limiters>,
    presence: Arc<Presence>,
    edits: Arc<DashboardEdits>,
    cursors: Arc<CursorKeys>,
    job_streams: Arc<JobStreamCounts>,
    shutdown: Shutdown,
    demo_keys: Vec<(TenantId, ApiKey)>,
}

impl Livedash {
    /// Opens the store (creating and migrating it), and in demo mode seeds the demo accounts.
    pub async fn start(config: Config, leptos_options: LeptosOptions) -> anyhow::Result<Self> {
        telemetry::handle();
        let store = Store::open(&config.database).await.with_context(|| format!("opening {}", config.database))?;
        let secret = match &config.session_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => store.setting_or_init("session_secret", || rand::random::<[u8; 32]>().to_vec()).await?,
        };
        let demo_keys =
            if config.demo { demo::seed(&store).await.context("seeding demo accounts")? } else { Vec::new() };
        for tenant in &config.live_dashboards_off {
            let tenant = TenantId::parse(tenant).context("LIVEDASH_LIVE_DASHBOARDS_OFF")?;
            store.set_live_dashboards(&tenant, false).await?;
        }
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
        let (auditor, audit_writer) = Auditor::start(store.clone());
        let limiters = Arc::new(Limiters::new(&config));
        let broker = Arc::new(broker);
        Ok(Self {
            auth: Arc::new(Auth::new(store.clone(), &secret, config.session_ttl)),
            cursors: Arc::new(CursorKeys::new(&secret)),
            edits: Arc::default(),
            job_streams: Arc::default(),
            config: Arc::new(config),
            leptos_options,
            presence: Arc::new(Presence::new(broker.clone())),
            broker,
            store,
            auditor,
            audit_writer,
            sockets: Arc::new(Registry::default()),
            limiters,
            shutdown: Shutdown::new(),
            demo_keys,
        })
    }

    pub fn broker(&self) -> Arc<Broker> {
        self.broker.clone()
    }

    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// The API keys demo mode issued at start-up, one per demo tenant.
    pub fn demo_keys(&self) -> &[(TenantId, ApiKey)] {
        &self.demo_keys
    }

    pub fn router(&self) -> Router {
        let state = AppState {
            leptos_options: self.leptos_options.clone(),
            config: self.config.clone(),
            broker: self.broker.clone(),
            store: self.store.clone(),
            auth: self.auth.clone(),
            auditor: self.auditor.clone(),
            sockets: self.sockets.clone(),
            limiters: self.limiters.clone(),
            presence: self.presence.clone(),
            edits: self.edits.clone(),
            cursors: self.cursors.clone(),
            job_streams: self.job_streams.clone(),
            shutdown: self.shutdown.signal(),
        };
        let routes = generate_route_list(App);
        let options = state.leptos_options.clone();
        let pages = Router::new()
            .leptos_routes(&state, routes, move || shell(options.clone()))
            .route_layer(axum::middleware::from_fn_with_state(state.clone(), pages::require_session));
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(move || std::future::ready(telemetry::handle().render())))
            .route("/api/ws", get(transport::ws::upgrade))
            .route("/api/stream/dashboard/{id}", get(transport::sse::dashboard))
            .route("/api/v1/realtime/jobs/{job}", get(transport::job_stream::job))
            .route("/api/v1/dashboards/{id}/updates", get(transport::poll::updates))
            .merge(api::routes())
            .merge(pages)
            .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
            .with_state(state)
    }

    /// Serves until `stop` completes, then closes every socket with 1001 and waits (bounded) for
    /// sockets, feeds, in-flight requests and the audit writer to finish.
    pub async fn serve(self, listener: TcpListener, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        if self.config.demo {
            let feed = ingest::demo_feed::run(self.broker.clone(), Duration::from_secs(1), self.shutdown.signal());
            tokio::spawn(feed);
        }
        let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = self.router().into_make_service_with_connect_info::<SocketAddr>();
        let write_timeout = self.config.write_timeout;
        let listener = listener.tap_io(move |tcp| tune_socket(tcp, write_timeout));
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
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
        let served = server.await?;
        // The writer drains what is queued once the last auditor handle (ours) is gone.
        drop(self.auditor);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.audit_writer).await;
        served.map_err(Into::into)
    }
}

/// Small frames go out at once (no Nagle delay), and the kernel drops a connection whose peer has
/// not taken data for `write_timeout` (TCP_USER_TIMEOUT): a response the client stopped reading
/// cannot hold its socket and buffers for ever.
fn tune_socket(tcp: &mut tokio::net::TcpStream, write_timeout: Duration) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = socket2::SockRef::from(&*tcp).set_tcp_user_timeout(Some(write_timeout)) {
        tracing::debug!(error = %e, "could not set TCP_USER_TIMEOUT");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = write_timeout;
}
