//! Every server setting, declared once: its field, type, default, the variable it is read from, how
//! it is read, and its row in the README's table. [`settings!`] turns the table into [`Config`], its
//! `Default`, [`Config::from_lookup`] and [`SETTINGS`]; tests check the README's table against
//! [`SETTINGS`] and every default shown there against the value it stands for.

use super::{ConfigError, read};
use std::time::Duration;

/// One setting as the README's table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable; in a config file, the same without `LIVEDASH_`, in lower case.
    pub name: &'static str,
    /// The default as the README shows it: a value in backticks, or words.
    pub default: &'static str,
    pub meaning: &'static str,
}

/// `field: Type = default, "LIVEDASH_NAME", reader, "shown default", "meaning";` for each setting,
/// where `reader` is a function of [`read`].
macro_rules! settings {
    ($( $field:ident : $ty:ty = $default:expr, $name:literal, $read:ident, $shown:literal, $meaning:literal; )*) => {
        /// The server's settings, with defaults that need nothing.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $( #[doc = concat!($meaning, " (`", $name, "`, default ", $shown, ")")] pub $field: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl Config {
            /// Reads each setting through `lookup` (the environment, or a map in tests); a value
            /// that is empty or only spaces counts as unset.
            pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
                let defaults = Self::default();
                let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
                Ok(Self { $( $field: read::$read($name, get($name), defaults.$field)?, )* })
            }
        }

        /// Every setting, in the README's order.
        pub const SETTINGS: &[Setting] = &[ $( Setting { name: $name, default: $shown, meaning: $meaning }, )* ];
    };
}

