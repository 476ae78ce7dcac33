//! Dashboards, their widgets, and each user's widget modes and preferences.
//!
//! Every query names the tenant: a dashboard or widget id from another tenant behaves exactly like
//! one that does not exist, so ids leak nothing.

use super::{Store, StoreError, now_secs};
use crate::broker::topic_name::TenantId;
use app::dashboard::{
    DashboardSummary, DashboardView, MAX_WIDGETS, NewWidget, Preferences, WidgetDef, WidgetKind, WidgetMode,
};
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

type WidgetRow = (i64, String, String, String, String);

fn widget_from((id, title, kind, topic, mode): WidgetRow) -> Result<WidgetDef, StoreError> {
    let kind = WidgetKind::parse(&kind).ok_or_else(|| StoreError::Invalid(format!("widget kind {kind:?}")))?;
    let default_mode = WidgetMode::parse(&mode).ok_or_else(|| StoreError::Invalid(format!("widget mode {mode:?}")))?;
    Ok(WidgetDef { id, title, kind, topic, default_mode })
}

impl Store {
    /// The tenant's dashboards, oldest first.
    pub async fn dashboards(&self, tenant: &TenantId) -> Result<Vec<DashboardSummary>, StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, title FROM dashboards WHERE tenant_id = ? ORDER BY id")
                .bind(tenant.as_str())
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(|(id, title)| DashboardSummary { id, title }).collect())
    }

    pub async fn create_dashboard(&self, tenant: &TenantId, title: &str) -> Result<DashboardSummary, StoreError> {
        let (id,): (i64,) =
            sqlx::query_as("INSERT INTO dashboards (tenant_id, title, created_at) VALUES (?, ?, ?) RETURNING id")
                .bind(tenant.as_str())
                .bind(title)
                .bind(now_secs())
                .fetch_one(self.pool())
                .await?;
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
        let title: Option<(String,)> = sqlx::query_as("SELECT title FROM dashboards WHERE id = ? AND tenant_id = ?")
            .bind(id)
            .bind(tenant.as_str())
            .fetch_optional(self.pool())
            .await?;
        let Some((title,)) = title else { return Ok(None) };
        let rows: Vec<WidgetRow> = sqlx::query_as(
            "SELECT id, title, kind, topic, default_mode FROM widgets WHERE dashboard_id = ? ORDER BY position, id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let widgets = rows.into_iter().map(widget_from).collect::<Result<Vec<_>, _>>()?;
        let modes: Vec<(i64, String)> = sqlx::query_as(
            "SELECT m.widget_id, m.mode FROM widget_modes m JOIN widgets w ON w.id = m.widget_id
             WHERE m.user_id = ? AND w.dashboard_id = ?",
        )
        .bind(user_id)
        .bind(id)
        .fetch_all(self.pool())
        .await?;
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
        let added: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO widgets (dashboard_id, position, title, kind, topic, default_mode)
             SELECT d.id, COALESCE((SELECT MAX(position) + 1 FROM widgets WHERE dashboard_id = d.id), 0), ?, ?, ?, ?
             FROM dashboards d
             WHERE d.id = ? AND d.tenant_id = ? AND (SELECT COUNT(*) FROM widgets WHERE dashboard_id = d.id) < ?
             RETURNING id",
        )
        .bind(&widget.title)
        .bind(widget.kind.slug())
        .bind(&widget.topic)
        .bind(widget.default_mode.slug())
        .bind(dashboard)
        .bind(tenant.as_str())
        .bind(MAX_WIDGETS as i64)
        .fetch_optional(self.pool())
        .await?;
        let Some((id,)) = added else {
            let exists = sqlx::query("SELECT 1 FROM dashboards WHERE id = ? AND tenant_id = ?")
                .bind(dashboard)
                .bind(tenant.as_str())
                .fetch_optional(self.pool())
                .await?;
            return Ok(Err(if exists.is_some() { EditError::TooManyWidgets } else { EditError::NotFound }));
        };
        Ok(Ok(WidgetDef {
            id,
            title: widget.title.clone(),
            kind: widget.kind,
            topic: widget.topic.clone(),
            default_mode: widget.default_mode,
        }))
    }

    pub async fn remove_widget(
        &self,
        tenant: &TenantId,
        dashboard: i64,
        widget: i64,
    ) -> Result<Result<(), EditError>, StoreError> {
        let done = sqlx::query(
            "DELETE FROM widgets WHERE id = ? AND dashboard_id =
               (SELECT id FROM dashboards WHERE id = ? AND tenant_id = ?)",
        )
        .bind(widget)
        .bind(dashboard)
        .bind(tenant.as_str())
        .execute(self.pool())
        .await?;
        Ok(if done.rows_affected() == 1 { Ok(()) } else { Err(EditError::NotFound) })
    }

    /// Puts the widgets in the order of `ids`, which must name each of them once.
    pub async fn reorder_widgets(
        &self,
        tenant: &TenantId,
        dashboard: i64,
        ids: &[i64],
    ) -> Result<Result<(), EditError>, StoreError> {
        // IMMEDIATE: a deferred transaction that reads first fails when it tries to write after another
        // connection (the audit writer) has written in between.
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let owned: Option<(i64,)> = sqlx::query_as("SELECT id FROM dashboards WHERE id = ? AND tenant_id = ?")
            .bind(dashboard)
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if owned.is_none() {
            return Ok(Err(EditError::NotFound));
        }
        let mut current: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM widgets WHERE dashboard_id = ?").bind(dashboard).fetch_all(&mut *tx).await?;
        current.sort_unstable();
        let mut wanted = ids.to_vec();
        wanted.sort_unstable();
        if current.into_iter().map(|(id,)| id).collect::<Vec<_>>() != wanted {
            return Ok(Err(EditError::BadOrder));
        }
        for (position, id) in ids.iter().enumerate() {
            sqlx::query("UPDATE widgets SET position = ? WHERE id = ?")
                .bind(position as i64)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Saves `user_id`'s mode for a widget of their tenant.
    pub async fn set_widget_mode(
        &self,
        tenant: &TenantId,
        user_id: i64,
        widget: i64,
        mode: WidgetMode,
    ) -> Result<Result<(), EditError>, StoreError> {
        let done = sqlx::query(
            "INSERT INTO widget_modes (user_id, widget_id, mode)
             SELECT ?, w.id, ? FROM widgets w JOIN dashboards d ON d.id = w.dashboard_id
             WHERE w.id = ? AND d.tenant_id = ?
             ON CONFLICT (user_id, widget_id) DO UPDATE SET mode = excluded.mode",
        )
        .bind(user_id)
        .bind(mode.slug())
        .bind(widget)
        .bind(tenant.as_str())
        .execute(self.pool())
        .await?;
        Ok(if done.rows_affected() == 1 { Ok(()) } else { Err(EditError::NotFound) })
    }

    /// The user's preferences, or the defaults when they never saved any.
    pub async fn preferences(&self, user_id: i64) -> Result<Preferences, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM preferences WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.and_then(|(json,)| serde_json::from_str(&json).ok()).unwrap_or_default())
    }

    pub async fn set_preferences(&self, user_id: i64, preferences: &Preferences) -> Result<(), StoreError> {
        let json = serde_json::to_string(preferences).map_err(|e| StoreError::Invalid(e.to_string()))?;
        sqlx::query(
            "INSERT INTO preferences (user_id, value) VALUES (?, ?)
             ON CONFLICT (user_id) DO UPDATE SET value = excluded.value",
        )
        .bind(user_id)
        .bind(json)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        broker::topic_name::TenantId,
        store::{accounts::Role, dashboards::EditError, testing::store},
    };
    use app::dashboard::{NewWidget, Preferences, WidgetKind, WidgetMode};
    use app::protocol::Level;

    fn widget(title: &str) -> NewWidget {
        NewWidget {
            title: title.into(),
            kind: WidgetKind::LineChart,
            topic: "a/b".into(),
            default_mode: WidgetMode::Live,
        }
    }

    #[tokio::test]
    async fn widgets_are_added_reordered_removed_and_scoped_to_their_tenant() {
        let (store, _dir) = store().await;
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

    #[tokio::test]
    async fn a_dashboard_holds_a_bounded_number_of_widgets() {
        let (store, _dir) = store().await;
        let acme = TenantId::parse("acme").unwrap();
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        let d = store.create_dashboard(&acme, "Ops").await.unwrap();
        for i in 0..app::dashboard::MAX_WIDGETS {
            store.add_widget(&acme, d.id, &widget(&i.to_string())).await.unwrap().unwrap();
        }
        assert_eq!(
            store.add_widget(&acme, d.id, &widget("one too many")).await.unwrap(),
            Err(EditError::TooManyWidgets)
        );
    }

    #[tokio::test]
    async fn preferences_default_until_saved() {
        let (store, _dir) = store().await;
        let acme = TenantId::parse("acme").unwrap();
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        let user = store.upsert_user("u@acme.test", "pw-long-enough", &acme, Role::Viewer).await.unwrap();
        assert_eq!(store.preferences(user).await.unwrap(), Preferences::default());
        let mine = Preferences { toast_levels: vec![Level::Error] };
        store.set_preferences(user, &mine).await.unwrap();
        assert_eq!(store.preferences(user).await.unwrap(), mine);
    }
}
