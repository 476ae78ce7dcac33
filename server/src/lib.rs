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
pub mod config;
pub mod cors;
pub mod csrf;
pub mod dashboard_edits;
pub mod demo;
pub mod ingest;
pub mod limits;
pub mod listener;
pub mod memory;
pub mod pages;
pub mod presence;
pub mod redact;
pub mod roster;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod transport;

use anyhow::Context;
use app::{App, SiteUrls, shell};
use assets::Assets;
use auth::{
    Auth,
    api_key::ApiKey,
    sign_in_throttle::{SignInThrottle, ThrottleSettings},
};
use axum::{Router, extract::FromRef, routing::get};
use broker::{
    Broker, BrokerConfig,
    engine::{Engine, InOrder, MemoryEngine, Notice},
    redis::RedisEngine,
    topic_name::TenantId,
    topic_state::StateLimits,
};
use client_addr::TrustedProxies;
use config::Config;
use dashboard_edits::DashboardEdits;
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use limits::KeyedLimiter;
use listener::ListenerLimits;
use presence::Presence;
use roster::{MemoryRoster, Roster, redis::RedisRoster};
use shutdown::{Shutdown, ShutdownSignal};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use store::{
    Store,
    audit::{AuditSettings, Auditor},
};
use tokio::{net::TcpListener, task::JoinHandle};
use transport::{cursor::CursorKeys, job_stream::JobStreamCounts, registry::Registry};

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub broker: Arc<Broker>,
    /// Where every publish goes: this node (memory) or Redis.
    pub engine: Arc<dyn Engine>,
    pub store: Store,
    pub auth: Arc<Auth>,
    pub auditor: Auditor,
    pub sockets: Arc<Registry>,
    /// Connections per user in the whole deployment.
    pub roster: Arc<dyn Roster>,
    pub limiters: Arc<Limiters>,
    pub presence: Arc<Presence>,
    pub edits: Arc<DashboardEdits>,
    pub cursors: Arc<CursorKeys>,
    pub job_streams: Arc<JobStreamCounts>,
    pub proxies: Arc<TrustedProxies>,
    pub shutdown: ShutdownSignal,
    /// The Kafka bridge, when this node runs one (`LIVEDASH_KAFKA_BRIDGE`).
    pub bridge: Option<Arc<bridge::consumer::BridgeStatus>>,
}

/// Rate limits shared by all requests. Each keys on the identity the lookup it guards uses: a
/// [`client_addr::Source`] (an IPv4 address or an IPv6 /64), a user id, a normalised e-mail.
#[derive(Debug)]
pub struct Limiters {
    pub connects_by_source: KeyedLimiter<client_addr::Source>,
    pub polls_by_user: KeyedLimiter<i64>,
    pub sign_ins: SignInThrottle,
    /// Failed API-key checks per source: a flood of made-up keys costs no database lookups.
    pub api_key_failures_by_source: KeyedLimiter<client_addr::Source>,
}

impl Limiters {
    fn new(config: &Config) -> Self {
        Self {
            connects_by_source: per_minute(config.connect_attempts_per_min),
            polls_by_user: per_minute(config.polls_per_min),
            sign_ins: SignInThrottle::new(ThrottleSettings {
                attempts_per_min_per_source: config.logins_per_min_per_address,
                failures_per_min_per_account_and_source: config.logins_per_min_per_account,
                failures_per_hour_per_account: config.login_failures_per_hour_per_account,
            }),
            api_key_failures_by_source: per_minute(config.api_key_failures_per_min_per_address),
        }
    }
}

