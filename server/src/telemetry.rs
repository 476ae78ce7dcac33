//! Prometheus metrics, served at `GET /metrics`. Every name starts with `livedash_`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `livedash_connections_open` | gauge | |
//! | `livedash_connections_total` | counter | |
//! | `livedash_messages_in_total` | counter | `type` (client message type, or `invalid`) |
//! | `livedash_messages_out_total` | counter | |
//! | `livedash_publishes_total` | counter | `kind` |
//! | `livedash_publish_replays_total` | counter | (publishes repeating an `Idempotency-Key`, answered with the first answer, publishing nothing) |
//! | `livedash_outbox_backlog` | histogram | (updates queued for a connection when its writer wakes) |
//! | `livedash_drops_total` | counter | `reason`: `slow_subscriber`, `audit_digest` (denials summarised), `audit_spill_failed`, `dashboard_edit_announcement` |
//! | `livedash_resumes_total` | counter | `outcome`: `replayed`, `gap` |
//! | `livedash_gaps_total` | counter | `reason`: `history`, `slow_subscriber`, `engine` |
//! | `livedash_push_latency_seconds` | histogram | (publish accepted → frame flushed to the socket) |
//! | `livedash_denials_total` | counter | `reason` |
//! | `livedash_client_errors_total` | counter | `code` |
//! | `livedash_activity_total` | counter | `action` (activity reported by clients) |
//! | `livedash_users_online` | gauge | `tenant` |
//! | `livedash_write_timeouts_total` | counter | `transport` (clients dropped for not reading) |
//! | `livedash_audit_spilled_total` | counter | (audit entries that waited on disk: the queue was full or the database refused them) |
//! | `livedash_hangups_total` | counter | `transport` (connections dropped mid-write because their session ended) |
//! | `livedash_sse_connections_active` | gauge | `stream`: `dashboard`, `job` |
//! | `livedash_sse_updates_sent_total` | counter | `stream` (data events written) |
//! | `livedash_sse_reconnections_total` | counter | `stream` (requests carrying `Last-Event-ID`) |
//! | `livedash_sse_errors_total` | counter | `reason` |
//! | `livedash_polls_total` | counter | `outcome`: `changes`, `unchanged` |
//! | `livedash_topics` | gauge | `tenant` (set by the broker's sweep) |
//! | `livedash_history_bytes` | gauge | `tenant` (history kept for resume) |
//! | `livedash_state_bytes` | gauge | `tenant` (what snapshots are made of) |
//! | `livedash_waiting_subscriptions` | gauge | `tenant` (subscriptions to topics not created yet) |
//! | `livedash_history_trimmed_total` | counter | `reason`: `age`, `tenant_bytes` |
//! | `livedash_topics_retired_total` | counter | (idle topics removed by the sweep) |
//! | `livedash_http_connections_open` | gauge | (TCP connections being served) |
//! | `livedash_engine_reloads_total` | counter | `reason`: `out_of_step`, `relinked`, `went_back` (topics a node reloaded from Redis, or gave a new epoch) |
//! | `livedash_engine_link_lost_total` | counter | (times a node's pub/sub link to Redis dropped) |
//! | `livedash_nodes_swept_total` | counter | (dead nodes whose connections this node took out of the counts) |
//! | `livedash_ready` | gauge | (1 while `/readyz` would answer 200; set every 5 s) |
//! | `livedash_engine_ready` | gauge | `engine`: `memory`, `redis` (1 while it takes publishes: with Redis, while linked) |
//! | `livedash_audit_backlog` | gauge | (audit entries recorded and not yet written, in memory and on disk) |
//! | `livedash_publish_answers_total` | counter | `status` (every answer of the publish API, by HTTP status) |
//! | `livedash_collection_notifications_total` | counter | `outcome`: `raised`, `withheld`, `failed` |
//! | `livedash_connect_attempts_total` | counter | `outcome`: `ok` (served), `refused` (by a rule: session, origin, live mode, a limit), `failed` (the server could not: its store or roster did not answer); the connection success rate is ok / (ok + failed) |
//! | `livedash_event_deliveries_total` | counter | `outcome`: `queued` (a live event message handed to a subscriber's connection), `delivered` (written to it), `dropped` (dropped for a subscriber too slow to read); the notification delivery rate is delivered / queued |
//! | `livedash_connection_recovery_seconds` | histogram | (how long pages were without data before it flowed again, as the pages report it) |

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const CONNECTIONS_OPEN: &str = "livedash_connections_open";
pub const CONNECTIONS_TOTAL: &str = "livedash_connections_total";
pub const MESSAGES_IN: &str = "livedash_messages_in_total";
pub const MESSAGES_OUT: &str = "livedash_messages_out_total";
pub const PUBLISHES: &str = "livedash_publishes_total";
/// Publishes answered with the answer kept for their `Idempotency-Key`: repeats that published nothing.
pub const PUBLISH_REPLAYS: &str = "livedash_publish_replays_total";
pub const OUTBOX_BACKLOG: &str = "livedash_outbox_backlog";
pub const DROPS: &str = "livedash_drops_total";
pub const RESUMES: &str = "livedash_resumes_total";
pub const GAPS: &str = "livedash_gaps_total";
pub const PUSH_LATENCY: &str = "livedash_push_latency_seconds";
pub const DENIALS: &str = "livedash_denials_total";
pub const CLIENT_ERRORS: &str = "livedash_client_errors_total";
pub const ACTIVITY: &str = "livedash_activity_total";
pub const USERS_ONLINE: &str = "livedash_users_online";
pub const WRITE_TIMEOUTS: &str = "livedash_write_timeouts_total";
pub const HANGUPS: &str = "livedash_hangups_total";
pub const AUDIT_SPILLED: &str = "livedash_audit_spilled_total";
pub const SSE_ACTIVE: &str = "livedash_sse_connections_active";
pub const SSE_UPDATES: &str = "livedash_sse_updates_sent_total";
pub const SSE_RECONNECTIONS: &str = "livedash_sse_reconnections_total";
pub const SSE_ERRORS: &str = "livedash_sse_errors_total";
pub const POLLS: &str = "livedash_polls_total";
pub const TOPICS: &str = "livedash_topics";
pub const HISTORY_BYTES: &str = "livedash_history_bytes";
pub const STATE_BYTES: &str = "livedash_state_bytes";
pub const WAITING_SUBSCRIPTIONS: &str = "livedash_waiting_subscriptions";
pub const HISTORY_TRIMMED: &str = "livedash_history_trimmed_total";
pub const TOPICS_RETIRED: &str = "livedash_topics_retired_total";
pub const HTTP_CONNECTIONS_OPEN: &str = "livedash_http_connections_open";
pub const ENGINE_RELOADS: &str = "livedash_engine_reloads_total";
pub const ENGINE_LINK_LOST: &str = "livedash_engine_link_lost_total";
pub const NODES_SWEPT: &str = "livedash_nodes_swept_total";
/// 1 while the node would answer `/readyz` with 200, else 0 (set every few seconds).
pub const READY: &str = "livedash_ready";
/// 1 while the engine takes publishes (with Redis: while the node is linked to it), by `engine`.
pub const ENGINE_READY: &str = "livedash_engine_ready";
/// Audit entries recorded and not yet written: queued in memory, or waiting on disk.
pub const AUDIT_BACKLOG: &str = "livedash_audit_backlog";
/// Answers of the publish API by `status` code.
pub const PUBLISH_ANSWERS: &str = "livedash_publish_answers_total";
/// Collection notifications by `outcome`: `raised` (each one published), `withheld` (the topic
/// rules keep the collection from a reader of the notifications topic), `failed` (the store or the
/// engine did not answer).
pub const COLLECTION_NOTIFICATIONS: &str = "livedash_collection_notifications_total";
/// Threshold alerts by `outcome`: `raised` (each change of state told), `withheld` (the topic
/// rules keep the topic or the key from a reader of the notifications topic), `failed` (the store,
/// the alert states or the engine did not answer), `unrecorded` (told, but not kept in the
/// widget's history).
pub const ALERTS: &str = "livedash_alerts_total";
pub const CONNECT_ATTEMPTS: &str = "livedash_connect_attempts_total";
pub const EVENT_DELIVERIES: &str = "livedash_event_deliveries_total";
pub const RECOVERY: &str = "livedash_connection_recovery_seconds";
/// Kafka messages the bridge published.
pub const BRIDGE_ACCEPTED: &str = "livedash_bridge_accepted_total";
/// Kafka messages the bridge skipped, by `reason` (not_json, missing_field, refused, …).
pub const BRIDGE_REJECTED: &str = "livedash_bridge_rejected_total";
/// Skipped messages copied to the dead-letter topic.
pub const BRIDGE_DEAD_LETTERS: &str = "livedash_bridge_dead_letters_total";
/// Kafka messages the bridge dropped as already shown, `by` their key or their Kafka position.
pub const BRIDGE_DUPLICATES: &str = "livedash_bridge_duplicates_total";
/// Times the bridge paused its partitions because its channel was full.
pub const BRIDGE_PAUSES: &str = "livedash_bridge_pauses_total";
/// Messages behind the newest, per Kafka `topic` and `partition` the bridge holds.
pub const BRIDGE_LAG: &str = "livedash_bridge_lag";
/// Errors reading from Kafka.
pub const BRIDGE_ERRORS: &str = "livedash_bridge_errors_total";

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide recorder, installed on first use (a process has one, however many servers the
/// tests start in it).
///
/// A histogram keeps every sample until they are folded into its buckets, which a scrape of
/// `/metrics` does; at 300,000 deliveries a second an unscraped server would grow by 2 MB a
/// second. A thread of its own folds them every few seconds, whatever runtime the servers use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = recorder();
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                })
                .expect("a thread for the metrics upkeep");
            handle
        })
        .clone()
}

