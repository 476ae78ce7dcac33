//! `POST /api/v1/publish/{topic}`: publishers push data with an API key bound to their tenant.

use crate::extract::ApiPath;
use crate::http_error::ApiError;
use crate::ingest::idempotency::{self, Claim, IdempotencyKey, ReceiptError};
use crate::ingest::publish_schema::PublishBody;
use crate::topic_name::{TenantId, TopicKey, TopicName};
use crate::{
    AppState,
    broker::BrokerError,
    client_addr::ClientAddr,
    clock::now_ms,
    credentials::api_key::ApiKey,
    ingest::publish_body,
    store::audit::{AuditEntry, Outcome},
    telemetry,
};
use axum::{
    body::Body,
    extract::State,
    http::{
        HeaderMap, HeaderValue, StatusCode,
        header::{AUTHORIZATION, CONTENT_TYPE},
    },
    response::{IntoResponse, Response},
};
use protocol::TopicKind;
use protocol::{ErrorBody, ErrorCode};
use serde::Serialize;
use std::time::Instant;

/// What a publish answers.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"topic": "sales/orders", "kind": "series", "offset": 42}))]
struct Published {
    topic: String,
    kind: TopicKind,
    /// The message's position in the topic: one more than the last.
    offset: u64,
}

/// The request's API key and its tenant. A source whose checks keep failing (made-up or revoked
/// keys) is refused before any lookup, and its failures are audited under the source, digested,
/// whatever keys it makes up.
async fn check_key(
    state: &AppState,
    client: ClientAddr,
    headers: &HeaderMap,
) -> Result<(ApiKey, TenantId), RefusedPublish> {
    let (source, now) = (client.source(), Instant::now());
    let failures = &state.limiters.api_key_failures_by_source;
    // Digested per source, whatever keys it makes up.
    let audit = |what: String| {
        state.auditor.record(AuditEntry {
            tenant: None,
            actor: Some(source.to_string()),
            action: "publish",
            outcome: Outcome::Denied,
            detail: Some(format!("{what} (from {})", client.0)),
        })
    };
    if let Some(wait) = failures.blocked(&source, now) {
        let max = state.config.api_key_failures_per_min_per_address;
        let message = format!("more than {max} failed API-key checks a minute from this address");
        audit(message.clone());
        let error = ApiError::limit("api_key_failures", max as u64, message);
        let error = ApiError { retry_after: Some(wait.ceil().max(1.0) as u64), ..error };
        return Err(RefusedPublish::new("api_key_failures", error));
    }
    let failed = |what: String, error: ApiError| {
        let _ = failures.check(&source, now);
        audit(what);
        RefusedPublish::new("api_key", error)
    };
    let Some(key) = bearer_key(headers) else {
        return Err(failed(
            "no API key, or not one of ours".into(),
            ApiError::unauthorized("send an API key as `Authorization: Bearer ld_…`"),
        ));
    };
    match state.store.api_key_tenant(&key).await {
        Ok(Some(tenant)) => Ok((key, tenant)),
        Ok(None) => Err(failed(
            format!("unknown or revoked key {}", key.id),
            ApiError::unauthorized("unknown or revoked API key"),
        )),
        Err(e) => Err(RefusedPublish::new("server_error", ApiError::internal(e))),
    }
}

/// A refused publish: the answer (with its `Retry-After`, if any) and the reason label of the
/// denial metric.
struct RefusedPublish {
    error: ApiError,
    metric: &'static str,
}

impl RefusedPublish {
    fn new(metric: &'static str, error: ApiError) -> Self {
        Self { error, metric }
    }
}

/// What a publish answers: the JSON of [`Published`], made now or kept from the first request
/// under the same `Idempotency-Key` (then `replayed`).
struct Answer {
    json: String,
    replayed: bool,
}

