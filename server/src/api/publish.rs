//! `POST /api/v1/publish/{topic}`: publishers push data with an API key bound to their tenant.

use super::error::ApiError;
use crate::{
    AppState,
    auth::api_key::ApiKey,
    broker::{
        BrokerError, now_ms,
        topic_name::{TopicKey, TopicName},
    },
    ingest::publish_body,
    store::audit::{AuditEntry, Outcome},
    telemetry,
};
use app::protocol::TopicKind;
use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{
        HeaderMap, StatusCode,
        header::{AUTHORIZATION, RETRY_AFTER},
    },
    response::{IntoResponse, Response},
};
use serde::Serialize;

#[derive(Serialize)]
pub struct Published {
    topic: String,
    kind: TopicKind,
    offset: u64,
}

/// A refused publish: the answer, the reason label of the denial metric, and when to retry.
struct Refusal {
    error: ApiError,
    metric: &'static str,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(metric: &'static str, error: ApiError) -> Self {
        Self { error, metric, retry_after: None }
    }
}

pub async fn publish(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Published>, Response> {
    accept(&state, &topic, &headers, body).await.map_err(|refusal| {
        telemetry::denied(refusal.metric);
        match refusal.retry_after {
            Some(secs) => ([(RETRY_AFTER, secs.to_string())], refusal.error).into_response(),
            None => refusal.error.into_response(),
        }
    })
}

async fn accept(state: &AppState, topic: &str, headers: &HeaderMap, body: Body) -> Result<Json<Published>, Refusal> {
    let key = bearer_key(headers).ok_or_else(|| {
        Refusal::new("api_key", ApiError::unauthorized("send an API key as `Authorization: Bearer ld_…`"))
    })?;
    let tenant =
        state.store.api_key_tenant(&key).await.map_err(|e| Refusal::new("server_error", ApiError::internal(e)))?;
    let Some(tenant) = tenant else {
        state.auditor.record(AuditEntry {
            tenant: None,
            actor: Some(format!("api key {}", key.id)),
            action: "publish",
            outcome: Outcome::Denied,
            detail: Some("unknown or revoked key".into()),
        });
        return Err(Refusal::new("api_key", ApiError::unauthorized("unknown or revoked API key")));
    };
    // Charged only once the key is known to be real: wrong secrets must not spend its allowance.
    if let Err(wait) = state.engine.allow_publish(&key.id).await {
        let message = format!("more than {} publishes a second with this key", state.config.publishes_per_sec);
        let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        return Err(Refusal { error, metric: "publish_rate", retry_after: Some(wait.ceil().max(1.0) as u64) });
    }
    let name = TopicName::parse(topic).map_err(|e| {
        let error = ApiError::new(StatusCode::BAD_REQUEST, "bad_topic", e.to_string());
        Refusal::new("bad_topic", ApiError { field: Some("topic".into()), ..error })
    })?;
    if name.is_server_owned() {
        let error = ApiError::forbidden(format!("{name} is kept by the server; publishers cannot write to it"));
        return Err(Refusal::new("reserved_topic", ApiError { field: Some("topic".into()), ..error }));
    }
    let limit = state.config.max_publish_bytes;
    let timeout = state.config.body_read_timeout;
    let too_slow = || {
        let message = format!("the body must arrive within {} s", timeout.as_secs());
        Refusal::new("body_timeout", ApiError::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", message))
    };
    // The router's body timeout catches a body that stalls; this one, a body that trickles.
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if stalled(&e) => return Err(too_slow()),
        Err(_) => return Err(too_slow()),
        Ok(Err(_)) => {
            let message = format!("the body must be at most {limit} bytes");
            let error = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message);
            return Err(Refusal::new("payload_size", error));
        }
    };
    let publish = publish_body::parse(&bytes, now_ms(), || format!("{:016x}", rand::random::<u64>())).map_err(|e| {
        let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", e.message);
        Refusal::new("invalid_payload", ApiError { field: Some(e.field), ..error })
    })?;
    let key = TopicKey::new(tenant, name);
    let offset = state.engine.publish(key.clone(), publish.kind, publish.items).await.map_err(|e| match e {
        BrokerError::KindMismatch { .. } => {
            Refusal::new("kind_mismatch", ApiError::new(StatusCode::CONFLICT, "kind_mismatch", e.to_string()))
        }
        BrokerError::UnknownTopic(_) => Refusal::new("server_error", ApiError::internal(e)),
        BrokerError::TooManyTopics(_)
        | BrokerError::TooManyWaiting(_)
        | BrokerError::TenantFull(_)
        | BrokerError::State(_) => Refusal::new(
            e.limit_label().unwrap_or("topic_limit"),
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded", e.to_string()),
        ),
        BrokerError::Unavailable(_) => {
            tracing::warn!(error = %e, "a publish found the engine unavailable");
            let message = "the server cannot take messages right now; retry shortly";
            Refusal::new("engine_unavailable", ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message))
        }
    })?;
    Ok(Json(Published { topic: key.name.to_string(), kind: publish.kind, offset }))
}

/// Whether reading a body failed because the client stopped sending it.
fn stalled(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn bearer_key(headers: &HeaderMap) -> Option<ApiKey> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
    ApiKey::parse(token.trim())
}
