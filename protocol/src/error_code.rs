//! Every machine-readable error code livedash sends: in the WebSocket's `error` message, in the
//! `error` field of an HTTP error body ([`ErrorBody`]), and nowhere else. One enum for both, so a
//! code means one thing whichever way it arrives, and `docs/protocol.md` can be checked against
//! [`ErrorCode::ALL`].

use serde::{Deserialize, Serialize};

/// Machine-readable reason of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // Over the WebSocket (the connection stays open).
    /// The frame was not JSON or not a known message.
    BadMessage,
    /// The topic name is not valid (see docs/protocol.md for the grammar).
    BadTopic,
    /// A limit was reached (subscriptions per connection, topics, documents …).
    LimitExceeded,
    /// The client sends messages faster than allowed; this one was ignored.
    RateLimited,
    /// A `resume` token that is forged, expired or another user's: subscribe afresh instead.
    BadResumeToken,
    /// The widget id is already subscribed on this connection.
    DuplicateSubscription,
    /// The widget id is not subscribed on this connection.
    NotSubscribed,

    // Over HTTP only.
    /// A malformed parameter or body.
    BadRequest,
    /// A published payload does not match its topic's kind.
    InvalidPayload,
    /// The topic exists with another kind.
    KindMismatch,
    /// A publish repeats an `Idempotency-Key` whose first request is still being published.
    IdempotencyKeyInUse,
    /// A publish repeats an `Idempotency-Key` with another topic or body.
    IdempotencyKeyReused,
    /// The body is larger than the endpoint takes.
    PayloadTooLarge,
    /// The body did not arrive in time.
    BodyTimeout,
    /// A state change whose body is not JSON.
    UnsupportedMediaType,
    /// No session, or an expired one; or a wrong API key.
    Unauthorized,
    /// Wrong e-mail or password.
    InvalidCredentials,
    /// Another site's request, or a role that may not do this.
    Forbidden,
    /// Live dashboards are off for the tenant.
    LiveDashboardsOff,
    /// The tenant's dashboards poll (an administrator's choice): WebSockets and SSE streams are
    /// refused, polls are answered.
    PollingOnly,
    /// No such thing for this tenant.
    NotFound,
    /// The server is shedding load; try again after `Retry-After`.
    Busy,
    /// Something this node needs (Redis, the database) cannot be reached; try again.
    Unavailable,
    /// Something went wrong on the server; the cause is in its log.
    Internal,
}

impl ErrorCode {
    /// Every code, for the documentation check.
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::BadMessage,
        ErrorCode::BadTopic,
        ErrorCode::LimitExceeded,
        ErrorCode::RateLimited,
        ErrorCode::BadResumeToken,
        ErrorCode::DuplicateSubscription,
        ErrorCode::NotSubscribed,
        ErrorCode::BadRequest,
        ErrorCode::InvalidPayload,
        ErrorCode::KindMismatch,
        ErrorCode::IdempotencyKeyInUse,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::PayloadTooLarge,
        ErrorCode::BodyTimeout,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Unauthorized,
        ErrorCode::InvalidCredentials,
        ErrorCode::Forbidden,
        ErrorCode::LiveDashboardsOff,
        ErrorCode::PollingOnly,
        ErrorCode::NotFound,
        ErrorCode::Busy,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::BadTopic => "bad_topic",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::BadResumeToken => "bad_resume_token",
            ErrorCode::DuplicateSubscription => "duplicate_subscription",
            ErrorCode::NotSubscribed => "not_subscribed",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidPayload => "invalid_payload",
            ErrorCode::KindMismatch => "kind_mismatch",
            ErrorCode::IdempotencyKeyInUse => "idempotency_key_in_use",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::BodyTimeout => "body_timeout",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::LiveDashboardsOff => "live_dashboards_off",
            ErrorCode::PollingOnly => "polling_only",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Busy => "busy",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every HTTP error: `{"error": code, "message": text, "field"?: path, "limit"?: …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong, for programs: the same code whatever the wording.
    pub error: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// Which parameter or body field was wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The limit that was reached, when that is the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitReached>,
}

/// The limit a 429 (or 422) reached: its name, as in the metrics, and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitReached {
    /// The limit's name, e.g. `connections_per_user`.
    pub name: String,
    /// Its value: the most it allows.
    pub max: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_written_as_serde_writes_it() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(code.as_str()));
        }
    }

    #[test]
    fn an_http_error_body_reads_back() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"error":"limit_exceeded","message":"at most 10","limit":{"name":"connections_per_user","max":10}}"#,
        )
        .unwrap();
        assert_eq!(body.error, ErrorCode::LimitExceeded);
        assert_eq!(body.limit, Some(LimitReached { name: "connections_per_user".into(), max: 10 }));
        assert_eq!(body.field, None);
    }
}
