//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`, `GET /api/auth/session`.

use super::{error::ApiError, json_body, over_tls};
use crate::{
    AppState,
    auth::{AuthError, Session},
    broker::engine::Notice,
    client_addr::ClientAddr,
    store::{
        accounts::User,
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
use serde::{Deserialize, Serialize};
use std::{net::IpAddr, time::Instant};

const MAX_EMAIL_LEN: usize = 254;
const MAX_PASSWORD_LEN: usize = 1024;
/// Close code for a socket whose session ended.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    user: User,
    /// Unix seconds.
    expires_at: i64,
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Result<(CookieJar, Json<Me>), ApiError> {
    let now = Instant::now();
    if let Err(wait) = state.limiters.logins_by_ip.check(&peer, now) {
        let max = state.config.logins_per_min_per_address;
        let message = format!("more than {max} sign-in attempts a minute from this address");
        return Err(throttled(&state, peer, "logins_per_address", max, wait, message));
    }
    let credentials: Credentials = json_body(&body)?;
    if credentials.email.len() > MAX_EMAIL_LEN || credentials.password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "e-mail or password too long"));
    }
    let account = credentials.email.to_lowercase();
    if let Some(wait) = state.limiters.login_failures_by_account.blocked(&account, now) {
        let max = state.config.logins_per_min_per_account;
        let message = "too many failed sign-ins for this account; try again shortly".to_owned();
        return Err(throttled(&state, peer, "login_failures_per_account", max, wait, message));
    }
    let signed_in = match state.auth.login(&credentials.email, &credentials.password).await {
        Ok(signed_in) => signed_in,
        Err(AuthError::Busy) => {
            telemetry::denied("password_checks");
            let error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", AuthError::Busy.to_string());
            return Err(ApiError { retry_after: Some(1), ..error });
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let Some((session, token)) = signed_in else {
        // Only failures count against the account: its owner can still sign in while someone
        // else guesses (until the guesses use up its allowance).
        let _ = state.limiters.login_failures_by_account.check(&account, now);
        telemetry::denied("invalid_credentials");
        state.auditor.record(AuditEntry {
            tenant: None,
            actor: Some(peer.to_string()),
            action: "login",
            outcome: Outcome::Denied,
            detail: Some(format!("wrong e-mail or password for {:?}", credentials.email)),
        });
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong e-mail or password"));
    };
    state.auditor.record(AuditEntry {
        tenant: Some(session.user.tenant.to_string()),
        actor: Some(session.user.email.clone()),
        action: "login",
        outcome: Outcome::Ok,
        detail: Some(format!("from {}", peer)),
    });
    state.presence.signed_in(&session.user);
    let secure = state.config.secure_cookies || over_tls(&headers);
    let jar = jar.add(state.auth.cookie(token, secure, state.config.cookie_domain.as_deref()));
    Ok((jar, Json(Me { user: session.user, expires_at: session.expires_at })))
}

/// A throttled sign-in: 429 with `Retry-After`, counted and audited.
fn throttled(state: &AppState, peer: IpAddr, limit: &'static str, max: usize, wait: f64, message: String) -> ApiError {
    telemetry::denied(limit);
    state.auditor.record(AuditEntry {
        tenant: None,
        actor: Some(peer.to_string()),
        action: "login",
        outcome: Outcome::Denied,
        detail: Some(message.clone()),
    });
    ApiError { retry_after: Some(wait.ceil().max(1.0) as u64), ..ApiError::limit(limit, max as u64, message) }
}

pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    jar: CookieJar,
) -> Result<(CookieJar, StatusCode), ApiError> {
    state.auth.logout(&session).await.map_err(ApiError::internal)?;
    let notice = Notice::SessionEnded(session.id.clone());
    let closed = state.sockets.apply(&notice);
    state.engine.announce(notice).await;
    state.presence.signed_out(&session.user);
    state.auditor.record(AuditEntry {
        tenant: Some(session.user.tenant.to_string()),
        actor: Some(session.user.email.clone()),
        action: "logout",
        outcome: Outcome::Ok,
        detail: Some(format!("{closed} socket(s) closed")),
    });
    Ok((jar.add(state.auth.removal_cookie(state.config.cookie_domain.as_deref())), StatusCode::NO_CONTENT))
}

pub async fn me(session: Session) -> Json<Me> {
    Json(Me { user: session.user, expires_at: session.expires_at })
}

/// Whether anyone is signed in: `{"session": Me | null}`, always `200`. The sign-in page asks this
/// (a browser logs every `401` in its console, and a signed-out visitor is no error).
pub async fn session_status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let me = match state.auth.session_of(&headers).await {
        Ok(session) => Some(Me { user: session.user, expires_at: session.expires_at }),
        Err(AuthError::Store(e)) => return Err(ApiError::internal(e)),
        Err(_) => None,
    };
    Ok(Json(serde_json::json!({ "session": me })))
}
