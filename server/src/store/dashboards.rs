//! Dashboards, their widgets, and each user's widget modes and preferences.
//!
//! Every query names the tenant: a dashboard or widget id from another tenant behaves exactly like
//! one that does not exist, so ids leak nothing.

use super::{Dialect, Store, StoreError, lock_row, on_backend};
use crate::clock::now_secs;
use crate::topic_name::TenantId;
use protocol::collection_notify::CollectionNotify;
use protocol::dashboard::{
    DashboardSummary, DashboardView, MAX_WIDGETS, NewWidget, Preferences, WidgetDef, WidgetKind, WidgetMode,
};
use protocol::thresholds::Threshold;
use std::collections::BTreeMap;

/// Why a change to a dashboard was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("no such dashboard or widget")]
    NotFound,
    #[error("a dashboard holds at most {MAX_WIDGETS} widgets")]
    TooManyWidgets,
    #[error("the new order must list every widget of the dashboard exactly once")]
    BadOrder,
}

/// id, title, kind, topic, default mode, notify (JSON), thresholds (JSON).
type WidgetRow = (i64, String, String, String, String, Option<String>, Option<String>);
/// A notifying widget with its dashboard's title first.
type NotifyingRow = (String, i64, String, String, String, String, Option<String>, Option<String>);

/// The columns of a [`WidgetRow`], as `w` names the widgets table.
const WIDGET_COLUMNS: &str = "w.id, w.title, w.kind, w.topic, w.default_mode, w.notify, w.thresholds";
/// A user's mode for one widget: (widget id, mode slug).
type ModeRow = (i64, String);
/// A dashboard's title, widgets and the user's modes, as read.
type DashboardRows = (String, Vec<WidgetRow>, Vec<ModeRow>);

fn widget_from((id, title, kind, topic, mode, notify, thresholds): WidgetRow) -> Result<WidgetDef, StoreError> {
    let kind = WidgetKind::parse(&kind).ok_or_else(|| StoreError::Invalid(format!("widget kind {kind:?}")))?;
    let default_mode = WidgetMode::parse(&mode).ok_or_else(|| StoreError::Invalid(format!("widget mode {mode:?}")))?;
    let json = |what: &str, e: serde_json::Error| StoreError::Invalid(format!("widget {what}: {e}"));
    let notify = notify.map(|text| serde_json::from_str(&text).map_err(|e| json("notify", e))).transpose()?;
    let thresholds =
        thresholds.map(|text| serde_json::from_str(&text).map_err(|e| json("thresholds", e))).transpose()?;
    Ok(WidgetDef { id, title, kind, topic, default_mode, notify, thresholds: thresholds.unwrap_or_default() })
}

fn notify_json(notify: Option<&CollectionNotify>) -> Option<String> {
    notify.map(|n| serde_json::to_string(n).expect("notify settings always serialise"))
}

/// A widget's settings kept as JSON, one column each: names from here only, never from a request.
#[derive(Debug, Clone, Copy)]
enum WidgetSetting {
    Notify,
    Thresholds,
}

impl WidgetSetting {
    fn column(self) -> &'static str {
        match self {
            WidgetSetting::Notify => "notify",
            WidgetSetting::Thresholds => "thresholds",
        }
    }
}

/// A change that names one widget of the tenant: it touched that row, or there is no such widget
/// (another tenant's id included).
fn found(rows_affected: u64) -> Result<(), EditError> {
    if rows_affected == 1 { Ok(()) } else { Err(EditError::NotFound) }
}

/// NULL for none, so a widget without thresholds reads as before they existed.
fn thresholds_json(thresholds: &[Threshold]) -> Option<String> {
    (!thresholds.is_empty()).then(|| serde_json::to_string(thresholds).expect("thresholds always serialise"))
}

/// Locks the tenant's dashboard `$id` for the rest of the transaction `$tx` on `$pool`; `false`
/// when the tenant has no such dashboard.
macro_rules! lock_dashboard {
    ($pool:ident, $tx:ident, $tenant:expr, $id:expr) => {{
        let sql = format!("SELECT id FROM dashboards WHERE id = $1 AND tenant_id = $2{}", lock_row($pool));
        let owned: Option<(i64,)> =
            sqlx::query_as(&sql).bind($id).bind($tenant.as_str()).fetch_optional(&mut *$tx).await?;
        owned.is_some()
    }};
}

