//! Stored dashboards: anyone of the tenant lists and opens them and saves their own widget modes
//! and preferences; admins create dashboards, add, remove and reorder widgets, and choose the
//! notifications a collection widget raises.

use super::{AdminSession, audit, invalid, json_body};
use crate::extract::ApiPath;
use crate::http_error::ApiError;
use crate::{
    AppState,
    auth::Session,
    broker::cluster::Notice,
    permissions,
    state::RECOVERY_REPORTS_PER_MIN,
    store::{StoreError, dashboards::EditError},
    topic_name::{TenantId, TopicName},
};
use axum::{Json, body::Bytes, extract::State, http::StatusCode};
use protocol::ErrorBody;
use protocol::ErrorCode;
use protocol::collection_notify::CollectionNotify;
use protocol::dashboard::MAX_WIDGETS;
use protocol::dashboard::WidgetKind;
use protocol::dashboard::{
    DashboardSummary, DashboardView, ModeChoice, NewDashboard, NewWidget, Preferences, RecoveryReport, WidgetDef,
    WidgetOrder, check_thresholds, clean_title,
};
use protocol::thresholds::{AlertRecord, Threshold};
use protocol::topics::NOTIFICATIONS_TOPIC;

/// The tenant's dashboards (a display's own only).
#[utoipa::path(
    get, path = "/api/dashboards", tag = "dashboards",
    responses((status = 200, description = "The tenant's dashboards (a display's own only)", body = Vec<DashboardSummary>))
)]
pub async fn list(State(state): State<AppState>, session: Session) -> Result<Json<Vec<DashboardSummary>>, ApiError> {
    let mut all = state.store.dashboards(&session.user.tenant).await.map_err(ApiError::internal)?;
    all.retain(|dashboard| session.may_see_dashboard(dashboard.id));
    Ok(Json(all))
}

#[utoipa::path(
    post, path = "/api/dashboards", tag = "dashboards", request_body = NewDashboard,
    responses((status = 201, description = "Created (audited)", body = DashboardSummary))
)]
pub async fn create(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    body: Bytes,
) -> Result<(StatusCode, Json<DashboardSummary>), ApiError> {
    let new: NewDashboard = json_body(&body)?;
    let title = clean_title(&new.title).map_err(|e| invalid("title", e))?;
    let created = state.store.create_dashboard(&session.user.tenant, &title).await.map_err(ApiError::internal)?;
    announce(&state, &session, created.id).await;
    audit(&state, &session, "dashboard_create", format!("{} {title:?}", created.id));
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get, path = "/api/dashboards/{id}", tag = "dashboards", params(("id" = i64, Path, description = "The dashboard")),
    responses((status = 200, description = "The dashboard, its widgets and this user's modes", body = DashboardView), (status = 404, description = "No such dashboard for this tenant", body = ErrorBody))
)]
pub async fn open(
    State(state): State<AppState>,
    session: Session,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<DashboardView>, ApiError> {
    let view = match session.may_see_dashboard(id) {
        true => state.store.dashboard(&session.user.tenant, id, session.user.id).await.map_err(ApiError::internal)?,
        false => None,
    };
    let mut view = view.ok_or_else(not_found)?;
    view.can_edit = session.user.role == crate::store::accounts::Role::Admin;
    Ok(Json(view))
}

#[utoipa::path(
    post, path = "/api/dashboards/{id}/widgets", tag = "dashboards", params(("id" = i64, Path, description = "The dashboard")), request_body = NewWidget,
    responses(
        (status = 201, description = "Appended (audited)", body = WidgetDef),
        (status = 404, description = "No such dashboard", body = ErrorBody),
        (status = 422, description = "The dashboard holds as many widgets as it may (24); or its notifications would tell a collection to someone the topic rules keep it from", body = ErrorBody),
    )
)]
pub async fn add_widget(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    ApiPath(dashboard): ApiPath<i64>,
    body: Bytes,
) -> Result<(StatusCode, Json<WidgetDef>), ApiError> {
    let mut new: NewWidget = json_body(&body)?;
    new.title = clean_title(&new.title).map_err(|e| invalid("title", e))?;
    let topic = TopicName::parse(&new.topic).map_err(|e| invalid("topic", &e.to_string()))?;
    new.topic = topic.to_string();
    if let Some(notify) = &new.notify {
        check_notify(&state, &session.user.tenant, new.kind, &topic, notify).await?;
    }
    check_thresholds(new.kind, &new.thresholds).map_err(|e| invalid("thresholds", &e))?;
    let added = edited(state.store.add_widget(&session.user.tenant, dashboard, &new).await)?;
    announce(&state, &session, dashboard).await;
    if new.notify.is_some() || !new.thresholds.is_empty() {
        notifiers_changed(&state, &session.user.tenant).await;
    }
    let detail = format!("{} on dashboard {dashboard}: {} {:?} on {}", added.id, new.kind.slug(), new.title, new.topic);
    audit(&state, &session, "widget_add", detail);
    Ok((StatusCode::CREATED, Json(added)))
}

