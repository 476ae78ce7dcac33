//! Server settings, from `LIVEDASH_*` environment variables, with defaults that need nothing.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Demo mode (`LIVEDASH_DEMO`, default on): demo tenants, users and API keys, and the demo feed.
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
    /// Origins allowed to open WebSockets (`LIVEDASH_ALLOWED_ORIGINS`, comma-separated); empty means
    /// this server's own host only.
    pub allowed_origins: Vec<String>,
    /// Largest publish body (`LIVEDASH_MAX_PUBLISH_BYTES`).
    pub max_publish_bytes: usize,
    /// Open sockets one user may have (`LIVEDASH_MAX_CONNECTIONS_PER_USER`).
    pub max_connections_per_user: usize,
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            demo: true,
            database: "livedash.db".into(),
            session_ttl: Duration::from_secs(8 * 3600),
            session_secret: None,
            secure_cookies: false,
            allowed_origins: Vec::new(),
            max_publish_bytes: 256 * 1024,
            max_connections_per_user: 10,
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
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{name}={value:?}: {expected}")]
pub struct ConfigError {
    name: String,
    value: String,
    expected: &'static str,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads each setting through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let number = |name: &str, default: u64| -> Result<u64, ConfigError> {
            get(name).map_or(Ok(default), |value| {
                value.parse::<u64>().ok().filter(|n| *n > 0).ok_or(ConfigError {
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
            Some(other) => Err(ConfigError { name: name.into(), value: other.into(), expected: "on or off" }),
        };
        Ok(Self {
            demo: switch("LIVEDASH_DEMO", d.demo)?,
            database: get("LIVEDASH_DATABASE").unwrap_or(d.database),
            session_ttl: secs("LIVEDASH_SESSION_TTL_SECS", d.session_ttl)?,
            session_secret: get("LIVEDASH_SESSION_SECRET"),
            secure_cookies: switch("LIVEDASH_SECURE_COOKIES", d.secure_cookies)?,
            allowed_origins: get("LIVEDASH_ALLOWED_ORIGINS")
                .map(|list| list.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect())
                .unwrap_or_default(),
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
            ("LIVEDASH_DEMO", "off"),
            ("LIVEDASH_IDLE_TIMEOUT_SECS", " 90 "),
            ("LIVEDASH_ALLOWED_ORIGINS", "https://a.test, https://b.test,"),
        ])
        .unwrap();
        assert!(!c.demo);
        assert_eq!(c.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.allowed_origins, vec!["https://a.test".to_owned(), "https://b.test".to_owned()]);
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        let err = from(&[("LIVEDASH_HISTORY_LEN", "lots")]).unwrap_err();
        assert_eq!(err.to_string(), "LIVEDASH_HISTORY_LEN=\"lots\": a whole number above 0");
        assert!(from(&[("LIVEDASH_OUTBOX_CAPACITY", "0")]).is_err());
        assert!(from(&[("LIVEDASH_DEMO", "maybe")]).is_err());
    }
}