impl Store {
    /// The tenant's dashboards, oldest first.
    pub async fn dashboards(&self, tenant: &TenantId) -> Result<Vec<DashboardSummary>, StoreError> {
        let rows: Vec<(i64, String)> = on_backend!(self, pool => {
            sqlx::query_as("SELECT id, title FROM dashboards WHERE tenant_id = $1 ORDER BY id")
                .bind(tenant.as_str())
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(id, title)| DashboardSummary { id, title }).collect())
    }

    pub async fn create_dashboard(&self, tenant: &TenantId, title: &str) -> Result<DashboardSummary, StoreError> {
        let (id,): (i64,) = on_backend!(self, pool => {
            sqlx::query_as("INSERT INTO dashboards (tenant_id, title, created_at) VALUES ($1, $2, $3) RETURNING id")
                .bind(tenant.as_str())
                .bind(title)
                .bind(now_secs())
                .fetch_one(pool)
                .await?
        });
        Ok(DashboardSummary { id, title: title.to_owned() })
    }

    /// One dashboard as `user_id` sees it (their own widget modes included); `can_edit` is left
    /// false for the caller to decide.
    pub async fn dashboard(
        &self,
        tenant: &TenantId,
        id: i64,
        user_id: i64,
    ) -> Result<Option<DashboardView>, StoreError> {
        let found: Option<DashboardRows> = on_backend!(self, pool => {
            let title: Option<(String,)> = sqlx::query_as("SELECT title FROM dashboards WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant.as_str())
                .fetch_optional(pool)
                .await?;
            match title {
                None => None,
                Some((title,)) => {
                    let sql = format!(
                        "SELECT {WIDGET_COLUMNS} FROM widgets w WHERE w.dashboard_id = $1 ORDER BY w.position, w.id"
                    );
                    let widgets = sqlx::query_as(&sql)
                    .bind(id)
                    .fetch_all(pool)
                    .await?;
                    let modes = sqlx::query_as(
                        "SELECT m.widget_id, m.mode FROM widget_modes m JOIN widgets w ON w.id = m.widget_id
                         WHERE m.user_id = $1 AND w.dashboard_id = $2",
                    )
                    .bind(user_id)
                    .bind(id)
                    .fetch_all(pool)
                    .await?;
                    Some((title, widgets, modes))
                }
            }
        });
        let Some((title, rows, modes)) = found else { return Ok(None) };
        let widgets = rows.into_iter().map(widget_from).collect::<Result<Vec<_>, _>>()?;
        let modes: BTreeMap<i64, WidgetMode> =
            modes.into_iter().filter_map(|(widget, mode)| Some((widget, WidgetMode::parse(&mode)?))).collect();
        Ok(Some(DashboardView { id, title, widgets, can_edit: false, modes }))
    }

    /// Appends a widget to the end of the dashboard.
    pub async fn add_widget(
        &self,
        tenant: &TenantId,
        dashboard: i64,
        widget: &NewWidget,
    ) -> Result<Result<WidgetDef, EditError>, StoreError> {
        let added: Result<i64, EditError> = on_backend!(self, pool => {
            // Counted and appended under the dashboard's lock, so two editors adding at once can
            // neither pass the limit together nor take the same position.
            let mut tx = Dialect::begin_write(pool).await?;
            if !lock_dashboard!(pool, tx, tenant, dashboard) {
                Err(EditError::NotFound)
            } else {
                let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM widgets WHERE dashboard_id = $1")
                    .bind(dashboard)
                    .fetch_one(&mut *tx)
                    .await?;
                if count >= MAX_WIDGETS as i64 {
                    Err(EditError::TooManyWidgets)
                } else {
                    let (id,): (i64,) = sqlx::query_as(
                        "INSERT INTO widgets (dashboard_id, position, title, kind, topic, default_mode, notify, thresholds)
                         VALUES ($1, COALESCE((SELECT MAX(position) + 1 FROM widgets WHERE dashboard_id = $1), 0),
                                 $2, $3, $4, $5, $6, $7)
                         RETURNING id",
                    )
                    .bind(dashboard)
                    .bind(&widget.title)
                    .bind(widget.kind.slug())
                    .bind(&widget.topic)
                    .bind(widget.default_mode.slug())
                    .bind(notify_json(widget.notify.as_ref()))
                    .bind(thresholds_json(&widget.thresholds))
                    .fetch_one(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(id)
                }
            }
        });
        Ok(added.map(|id| WidgetDef {
            id,
            title: widget.title.clone(),
            kind: widget.kind,
            topic: widget.topic.clone(),
            default_mode: widget.default_mode,
            notify: widget.notify.clone(),
            thresholds: widget.thresholds.clone(),
        }))
    }

    pub async fn remove_widget(
        &self,
        tenant: &TenantId,
        dashboard: i64,
        widget: i64,
    ) -> Result<Result<(), EditError>, StoreError> {
        let removed = on_backend!(self, pool => {
            sqlx::query(
                "DELETE FROM widgets WHERE id = $1 AND dashboard_id =
                   (SELECT id FROM dashboards WHERE id = $2 AND tenant_id = $3)",
            )
            .bind(widget)
            .bind(dashboard)
            .bind(tenant.as_str())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(found(removed))
    }

    /// Puts the widgets in the order of `ids`, which must name each of them once.
    pub async fn reorder_widgets(
        &self,
        tenant: &TenantId,
        dashboard: i64,
        ids: &[i64],
    ) -> Result<Result<(), EditError>, StoreError> {
        let mut wanted = ids.to_vec();
        wanted.sort_unstable();
        let reordered = on_backend!(self, pool => {
            let mut tx = Dialect::begin_write(pool).await?;
            if !lock_dashboard!(pool, tx, tenant, dashboard) {
                Err(EditError::NotFound)
            } else {
                let current: Vec<(i64,)> = sqlx::query_as("SELECT id FROM widgets WHERE dashboard_id = $1 ORDER BY id")
                    .bind(dashboard)
                    .fetch_all(&mut *tx)
                    .await?;
                if current.into_iter().map(|(id,)| id).ne(wanted.iter().copied()) {
                    Err(EditError::BadOrder)
                } else {
                    for (position, id) in ids.iter().enumerate() {
                        sqlx::query("UPDATE widgets SET position = $1 WHERE id = $2")
                            .bind(position as i64)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }
            }
        });
        Ok(reordered)
    }

    /// Sets (or with `None` ends) the notifications a widget of the tenant's dashboard raises.
    pub async fn set_widget_notify(
        &self,
        tenant: &TenantId,
        dashboard: i64,
        widget: i64,
        notify: Option<&CollectionNotify>,
    ) -> Result<Result<(), EditError>, StoreError> {
        self.set_widget_setting(tenant, dashboard, widget, WidgetSetting::Notify, notify_json(notify)).await
    }

    /// Replaces a widget's thresholds (none: an empty list).
    pub async fn set_widget_thresholds(
        &self,
        tenant: &TenantId,
        dashboard: i64,
        widget: i64,
        thresholds: &[Threshold],
    ) -> Result<Result<(), EditError>, StoreError> {
        let json = thresholds_json(thresholds);
        self.set_widget_setting(tenant, dashboard, widget, WidgetSetting::Thresholds, json).await
    }

    /// Writes one settings column (JSON, or NULL) of a widget of the tenant's dashboard.
    async fn set_widget_setting(
        &self,
        tenant: &TenantId,
        dashboard: i64,
        widget: i64,
        setting: WidgetSetting,
        json: Option<String>,
    ) -> Result<Result<(), EditError>, StoreError> {
        let sql = format!(
            "UPDATE widgets SET {} = $1 WHERE id = $2 AND dashboard_id =
               (SELECT id FROM dashboards WHERE id = $3 AND tenant_id = $4)",
            setting.column()
        );
        let saved = on_backend!(self, pool => {
            sqlx::query(&sql)
                .bind(&json)
                .bind(widget)
                .bind(dashboard)
                .bind(tenant.as_str())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(found(saved))
    }

    /// Every widget of the tenant that raises collection notifications or has thresholds, with the
    /// title of its dashboard, in no particular order.
    pub async fn notifying_widgets(&self, tenant: &TenantId) -> Result<Vec<(String, WidgetDef)>, StoreError> {
        let sql = format!(
            "SELECT d.title, {WIDGET_COLUMNS} FROM widgets w JOIN dashboards d ON d.id = w.dashboard_id
             WHERE d.tenant_id = $1 AND (w.notify IS NOT NULL OR w.thresholds IS NOT NULL)"
        );
        let rows: Vec<NotifyingRow> = on_backend!(self, pool => {
            sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(dashboard, id, title, kind, topic, mode, notify, thresholds)| {
                Ok((dashboard, widget_from((id, title, kind, topic, mode, notify, thresholds))?))
            })
            .collect()
    }

    /// Saves `user_id`'s mode for a widget of their tenant.
    pub async fn set_widget_mode(
        &self,
        tenant: &TenantId,
        user_id: i64,
        widget: i64,
        mode: WidgetMode,
    ) -> Result<Result<(), EditError>, StoreError> {
        let saved = on_backend!(self, pool => {
            sqlx::query(
                "INSERT INTO widget_modes (user_id, widget_id, mode)
                 SELECT $1, w.id, $2 FROM widgets w JOIN dashboards d ON d.id = w.dashboard_id
                 WHERE w.id = $3 AND d.tenant_id = $4
                 ON CONFLICT (user_id, widget_id) DO UPDATE SET mode = excluded.mode",
            )
            .bind(user_id)
            .bind(mode.slug())
            .bind(widget)
            .bind(tenant.as_str())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(found(saved))
    }

    /// The user's preferences, or the defaults when they never saved any.
    pub async fn preferences(&self, user_id: i64) -> Result<Preferences, StoreError> {
        let row: Option<(String,)> = on_backend!(self, pool => {
            sqlx::query_as("SELECT value FROM preferences WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.and_then(|(json,)| serde_json::from_str(&json).ok()).unwrap_or_default())
    }

    pub async fn set_preferences(&self, user_id: i64, preferences: &Preferences) -> Result<(), StoreError> {
        let json = serde_json::to_string(preferences).map_err(|e| StoreError::Invalid(e.to_string()))?;
        on_backend!(self, pool => {
            sqlx::query(
                "INSERT INTO preferences (user_id, value) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET value = excluded.value",
            )
            .bind(user_id)
            .bind(&json)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        store::{Store, accounts::Role, dashboards::EditError, testing::on_each_backend},
        topic_name::TenantId,
    };
    use protocol::Level;
    use protocol::dashboard::{NewWidget, Preferences, WidgetKind, WidgetMode};

    on_each_backend!(
        widgets_are_added_reordered_removed_and_scoped_to_their_tenant,
        a_dashboard_holds_a_bounded_number_of_widgets,
        editors_adding_at_once_stay_within_the_limit,
        preferences_default_until_saved,
        notifications_are_set_per_widget_and_listed_per_tenant,
    );

    fn widget(title: &str) -> NewWidget {
        NewWidget {
            title: title.into(),
            kind: WidgetKind::LineChart,
            topic: "a/b".into(),
            default_mode: WidgetMode::Live,
            notify: None,
            thresholds: vec![],
        }
    }

    async fn widgets_are_added_reordered_removed_and_scoped_to_their_tenant(store: Store) {
        let (acme, globex) = (TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap());
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        store.ensure_tenant(&globex, "Globex").await.unwrap();
        let user = store.upsert_user("u@acme.test", "pw-long-enough", &acme, Role::Viewer).await.unwrap();
        let d = store.create_dashboard(&acme, "Ops").await.unwrap();
        let a = store.add_widget(&acme, d.id, &widget("A")).await.unwrap().unwrap();
        let b = store.add_widget(&acme, d.id, &widget("B")).await.unwrap().unwrap();
        assert_eq!(store.add_widget(&globex, d.id, &widget("X")).await.unwrap(), Err(EditError::NotFound));
        assert!(store.dashboard(&globex, d.id, user).await.unwrap().is_none(), "another tenant's id is unknown");

        assert_eq!(store.reorder_widgets(&acme, d.id, &[b.id]).await.unwrap(), Err(EditError::BadOrder));
        store.reorder_widgets(&acme, d.id, &[b.id, a.id]).await.unwrap().unwrap();
        store.set_widget_mode(&acme, user, a.id, WidgetMode::Every30s).await.unwrap().unwrap();
        assert_eq!(
            store.set_widget_mode(&globex, user, a.id, WidgetMode::Manual).await.unwrap(),
            Err(EditError::NotFound)
        );
        let view = store.dashboard(&acme, d.id, user).await.unwrap().unwrap();
        assert_eq!(view.widgets.iter().map(|w| w.title.as_str()).collect::<Vec<_>>(), ["B", "A"]);
        assert_eq!(view.mode_of(&view.widgets[1]), WidgetMode::Every30s);

        assert_eq!(store.remove_widget(&globex, d.id, b.id).await.unwrap(), Err(EditError::NotFound));
        store.remove_widget(&acme, d.id, a.id).await.unwrap().unwrap();
        let view = store.dashboard(&acme, d.id, user).await.unwrap().unwrap();
        assert_eq!(view.widgets.len(), 1);
        assert!(view.modes.is_empty(), "the removed widget's mode went with it");
        assert_eq!(store.dashboards(&acme).await.unwrap(), vec![d]);
        assert!(store.dashboards(&globex).await.unwrap().is_empty());
    }

    async fn a_dashboard_holds_a_bounded_number_of_widgets(store: Store) {
        let acme = TenantId::parse("acme").unwrap();
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        let d = store.create_dashboard(&acme, "Ops").await.unwrap();
        for i in 0..protocol::dashboard::MAX_WIDGETS {
            store.add_widget(&acme, d.id, &widget(&i.to_string())).await.unwrap().unwrap();
        }
        assert_eq!(
            store.add_widget(&acme, d.id, &widget("one too many")).await.unwrap(),
            Err(EditError::TooManyWidgets)
        );
    }

    async fn editors_adding_at_once_stay_within_the_limit(store: Store) {
        let acme = TenantId::parse("acme").unwrap();
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        let d = store.create_dashboard(&acme, "Ops").await.unwrap();
        let adds = (0..protocol::dashboard::MAX_WIDGETS + 8).map(|i| {
            let (store, acme) = (store.clone(), acme.clone());
            tokio::spawn(async move { store.add_widget(&acme, d.id, &widget(&i.to_string())).await.unwrap() })
        });
        let results: Vec<_> = futures_util::future::join_all(adds).await.into_iter().map(Result::unwrap).collect();
        let added = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(added, protocol::dashboard::MAX_WIDGETS, "{results:?}");
        assert!(results.iter().all(|r| r.is_ok() || *r == Err(EditError::TooManyWidgets)));
        let view = store.dashboard(&acme, d.id, 0).await.unwrap().unwrap();
        assert_eq!(view.widgets.len(), protocol::dashboard::MAX_WIDGETS);
    }

    async fn notifications_are_set_per_widget_and_listed_per_tenant(store: Store) {
        use protocol::collection_notify::{CollectionNotify, DocumentOp};
        let (acme, globex) = (TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap());
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        store.ensure_tenant(&globex, "Globex").await.unwrap();
        let d = store.create_dashboard(&acme, "Orders").await.unwrap();
        let notify =
            CollectionNotify { ops: vec![DocumentOp::Created], title: "Order {id}".into(), level: Level::Warning };
        let table = NewWidget { kind: WidgetKind::DocumentTable, notify: Some(notify.clone()), ..widget("Open") };
        let a = store.add_widget(&acme, d.id, &table).await.unwrap().unwrap();
        let b = store.add_widget(&acme, d.id, &widget("Chart")).await.unwrap().unwrap();
        assert_eq!(a.notify.as_ref(), Some(&notify));
        let listed = store.notifying_widgets(&acme).await.unwrap();
        assert_eq!(listed, vec![("Orders".to_owned(), a.clone())]);
        assert!(store.notifying_widgets(&globex).await.unwrap().is_empty());

        assert_eq!(store.set_widget_notify(&globex, d.id, a.id, None).await.unwrap(), Err(EditError::NotFound));
        store.set_widget_notify(&acme, d.id, a.id, None).await.unwrap().unwrap();
        store.set_widget_notify(&acme, d.id, b.id, Some(&notify)).await.unwrap().unwrap();
        let listed = store.notifying_widgets(&acme).await.unwrap();
        assert_eq!(listed.iter().map(|(_, w)| w.id).collect::<Vec<_>>(), [b.id]);
        let view = store.dashboard(&acme, d.id, 0).await.unwrap().unwrap();
        assert_eq!(view.widgets[0].notify, None);
        assert_eq!(view.widgets[1].notify, Some(notify));
    }

    async fn preferences_default_until_saved(store: Store) {
        let acme = TenantId::parse("acme").unwrap();
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        let user = store.upsert_user("u@acme.test", "pw-long-enough", &acme, Role::Viewer).await.unwrap();
        assert_eq!(store.preferences(user).await.unwrap(), Preferences::default());
        let mine = Preferences { toast_levels: vec![Level::Error] };
        store.set_preferences(user, &mine).await.unwrap();
        assert_eq!(store.preferences(user).await.unwrap(), mine);
    }
}
