//! Extractors for the signed-in user: `Session` for any role, `AdminSession` for admins.

use crate::http_error::ApiError;
use crate::{
    AppState,
    auth::{AuthError, Session},
    store::accounts::Role,
};
use axum::{extract::FromRequestParts, http::request::Parts};

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match state.auth.session_of(&parts.headers).await {
            Ok(session) => Ok(session),
            Err(AuthError::Store(e)) => Err(ApiError::internal(e)),
            Err(e) => Err(ApiError::unauthorized(e.to_string())),
        }
    }
}

/// A session whose user is an admin of their tenant.
pub struct AdminSession(pub Session);

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        if session.user.role != Role::Admin {
            return Err(ApiError::forbidden("this needs the admin role"));
        }
        Ok(Self(session))
    }
}
