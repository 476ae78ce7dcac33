//! The one error shape of every JSON endpoint ([`ErrorBody`]: `{"error": code, "message": text,
//! "field"?: path, "limit"?: {"name", "max"}}`), with `Retry-After` when waiting helps. The codes
//! are the protocol's ([`ErrorCode`]).

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use protocol::{ErrorBody, ErrorCode, LimitReached};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// The limit that was reached, by its name in the metrics and its value.
    pub limit: Option<Limit>,
    /// Seconds after which the request may succeed (`Retry-After`).
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub name: &'static str,
    pub max: u64,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, limit: None, retry_after: None }
    }

    /// 429: `name` (at most `max`) was reached.
    pub fn limit(name: &'static str, max: u64, message: impl Into<String>) -> Self {
        Self {
            limit: Some(Limit { name, max }),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::LimitExceeded, message)
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    /// Logs the cause; the client only learns that something went wrong on our side.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "something went wrong on the server")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let limit = self.limit.map(|Limit { name, max }| LimitReached { name: name.to_owned(), max });
        let body = ErrorBody { error: self.code, message: self.message, field: self.field, limit };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
