//! Wall displays (see [`protocol::display`]): admins make, list, edit and revoke them
//! (`/api/admin/displays`); a screen trades its link's secret for a display session
//! (`POST /api/display/session`) and asks what it shows (`GET /api/display/me`).
//!
//! Revoking a display ends its session on every node at once, as a logout does: the session's
//! lookups are forgotten and its connections closed (`Notice::SessionEnded` with the display's
//! session id), and its screen shows that it was revoked.

use super::{AdminSession, audit, invalid, json_body};
use crate::extract::ApiPath;
use crate::http_error::ApiError;
use crate::{
    AppState,
    auth::{Session, display_session_id},
    broker::cluster::Notice,
    client_addr::ClientAddr,
    clock::now_secs,
    credentials::display_secret,
    store::{
        audit::{AuditEntry, Outcome},
        displays::DisplayError,
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
use protocol::ErrorBody;
use protocol::display::{
    CreatedDisplay, DEFAULT_STALE_SECS, DisplayBrief, DisplayClaim, DisplayEdit, DisplayInfo, NewDisplay,
};

/// A check's `(field, message)` as the `400` that names the field.
fn invalid_field((field, message): (&str, String)) -> ApiError {
    invalid(field, &message)
}

fn refused(error: DisplayError) -> ApiError {
    match error {
        DisplayError::NotFound => ApiError::not_found(error.to_string()),
        DisplayError::TooMany => ApiError::limit("displays", protocol::display::MAX_DISPLAYS as u64, error.to_string()),
        DisplayError::UnknownDashboard(_) => invalid("dashboards", &error.to_string()),
    }
}

#[utoipa::path(
    get, path = "/api/admin/displays", tag = "displays",
    responses((status = 200, description = "The tenant's wall displays", body = Vec<DisplayInfo>), (status = 403, description = "Not an admin", body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
) -> Result<Json<Vec<DisplayInfo>>, ApiError> {
    Ok(Json(state.store.displays(&session.user.tenant).await.map_err(ApiError::internal)?))
}

/// Makes a display and answers its link, with the secret this once (`201`).
#[utoipa::path(
    post, path = "/api/admin/displays", tag = "displays", request_body = NewDisplay,
    responses(
        (status = 201, description = "Made (audited): the link and its secret, shown this once", body = CreatedDisplay),
        (status = 429, description = "The tenant has as many displays as it may", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedDisplay>), ApiError> {
    let new: NewDisplay = json_body(&body)?;
    new.check().map_err(invalid_field)?;
    let secret = display_secret::generate();
    let made = state
        .store
        .create_display(&session.user.tenant, &new, &display_secret::hash(&secret))
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    audit(
        &state,
        &session,
        "display_create",
        format!("{} {:?}: dashboards {:?}", made.id, made.settings.name, new.dashboards),
    );
    let link = format!("/display/{}#{secret}", made.id);
    Ok((StatusCode::CREATED, Json(CreatedDisplay { display: made, link })))
}

/// Renames a display, or changes its dashboards, rotation or theme. Its screen picks the change
/// up the next time it asks what it shows (within a minute).
#[utoipa::path(
    patch, path = "/api/admin/displays/{id}", tag = "displays", params(("id" = i64, Path, description = "The display")), request_body = DisplayEdit,
    responses((status = 200, description = "Changed (audited); the screen follows within a minute", body = DisplayInfo), (status = 404, description = "No such display", body = ErrorBody))
)]
pub async fn edit(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    ApiPath(id): ApiPath<i64>,
    body: Bytes,
) -> Result<Json<DisplayInfo>, ApiError> {
    let edit: DisplayEdit = json_body(&body)?;
    let tenant = &session.user.tenant;
    let current = state.store.display(tenant, id).await.map_err(ApiError::internal)?;
    let current = current.ok_or_else(|| refused(DisplayError::NotFound))?;
    let wanted = current.settings.edited(edit);
    wanted.check().map_err(invalid_field)?;
    let edited = state.store.edit_display(tenant, id, &wanted).await.map_err(ApiError::internal)?.map_err(refused)?;
    audit(&state, &session, "display_edit", format!("{id} {:?}: dashboards {:?}", wanted.name, wanted.dashboards));
    Ok(Json(edited))
}

/// Revokes a display: its screen's connections close at once on every node, and the screen says
/// it was revoked.
#[utoipa::path(
    delete, path = "/api/admin/displays/{id}", tag = "displays", params(("id" = i64, Path, description = "The display")),
    responses((status = 204, description = "Revoked (audited): its screen closes with 4401 on every node"), (status = 404, description = "No such display", body = ErrorBody))
)]
pub async fn revoke(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    let newly =
        state.store.revoke_display(&session.user.tenant, id).await.map_err(ApiError::internal)?.map_err(refused)?;
    let notice = Notice::SessionEnded(display_session_id(id));
    state.auth.forget(&notice);
    let closed = state.sockets.apply(&notice);
    state.cluster.announce(notice).await;
    if newly {
        audit(&state, &session, "display_revoke", format!("{id}: {closed} socket(s) closed here"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A screen opening its link: the secret for a display session, set as the session cookie.
/// Limited per display (the lookup it guards) and, for wrong secrets, per source.
#[utoipa::path(
    post, path = "/api/display/session", tag = "displays", security(()), request_body = DisplayClaim,
    responses(
        (status = 200, description = "A display session: the session cookie is set", body = DisplayBrief,
            headers(("Set-Cookie" = String, description = "the display's session cookie"))),
        (status = 401, description = "A wrong secret, or a revoked display", body = ErrorBody),
        (status = 429, description = "Too many sessions opened for this display, or too many wrong secrets from this source", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    )
)]
pub async fn open_session(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Result<(CookieJar, Json<DisplayBrief>), ApiError> {
    let claim: DisplayClaim = json_body(&body)?;
    let now = std::time::Instant::now();
    let source = ClientAddr(peer).source();
    let limited = |name: &'static str, max: usize, wait: f64| {
        telemetry::denied(name);
        let error = ApiError::limit(name, max as u64, format!("at most {max} a minute; try again shortly"));
        ApiError { retry_after: Some(wait.ceil().max(1.0) as u64), ..error }
    };
    if let Some(wait) = state.limiters.display_secret_failures_by_source.blocked(&source, now) {
        return Err(limited("display_secret_failures", DISPLAY_FAILURES_PER_MIN, wait));
    }
    if let Err(wait) = state.limiters.display_sessions_by_display.check(&claim.display, now) {
        return Err(limited("display_sessions", DISPLAY_SESSIONS_PER_MIN, wait));
    }
    let opened = state.auth.display_session(claim.display, &claim.secret).await.map_err(|e| match e {
        crate::auth::AuthError::Store(e) => ApiError::internal(e),
        other => ApiError::unauthorized(other.to_string()),
    })?;
    let Some((session, token)) = opened else {
        let _ = state.limiters.display_secret_failures_by_source.check(&source, now);
        telemetry::denied("display_secret");
        state.auditor.record(AuditEntry {
            tenant: None,
            actor: Some(source.to_string()),
            action: "display_open",
            outcome: Outcome::Denied,
            detail: Some(format!(
                "display {} (from {peer}): no such display, revoked, or another secret",
                claim.display
            )),
        });
        return Err(ApiError::unauthorized(
            "this display link is not valid: the display was revoked, or the link is wrong",
        ));
    };
    seen(&state, &session, peer).await;
    audit(&state, &session, "display_open", format!("from {peer}"));
    let brief = brief(&state, &session)?;
    Ok((jar.add(state.auth.display_cookie(token, &headers)), Json(brief)))
}

/// What the display session shows; its cookie issued again (a screen that runs for years keeps
/// it), and the display marked as seen.
#[utoipa::path(
    get, path = "/api/display/me", tag = "displays",
    responses(
        (status = 200, description = "What the display shows; renews its cookie", body = DisplayBrief,
            headers(("Set-Cookie" = String, description = "the renewed cookie"))),
        (status = 403, description = "Not a display's session", body = ErrorBody),
    )
)]
pub async fn me(
    State(state): State<AppState>,
    session: Session,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
) -> Result<(CookieJar, Json<DisplayBrief>), ApiError> {
    let brief = brief(&state, &session)?;
    seen(&state, &session, peer).await;
    let jar = match state.auth.token_of(&headers) {
        Some(token) => jar.add(state.auth.display_cookie(token, &headers)),
        None => jar,
    };
    Ok((jar, Json(brief)))
}

fn brief(state: &AppState, session: &Session) -> Result<DisplayBrief, ApiError> {
    let display = session.display.as_ref().ok_or_else(|| ApiError::forbidden("this is not a display's session"))?;
    Ok(DisplayBrief {
        id: display.id,
        name: display.name.clone(),
        dashboards: display.dashboards.clone(),
        rotate_secs: display.rotate_secs,
        theme: display.theme,
        stale_secs: DEFAULT_STALE_SECS,
        build: state.leptos_options.site_pkg_dir.to_string(),
    })
}

/// Notes when and from where the display was last used. A failure is logged: it is a note for
/// admins, not a reason to refuse the screen.
pub(crate) async fn seen(state: &AppState, session: &Session, peer: std::net::IpAddr) {
    let Some(scope) = &session.display else { return };
    if let Err(e) = state.store.display_seen(scope.id, now_secs(), &peer.to_string()).await {
        tracing::warn!(display = scope.id, error = %e, "could not note when the display was seen");
    }
}

/// Display sessions a display may open a minute (each screen opens one when it starts).
pub const DISPLAY_SESSIONS_PER_MIN: usize = 30;
/// Wrong display secrets a source may try a minute.
pub const DISPLAY_FAILURES_PER_MIN: usize = 10;