/// `n` a minute, in bursts of up to `n`.
fn per_minute<K: Eq + std::hash::Hash + Clone>(n: usize) -> KeyedLimiter<K> {
    KeyedLimiter::new(n as f64 / 60.0, n as f64)
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

pub struct Livedash {
    config: Arc<Config>,
    leptos_options: LeptosOptions,
    assets: Assets,
    site_urls: SiteUrls,
    broker: Arc<Broker>,
    engine: Arc<dyn Engine>,
    store: Store,
    auth: Arc<Auth>,
    auditor: Auditor,
    audit_writer: JoinHandle<()>,
    sockets: Arc<Registry>,
    roster: Arc<dyn Roster>,
    limiters: Arc<Limiters>,
    presence: Arc<Presence>,
    edits: Arc<DashboardEdits>,
    cursors: Arc<CursorKeys>,
    job_streams: Arc<JobStreamCounts>,
    proxies: Arc<TrustedProxies>,
    shutdown: Shutdown,
    demo_keys: Vec<(TenantId, ApiKey)>,
    /// `/metrics` on a listener of its own (`LIVEDASH_METRICS_ADDR`).
    metrics_listener: Option<TcpListener>,
    bridge: Option<Arc<bridge::consumer::BridgeStatus>>,
}

impl Livedash {
    /// Opens the store (creating and migrating it), and in demo mode seeds the demo accounts.
    pub async fn start(config: Config, mut leptos_options: LeptosOptions) -> anyhow::Result<Self> {
        if config.metrics_addr.is_none() && config.metrics_token.is_none() {
            anyhow::bail!(
                "LIVEDASH_METRICS_ADDR=main serves /metrics on the public listener, and metrics name every \
                 tenant: set LIVEDASH_METRICS_TOKEN too"
            );
        }
        telemetry::handle();
        let site_root = std::path::PathBuf::from(&*leptos_options.site_root);
        // Files change under a running server only with `cargo leptos watch`.
        let watching = std::env::var_os("LEPTOS_WATCH").is_some();
        let assets = Assets::scan(&site_root, &leptos_options.site_pkg_dir, watching)
            .with_context(|| format!("reading the site's files in {}", site_root.display()))?;
        let site_urls = assets.site_urls(&leptos_options);
        // The hydration script names the bundle by this directory.
        leptos_options.site_pkg_dir = assets.pkg_dir().into();
        let store = Store::open(&config.database)
            .await
            .with_context(|| format!("opening {}", store::redacted(&config.database)))?;
        tracing::info!(backend = store.backend_name(), database = %store::redacted(&config.database), "store open");
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
        let broker = Arc::new(Broker::new(broker_config(&config)));
        let shutdown = Shutdown::new();
        let engine: Arc<dyn Engine> = match &config.redis_url {
            Some(url) => {
                let signal = shutdown.signal();
                let per_sec = config.publishes_per_sec as f64;
                let engine = RedisEngine::connect(
                    url,
                    &config.redis_prefix,
                    broker.clone(),
                    broker_config(&config),
                    per_sec,
                    signal,
                )
                .await
                .context("LIVEDASH_REDIS_URL")?;
                tracing::info!("topics are kept in Redis, shared with every node that uses it");
                engine
            }
            None => Arc::new(MemoryEngine::new(broker.clone(), config.publishes_per_sec as f64)),
        };
        let sockets = Arc::new(Registry::default());
        let cookies = auth::session_cookie::CookiePolicy {
            always_secure: config.secure_cookies,
            domain: config.cookie_domain.clone(),
        };
        let auth = Arc::new(Auth::new(store.clone(), &secret, config.session_ttl, cookies, config.max_password_checks));
        engine.on_notice(Box::new({
            let (sockets, auth) = (sockets.clone(), auth.clone());
            move |notice| {
                // Forgotten first: a socket being admitted now reads the store, and one admitted
                // a moment ago is registered and closed.
                auth.forget(&notice);
                sockets.apply(&notice);
                if notice == Notice::Missed {
                    let (sockets, auth) = (sockets.clone(), auth.clone());
                    tokio::spawn(async move {
                        let closed = sockets.recheck(&auth).await;
                        tracing::info!(closed, "open sockets checked again after the link to the other nodes was back");
                    });
                }
            }
        }));
        let redis_roster = match &config.redis_url {
            Some(url) => Some(
                RedisRoster::connect(url, &config.redis_prefix, config.node_expiry)
                    .await
                    .context("LIVEDASH_REDIS_URL (connection counts)")?,
            ),
            None => None,
        };
        let roster: Arc<dyn Roster> = match &redis_roster {
            Some(roster) => roster.clone(),
            None => Arc::new(MemoryRoster::default()),
        };
        let presence = Arc::new(Presence::new(InOrder::start(engine.clone()), roster.clone(), config.activity_per_min));
        if let Some(redis_roster) = redis_roster {
            let presence = presence.clone();
            let gone = move |gone: roster::redis::Gone| presence.gone(&gone.user);
            tokio::spawn(redis_roster.run(gone, shutdown.signal()));
        }
        let proxies = TrustedProxies::parse(&config.trusted_proxies)
            .map_err(anyhow::Error::msg)
            .context("LIVEDASH_TRUSTED_PROXIES")?;
        let metrics_listener = match &config.metrics_addr {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
                format!("binding LIVEDASH_METRICS_ADDR {addr} (is another livedash using it? set another address)")
            })?),
            None => None,
        };
        let audit = AuditSettings {
            denials_per_min: config.audit_denials_per_min,
            retention: Duration::from_secs(config.audit_retention_days * 24 * 3600),
            queue: store::audit::QUEUE,
            spill_dir: config.audit_spill_dir(),
        };
        let (auditor, audit_writer) = Auditor::start(store.clone(), audit);
        let limiters = Arc::new(Limiters::new(&config));
        let bridge = match &config.kafka_bridge {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading {path} (LIVEDASH_KAFKA_BRIDGE)"))?;
                let (settings, routes) = bridge::mapping::parse(&text).with_context(|| format!("in {path}"))?;
                let (group, count) = (settings.group_id.clone(), routes.len());
                let status = bridge::consumer::start(settings, routes, engine.clone(), shutdown.signal())
                    .context("starting the Kafka bridge")?;
                tracing::info!(group, routes = count, "the Kafka bridge consumes");
                Some(status)
            }
            None => None,
        };
        Ok(Self {
            auth,
            cursors: Arc::new(CursorKeys::new(&secret)),
            edits: Arc::new(DashboardEdits::new(engine.clone())),
            job_streams: Arc::default(),
            proxies: Arc::new(proxies),
            presence,
            roster,
            config: Arc::new(config),
            leptos_options,
            assets,
            site_urls,
            broker,
            engine,
            store,
            auditor,
            audit_writer,
            sockets,
            limiters,
            shutdown,
            demo_keys,
            metrics_listener,
            bridge,
        })
    }

    pub fn broker(&self) -> Arc<Broker> {
        self.broker.clone()
    }

    pub fn engine(&self) -> Arc<dyn Engine> {
        self.engine.clone()
    }

    pub fn store(&self) -> Store {
        self.store.clone()
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
        AppState {
            leptos_options: self.leptos_options.clone(),
            config: self.config.clone(),
            broker: self.broker.clone(),
            engine: self.engine.clone(),
            store: self.store.clone(),
            auth: self.auth.clone(),
            auditor: self.auditor.clone(),
            sockets: self.sockets.clone(),
            roster: self.roster.clone(),
            limiters: self.limiters.clone(),
            presence: self.presence.clone(),
            edits: self.edits.clone(),
            cursors: self.cursors.clone(),
            job_streams: self.job_streams.clone(),
            proxies: self.proxies.clone(),
            shutdown: self.shutdown.signal(),
            bridge: self.bridge.clone(),
        }
    }

    pub fn router(&self) -> Router {
        let state = self.state();
        let routes = generate_route_list(App);
        let options = state.leptos_options.clone();
        let urls = self.site_urls.clone();
        let page = move |options| shell(options, urls.clone());
        let pages = {
            let page = page.clone();
            Router::new()
                .leptos_routes(&state, routes, move || page(options.clone()))
                .route_layer(axum::middleware::from_fn_with_state(state.clone(), pages::require_session))
                .layer(axum::middleware::map_response(assets::revalidate))
        };
        let files = Router::new().route("/assets/{hash}/{*path}", get(assets::hashed)).with_state(self.assets.clone());
        // What is neither a route nor a file found at start-up goes to leptos_axum's handler: it
        // serves a file of the site root written since (without the freshness check of its
        // precompressed copies), and otherwise renders the app's own "not found" page.
        let errors = leptos_axum::file_and_error_handler::<AppState, _>(page);
        let site_files = self.assets.clone();
        let metrics = match self.config.metrics_addr {
            Some(_) => Router::new(),
            None => telemetry::router(self.config.metrics_token.clone()),
        };
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readiness))
            .merge(metrics)
            .route("/api/ws", get(transport::ws::upgrade))
            .route("/api/stream/dashboard/{id}", get(transport::sse::dashboard))
            .route("/api/v1/realtime/jobs/{job}", get(transport::job_stream::job))
            .route("/api/v1/dashboards/{id}/updates", get(transport::poll::updates))
            .merge(api::routes())
            .merge(pages)
            .merge(files)
            .fallback(move |uri, state, request| {
                let (site, errors) = (site_files.clone(), errors.clone());
                async move {
                    match site.serve_plain(request).await {
                        Ok(file) => file,
                        Err(request) => assets::revalidate(errors(uri, state, request).await).await,
                    }
                }
            })
            .layer(axum::middleware::from_fn_with_state(state.clone(), csrf::guard))
            .layer(tower::util::option_layer(cors::layer(&self.config.allowed_origins)))
            .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(self.config.body_read_timeout))
            .with_state(state)
    }

    /// Serves until `stop` completes, then closes every socket with 1001 and waits, at most
    /// `LIVEDASH_SHUTDOWN_GRACE_SECS` whatever clients do, for sockets, feeds and requests in flight
    /// to finish, and then for the audit writer.
    pub async fn serve(mut self, listener: TcpListener, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        if self.config.demo {
            let feed = ingest::demo_feed::run(self.engine.clone(), Duration::from_secs(1), self.shutdown.signal());
            tokio::spawn(feed);
        }
        let keep = |key: &broker::topic_name::TopicKey| key.name.is_server_owned();
        let sweeper = broker::sweep::run(self.broker.clone(), self.config.sweep_interval, keep, self.shutdown.signal());
        tokio::spawn(sweeper);
        tokio::spawn(memory::run(self.sockets.clone(), self.shutdown.signal()));
        let limits = ListenerLimits {
            header_read_timeout: self.config.header_read_timeout,
            max_connections: self.config.max_http_connections,
            write_timeout: self.config.write_timeout,
            shutdown_grace: self.config.shutdown_grace,
        };
        let (stop_listening, stopped) = tokio::sync::watch::channel(false);
        let metrics = self.metrics_listener.take().map(|metrics_listener| {
            let router = telemetry::router::<()>(self.config.metrics_token.clone());
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
        let (all_closed, served) = tokio::join!(self.shutdown.finish(self.config.shutdown_grace), listeners);
        if !all_closed {
            tracing::warn!("some connections did not close within the grace period");
        }
        // The writer drains what is queued once the last auditor handle (ours) is gone.
        drop(self.auditor);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.audit_writer).await;
        served.map_err(Into::into)
    }
}

