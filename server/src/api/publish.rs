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
};
use app::protocol::TopicKind;
use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
};
use serde::Serialize;

#[derive(Serialize)]
pub struct Published {
    topic: String,
    kind: TopicKind,
    offset: u64,
}

pub async fn publish(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Published>, ApiError> {
    let key = bearer_key(&headers)
        .ok_or_else(|| ApiError::unauthorized("send an API key as `Authorization: Bearer ld_…`"))?;
    let Some(tenant) = state.store.api_key_tenant(&key).await.map_err(ApiError::internal)? else {
        state.auditor.record(AuditEntry {
            tenant: None,
            actor: Some(format!("api key {}", key.id)),
            action: "publish",
            outcome: Outcome::Denied,
            detail: Some("unknown or revoked key".into()),
        });
        return Err(ApiError::unauthorized("unknown or revoked API key"));
    };
    let name = TopicName::parse(&topic).map_err(|e| ApiError {
        field: Some("topic".into()),
        ..ApiError::new(StatusCode::BAD_REQUEST, "bad_topic", e.to_string())
    })?;
    let limit = state.config.max_publish_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body must be at most {limit} bytes"),
        )
    })?;
    let publish = publish_body::parse(&bytes, now_ms(), || format!("{:016x}", rand::random::<u64>())).map_err(|e| {
        ApiError { field: Some(e.field), ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", e.message) }
    })?;
    let key = TopicKey::new(tenant, name);
    let offset = state.broker.publish(&key, publish.kind, publish.items).map_err(|e| match e {
        BrokerError::KindMismatch { .. } => ApiError::new(StatusCode::CONFLICT, "kind_mismatch", e.to_string()),
        BrokerError::UnknownTopic(_) => ApiError::internal(e),
        BrokerError::TooManyTopics(_) | BrokerError::State(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded", e.to_string())
        }
    })?;
    Ok(Json(Published { topic: key.name.to_string(), kind: publish.kind, offset }))
}

fn bearer_key(headers: &HeaderMap) -> Option<ApiKey> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
    ApiKey::parse(token.trim())
}