fn recorder() -> PrometheusHandle {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(PUSH_LATENCY.into()),
            &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(OUTBOX_BACKLOG.into()),
                &[0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0],
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(RECOVERY.into()),
                &[0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0],
            )
        })
        .expect("bucket lists are not empty")
        .install_recorder()
        .expect("no other metrics recorder is installed")
}

/// Counts a refusal (a denied connection, publish or subscription) by reason.
pub fn denied(reason: &'static str) {
    metrics::counter!(DENIALS, "reason" => reason).increment(1);
}

/// Counts live event messages (notifications, jobs, activity) at one stage of their way to a
/// subscriber: `queued`, `delivered` or `dropped`.
pub fn event_deliveries(outcome: &'static str, messages: usize) {
    if messages > 0 {
        metrics::counter!(EVENT_DELIVERIES, "outcome" => outcome).increment(messages as u64);
    }
}

/// Counts a client dropped because a write to it did not finish in time.
pub fn write_timed_out(transport: &'static str) {
    metrics::counter!(WRITE_TIMEOUTS, "transport" => transport).increment(1);
}

/// `GET /metrics`, behind a bearer token when one is configured (`LIVEDASH_METRICS_TOKEN`). Served
/// by the main listener, or by a listener of its own (`LIVEDASH_METRICS_ADDR`) that can be kept off
/// the public network.
pub fn router<S: Clone + Send + Sync + 'static>(token: Option<String>) -> axum::Router<S> {
    use axum::{
        http::{HeaderMap, StatusCode, header::AUTHORIZATION},
        response::IntoResponse,
    };
    use subtle::ConstantTimeEq;
    let token: Option<std::sync::Arc<str>> = token.map(Into::into);
    let metrics = move |headers: HeaderMap| {
        let token = token.clone();
        async move {
            if let Some(token) = token {
                let sent =
                    headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
                if !sent.is_some_and(|sent| bool::from(sent.as_bytes().ct_eq(token.as_bytes()))) {
                    denied("metrics_token");
                    let message = "send the metrics token as `Authorization: Bearer …`";
                    return crate::http_error::ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        protocol::ErrorCode::Unauthorized,
                        message,
                    )
                    .into_response();
                }
            }
            handle().render().into_response()
        }
    };
    axum::Router::new().route("/metrics", axum::routing::get(metrics))
}
