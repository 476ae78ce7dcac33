//! axum's `Path` and `Query` extractors, refusing in the API's one error shape ([`ApiError`]): a
//! path segment or query parameter that does not parse (`/api/dashboards/abc`, `?limit=-1`) is a
//! `400 bad_request` naming what was wrong, like every other refusal, not axum's plain text.

use crate::http_error::ApiError;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The request's path parameters.
pub struct ApiPath<T>(pub T);

/// The request's query parameters.
pub struct ApiQuery<T>(pub T);

fn refused(what: &str, message: String) -> ApiError {
    ApiError { field: Some(what.to_owned()), ..ApiError::bad_request(message) }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(refused("path", rejection.body_text())),
        }
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(refused("query", rejection.body_text())),
        }
    }
}
