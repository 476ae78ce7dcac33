//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`, `GET /api/auth/session`.

use super::json_body;
use crate::http_error::ApiError;
use crate::{
    AppState,
    auth::{AuthError, Session, sign_in_throttle::Throttled},
    broker::cluster::Notice,
    client_addr::{ClientAddr, Source},
    store::{
        accounts::{EmailKey, User},
        audit::{AuditEntry, Outcome},
    },
    telemetry,
};
use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use axum_extra::extract::CookieJar;
use protocol::{ErrorBody, ErrorCode, LiveMode};
use serde::{Deserialize, Serialize};
use std::{net::IpAddr, time::Instant};
use utoipa::ToSchema;

const MAX_EMAIL_LEN: usize = 254;
const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Credentials {
    #[schema(max_length = 254)]
    email: String,
    #[schema(max_length = 1024)]
    password: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    user: User,
    /// Unix seconds.
    expires_at: i64,
    /// The tenant's live mode: a page whose live updates are off asks this to learn when an
    /// administrator turns them back on. Left out when the store could not say just now (the page
    /// asks again later; the sign-in itself must not fail for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    live_mode: Option<LiveMode>,
}

impl Me {
    async fn of(state: &AppState, session: Session) -> Self {
        let live_mode = match state.auth.live_mode(&session.user.tenant).await {
            Ok(mode) => Some(mode),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the tenant's live mode");
                None
            }
        };
        Me { user: session.user, expires_at: session.expires_at, live_mode }
    }
}

#[utoipa::path(
    post, path = "/api/auth/login", tag = "auth", security(()),
    request_body(content = Credentials, example = json!({"email": "ops@acme.test", "password": "livedash-demo"})),
    responses(
        (status = 200, description = "Signed in: the session cookie is set (httpOnly, SameSite=Strict; `__Host-` and Secure over TLS)", body = Me,
            headers(("Set-Cookie" = String, description = "the session cookie"))),
        (status = 401, description = "`invalid_credentials`: a wrong e-mail or password", body = ErrorBody),
        (status = 429, description = "Too many sign-ins from this source or for this account; `limit` names which", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Result<(CookieJar, Json<Me>), ApiError> {
    let now = Instant::now();
    let throttle = &state.limiters.sign_ins;
    let source = ClientAddr(peer).source();
    throttle.attempt(source, now).map_err(|refused| throttled(&state, source, peer, refused))?;
    let credentials: Credentials = json_body(&body)?;
    if credentials.email.len() > MAX_EMAIL_LEN || credentials.password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, "e-mail or password too long"));
    }
    // One spelling of the account for the lookup and every limit on it.
    let account = EmailKey::new(&credentials.email);
    throttle.admit(&account, source, now).map_err(|refused| throttled(&state, source, peer, refused))?;
    let signed_in = match state.auth.login(&account, &credentials.password).await {
        Ok(signed_in) => signed_in,
        Err(AuthError::Busy) => {
            telemetry::denied("password_checks");
            let error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy, AuthError::Busy.to_string());
            return Err(ApiError { retry_after: Some(1), ..error });
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let Some((session, token)) = signed_in else {
        throttle.failed(&account, source, now);
        telemetry::denied("invalid_credentials");
        state.auditor.record(AuditEntry {
            tenant: None,
            actor: Some(source.to_string()),
            action: "login",
            outcome: Outcome::Denied,
            detail: Some(format!("wrong e-mail or password for {:?} (from {peer})", account.as_str())),
        });
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials, "wrong e-mail or password"));
    };
    throttle.succeeded(&account, source, now);
    state.auditor.record(AuditEntry {
        tenant: Some(session.user.tenant.to_string()),
        actor: Some(session.user.email.clone()),
        action: "login",
        outcome: Outcome::Ok,
        detail: Some(format!("from {}", peer)),
    });
    state.presence.signed_in(&session.user);
    let jar = jar.add(state.auth.cookie(token, &headers));
    Ok((jar, Json(Me::of(&state, session).await)))
}

/// A throttled sign-in: 429 with `Retry-After`, counted and audited.
fn throttled(state: &AppState, source: Source, peer: IpAddr, refused: Throttled) -> ApiError {
    telemetry::denied(refused.limit);
    state.auditor.record(AuditEntry {
        tenant: None,
        // Digested per source (an IPv6 /64 is one), not per address.
        actor: Some(source.to_string()),
        action: "login",
        outcome: Outcome::Denied,
        detail: Some(format!("{} (from {peer})", refused.message)),
    });
    let error = ApiError::limit(refused.limit, refused.max as u64, refused.message);
    ApiError { retry_after: Some(refused.wait_secs.ceil().max(1.0) as u64), ..error }
}

#[utoipa::path(
    post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204, description = "Signed out: the cookie is removed and the session's sockets close with 4401",
        headers(("Set-Cookie" = String, description = "removes the session cookie"))))
)]
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<(CookieJar, StatusCode), ApiError> {
    state.auth.logout(&session).await.map_err(ApiError::internal)?;
    let notice = Notice::SessionEnded(session.id.clone());
    let closed = state.sockets.apply(&notice);
    state.cluster.announce(notice).await;
    state.presence.signed_out(&session.user);
    state.auditor.record(AuditEntry {
        tenant: Some(session.user.tenant.to_string()),
        actor: Some(session.user.email.clone()),
        action: "logout",
        outcome: Outcome::Ok,
        detail: Some(format!("{closed} socket(s) closed")),
    });
    Ok((jar.add(state.auth.removal_cookie(&headers)), StatusCode::NO_CONTENT))
}

#[utoipa::path(
    get, path = "/api/auth/me", tag = "auth",
    responses((status = 200, description = "The signed-in user", body = Me))
)]
pub async fn me(State(state): State<AppState>, session: Session) -> Json<Me> {
    Json(Me::of(&state, session).await)
}

/// Whether anyone is signed in: `{"session": Me | null}`, always `200`. The sign-in page asks this
/// (a browser logs every `401` in its console, and a signed-out visitor is no error).
#[utoipa::path(
    get, path = "/api/auth/session", tag = "auth", security((), ("session" = [])),
    responses((status = 200, description = "The session, or `null` when signed out: never `401`", body = SessionStatus))
)]
pub async fn session_status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionStatus>, ApiError> {
    let session = match state.auth.session_of(&headers).await {
        Ok(session) => Some(Me::of(&state, session).await),
        Err(AuthError::Store(e)) => return Err(ApiError::internal(e)),
        Err(_) => None,
    };
    Ok(Json(SessionStatus { session }))
}

/// `GET /api/auth/session`'s answer.
#[derive(Serialize, ToSchema)]
pub struct SessionStatus {
    /// The signed-in user, or `null`.
    session: Option<Me>,
}