settings! {
    demo: bool = false, "LIVEDASH_DEMO", switch,
        "`off`",
        "demo mode: tenants `acme` and `globex`, their users (with a public password) and API keys, and the demo feed (`on`/`off`). `scripts/run`, `scripts/watch` and this checkout's `livedash.toml` turn it on; a demo server listening beyond loopback prints a warning";
    database: String = "livedash.db".into(), "LIVEDASH_DATABASE", text,
        "`livedash.db`",
        "the store: a SQLite file, or a `postgres://user:password@host/db` URL for several nodes (created when missing, migrated on start)";
    session_ttl: Duration = Duration::from_secs(8 * 3600), "LIVEDASH_SESSION_TTL_SECS", secs,
        "`28800`",
        "how long a login lasts; its WebSockets close with 4401 and its SSE streams end with a `close` event carrying 4401 when it ends";
    session_secret: Option<String> = None, "LIVEDASH_SESSION_SECRET", optional,
        "generated, kept in the database",
        "signs session tokens; nodes that share sessions must share it";
    secure_cookies: bool = false, "LIVEDASH_SECURE_COOKIES", switch,
        "`off`",
        "always mark the session cookie `Secure` (it is anyway for requests with `X-Forwarded-Proto: https`)";
    allowed_origins: Vec<String> = Vec::new(), "LIVEDASH_ALLOWED_ORIGINS", origins,
        "this server's host",
        "comma-separated origins (`https://host[:port]`) whose pages may use the server: live connections, and CORS with credentials for the JSON API (see \"Static front end\")";
    cookie_domain: Option<String> = None, "LIVEDASH_COOKIE_DOMAIN", cookie_domain,
        "unset (the host)",
        "`Domain` of the session cookie, for a site whose hosts share it";
    max_connections_per_user: usize = 10, "LIVEDASH_MAX_CONNECTIONS_PER_USER", size,
        "`10`",
        "open WebSockets and SSE streams per user, together (more: 4429, or 429 for a stream)";
    live_dashboards_off: Vec<String> = Vec::new(), "LIVEDASH_LIVE_DASHBOARDS_OFF", list,
        "none",
        "tenants whose live mode is set to `off` at start (comma-separated); admins change it with the API or the page's header";
    live_dashboards_polling: Vec<String> = Vec::new(), "LIVEDASH_LIVE_DASHBOARDS_POLLING", list,
        "none",
        "tenants whose live mode is set to `polling` at start: WebSockets and SSE refused, pages poll (comma-separated)";
    max_publish_bytes: usize = 256 * 1024, "LIVEDASH_MAX_PUBLISH_BYTES", size,
        "`262144`",
        "largest publish body (413 beyond)";
    publishes_per_sec: usize = 100, "LIVEDASH_PUBLISHES_PER_SEC", size,
        "`100`",
        "publishes per second per API key, bursts of twice that (429 with `Retry-After` beyond)";
    idempotency_window: Duration = Duration::from_secs(300), "LIVEDASH_IDEMPOTENCY_WINDOW_SECS", secs,
        "`300`",
        "how long the publish API keeps the answer to a request sent with an `Idempotency-Key`: a repeat within it gets the same answer and publishes nothing";
    max_idempotency_keys: usize = 50_000, "LIVEDASH_MAX_IDEMPOTENCY_KEYS", size,
        "`50000`",
        "idempotency keys one tenant may hold at once, across the deployment (a publish with a new key beyond: 429)";
    connect_attempts_per_min: usize = 60, "LIVEDASH_CONNECT_ATTEMPTS_PER_MIN", size,
        "`60`",
        "WebSocket and SSE connection attempts per address and minute (4429 or 429 beyond)";
    polls_per_min: usize = 60, "LIVEDASH_POLLS_PER_MIN", size,
        "`60`",
        "polls per user and minute (429 with `Retry-After` beyond)";
    max_job_streams_per_user: usize = 5, "LIVEDASH_MAX_JOB_STREAMS_PER_USER", size,
        "`5`",
        "streams of one job one user may have open";
    sse_heartbeat: Duration = protocol::sse::DEFAULT_HEARTBEAT, "LIVEDASH_SSE_HEARTBEAT_SECS", secs,
        "`30`",
        "interval of the SSE streams' `heartbeat` event";
    write_coalesce: Duration = Duration::from_millis(20), "LIVEDASH_WRITE_COALESCE_MS", coalesce_ms,
        "`20`",
        "shortest time between two writes to one WebSocket: updates arriving sooner go out together in the next write (0: every batch at once); a connection fed slower never waits";
    write_timeout: Duration = Duration::from_secs(10), "LIVEDASH_WRITE_TIMEOUT_SECS", secs,
        "`10`",
        "longest a write to a client may wait; a client that stops reading is dropped (also the sockets' `TCP_USER_TIMEOUT`)";
    max_subscriptions: usize = 100, "LIVEDASH_MAX_SUBSCRIPTIONS", size,
        "`100`",
        "subscriptions per connection";
    client_messages_per_sec: usize = 50, "LIVEDASH_CLIENT_MESSAGES_PER_SEC", size,
        "`50`",
        "client messages per second per connection, bursts of twice that";
    history_len: usize = 1000, "LIVEDASH_HISTORY_LEN", size,
        "`1000`",
        "messages kept per topic for clients that resume";
    history_max_age: Duration = Duration::from_secs(15 * 60), "LIVEDASH_HISTORY_MAX_AGE_SECS", secs,
        "`900`",
        "age after which a message is no longer kept for resume";
    snapshot_points: usize = 120, "LIVEDASH_SNAPSHOT_POINTS", size,
        "`120`",
        "points a `series` snapshot carries";
    snapshot_events: usize = 50, "LIVEDASH_SNAPSHOT_EVENTS", size,
        "`50`",
        "events an `events` snapshot carries";
    max_metric_keys: usize = 256, "LIVEDASH_MAX_METRIC_KEYS", size,
        "`256`",
        "keys a `metrics` topic may hold";
    max_documents: usize = 1000, "LIVEDASH_MAX_DOCUMENTS", size,
        "`1000`",
        "documents a `collection` topic may hold";
    max_topics_per_tenant: usize = 1000, "LIVEDASH_MAX_TOPICS_PER_TENANT", size,
        "`1000`",
        "topics one tenant may have";
    outbox_capacity: usize = 256, "LIVEDASH_OUTBOX_CAPACITY", size,
        "`256`",
        "updates queued per connection before its slowest subscription is resynced";
    heartbeat_interval: Duration = protocol::DEFAULT_HEARTBEAT_INTERVAL, "LIVEDASH_HEARTBEAT_SECS", secs,
        "`25`",
        "client ping interval (announced in `welcome`) and server ping interval";
    idle_timeout: Duration = Duration::from_secs(60), "LIVEDASH_IDLE_TIMEOUT_SECS", secs,
        "`60`",
        "silence after which a socket is closed";
    max_frame_bytes: usize = 64 * 1024, "LIVEDASH_MAX_FRAME_BYTES", size,
        "`65536`",
        "largest inbound WebSocket message";
    shutdown_grace: Duration = Duration::from_secs(5), "LIVEDASH_SHUTDOWN_GRACE_SECS", secs,
        "`5`",
        "how long shutdown waits for sockets and requests to finish, whatever clients do";
    history_max_bytes: usize = 4 << 20, "LIVEDASH_HISTORY_MAX_BYTES", size,
        "`4194304`",
        "bytes of history one topic keeps";
    tenant_history_max_bytes: usize = 64 << 20, "LIVEDASH_TENANT_HISTORY_MAX_BYTES", size,
        "`67108864`",
        "bytes of history all of a tenant's topics keep (past it, the topic written to forgets its oldest)";
    max_topic_state_bytes: usize = 4 << 20, "LIVEDASH_MAX_TOPIC_STATE_BYTES", size,
        "`4194304`",
        "bytes a topic's state (its snapshot) may hold: events forget their oldest, metrics and collections refuse more (`422`)";
    tenant_state_max_bytes: usize = 256 << 20, "LIVEDASH_TENANT_STATE_MAX_BYTES", size,
        "`268435456`",
        "bytes of state all of a tenant's topics may hold (`422` beyond)";
    max_waiting_per_tenant: usize = 10_000, "LIVEDASH_MAX_WAITING_SUBSCRIPTIONS_PER_TENANT", size,
        "`10000`",
        "subscriptions to topics that do not exist yet, per tenant (`limit_exceeded` beyond)";
    topic_idle: Duration = Duration::from_secs(24 * 3600), "LIVEDASH_TOPIC_IDLE_SECS", secs,
        "`86400`",
        "a topic nobody published to or followed for this long is retired (a later subscriber that held a position gets `gap` + snapshot)";
    sweep_interval: Duration = Duration::from_secs(30), "LIVEDASH_SWEEP_INTERVAL_SECS", secs,
        "`30`",
        "how often history ages out of quiet topics and idle topics retire";
    refreshes_per_min: usize = 60, "LIVEDASH_REFRESHES_PER_MIN", size,
        "`60`",
        "manual refreshes per connection and minute (`rate_limited` beyond)";
    activity_per_min: usize = 30, "LIVEDASH_ACTIVITY_PER_MIN", size,
        "`30`",
        "activity reports per user and minute (`rate_limited` beyond)";
    header_read_timeout: Duration = Duration::from_secs(10), "LIVEDASH_HEADER_READ_TIMEOUT_SECS", secs,
        "`10`",
        "longest a client may take to send a request's headers";
    body_read_timeout: Duration = Duration::from_secs(10), "LIVEDASH_BODY_READ_TIMEOUT_SECS", secs,
        "`10`",
        "longest a client may take to send a body (`408` beyond)";
    max_http_connections: usize = 10_000, "LIVEDASH_MAX_HTTP_CONNECTIONS", size,
        "`10000`",
        "TCP connections served at once (`503` beyond)";
    logins_per_min_per_address: usize = 20, "LIVEDASH_LOGINS_PER_MIN_PER_ADDRESS", size,
        "`20`",
        "sign-in attempts per address and minute (`429` with `Retry-After` beyond); an address is an IPv4 address or an IPv6 /64";
    logins_per_min_per_account: usize = 10, "LIVEDASH_LOGINS_PER_MIN_PER_ACCOUNT", size,
        "`10`",
        "failed sign-ins per account and address and minute (`429` beyond)";
    login_failures_per_hour_per_account: usize = 30, "LIVEDASH_LOGIN_FAILURES_PER_HOUR_PER_ACCOUNT", size,
        "`30`",
        "failed sign-ins per account and hour from addresses it has not signed in from in 30 days (also the burst; the owner's usual addresses are not held by it)";
    api_key_failures_per_min_per_address: usize = 10, "LIVEDASH_API_KEY_FAILURES_PER_MIN_PER_ADDRESS", size,
        "`10`",
        "failed API-key checks per address and minute; beyond, `429` before any lookup";
    max_password_checks: usize = 4, "LIVEDASH_MAX_PASSWORD_CHECKS", size,
        "`4`",
        "password checks at once; a sign-in that cannot get one soon answers `503` with `Retry-After`";
    audit_denials_per_min: usize = 10, "LIVEDASH_AUDIT_DENIALS_PER_MIN", size,
        "`10`",
        "denials per source and minute written one by one; the rest become one summary line";
    audit_retention_days: u64 = 90, "LIVEDASH_AUDIT_RETENTION_DAYS", number,
        "`90`",
        "how long the audit log keeps an entry";
    audit_spill_dir: Option<String> = None, "LIVEDASH_AUDIT_SPILL_DIR", optional,
        "beside the SQLite file (`<database>.audit-spill`), or in the temporary directory for PostgreSQL",
        "where audit entries wait when they cannot be written at once (never dropped; see [`docs/security.md`](docs/security.md))";
    trusted_proxies: Vec<String> = Vec::new(), "LIVEDASH_TRUSTED_PROXIES", list,
        "none",
        "addresses or CIDR ranges of reverse proxies whose `X-Forwarded-For` is believed (never otherwise)";
    metrics_token: Option<String> = None, "LIVEDASH_METRICS_TOKEN", optional,
        "none",
        "bearer token `/metrics` requires";
    metrics_addr: Option<String> = Some(super::DEFAULT_METRICS_ADDR.to_owned()), "LIVEDASH_METRICS_ADDR", metrics_addr,
        "`127.0.0.1:9464`",
        "the address of `/metrics`'s own listener (loopback: metrics name every tenant); `main` serves it on the main listener instead, which needs `LIVEDASH_METRICS_TOKEN`";
    redis_url: Option<String> = None, "LIVEDASH_REDIS_URL", optional,
        "none",
        "run as one node of several over this Redis (`redis://host:6379/0`; see \"Several nodes\")";
    redis_prefix: String = "livedash:".into(), "LIVEDASH_REDIS_PREFIX", text,
        "`livedash:`",
        "what every key and channel livedash writes in Redis starts with, so deployments can share one Redis";
    node_expiry: Duration = Duration::from_secs(15), "LIVEDASH_NODE_EXPIRY_SECS", secs,
        "`15`",
        "a node that stops renewing its heartbeat in Redis (it crashed) stops counting its users' connections after this";
    kafka_bridge: Option<String> = None, "LIVEDASH_KAFKA_BRIDGE", optional,
        "unset",
        "a mapping file: this node consumes the Kafka topics it names into livedash topics (see \"Kafka bridge\")";
}
