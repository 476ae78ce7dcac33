//! The JSON API under `/api`: sign-in, publishing, dashboards, preferences, tenant administration and
//! wall displays.

mod admin;
mod auth_routes;
mod dashboards;
pub(crate) mod displays;
pub mod docs_page;
mod openapi;
mod publish;
mod session;

pub use session::AdminSession;

use crate::AppState;
use crate::http_error::ApiError;
use axum::{Router, body::Bytes, http::header::CONTENT_TYPE, routing::get};
use protocol::ErrorCode;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Every route of the HTTP API, the live transports' and the health checks', each registered from
/// its `#[utoipa::path]` description, and `GET /api/openapi.json`, the document they make.
pub fn routes() -> Router<AppState> {
    let (router, api) = described().split_for_parts();
    let document: Bytes = serde_json::to_vec(&openapi::document(api)).expect("the API document serialises").into();
    router.route("/api/openapi.json", get(move || std::future::ready(([(CONTENT_TYPE, "application/json")], document))))
}

/// The OpenAPI document of [`routes`] (for tests and tools that want it without a server).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::document(described().split_for_parts().1)
}

#[allow(deprecated)] // The deprecated live-dashboards routes still answer.
fn described() -> OpenApiRouter<AppState> {
    use crate::{transport, vitals};
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(auth_routes::login))
        .routes(routes!(auth_routes::logout))
        .routes(routes!(auth_routes::me))
        .routes(routes!(auth_routes::session_status))
        .routes(routes!(publish::publish))
        .routes(routes!(admin::live_mode, admin::set_live_mode))
        .routes(routes!(admin::topic_rules, admin::set_topic_rules))
        .routes(routes!(admin::live_dashboards, admin::set_live_dashboards))
        .routes(routes!(admin::audit_log))
        .routes(routes!(displays::list, displays::create))
        .routes(routes!(displays::edit, displays::revoke))
        .routes(routes!(displays::open_session))
        .routes(routes!(displays::me))
        .routes(routes!(dashboards::list, dashboards::create))
        .routes(routes!(dashboards::open))
        .routes(routes!(dashboards::add_widget))
        .routes(routes!(dashboards::remove_widget))
        .routes(routes!(dashboards::set_notify))
        .routes(routes!(dashboards::set_thresholds))
        .routes(routes!(dashboards::alerts))
        .routes(routes!(dashboards::reorder))
        .routes(routes!(dashboards::set_mode))
        .routes(routes!(dashboards::preferences, dashboards::set_preferences))
        .routes(routes!(dashboards::report_recovery))
        .routes(routes!(transport::ws::upgrade::upgrade))
        .routes(routes!(transport::sse::dashboard))
        .routes(routes!(transport::job_stream::job))
        .routes(routes!(transport::poll::updates))
        .routes(routes!(vitals::healthz))
        .routes(routes!(vitals::readyz))
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
