//! Server settings, with defaults that need nothing. Each one can be set by a `LIVEDASH_*`
//! environment variable or in a TOML config file under the same name without the prefix
//! (`LIVEDASH_HISTORY_LEN` ↔ `history_len = 1000`); the environment wins over the file.

use std::{cell::RefCell, collections::HashMap, path::Path, time::Duration};

/// The config file read when `LIVEDASH_CONFIG` does not name one and it exists.
pub const DEFAULT_FILE: &str = "livedash.toml";
/// Where `/metrics` is served unless configured otherwise: loopback only, the port
/// OpenTelemetry's Prometheus exporter uses.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Demo mode (`LIVEDASH_DEMO`, default off; `scripts/run` turns it on): demo tenants, users with
    /// a public password, API keys, and the demo feed.
    pub demo: bool,
    /// The SQLite file (`LIVEDASH_DATABASE`).
    pub database: String,
    /// How long a login lasts (`LIVEDASH_SESSION_TTL_SECS`).
    pub session_ttl: Duration,
    /// Secret that signs session tokens (`LIVEDASH_SESSION_SECRET`); when unset, one is generated
    /// and kept in the database. Nodes that share sessions must share it.
    pub session_secret: Option<String>,
    /// Mark the session cookie `Secure` (`LIVEDASH_SECURE_COOKIES`); also done for requests that
    /// arrive with `X-Forwarded-Proto: https`.
    pub secure_cookies: bool,
    /// Origins whose pages may use this server (`LIVEDASH_ALLOWED_ORIGINS`, comma-separated
    /// `scheme://host[:port]`); empty means this server's own host only. Listed origins may open
    /// live connections, and the JSON API answers them with CORS and credentials (the static front
    /// end on a CDN of the same site). A list replaces the own-host default: name the server's own
    /// origin too when it serves pages as well.
    pub allowed_origins: Vec<String>,
    /// `Domain` of the session cookie (`LIVEDASH_COOKIE_DOMAIN`, e.g. `example.com`); unset, the
    /// cookie belongs to the host that set it.
    pub cookie_domain: Option<String>,
    /// Largest publish body (`LIVEDASH_MAX_PUBLISH_BYTES`).
    pub max_publish_bytes: usize,
    /// Open sockets one user may have (`LIVEDASH_MAX_CONNECTIONS_PER_USER`).
    pub max_connections_per_user: usize,
    /// Tenants whose live dashboards are forced off at start (`LIVEDASH_LIVE_DASHBOARDS_OFF`,
    /// comma-separated); admins can also turn the flag off and on through the API.
    pub live_dashboards_off: Vec<String>,
    /// WebSocket connection attempts one IP address may make per minute
    /// (`LIVEDASH_CONNECT_ATTEMPTS_PER_MIN`).
    pub connect_attempts_per_min: usize,
    /// Subscriptions one connection may hold (`LIVEDASH_MAX_SUBSCRIPTIONS`).
    pub max_subscriptions: usize,
    /// Messages per second a client may send on one connection (`LIVEDASH_CLIENT_MESSAGES_PER_SEC`);
    /// bursts of twice that pass.
    pub client_messages_per_sec: usize,
    /// Publishes per second one API key may make (`LIVEDASH_PUBLISHES_PER_SEC`); bursts of twice
    /// that pass.
    pub publishes_per_sec: usize,
    /// Messages kept per topic for resume (`LIVEDASH_HISTORY_LEN`).
    pub history_len: usize,
    /// Age after which a message is no longer kept for resume (`LIVEDASH_HISTORY_MAX_AGE_SECS`).
    pub history_max_age: Duration,
    /// Points in a series snapshot (`LIVEDASH_SNAPSHOT_POINTS`).
    pub snapshot_points: usize,
    /// Events in an events snapshot (`LIVEDASH_SNAPSHOT_EVENTS`).
    pub snapshot_events: usize,
    /// Keys a metrics topic may hold (`LIVEDASH_MAX_METRIC_KEYS`).
    pub max_metric_keys: usize,
    /// Documents a collection topic may hold (`LIVEDASH_MAX_DOCUMENTS`).
    pub max_documents: usize,
    /// Topics one tenant may have (`LIVEDASH_MAX_TOPICS_PER_TENANT`).
    pub max_topics_per_tenant: usize,
    /// Updates one connection may have queued before its slowest subscription is resynced
    /// (`LIVEDASH_OUTBOX_CAPACITY`).
    pub outbox_capacity: usize,
    /// Client ping interval announced in `welcome`; also the server's WebSocket ping interval
    /// (`LIVEDASH_HEARTBEAT_SECS`).
    pub heartbeat_interval: Duration,
    /// Silence after which a socket is closed (`LIVEDASH_IDLE_TIMEOUT_SECS`).
    pub idle_timeout: Duration,
    /// Largest inbound WebSocket message (`LIVEDASH_MAX_FRAME_BYTES`).
    pub max_frame_bytes: usize,
    /// How long shutdown waits for sockets to close (`LIVEDASH_SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace: Duration,
    /// Longest a write to a client may take before the client counts as gone
    /// (`LIVEDASH_WRITE_TIMEOUT_SECS`): a reader that stopped reading is dropped, not buffered for.
    pub write_timeout: Duration,
    /// Shortest time between two writes to one WebSocket (`LIVEDASH_WRITE_COALESCE_MS`; 0 writes
    /// every batch at once). A connection fed faster than this gets what arrived in between in one
    /// write: one syscall, and one wake-up of the browser, for several updates. A connection fed
    /// slower never waits. See docs/benchmarks.md.
    pub write_coalesce: Duration,
    /// Interval of the SSE streams' `heartbeat` event (`LIVEDASH_SSE_HEARTBEAT_SECS`).
    pub sse_heartbeat: Duration,
    /// Polls one user may make per minute (`LIVEDASH_POLLS_PER_MIN`); bursts of that many pass.
    pub polls_per_min: usize,
    /// Streams of one job one user may have open (`LIVEDASH_MAX_JOB_STREAMS_PER_USER`).
    pub max_job_streams_per_user: usize,
    /// Bytes of history one topic may keep (`LIVEDASH_HISTORY_MAX_BYTES`).
    pub history_max_bytes: usize,
    /// Bytes of history all of one tenant's topics may keep (`LIVEDASH_TENANT_HISTORY_MAX_BYTES`).
    pub tenant_history_max_bytes: usize,
    /// Bytes of state (what snapshots are made of) one topic may hold (`LIVEDASH_MAX_TOPIC_STATE_BYTES`).
    pub max_topic_state_bytes: usize,
    /// Bytes of state all of one tenant's topics may hold (`LIVEDASH_TENANT_STATE_MAX_BYTES`).
    pub tenant_state_max_bytes: usize,
    /// Subscriptions to topics that do not exist yet one tenant may have waiting
    /// (`LIVEDASH_MAX_WAITING_SUBSCRIPTIONS_PER_TENANT`).
    pub max_waiting_per_tenant: usize,
    /// A topic nobody has published to or followed for this long is retired (`LIVEDASH_TOPIC_IDLE_SECS`).
    pub topic_idle: Duration,
    /// How often the broker ages out history and retires idle topics (`LIVEDASH_SWEEP_INTERVAL_SECS`).
    pub sweep_interval: Duration,
    /// Manual refreshes (`request_update`) one connection may ask for per minute
    /// (`LIVEDASH_REFRESHES_PER_MIN`); bursts of that many pass.
    pub refreshes_per_min: usize,
    /// Activity reports one user may make per minute (`LIVEDASH_ACTIVITY_PER_MIN`); bursts of that many pass.
    pub activity_per_min: usize,
    /// Longest a client may take to send a request's headers (`LIVEDASH_HEADER_READ_TIMEOUT_SECS`).
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request's body (`LIVEDASH_BODY_READ_TIMEOUT_SECS`).
    pub body_read_timeout: Duration,
    /// TCP connections served at once (`LIVEDASH_MAX_HTTP_CONNECTIONS`); more are answered 503.
    pub max_http_connections: usize,
    /// Sign-in attempts one address may make per minute (`LIVEDASH_LOGINS_PER_MIN_PER_ADDRESS`).
    pub logins_per_min_per_address: usize,
    /// Failed sign-ins a minute for one account from one address (an IPv4 address or an IPv6 /64)
    /// (`LIVEDASH_LOGINS_PER_MIN_PER_ACCOUNT`).
    pub logins_per_min_per_account: usize,
    /// Failed sign-ins an hour for one account from addresses it has not signed in from lately
    /// (`LIVEDASH_LOGIN_FAILURES_PER_HOUR_PER_ACCOUNT`); also the burst.
    pub login_failures_per_hour_per_account: usize,
    /// Failed API-key checks a minute from one address before it is refused without a lookup
    /// (`LIVEDASH_API_KEY_FAILURES_PER_MIN_PER_ADDRESS`).
    pub api_key_failures_per_min_per_address: usize,
    /// Password checks running at once (`LIVEDASH_MAX_PASSWORD_CHECKS`); more sign-ins wait, briefly.
    pub max_password_checks: usize,
    /// Denials from one address written to the audit log per minute (`LIVEDASH_AUDIT_DENIALS_PER_MIN`);
    /// the rest are counted and written as one summary line.
    pub audit_denials_per_min: usize,
    /// Days the audit log keeps an entry (`LIVEDASH_AUDIT_RETENTION_DAYS`).
    pub audit_retention_days: u64,
    /// Where audit entries wait when they cannot be written at once (`LIVEDASH_AUDIT_SPILL_DIR`);
    /// by default beside a SQLite file, or in the system's temporary directory for PostgreSQL.
    /// One database's: rows found there are written to this database.
    pub audit_spill_dir: Option<String>,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed (`LIVEDASH_TRUSTED_PROXIES`,
    /// comma-separated addresses or CIDR ranges); empty means it is never believed.
    pub trusted_proxies: Vec<String>,
    /// Bearer token `/metrics` requires (`LIVEDASH_METRICS_TOKEN`); unset means no token.
    pub metrics_token: Option<String>,
    /// The address of `/metrics`'s own listener (`LIVEDASH_METRICS_ADDR`, loopback by default:
    /// metrics name every tenant). `None` (`main`) serves it on the main listener instead, which
    /// needs a token.
    pub metrics_addr: Option<String>,
    /// Redis shared by several nodes (`LIVEDASH_REDIS_URL`, `redis://host:port/db`); unset, one
    /// node keeps everything in memory.
    pub redis_url: Option<String>,
    /// What every livedash key and channel in Redis starts with (`LIVEDASH_REDIS_PREFIX`), so that
    /// deployments can share one Redis.
    pub redis_prefix: String,
    /// How long a node's connections keep counting after its last heartbeat to Redis
    /// (`LIVEDASH_NODE_EXPIRY_SECS`): a node that died stops counting its users within this.
    pub node_expiry: Duration,
    /// The Kafka bridge's mapping file (`LIVEDASH_KAFKA_BRIDGE`); unset, no bridge runs.
    pub kafka_bridge: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            demo: false,
            database: "livedash.db".into(),
            session_ttl: Duration::from_secs(8 * 3600),
            session_secret: None,
            secure_cookies: false,
            allowed_origins: Vec::new(),
            cookie_domain: None,
            max_publish_bytes: 256 * 1024,
            max_connections_per_user: 10,
            live_dashboards_off: Vec::new(),
            connect_attempts_per_min: 60,
            max_subscriptions: 100,
            client_messages_per_sec: 50,
            publishes_per_sec: 100,
            history_len: 1000,
            history_max_age: Duration::from_secs(15 * 60),
            snapshot_points: 120,
            snapshot_events: 50,
            max_metric_keys: 256,
            max_documents: 1000,
            max_topics_per_tenant: 1000,
            outbox_capacity: 256,
            heartbeat_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            max_frame_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            write_coalesce: Duration::from_millis(20),
            sse_heartbeat: Duration::from_secs(30),
            polls_per_min: 60,
            max_job_streams_per_user: 5,
            history_max_bytes: 4 << 20,
            tenant_history_max_bytes: 64 << 20,
            max_topic_state_bytes: 4 << 20,
            tenant_state_max_bytes: 256 << 20,
            max_waiting_per_tenant: 10_000,
            topic_idle: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(30),
            refreshes_per_min: 60,
            activity_per_min: 30,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_http_connections: 10_000,
            logins_per_min_per_address: 20,
            logins_per_min_per_account: 10,
            login_failures_per_hour_per_account: 30,
            api_key_failures_per_min_per_address: 10,
            max_password_checks: 4,
            audit_denials_per_min: 10,
            audit_retention_days: 90,
            audit_spill_dir: None,
            trusted_proxies: Vec::new(),
            metrics_token: None,
            metrics_addr: Some(DEFAULT_METRICS_ADDR.to_owned()),
            redis_url: None,
            redis_prefix: "livedash:".into(),
            node_expiry: Duration::from_secs(15),
            kafka_bridge: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{name}={value:?}: {expected}")]
    Invalid { name: String, value: String, expected: &'static str },
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
}

impl Config {
    /// Where audit entries wait on disk: `LIVEDASH_AUDIT_SPILL_DIR`, or a directory named after the
    /// database (beside a SQLite file; for PostgreSQL, in the temporary directory, named by a hash
    /// of its URL).
    pub fn audit_spill_dir(&self) -> std::path::PathBuf {
        if let Some(dir) = &self.audit_spill_dir {
            return dir.into();
        }
        if self.database.starts_with("postgres://") || self.database.starts_with("postgresql://") {
            // FNV-1a: stable across runs and builds, unlike the standard hasher.
            let hash = self
                .database
                .bytes()
                .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
            return std::env::temp_dir().join(format!("livedash-audit-spill-{hash:016x}"));
        }
        let file = self
            .database
            .strip_prefix("sqlite://")
            .or_else(|| self.database.strip_prefix("sqlite:"))
            .unwrap_or(&self.database);
        std::path::PathBuf::from(format!("{file}.audit-spill"))
    }

    /// The environment over the config file (`LIVEDASH_CONFIG`, or `livedash.toml` if present) over
    /// the defaults.
    pub fn load() -> Result<Self, ConfigError> {
        let file = match std::env::var("LIVEDASH_CONFIG") {
            Ok(path) => read_file(Path::new(&path))?,
            Err(_) if Path::new(DEFAULT_FILE).exists() => read_file(Path::new(DEFAULT_FILE))?,
            Err(_) => HashMap::new(),
        };
        Self::from_lookup(|name| std::env::var(name).ok().or_else(|| file.get(name).cloned()))
    }

    /// Every variable name a setting is read from.
    pub fn names() -> Vec<String> {
        let asked = RefCell::new(Vec::new());
        let _ = Self::from_lookup(|name| {
            asked.borrow_mut().push(name.to_owned());
            None
        });
        asked.into_inner()
    }

    /// Reads each setting through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let number = |name: &str, default: u64| -> Result<u64, ConfigError> {
            get(name).map_or(Ok(default), |value| {
                value.parse::<u64>().ok().filter(|n| *n > 0).ok_or(ConfigError::Invalid {
                    name: name.to_owned(),
                    value,
                    expected: "a whole number above 0",
                })
            })
        };
        let secs = |name: &str, default: Duration| number(name, default.as_secs()).map(Duration::from_secs);
        let size = |name: &str, default: usize| number(name, default as u64).map(|n| n as usize);
        let switch = |name: &str, default: bool| match get(name).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "on" | "yes") => Ok(true),
            Some("0" | "false" | "off" | "no") => Ok(false),
            Some(other) => Err(ConfigError::Invalid { name: name.into(), value: other.into(), expected: "on or off" }),
        };
        Ok(Self {
            demo: switch("LIVEDASH_DEMO", d.demo)?,
            database: get("LIVEDASH_DATABASE").unwrap_or(d.database),
            session_ttl: secs("LIVEDASH_SESSION_TTL_SECS", d.session_ttl)?,
            session_secret: get("LIVEDASH_SESSION_SECRET"),
            secure_cookies: switch("LIVEDASH_SECURE_COOKIES", d.secure_cookies)?,
            allowed_origins: origins("LIVEDASH_ALLOWED_ORIGINS", get("LIVEDASH_ALLOWED_ORIGINS"))?,
            cookie_domain: get("LIVEDASH_COOKIE_DOMAIN").map(|d| d.trim_start_matches('.').to_ascii_lowercase()),
            live_dashboards_off: list(get("LIVEDASH_LIVE_DASHBOARDS_OFF")),
            max_publish_bytes: size("LIVEDASH_MAX_PUBLISH_BYTES", d.max_publish_bytes)?,
            max_connections_per_user: size("LIVEDASH_MAX_CONNECTIONS_PER_USER", d.max_connections_per_user)?,
            connect_attempts_per_min: size("LIVEDASH_CONNECT_ATTEMPTS_PER_MIN", d.connect_attempts_per_min)?,
            max_subscriptions: size("LIVEDASH_MAX_SUBSCRIPTIONS", d.max_subscriptions)?,
            client_messages_per_sec: size("LIVEDASH_CLIENT_MESSAGES_PER_SEC", d.client_messages_per_sec)?,
            publishes_per_sec: size("LIVEDASH_PUBLISHES_PER_SEC", d.publishes_per_sec)?,
            history_len: size("LIVEDASH_HISTORY_LEN", d.history_len)?,
            history_max_age: secs("LIVEDASH_HISTORY_MAX_AGE_SECS", d.history_max_age)?,
            snapshot_points: size("LIVEDASH_SNAPSHOT_POINTS", d.snapshot_points)?,
            snapshot_events: size("LIVEDASH_SNAPSHOT_EVENTS", d.snapshot_events)?,
            max_metric_keys: size("LIVEDASH_MAX_METRIC_KEYS", d.max_metric_keys)?,
            max_documents: size("LIVEDASH_MAX_DOCUMENTS", d.max_documents)?,
            max_topics_per_tenant: size("LIVEDASH_MAX_TOPICS_PER_TENANT", d.max_topics_per_tenant)?,
            outbox_capacity: size("LIVEDASH_OUTBOX_CAPACITY", d.outbox_capacity)?,
            heartbeat_interval: secs("LIVEDASH_HEARTBEAT_SECS", d.heartbeat_interval)?,
            idle_timeout: secs("LIVEDASH_IDLE_TIMEOUT_SECS", d.idle_timeout)?,
            max_frame_bytes: size("LIVEDASH_MAX_FRAME_BYTES", d.max_frame_bytes)?,
            shutdown_grace: secs("LIVEDASH_SHUTDOWN_GRACE_SECS", d.shutdown_grace)?,
            write_timeout: secs("LIVEDASH_WRITE_TIMEOUT_SECS", d.write_timeout)?,
            write_coalesce: match get("LIVEDASH_WRITE_COALESCE_MS") {
                None => d.write_coalesce,
                Some(value) => match value.parse::<u64>() {
                    Ok(ms) if ms <= 1000 => Duration::from_millis(ms),
                    _ => {
                        let expected = "a whole number of milliseconds from 0 to 1000";
                        return Err(ConfigError::Invalid {
                            name: "LIVEDASH_WRITE_COALESCE_MS".into(),
                            value,
                            expected,
                        });
                    }
                },
            },
            sse_heartbeat: secs("LIVEDASH_SSE_HEARTBEAT_SECS", d.sse_heartbeat)?,
            polls_per_min: size("LIVEDASH_POLLS_PER_MIN", d.polls_per_min)?,
            max_job_streams_per_user: size("LIVEDASH_MAX_JOB_STREAMS_PER_USER", d.max_job_streams_per_user)?,
            history_max_bytes: size("LIVEDASH_HISTORY_MAX_BYTES", d.history_max_bytes)?,
            tenant_history_max_bytes: size("LIVEDASH_TENANT_HISTORY_MAX_BYTES", d.tenant_history_max_bytes)?,
            max_topic_state_bytes: size("LIVEDASH_MAX_TOPIC_STATE_BYTES", d.max_topic_state_bytes)?,
            tenant_state_max_bytes: size("LIVEDASH_TENANT_STATE_MAX_BYTES", d.tenant_state_max_bytes)?,
            max_waiting_per_tenant: size("LIVEDASH_MAX_WAITING_SUBSCRIPTIONS_PER_TENANT", d.max_waiting_per_tenant)?,
            topic_idle: secs("LIVEDASH_TOPIC_IDLE_SECS", d.topic_idle)?,
            sweep_interval: secs("LIVEDASH_SWEEP_INTERVAL_SECS", d.sweep_interval)?,
            refreshes_per_min: size("LIVEDASH_REFRESHES_PER_MIN", d.refreshes_per_min)?,
            activity_per_min: size("LIVEDASH_ACTIVITY_PER_MIN", d.activity_per_min)?,
            header_read_timeout: secs("LIVEDASH_HEADER_READ_TIMEOUT_SECS", d.header_read_timeout)?,
            body_read_timeout: secs("LIVEDASH_BODY_READ_TIMEOUT_SECS", d.body_read_timeout)?,
            max_http_connections: size("LIVEDASH_MAX_HTTP_CONNECTIONS", d.max_http_connections)?,
            logins_per_min_per_address: size("LIVEDASH_LOGINS_PER_MIN_PER_ADDRESS", d.logins_per_min_per_address)?,
            logins_per_min_per_account: size("LIVEDASH_LOGINS_PER_MIN_PER_ACCOUNT", d.logins_per_min_per_account)?,
            login_failures_per_hour_per_account: size(
                "LIVEDASH_LOGIN_FAILURES_PER_HOUR_PER_ACCOUNT",
                d.login_failures_per_hour_per_account,
            )?,
            api_key_failures_per_min_per_address: size(
                "LIVEDASH_API_KEY_FAILURES_PER_MIN_PER_ADDRESS",
                d.api_key_failures_per_min_per_address,
            )?,
            max_password_checks: size("LIVEDASH_MAX_PASSWORD_CHECKS", d.max_password_checks)?,
            audit_denials_per_min: size("LIVEDASH_AUDIT_DENIALS_PER_MIN", d.audit_denials_per_min)?,
            audit_retention_days: number("LIVEDASH_AUDIT_RETENTION_DAYS", d.audit_retention_days)?,
            audit_spill_dir: get("LIVEDASH_AUDIT_SPILL_DIR"),
            trusted_proxies: list(get("LIVEDASH_TRUSTED_PROXIES")),
            metrics_token: get("LIVEDASH_METRICS_TOKEN"),
            metrics_addr: match get("LIVEDASH_METRICS_ADDR") {
                Some(main) if main.eq_ignore_ascii_case("main") => None,
                Some(addr) => Some(addr),
                None => d.metrics_addr,
            },
            redis_url: get("LIVEDASH_REDIS_URL"),
            redis_prefix: get("LIVEDASH_REDIS_PREFIX").unwrap_or(d.redis_prefix),
            node_expiry: secs("LIVEDASH_NODE_EXPIRY_SECS", d.node_expiry)?,
            kafka_bridge: get("LIVEDASH_KAFKA_BRIDGE"),
        })
    }
}

