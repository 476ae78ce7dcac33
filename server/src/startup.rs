//! Putting a node together: the site's files, the store, the engine (this node, or Redis with the
//! other nodes), the roster, the auditor, the Kafka bridge, each from the configuration.

use crate::assets::Assets;
use crate::auth::Auth;
use crate::broker::{
    Broker,
    cluster::{Alone, Cluster, Notice},
    engine::{Engine, InOrder, LocalPublishRate, MemoryEngine, PublishRate},
    redis::RedisEngine,
};
use crate::client_addr::TrustedProxies;
use crate::config::Config;
use crate::connections::{cursor::CursorKeys, registry::Registry};
use crate::dashboard_edits::DashboardEdits;
use crate::ingest::idempotency::{MemoryReceipts, Receipts};
use crate::notifying::alert_states::{AlertStates, MemoryAlertStates};
use crate::notifying::{Notifiers, NotifyingEngine};
use crate::permissions::Permissions;
use crate::presence::Presence;
use crate::roster::{MemoryRoster, Roster, redis::RedisRoster};
use crate::shutdown::Shutdown;
use crate::store::{
    Store,
    audit::{AuditSettings, Auditor},
};
use crate::topic_name::TenantId;
use crate::write_tick::WriteTick;
use anyhow::Context;
use leptos::config::LeptosOptions;
use protocol::LiveMode;
use std::{sync::Arc, time::Duration};
use tokio::net::TcpListener;

use crate::{AppState, Limiters, Livedash, broker_config};
use crate::{auth, bridge, demo, roster, store, telemetry};

/// The broker and the engine parts a node is made of: all are this node's own, or all come from
/// Redis.
struct Parts {
    broker: Arc<Broker>,
    engine: Arc<dyn Engine>,
    cluster: Arc<dyn Cluster>,
    publish_rate: Arc<dyn PublishRate>,
    alert_states: Arc<dyn AlertStates>,
    receipts: Arc<dyn Receipts>,
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
        for (tenant, mode) in start_modes(&config)? {
            store.set_live_mode(&tenant, mode).await?;
        }
        let shutdown = Shutdown::new();
        let Parts { broker, engine, cluster, publish_rate, alert_states, receipts } = match &config.redis_url {
            Some(url) => {
                let signal = shutdown.signal();
                let per_sec = config.publishes_per_sec as f64;
                let engine = RedisEngine::connect(url, &config.redis_prefix, broker_config(&config), per_sec, signal)
                    .await
                    .context("LIVEDASH_REDIS_URL")?;
                tracing::info!("topics are kept in Redis, shared with every node that uses it");
                Parts {
                    broker: engine.broker(),
                    engine: engine.clone(),
                    cluster: engine.clone(),
                    publish_rate: engine.clone(),
                    alert_states: engine.clone(),
                    receipts: engine,
                }
            }
            None => {
                let broker = Arc::new(Broker::new(broker_config(&config)));
                Parts {
                    broker: broker.clone(),
                    engine: Arc::new(MemoryEngine::new(broker)),
                    cluster: Arc::new(Alone),
                    publish_rate: Arc::new(LocalPublishRate::new(config.publishes_per_sec as f64)),
                    alert_states: Arc::new(MemoryAlertStates::default()),
                    receipts: Arc::new(MemoryReceipts::default()),
                }
            }
        };
        let sockets = Arc::new(Registry::default());
        let cookies = auth::session_cookie::CookiePolicy {
            always_secure: config.secure_cookies,
            domain: config.cookie_domain.clone(),
        };
        let auth = Arc::new(Auth::new(store.clone(), &secret, config.session_ttl, cookies, config.max_password_checks));
        let permissions = Arc::new(Permissions::new(store.clone()));
        let notifiers = Arc::new(Notifiers::new(store.clone()));
        let engine: Arc<dyn Engine> =
            Arc::new(NotifyingEngine::new(engine, notifiers.clone(), permissions.clone(), alert_states, store.clone()));
        cluster.on_notice(Box::new({
            let (sockets, auth, permissions) = (sockets.clone(), auth.clone(), permissions.clone());
            let notifiers = notifiers.clone();
            move |notice| {
                // Forgotten first: a socket being admitted now reads the store, and one admitted
                // a moment ago is registered and closed.
                auth.forget(&notice);
                sockets.apply(&notice);
                match &notice {
                    Notice::Notifiers(tenant) => notifiers.forget(Some(tenant)),
                    Notice::Missed => notifiers.forget(None),
                    _ => {}
                }
                let changed_rules = match &notice {
                    Notice::TopicRules(tenant) => vec![tenant.clone()],
                    Notice::Missed => permissions.tenants(),
                    Notice::SessionEnded(_) | Notice::LiveMode(..) | Notice::Notifiers(_) => vec![],
                };
                for tenant in changed_rules {
                    let (sockets, permissions) = (sockets.clone(), permissions.clone());
                    tokio::spawn(async move { permissions.reread_until_read(&tenant, &sockets).await });
                }
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
        let edits = Arc::new(DashboardEdits::new(engine.clone()));
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
        let write_tick = (!config.write_coalesce.is_zero()).then(|| WriteTick::start(config.write_coalesce));
        let state = AppState {
            leptos_options,
            config: Arc::new(config),
            broker,
            engine,
            cluster,
            publish_rate,
            receipts,
            store,
            auth,
            permissions,
            notifiers,
            auditor,
            sockets,
            roster,
            limiters,
            presence,
            edits,
            cursors: Arc::new(CursorKeys::new(&secret)),
            job_streams: Arc::default(),
            proxies: Arc::new(proxies),
            shutdown: shutdown.signal(),
            write_tick,
            bridge,
        };
        crate::vitals::keep_gauges(state.clone());
        Ok(Self { state, assets, site_urls, shutdown, audit_writer, demo_keys, metrics_listener })
    }
}

/// The live modes the configuration sets at start (`LIVEDASH_LIVE_DASHBOARDS_OFF` and
/// `…_POLLING`). A tenant in both lists is a mistake the operator must see, not a guess.
fn start_modes(config: &Config) -> anyhow::Result<Vec<(TenantId, LiveMode)>> {
    let lists = [
        (&config.live_dashboards_off, LiveMode::Off, "LIVEDASH_LIVE_DASHBOARDS_OFF"),
        (&config.live_dashboards_polling, LiveMode::Polling, "LIVEDASH_LIVE_DASHBOARDS_POLLING"),
    ];
    let mut modes: Vec<(TenantId, LiveMode)> = Vec::new();
    for (tenants, mode, setting) in lists {
        for tenant in tenants {
            let tenant = TenantId::parse(tenant).context(setting)?;
            if let Some((_, other)) = modes.iter().find(|(seen, _)| *seen == tenant) {
                anyhow::bail!("{setting}: tenant {tenant} is set to {other} by another setting too");
            }
            modes.push((tenant, mode));
        }
    }
    Ok(modes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tenant_gets_one_start_mode() {
        let config = Config {
            live_dashboards_off: vec!["acme".into()],
            live_dashboards_polling: vec!["globex".into()],
            ..Config::default()
        };
        let modes = start_modes(&config).unwrap();
        assert_eq!(
            modes.iter().map(|(t, m)| (t.as_str(), *m)).collect::<Vec<_>>(),
            [("acme", LiveMode::Off), ("globex", LiveMode::Polling)]
        );
        let both = Config { live_dashboards_polling: vec!["acme".into()], ..config };
        let error = start_modes(&both).unwrap_err().to_string();
        assert!(error.contains("acme") && error.contains("POLLING"), "{error}");
    }
}
