//! Tenant administration (admins only): the tenant's live mode, its topic rules and the audit log.

use super::{AdminSession, audit, json_body};
use crate::extract::ApiQuery;
use crate::http_error::ApiError;
use crate::{AppState, auth::Session, broker::cluster::Notice, store::audit::AuditRecord};
use axum::{Json, body::Bytes, extract::State};
use protocol::ErrorBody;
use protocol::LiveMode;
use protocol::topic_rules::TopicRules;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of `GET`/`PUT /api/admin/live-mode`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveModeBody {
    mode: LiveMode,
}

/// The body of the older `/api/admin/live-dashboards` (on means `live`, off means `off`), kept so
/// that scripts written for it keep working.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveDashboards {
    enabled: bool,
}

#[utoipa::path(
    get, path = "/api/admin/live-mode", tag = "admin",
    responses((status = 200, description = "The tenant's live mode", body = LiveModeBody), (status = 403, description = "Not an admin", body = ErrorBody))
)]
pub async fn live_mode(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
) -> Result<Json<LiveModeBody>, ApiError> {
    Ok(Json(LiveModeBody { mode: current_mode(&state, &session).await? }))
}

#[utoipa::path(
    put, path = "/api/admin/live-mode", tag = "admin", request_body = LiveModeBody,
    responses((status = 200, description = "Switched (audited); open connections the mode no longer lets in are closed", body = LiveModeBody))
)]
pub async fn set_live_mode(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    body: Bytes,
) -> Result<Json<LiveModeBody>, ApiError> {
    let wanted: LiveModeBody = json_body(&body)?;
    switch(&state, &session, wanted.mode).await?;
    Ok(Json(wanted))
}

#[utoipa::path(
    get, path = "/api/admin/live-dashboards", tag = "admin",
    responses((status = 200, description = "`true` unless the live mode is `off`", body = LiveDashboards), (status = 403, description = "Not an admin", body = ErrorBody))
)]
#[deprecated = "use /api/admin/live-mode"]
pub async fn live_dashboards(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
) -> Result<Json<LiveDashboards>, ApiError> {
    Ok(Json(LiveDashboards { enabled: current_mode(&state, &session).await? != LiveMode::Off }))
}

#[utoipa::path(
    put, path = "/api/admin/live-dashboards", tag = "admin", request_body = LiveDashboards,
    responses((status = 200, description = "`false` sets the mode `off`, `true` sets `live`", body = LiveDashboards))
)]
#[deprecated = "use /api/admin/live-mode"]
pub async fn set_live_dashboards(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    body: Bytes,
) -> Result<Json<LiveDashboards>, ApiError> {
    let wanted: LiveDashboards = json_body(&body)?;
    switch(&state, &session, if wanted.enabled { LiveMode::Live } else { LiveMode::Off }).await?;
    Ok(Json(wanted))
}

/// The mode as the store has it now (not as this node last cached it).
async fn current_mode(state: &AppState, session: &Session) -> Result<LiveMode, ApiError> {
    let tenant = state.store.tenant(&session.user.tenant).await.map_err(ApiError::internal)?;
    Ok(tenant.map_or(LiveMode::Off, |t| t.live_mode))
}

/// Sets the session's tenant's live mode, closes here what the mode no longer lets in, tells the
/// other nodes (which close theirs and forget the mode they cached) and audits the switch.
async fn switch(state: &AppState, session: &Session, mode: LiveMode) -> Result<(), ApiError> {
    let tenant = &session.user.tenant;
    let before = current_mode(state, session).await?;
    state.auth.set_live_mode(tenant, mode).await.map_err(ApiError::internal)?;
    let notice = Notice::LiveMode(tenant.clone(), mode);
    let closed = state.sockets.apply(&notice);
    state.cluster.announce(notice).await;
    audit(state, session, "live_mode", format!("{before} → {mode}; {closed} connection(s) closed"));
    Ok(())
}

#[utoipa::path(
    get, path = "/api/admin/topic-rules", tag = "admin",
    responses((status = 200, description = "The tenant's topic rules and their version", body = TopicRules), (status = 403, description = "Not an admin", body = ErrorBody))
)]
pub async fn topic_rules(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
) -> Result<Json<TopicRules>, ApiError> {
    state.store.topic_rules(&session.user.tenant).await.map(Json).map_err(ApiError::internal)
}

/// Replaces the tenant's topic rules (a body's `version` is ignored), has this node's connections
/// of the tenant check their subscriptions against them, tells the other nodes to do the same, and
/// audits the change. Answers the rules as saved, with their new version.
#[utoipa::path(
    put, path = "/api/admin/topic-rules", tag = "admin", request_body = TopicRules,
    responses((status = 200, description = "The rules as saved, with their new version (audited); open connections are checked against them", body = TopicRules))
)]
pub async fn set_topic_rules(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    body: Bytes,
) -> Result<Json<TopicRules>, ApiError> {
    let wanted: TopicRules = json_body(&body)?;
    wanted.check().map_err(|e| ApiError { field: Some(e.at.clone()), ..ApiError::bad_request(e.to_string()) })?;
    let tenant = &session.user.tenant;
    let before = state.store.topic_rules(tenant).await.map_err(ApiError::internal)?;
    let version = state.store.set_topic_rules(tenant, &wanted.rules).await.map_err(ApiError::internal)?;
    let checked = state.permissions.reread(tenant, &state.sockets).await.map_err(ApiError::internal)?;
    state.cluster.announce(Notice::TopicRules(tenant.clone())).await;
    let detail = format!(
        "version {} → {version}: {} rule(s) → {}; {checked} connection(s) here checked again",
        before.version,
        before.rules.len(),
        wanted.rules.len()
    );
    audit(&state, &session, "topic_rules", detail);
    Ok(Json(TopicRules { version, rules: wanted.rules }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries to answer (default 100); fewer than 1 counts as 1, more than 1000 as 1000.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4_294_967_295_i64)]
    limit: Option<u32>,
}

#[utoipa::path(
    get, path = "/api/admin/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, description = "The tenant's audit log, newest first", body = Vec<AuditRecord>), (status = 403, description = "Not an admin", body = ErrorBody))
)]
pub async fn audit_log(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    state.store.audit_log(session.user.tenant.as_str(), limit).await.map(Json).map_err(ApiError::internal)
}