/// A list of origins, each `http(s)://host[:port]` with nothing after (what browsers send as `Origin`).
fn origins(name: &str, value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let origins = list(value);
    for origin in &origins {
        let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        let host = rest.map(|r| r.trim_end_matches('/')).filter(|h| !h.is_empty() && !h.contains(['/', '?', '#', '@']));
        if host.is_none() {
            return Err(ConfigError::Invalid {
                name: name.to_owned(),
                value: origin.clone(),
                expected: "origins of the form https://host or https://host:port, comma-separated",
            });
        }
    }
    Ok(origins.into_iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect())
}

fn list(value: Option<String>) -> Vec<String> {
    value.map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
}

fn read_file(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::File { path: path.display().to_string(), message: e.to_string() })?;
    file_settings(&text).map_err(|message| ConfigError::File { path: path.display().to_string(), message })
}

/// A config file's settings as the variables they stand for: `history_len = 1000` becomes
/// `LIVEDASH_HISTORY_LEN=1000`, a list becomes comma-separated. Unknown keys are errors, so a typo
/// does not pass silently.
pub fn file_settings(text: &str) -> Result<HashMap<String, String>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let known = Config::names();
    let mut settings = HashMap::new();
    for (key, value) in table {
        let name = format!("LIVEDASH_{}", key.to_ascii_uppercase());
        if !known.contains(&name) {
            return Err(format!("unknown setting {key:?}"));
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => if b { "on" } else { "off" }.to_owned(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s),
                    other => Err(format!("{key}: expected a list of strings, found {other}")),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            other => return Err(format!("{key}: unsupported value {other}")),
        };
        settings.insert(name, value);
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_means_defaults() {
        assert_eq!(from(&[]), Ok(Config::default()));
    }

    #[test]
    fn values_override_defaults() {
        let c = from(&[
            ("LIVEDASH_DEMO", "on"),
            ("LIVEDASH_IDLE_TIMEOUT_SECS", " 90 "),
            ("LIVEDASH_ALLOWED_ORIGINS", "https://a.test, https://b.test,"),
        ])
        .unwrap();
        assert!(c.demo);
        assert_eq!(c.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.allowed_origins, vec!["https://a.test".to_owned(), "https://b.test".to_owned()]);
    }

    #[test]
    fn a_config_file_sets_the_same_settings_and_the_environment_wins() {
        let file = file_settings(
            "history_len = 50\ndemo = false\nallowed_origins = [\"https://a.test\", \"https://b.test\"]\n\
             database = \"/var/lib/livedash/db.sqlite\"\n",
        )
        .unwrap();
        let env: HashMap<String, String> = [("LIVEDASH_HISTORY_LEN".to_owned(), "70".to_owned())].into();
        let c = Config::from_lookup(|k| env.get(k).or_else(|| file.get(k)).cloned()).unwrap();
        assert_eq!(c.history_len, 70, "environment over file");
        assert!(!c.demo);
        assert_eq!(c.allowed_origins, vec!["https://a.test".to_owned(), "https://b.test".to_owned()]);
        assert_eq!(c.database, "/var/lib/livedash/db.sqlite");
    }

    #[test]
    fn a_config_file_with_a_typo_or_bad_toml_is_an_error() {
        assert_eq!(file_settings("histroy_len = 5"), Err("unknown setting \"histroy_len\"".to_owned()));
        assert!(file_settings("history_len = ").is_err());
        assert!(file_settings("allowed_origins = [1, 2]").is_err());
        let bad = |value: &str| {
            Config::from_lookup(|name| (name == "LIVEDASH_ALLOWED_ORIGINS").then(|| value.to_owned())).is_err()
        };
        assert!(bad("dash.example.com"), "a scheme is needed");
        assert!(bad("https://dash.example.com/app"), "an origin has no path");
        assert!(!bad("https://Dash.example.com/, http://127.0.0.1:8080"));
    }

    #[test]
    fn every_setting_has_a_name() {
        let names = Config::names();
        assert!(names.len() >= 25, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("LIVEDASH_")));
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        let err = from(&[("LIVEDASH_HISTORY_LEN", "lots")]).unwrap_err();
        assert_eq!(err.to_string(), "LIVEDASH_HISTORY_LEN=\"lots\": a whole number above 0");
        assert!(from(&[("LIVEDASH_OUTBOX_CAPACITY", "0")]).is_err());
        assert_eq!(from(&[("LIVEDASH_WRITE_COALESCE_MS", "0")]).unwrap().write_coalesce, Duration::ZERO);
        assert_eq!(from(&[]).unwrap().write_coalesce, Duration::from_millis(20));
        assert!(from(&[("LIVEDASH_WRITE_COALESCE_MS", "1001")]).is_err());
        assert!(from(&[("LIVEDASH_DEMO", "maybe")]).is_err());
    }
}
