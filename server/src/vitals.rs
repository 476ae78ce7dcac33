//! What a node tells of its own health: readiness, answered by `/readyz` to load balancers, and the
//! same facts as gauges for the operators' alerts (`deploy/prometheus/alerts.yml`), set every few
//! seconds whether anyone asks `/readyz` or not: `livedash_ready`, `livedash_engine_ready`,
//! `livedash_audit_backlog`.

use crate::{AppState, telemetry};
use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use std::time::Duration;

/// How long readiness waits for the store: less than a balancer's health-check timeout.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the gauges are set.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

/// Why this node should get no new clients now, if it should not: its engine cannot take publishes
/// (Redis unreachable), its Kafka bridge is not connected, its store does not answer (no sign-in
/// or new connection could be checked), or it is shutting down.
pub async fn unready_because(state: &AppState) -> Option<&'static str> {
    if state.shutdown.is_stopping() {
        Some("shutting down")
    } else if !state.engine.ready() {
        Some("the engine is unreachable")
    } else if state.bridge.as_ref().is_some_and(|bridge| !bridge.connected()) {
        Some("the Kafka bridge is not connected")
    } else if !matches!(tokio::time::timeout(STORE_TIMEOUT, state.store.ping()).await, Ok(Ok(()))) {
        tracing::warn!("the store does not answer");
        Some("the store is unreachable")
    } else {
        None
    }
}

/// Sets the health gauges every [`GAUGE_INTERVAL`] until the node stops.
pub fn keep_gauges(state: AppState) {
    tokio::spawn(async move {
        let mut shutdown = state.shutdown.clone();
        let mut tick = tokio::time::interval(GAUGE_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.stopping() => break,
            }
            let ready = unready_because(&state).await.is_none();
            metrics::gauge!(telemetry::READY).set(f64::from(u8::from(ready)));
            let engine = state.engine.name();
            metrics::gauge!(telemetry::ENGINE_READY, "engine" => engine).set(f64::from(u8::from(state.engine.ready())));
            metrics::gauge!(telemetry::AUDIT_BACKLOG).set(state.auditor.backlog() as f64);
        }
        metrics::gauge!(telemetry::READY).set(0.0);
    });
}

/// `/readyz`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    ready: bool,
    /// `memory` or `redis`.
    engine: &'static str,
    /// `sqlite` or `postgres`.
    store: &'static str,
    /// Why the node is not ready; `null` when it is.
    problem: Option<&'static str>,
}

/// Liveness: the process answers. A node that lost Redis or its database stays live (it is not
/// restarted for it) and says so at `/readyz`.
#[utoipa::path(
    get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process serves", body = String, content_type = "text/plain", example = "ok"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: whether a load balancer should send this node new clients ([`unready_because`]).
#[utoipa::path(
    get, path = "/readyz", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness,
            example = json!({"ready": true, "engine": "memory", "store": "sqlite", "problem": null})),
        (status = 503, description = "Not ready: `problem` says why", body = Readiness,
            example = json!({"ready": false, "engine": "redis", "store": "postgres", "problem": "the engine is unreachable"})),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let problem = unready_because(&state).await;
    let status = if problem.is_none() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let readiness =
        Readiness { ready: problem.is_none(), engine: state.engine.name(), store: state.store.backend_name(), problem };
    (status, Json(readiness))
}
