//! Extractors for the signed-in user: `Session` for any role, `AdminSession` for admins. A display
//! session passes `Session` only for reads: every API call that may change something is refused it
//! here, whatever route it is (see [`Session::may_write`]).

use crate::http_error::ApiError;
use crate::{
    AppState,
    auth::{AuthError, Session},
    store::accounts::Role,
};
use axum::{
    extract::FromRequestParts,
    http::{Method, request::Parts},
};

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = match state.auth.session_of(&parts.headers).await {
            Ok(session) => session,
            Err(AuthError::Store(e)) => return Err(ApiError::internal(e)),
            Err(e) => return Err(ApiError::unauthorized(e.to_string())),
        };
        let reads = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !reads && let Err(refused) = session.may_write() {
            crate::telemetry::denied("display_read_only");
            return Err(ApiError::forbidden(refused.to_string()));
        }
        Ok(session)
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
