//! The JSON API under `/api`: sign-in, publishing, dashboards, preferences, tenant administration and
//! wall displays.

mod admin;
mod auth_routes;
mod dashboards;
pub(crate) mod displays;
mod publish;
mod session;

pub use session::AdminSession;

use crate::AppState;
use crate::http_error::ApiError;
use axum::{
    Router,
    routing::{delete, get, patch, post, put},
};
use protocol::ErrorCode;
use serde::de::DeserializeOwned;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/auth/login", post(auth_routes::login))
        .route("/api/auth/logout", post(auth_routes::logout))
        .route("/api/auth/me", get(auth_routes::me))
        .route("/api/auth/session", get(auth_routes::session_status))
        .route("/api/v1/publish/{*topic}", post(publish::publish))
        .route("/api/admin/live-mode", get(admin::live_mode).put(admin::set_live_mode))
        .route("/api/admin/topic-rules", get(admin::topic_rules).put(admin::set_topic_rules))
        .route("/api/admin/live-dashboards", get(admin::live_dashboards).put(admin::set_live_dashboards))
        .route("/api/admin/audit", get(admin::audit_log))
        .route("/api/admin/displays", get(displays::list).post(displays::create))
        .route("/api/admin/displays/{id}", patch(displays::edit).delete(displays::revoke))
        .route("/api/display/session", post(displays::open_session))
        .route("/api/display/me", get(displays::me))
        .route("/api/dashboards", get(dashboards::list).post(dashboards::create))
        .route("/api/dashboards/{id}", get(dashboards::open))
        .route("/api/dashboards/{id}/widgets", post(dashboards::add_widget))
        .route("/api/dashboards/{id}/widgets/{widget}", delete(dashboards::remove_widget))
        .route("/api/dashboards/{id}/widgets/{widget}/notify", put(dashboards::set_notify))
        .route("/api/dashboards/{id}/widgets/{widget}/thresholds", put(dashboards::set_thresholds))
        .route("/api/dashboards/{id}/widgets/{widget}/alerts", get(dashboards::alerts))
        .route("/api/dashboards/{id}/order", put(dashboards::reorder))
        .route("/api/me/widget-modes/{widget}", put(dashboards::set_mode))
        .route("/api/me/preferences", get(dashboards::preferences).put(dashboards::set_preferences))
        .route("/api/me/recovery", post(dashboards::report_recovery))
}

/// Parses a JSON body into `T`, answering malformed input in the API's own error shape.
fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(bytes)).map_err(|e| {
        let path = e.path().to_string();
        ApiError {
            field: (path != ".").then_some(path),
            ..ApiError::new(axum::http::StatusCode::BAD_REQUEST, ErrorCode::BadRequest, e.inner().to_string())
        }
    })
}

/// A `400` that names the faulty field.
pub(crate) fn invalid(field: &str, message: &str) -> ApiError {
    ApiError {
        field: Some(field.into()),
        ..ApiError::new(axum::http::StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }
}

/// The audit row of a change `session` made, as every admin and editing route writes it.
pub(crate) fn audit(state: &AppState, session: &crate::auth::Session, action: &'static str, detail: String) {
    state.auditor.record(crate::store::audit::AuditEntry {
        tenant: Some(session.user.tenant.to_string()),
        actor: Some(session.user.email.clone()),
        action,
        outcome: crate::store::audit::Outcome::Ok,
        detail: Some(detail),
    });
}
