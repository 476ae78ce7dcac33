//! Tenant administration (admins only): the live-dashboards flag and the audit log.

use super::{AdminSession, json_body};
use crate::http_error::ApiError;
use crate::{
    AppState,
    broker::cluster::Notice,
    store::audit::{AuditEntry, AuditRecord, Outcome},
};
use axum::{
    Json,
    body::Bytes,
    extract::{Query, State},
};
use serde::{Deserialize, Serialize};

/// Close code for sockets of a tenant whose live dashboards were turned off.

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveDashboards {
    enabled: bool,
}

pub async fn live_dashboards(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
) -> Result<Json<LiveDashboards>, ApiError> {
    let tenant = state.store.tenant(&session.user.tenant).await.map_err(ApiError::internal)?;
    Ok(Json(LiveDashboards { enabled: tenant.is_some_and(|t| t.live_dashboards) }))
}

pub async fn set_live_dashboards(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    body: Bytes,
) -> Result<Json<LiveDashboards>, ApiError> {
    let wanted: LiveDashboards = json_body(&body)?;
    let tenant = &session.user.tenant;
    state.auth.set_live_dashboards(tenant, wanted.enabled).await.map_err(ApiError::internal)?;
    let closed = if wanted.enabled {
        0
    } else {
        let notice = Notice::LiveOff(tenant.clone());
        let closed = state.sockets.apply(&notice);
        state.cluster.announce(notice).await;
        closed
    };
    state.auditor.record(AuditEntry {
        tenant: Some(tenant.to_string()),
        actor: Some(session.user.email.clone()),
        action: "live_dashboards",
        outcome: Outcome::Ok,
        detail: Some(format!("set to {}; {closed} socket(s) closed", wanted.enabled)),
    });
    Ok(Json(wanted))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<u32>,
}

pub async fn audit_log(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    state.store.audit_log(session.user.tenant.as_str(), limit).await.map(Json).map_err(ApiError::internal)
}
