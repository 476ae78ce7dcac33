//! What every request handler can reach ([`AppState`]), and the rate limiters requests share.

use crate::auth::{
    Auth,
    sign_in_throttle::{SignInThrottle, ThrottleSettings},
};
use crate::broker::{
    Broker, BrokerConfig,
    cluster::Cluster,
    engine::{Engine, PublishRate},
    topic_state::StateLimits,
};
use crate::client_addr::TrustedProxies;
use crate::config::Config;
use crate::connections::{cursor::CursorKeys, job_streams::JobStreamCounts, registry::Registry};
use crate::dashboard_edits::DashboardEdits;
use crate::limits::KeyedLimiter;
use crate::presence::Presence;
use crate::roster::Roster;
use crate::shutdown::ShutdownSignal;
use crate::store::{Store, audit::Auditor};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub broker: Arc<Broker>,
    /// Where every publish goes: this node (memory) or Redis.
    pub engine: Arc<dyn Engine>,
    /// The other nodes, if any: notices and duties.
    pub cluster: Arc<dyn Cluster>,
    /// Each API key's publish allowance, across the deployment.
    pub publish_rate: Arc<dyn PublishRate>,
    /// The publish API's idempotency keys, across the deployment.
    pub receipts: Arc<dyn crate::ingest::idempotency::Receipts>,
    pub store: Store,
    pub auth: Arc<Auth>,
    /// The tenants' topic rules, as this node holds them.
    pub permissions: Arc<crate::permissions::Permissions>,
    /// The tenants' widgets that raise collection notifications, as this node holds them.
    pub notifiers: Arc<crate::notifying::Notifiers>,
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
    /// The WebSockets' shared write tick (`LIVEDASH_WRITE_COALESCE_MS`); none when writes are not
    /// held.
    pub write_tick: Option<Arc<crate::write_tick::WriteTick>>,
    /// The Kafka bridge, when this node runs one (`LIVEDASH_KAFKA_BRIDGE`).
    pub bridge: Option<Arc<crate::bridge::consumer::BridgeStatus>>,
}

/// Rate limits shared by all requests. Each keys on the identity the lookup it guards uses: a
/// [`crate::client_addr::Source`] (an IPv4 address or an IPv6 /64), a user id, a normalised e-mail.
#[derive(Debug)]
pub struct Limiters {
    pub connects_by_source: KeyedLimiter<crate::client_addr::Source>,
    pub polls_by_user: KeyedLimiter<i64>,
    pub sign_ins: SignInThrottle,
    /// Failed API-key checks per source: a flood of made-up keys costs no database lookups.
    pub api_key_failures_by_source: KeyedLimiter<crate::client_addr::Source>,
    /// Recovery reports per user: a page sends one per outage, so a few a minute is plenty.
    pub recovery_reports_by_user: KeyedLimiter<i64>,
    /// Display sessions opened per display (the lookup a claim makes), and wrong display secrets
    /// per source.
    pub display_sessions_by_display: KeyedLimiter<i64>,
    pub display_secret_failures_by_source: KeyedLimiter<crate::client_addr::Source>,
}

/// Recovery reports a user may send a minute (`POST /api/me/recovery`).
pub const RECOVERY_REPORTS_PER_MIN: usize = 12;

impl Limiters {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            connects_by_source: per_minute(config.connect_attempts_per_min),
            polls_by_user: per_minute(config.polls_per_min),
            sign_ins: SignInThrottle::new(ThrottleSettings {
                attempts_per_min_per_source: config.logins_per_min_per_address,
                failures_per_min_per_account_and_source: config.logins_per_min_per_account,
                failures_per_hour_per_account: config.login_failures_per_hour_per_account,
            }),
            api_key_failures_by_source: per_minute(config.api_key_failures_per_min_per_address),
            recovery_reports_by_user: per_minute(RECOVERY_REPORTS_PER_MIN),
            display_sessions_by_display: per_minute(crate::api::displays::DISPLAY_SESSIONS_PER_MIN),
            display_secret_failures_by_source: per_minute(crate::api::displays::DISPLAY_FAILURES_PER_MIN),
        }
    }
}

/// `n` a minute, in bursts of up to `n`.
fn per_minute<K: Eq + std::hash::Hash + Clone>(n: usize) -> KeyedLimiter<K> {
    KeyedLimiter::new(n as f64 / 60.0, n as f64)
}

impl FromRef<AppState> for Arc<TrustedProxies> {
    fn from_ref(state: &AppState) -> Self {
        state.proxies.clone()
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
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