#[utoipa::path(
    delete, path = "/api/dashboards/{id}/widgets/{widget}", tag = "dashboards",
    params(("id" = i64, Path, description = "The dashboard"), ("widget" = i64, Path, description = "The widget")),
    responses((status = 204, description = "Removed (audited)"), (status = 404, description = "No such dashboard or widget", body = ErrorBody))
)]
pub async fn remove_widget(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    ApiPath((dashboard, widget)): ApiPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    edited(state.store.remove_widget(&session.user.tenant, dashboard, widget).await)?;
    announce(&state, &session, dashboard).await;
    notifiers_changed(&state, &session.user.tenant).await;
    audit(&state, &session, "widget_remove", format!("{widget} from dashboard {dashboard}"));
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put, path = "/api/dashboards/{id}/order", tag = "dashboards", params(("id" = i64, Path, description = "The dashboard")), request_body = WidgetOrder,
    responses((status = 204, description = "Every widget in this order (audited)"), (status = 404, description = "No such dashboard", body = ErrorBody))
)]
pub async fn reorder(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    ApiPath(dashboard): ApiPath<i64>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let order: WidgetOrder = json_body(&body)?;
    if order.widget_ids.len() > MAX_WIDGETS {
        return Err(invalid("widgetIds", "more ids than a dashboard holds widgets"));
    }
    edited(state.store.reorder_widgets(&session.user.tenant, dashboard, &order.widget_ids).await)?;
    announce(&state, &session, dashboard).await;
    audit(&state, &session, "widget_reorder", format!("dashboard {dashboard}: {:?}", order.widget_ids));
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the collection notifications a widget raises, or ends them (a `null` body). Answers the
/// widget as it now is.
#[utoipa::path(
    put, path = "/api/dashboards/{id}/widgets/{widget}/notify", tag = "dashboards",
    params(("id" = i64, Path, description = "The dashboard"), ("widget" = i64, Path, description = "The widget")),
    request_body(content = Option<CollectionNotify>, description = "The notifications the widget's collection raises, or `null` for none"),
    responses(
        (status = 200, description = "The widget as saved (audited)", body = WidgetDef),
        (status = 404, description = "No such dashboard or widget", body = ErrorBody),
        (status = 422, description = "The topic rules keep the collection from someone who reads the notifications", body = ErrorBody),
    )
)]
pub async fn set_notify(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    ApiPath((dashboard, widget)): ApiPath<(i64, i64)>,
    body: Bytes,
) -> Result<Json<WidgetDef>, ApiError> {
    let notify: Option<CollectionNotify> = json_body(&body)?;
    let tenant = &session.user.tenant;
    let view = state.store.dashboard(tenant, dashboard, session.user.id).await.map_err(ApiError::internal)?;
    let mut def = view.and_then(|v| v.widgets.into_iter().find(|w| w.id == widget)).ok_or_else(not_found)?;
    if let Some(notify) = &notify {
        let topic = TopicName::parse(&def.topic).map_err(|e| invalid("topic", &e.to_string()))?;
        check_notify(&state, tenant, def.kind, &topic, notify).await?;
    }
    edited(state.store.set_widget_notify(tenant, dashboard, widget, notify.as_ref()).await)?;
    notifiers_changed(&state, tenant).await;
    announce(&state, &session, dashboard).await;
    let detail = match &notify {
        Some(n) => {
            let ops: Vec<&str> = n.ops.iter().map(|op| op.as_str()).collect();
            format!("{widget} on dashboard {dashboard}: {} at {} as {:?}", ops.join("+"), n.level.as_str(), n.title)
        }
        None => format!("{widget} on dashboard {dashboard}: off"),
    };
    audit(&state, &session, "widget_notify", detail);
    def.notify = notify;
    Ok(Json(def))
}

