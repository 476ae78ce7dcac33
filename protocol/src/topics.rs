//! Topics every tenant has whose names the clients and the server both know: the ones the server
//! alone writes, and the conventional ones the built-in widgets follow.

/// The server-owned topics of every tenant that say who is online (a collection) and what users do
/// (events); see docs/protocol.md. Publishers cannot write under `presence/`.
pub const PRESENCE_ONLINE_TOPIC: &str = "presence/online";
pub const PRESENCE_ACTIVITY_TOPIC: &str = "presence/activity";

/// The server-owned topic of every tenant that announces dashboard edits (a collection: one
/// [`DashboardOutline`](crate::dashboard::DashboardOutline) per dashboard, id = the dashboard's
/// id); see docs/protocol.md.
pub const DASHBOARD_EDITS_TOPIC: &str = "dashboards/edits";

/// Where the server alone publishes: publishers and the Kafka bridge are refused here.
pub const SERVER_OWNED_PREFIXES: [&str; 2] = ["presence/", "dashboards/"];

/// The `events` topic the header's notification centre follows in every tenant.
pub const NOTIFICATIONS_TOPIC: &str = "ops/notifications";

/// The `events` topic a tenant's jobs are published to, unless a job panel names another.
pub const JOBS_TOPIC: &str = "ops/jobs";

/// Whether publishers (the HTTP API, the Kafka bridge) are refused on `topic`.
pub fn is_server_owned(topic: &str) -> bool {
    SERVER_OWNED_PREFIXES.iter().any(|prefix| topic.starts_with(prefix))
}