/// How long `/readyz` waits for the store: less than a balancer's health-check timeout.
const READY_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// `/readyz`: whether a load balancer should send this node new clients. Not ready while its engine
/// cannot take publishes (Redis unreachable), while its store does not answer (no sign-in or new
/// connection could be checked), or once it is shutting down; `/healthz` stays the liveness check
/// (the process answers), so a node that lost Redis or its database is not restarted for it.
async fn readiness(axum::extract::State(state): axum::extract::State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let engine = state.engine.name();
    let problem = if state.shutdown.is_stopping() {
        Some("shutting down")
    } else if !state.engine.ready() {
        Some("the engine is unreachable")
    } else if state.bridge.as_ref().is_some_and(|bridge| !bridge.connected()) {
        Some("the Kafka bridge is not connected")
    } else if !matches!(tokio::time::timeout(READY_STORE_TIMEOUT, state.store.ping()).await, Ok(Ok(()))) {
        tracing::warn!("the store does not answer");
        Some("the store is unreachable")
    } else {
        None
    };
    let body = serde_json::json!({
        "ready": problem.is_none(),
        "engine": engine,
        "store": state.store.backend_name(),
        "problem": problem,
    });
    let status =
        if problem.is_none() { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

/// The broker's settings out of the server's.
pub fn broker_config(config: &Config) -> BrokerConfig {
    BrokerConfig {
        history_len: config.history_len,
        history_max_age: config.history_max_age,
        history_max_bytes: config.history_max_bytes,
        tenant_history_max_bytes: config.tenant_history_max_bytes,
        tenant_state_max_bytes: config.tenant_state_max_bytes,
        state: StateLimits {
            series_points: config.snapshot_points,
            events: config.snapshot_events,
            metric_keys: config.max_metric_keys,
            documents: config.max_documents,
            max_bytes: config.max_topic_state_bytes,
        },
        max_topics_per_tenant: config.max_topics_per_tenant,
        max_waiting_per_tenant: config.max_waiting_per_tenant,
        topic_idle: config.topic_idle,
    }
}