/// Replaces a widget's thresholds (`[]` removes them). Answers the widget as it now is.
#[utoipa::path(
    put, path = "/api/dashboards/{id}/widgets/{widget}/thresholds", tag = "dashboards",
    params(("id" = i64, Path, description = "The dashboard"), ("widget" = i64, Path, description = "The widget")),
    request_body(content = Vec<Threshold>, description = "The widget's bounds; `[]` removes them"),
    responses((status = 200, description = "The widget as saved (audited)", body = WidgetDef), (status = 404, description = "No such dashboard or widget", body = ErrorBody))
)]
pub async fn set_thresholds(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    ApiPath((dashboard, widget)): ApiPath<(i64, i64)>,
    body: Bytes,
) -> Result<Json<WidgetDef>, ApiError> {
    let thresholds: Vec<Threshold> = json_body(&body)?;
    let tenant = &session.user.tenant;
    let view = state.store.dashboard(tenant, dashboard, session.user.id).await.map_err(ApiError::internal)?;
    let mut def = view.and_then(|v| v.widgets.into_iter().find(|w| w.id == widget)).ok_or_else(not_found)?;
    check_thresholds(def.kind, &thresholds).map_err(|e| invalid("thresholds", &e))?;
    edited(state.store.set_widget_thresholds(tenant, dashboard, widget, &thresholds).await)?;
    notifiers_changed(&state, tenant).await;
    announce(&state, &session, dashboard).await;
    let keys: Vec<String> =
        thresholds.iter().map(|t| if t.key.is_empty() { "series".into() } else { t.key.clone() }).collect();
    audit(&state, &session, "widget_thresholds", format!("{widget} on dashboard {dashboard}: [{}]", keys.join(", ")));
    def.thresholds = thresholds;
    Ok(Json(def))
}

/// A widget's alert history, newest first (the latest `ALERTS_KEPT`): for any user of the
/// tenant who may read the widget's topic (the topic rules apply as on the live transports), without
/// the alerts of keys hidden from them.
#[utoipa::path(
    get, path = "/api/dashboards/{id}/widgets/{widget}/alerts", tag = "dashboards",
    params(("id" = i64, Path, description = "The dashboard"), ("widget" = i64, Path, description = "The widget")),
    responses(
        (status = 200, description = "The widget's alert history, newest first, the latest 200; keys hidden from the user left out", body = Vec<AlertRecord>),
        (status = 403, description = "The topic rules keep the widget's topic from this user", body = ErrorBody),
        (status = 404, description = "No such dashboard or widget", body = ErrorBody),
    )
)]
pub async fn alerts(
    State(state): State<AppState>,
    session: Session,
    ApiPath((dashboard, widget)): ApiPath<(i64, i64)>,
) -> Result<Json<Vec<AlertRecord>>, ApiError> {
    let tenant = &session.user.tenant;
    if !session.may_see_dashboard(dashboard) {
        return Err(not_found());
    }
    let view = state.store.dashboard(tenant, dashboard, session.user.id).await.map_err(ApiError::internal)?;
    let def = view.and_then(|v| v.widgets.into_iter().find(|w| w.id == widget)).ok_or_else(not_found)?;
    let topic = TopicName::parse(&def.topic).map_err(ApiError::internal)?;
    let rules = state.permissions.of(tenant).await.map_err(ApiError::internal)?;
    let hidden = permissions::check_session(&rules, &session, &topic).map_err(|forbidden| {
        crate::telemetry::denied("topic_rules");
        ApiError::forbidden(forbidden.to_string())
    })?;
    let mut history = state.store.alert_history(widget).await.map_err(ApiError::internal)?;
    if let Some(hidden) = hidden {
        history.retain(|alert| !hidden.fields().contains(&alert.key));
    }
    Ok(Json(history))
}

/// Whether a widget of `kind` on `topic` may raise `notify`: a collection widget, a template that
/// parses, and topic rules that let everyone who reads the notifications read the collection
/// (the same check that withholds them should the rules change later).
async fn check_notify(
    state: &AppState,
    tenant: &TenantId,
    kind: WidgetKind,
    topic: &TopicName,
    notify: &CollectionNotify,
) -> Result<(), ApiError> {
    if kind.topic_kind() != "collection" {
        return Err(invalid("notify", "only a widget that shows a collection raises collection notifications"));
    }
    notify.validate().map_err(|e| invalid("notify", &e.to_string()))?;
    let rules = state.permissions.of(tenant).await.map_err(ApiError::internal)?;
    let target = TopicName::parse(NOTIFICATIONS_TOPIC).expect("the notifications topic is a topic name");
    permissions::retold(&rules, topic, &target).map_err(|e| {
        let advice = format!("{e}: let that role read the topic, or keep {NOTIFICATIONS_TOPIC} from it");
        ApiError {
            field: Some("notify".into()),
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Forbidden, advice)
        }
    })?;
    Ok(())
}