#[utoipa::path(
    post, path = "/api/v1/publish/{*topic}", tag = "publish", security(("apiKey" = [])),
    params(
        ("topic" = String, Path, description = "The topic, relative to the key's tenant: 1–128 bytes of `A-Z a-z 0-9 - _ .` in at most 8 segments separated by a literal `/` (`sales/orders`). The segments are path segments: a `/` escaped as `%2F` is refused, so the pattern describes one segment",
            pattern = r"^(?!\.{1,2}$)[A-Za-z0-9._-]{1,128}$", example = "sales"),
        ("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters (a UUID, say). A repeat within `LIVEDASH_IDEMPOTENCY_WINDOW_SECS` answers what the first answered and publishes nothing; another body under the same key is `422`",
            example = "8e03978e-40d5-43e8-bc93-6894a57f9324"),
    ),
    request_body(content = PublishBody, description = "Exactly one of `points` (series), `values` (metrics), `events` or `changes` (collection)"),
    responses(
        (status = 200, description = "Published (or, with `Idempotent-Replayed: true`, the first answer to this `Idempotency-Key`)", body = Published,
            headers(("Idempotent-Replayed" = Option<String>, description = "`true` when this answer is the first request's, replayed"))),
        (status = 400, description = "`bad_topic`, `invalid_payload` (`field` names the faulty part, e.g. `points[3].value`) or `bad_request` (a malformed `Idempotency-Key`)", body = ErrorBody),
        (status = 401, description = "No API key, or an unknown or revoked one", body = ErrorBody),
        (status = 403, description = "A topic the server keeps for itself (`presence/…`, `ops/…`)", body = ErrorBody),
        (status = 409, description = "`kind_mismatch`: the topic exists with another kind; `idempotency_key_in_use`: the first request with this key is still being published", body = ErrorBody,
            headers(("Retry-After" = Option<u64>, description = "seconds (with `idempotency_key_in_use`)"))),
        (status = 422, description = "`limit_exceeded`: the publish would pass a limit (topics per tenant, documents, keys, bytes); `idempotency_key_reused`: the key was used with another topic or body", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over `LIVEDASH_PUBLISHES_PER_SEC` for this key; `limit_exceeded`: too many failed key checks from this address, or too many idempotency keys held", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    )
)]
pub async fn publish(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiPath(topic): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let response = answer(accept(&state, client, &topic, &headers, body).await);
    let status = response.status();
    metrics::counter!(telemetry::PUBLISH_ANSWERS, "status" => status.as_str().to_owned()).increment(1);
    response
}

fn answer(accepted: Result<Answer, RefusedPublish>) -> Response {
    match accepted {
        Ok(Answer { json, replayed }) => {
            let mut response = ([(CONTENT_TYPE, "application/json")], json).into_response();
            if replayed {
                metrics::counter!(telemetry::PUBLISH_REPLAYS).increment(1);
                response.headers_mut().insert(idempotency::REPLAYED_HEADER, HeaderValue::from_static("true"));
            }
            response
        }
        Err(refusal) => {
            telemetry::denied(refusal.metric);
            refusal.error.into_response()
        }
    }
}

async fn accept(
    state: &AppState,
    client: ClientAddr,
    topic: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Answer, RefusedPublish> {
    let (key, tenant) = check_key(state, client, headers).await?;
    let idempotency_key =
        idempotency_key(headers).map_err(|error| RefusedPublish::new("bad_idempotency_key", error))?;
    // Charged only once the key is known to be real: wrong secrets must not spend its allowance.
    if let Err(wait) = state.publish_rate.allow_publish(&key.id).await {
        let message = format!("more than {} publishes a second with this key", state.config.publishes_per_sec);
        let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, message);
        let error = ApiError { retry_after: Some(wait.ceil().max(1.0) as u64), ..error };
        return Err(RefusedPublish::new("publish_rate", error));
    }
    let name = TopicName::parse(topic).map_err(|e| {
        let error = ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadTopic, e.to_string());
        RefusedPublish::new("bad_topic", ApiError { field: Some("topic".into()), ..error })
    })?;
    if name.is_server_owned() {
        let error = ApiError::forbidden(format!("{name} is kept by the server; publishers cannot write to it"));
        return Err(RefusedPublish::new("reserved_topic", ApiError { field: Some("topic".into()), ..error }));
    }
    let limit = state.config.max_publish_bytes;
    let timeout = state.config.body_read_timeout;
    let too_slow = || {
        let message = format!("the body must arrive within {} s", timeout.as_secs());
        RefusedPublish::new("body_timeout", ApiError::new(StatusCode::REQUEST_TIMEOUT, ErrorCode::BodyTimeout, message))
    };
    // The router's body timeout catches a body that stalls; this one, a body that trickles.
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if stalled(&e) => return Err(too_slow()),
        Err(_) => return Err(too_slow()),
        Ok(Err(_)) => {
            let message = format!("the body must be at most {limit} bytes");
            let error = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge, message);
            return Err(RefusedPublish::new("payload_size", error));
        }
    };
    let publish = publish_body::parse(&bytes, now_ms(), || format!("{:016x}", rand::random::<u64>())).map_err(|e| {
        let error = ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidPayload, e.message);
        RefusedPublish::new("invalid_payload", ApiError { field: Some(e.field), ..error })
    })?;
    match idempotency_key {
        None => Ok(Answer { json: publish_to(state, TopicKey::new(tenant, name), publish).await?, replayed: false }),
        Some(idempotency_key) => publish_once(state, tenant, name, publish, &idempotency_key, &bytes).await,
    }
}