/// This node and every other read the tenant's notifying widgets (collection notifications,
/// thresholds) again.
async fn notifiers_changed(state: &AppState, tenant: &TenantId) {
    state.notifiers.forget(Some(tenant));
    state.cluster.announce(Notice::Notifiers(tenant.clone())).await;
}

#[utoipa::path(
    put, path = "/api/me/widget-modes/{widget}", tag = "me", params(("widget" = i64, Path, description = "The widget")), request_body = ModeChoice,
    responses((status = 204, description = "Saved for this user"), (status = 404, description = "No such widget", body = ErrorBody))
)]
pub async fn set_mode(
    State(state): State<AppState>,
    session: Session,
    ApiPath(widget): ApiPath<i64>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let choice: ModeChoice = json_body(&body)?;
    edited(state.store.set_widget_mode(&session.user.tenant, session.user.id, widget, choice.mode).await)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A page's report of how long it was without data before its connection came back: one sample of
/// `livedash_connection_recovery_seconds`. Bounded per user, and clamped to a day, so a page cannot
/// skew the histogram more than by one report.
#[utoipa::path(
    post, path = "/api/me/recovery", tag = "me", request_body = RecoveryReport,
    responses((status = 204, description = "Counted in `livedash_connection_recovery_seconds`"),
        (status = 429, description = "More than 12 reports a minute from this user", body = ErrorBody))
)]
pub async fn report_recovery(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let report: RecoveryReport = json_body(&body)?;
    if i64::try_from(report.downtime_ms).is_err() {
        return Err(invalid("downtimeMs", "must be an int64"));
    }
    if state.limiters.recovery_reports_by_user.check(&session.user.id, std::time::Instant::now()).is_err() {
        crate::telemetry::denied("recovery_reports");
        let message = format!("at most {RECOVERY_REPORTS_PER_MIN} recovery reports a minute");
        return Err(ApiError::limit("recovery_reports", RECOVERY_REPORTS_PER_MIN as u64, message));
    }
    let seconds = report.downtime_ms.min(24 * 3600 * 1000) as f64 / 1000.0;
    metrics::histogram!(crate::telemetry::RECOVERY).record(seconds);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/me/preferences", tag = "me",
    responses((status = 200, description = "This user's preferences", body = Preferences))
)]
pub async fn preferences(State(state): State<AppState>, session: Session) -> Result<Json<Preferences>, ApiError> {
    state.store.preferences(session.user.id).await.map(Json).map_err(ApiError::internal)
}

#[utoipa::path(
    put, path = "/api/me/preferences", tag = "me", request_body = Preferences,
    responses((status = 200, description = "Saved", body = Preferences))
)]
pub async fn set_preferences(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<Json<Preferences>, ApiError> {
    let mut preferences: Preferences = json_body(&body)?;
    preferences.toast_levels.sort_by_key(|l| *l as u8);
    preferences.toast_levels.dedup();
    state.store.set_preferences(session.user.id, &preferences).await.map_err(ApiError::internal)?;
    Ok(Json(preferences))
}

/// Tells every open page and stream of the tenant, on every node, what the dashboard now is. Read
/// back from the store, so the announcement is what a page loading it now would get.
async fn announce(state: &AppState, session: &Session, dashboard: i64) {
    match state.store.dashboard(&session.user.tenant, dashboard, session.user.id).await {
        Ok(Some(view)) => state.edits.edited(&session.user.tenant, dashboard, view.outline()).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, dashboard, "could not read an edited dashboard back"),
    }
}

fn edited<T>(result: Result<Result<T, EditError>, StoreError>) -> Result<T, ApiError> {
    match result.map_err(ApiError::internal)? {
        Ok(value) => Ok(value),
        Err(EditError::NotFound) => Err(not_found()),
        Err(e @ EditError::TooManyWidgets) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::LimitExceeded, e.to_string()))
        }
        Err(e @ EditError::BadOrder) => Err(invalid("widgetIds", &e.to_string())),
    }
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such dashboard or widget")
}