/// Publishes a request that carries an `Idempotency-Key` once across the deployment: the first
/// publishes and keeps its answer, a repeat gets that answer ([`idempotency`]).
async fn publish_once(
    state: &AppState,
    tenant: TenantId,
    name: TopicName,
    publish: publish_body::Publish,
    idempotency_key: &IdempotencyKey,
    body: &[u8],
) -> Result<Answer, RefusedPublish> {
    let fingerprint = idempotency::fingerprint(name.as_str(), body);
    let max = state.config.max_idempotency_keys;
    let receipts = &*state.receipts;
    match idempotency::claim(receipts, tenant.as_str(), idempotency_key, &fingerprint, max).await {
        Ok(Claim::Mine) => {}
        Ok(Claim::Replay(json)) => return Ok(Answer { json, replayed: true }),
        Ok(Claim::InFlight) => {
            let message = "a request with this Idempotency-Key is still being published; retry shortly";
            let error = ApiError::new(StatusCode::CONFLICT, ErrorCode::IdempotencyKeyInUse, message);
            return Err(RefusedPublish::new("idempotency_in_use", ApiError { retry_after: Some(1), ..error }));
        }
        Ok(Claim::Reused) => {
            let message = "this Idempotency-Key was used for another topic or body";
            let error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::IdempotencyKeyReused, message);
            let error = ApiError { field: Some("Idempotency-Key".into()), ..error };
            return Err(RefusedPublish::new("idempotency_reused", error));
        }
        Err(e @ ReceiptError::Full(_)) => {
            let error = ApiError::limit("idempotency_keys", max as u64, e.to_string());
            let error = ApiError { retry_after: Some(idempotency::PENDING_FOR.as_secs()), ..error };
            return Err(RefusedPublish::new("idempotency_keys", error));
        }
        Err(e @ ReceiptError::Unavailable(_)) => return Err(unavailable(e)),
    }
    let published = publish_to(state, TopicKey::new(tenant.clone(), name), publish).await;
    let window = state.config.idempotency_window;
    let answer = published.as_deref().ok();
    if let Err(e) = idempotency::settle(receipts, tenant.as_str(), idempotency_key, &fingerprint, answer, window).await
    {
        // The publish stands; only a retry of it within the window may publish again.
        tracing::warn!(error = %e, "a publish's answer was not kept for its Idempotency-Key");
    }
    Ok(Answer { json: published?, replayed: false })
}

/// The `Idempotency-Key` header, if sent.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get(idempotency::HEADER) else { return Ok(None) };
    IdempotencyKey::parse(value.as_bytes()).map(Some).map_err(|e| ApiError {
        field: Some("Idempotency-Key".into()),
        ..ApiError::bad_request(format!("Idempotency-Key {e}"))
    })
}

/// A 503 for a part of the deployment that does not answer.
fn unavailable(error: impl std::fmt::Display) -> RefusedPublish {
    tracing::warn!(error = %error, "a publish found the engine unavailable");
    let message = "the server cannot take messages right now; retry shortly";
    let error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, message);
    RefusedPublish::new("engine_unavailable", ApiError { retry_after: Some(1), ..error })
}

/// Publishes a checked body and answers the JSON of [`Published`].
async fn publish_to(state: &AppState, key: TopicKey, publish: publish_body::Publish) -> Result<String, RefusedPublish> {
    let offset = state.engine.publish(key.clone(), publish.kind, publish.items).await.map_err(|e| match e {
        BrokerError::KindMismatch { .. } => RefusedPublish::new(
            "kind_mismatch",
            ApiError::new(StatusCode::CONFLICT, ErrorCode::KindMismatch, e.to_string()),
        ),
        BrokerError::UnknownTopic(_) => RefusedPublish::new("server_error", ApiError::internal(e)),
        BrokerError::TooManyTopics(_)
        | BrokerError::TooManyWaiting(_)
        | BrokerError::TenantFull(_)
        | BrokerError::State(_) => RefusedPublish::new(
            e.limit_label().unwrap_or("topic_limit"),
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::LimitExceeded, e.to_string()),
        ),
        BrokerError::Unavailable(_) => unavailable(e),
    })?;
    let published = Published { topic: key.name.to_string(), kind: publish.kind, offset };
    Ok(serde_json::to_string(&published).expect("a publish answer serialises"))
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
