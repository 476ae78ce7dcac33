//! Wall displays (see [`protocol::display`]): their settings, the dashboards they rotate through,
//! the hash of their link's secret, when and from where a screen last used one, and whether it was
//! revoked. What a display session may read is worked out here ([`DisplayScope`]), once per lookup.

use super::{Dialect, Store, StoreError, lock_row, on_backend};
use crate::clock::now_secs;
use crate::topic_name::TenantId;
use protocol::display::{DisplayInfo, DisplayTheme, MAX_DISPLAYS, NewDisplay};
use std::collections::{BTreeMap, HashSet};

/// Why an edit of displays was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisplayError {
    #[error("no such display")]
    NotFound,
    #[error("a tenant has at most {MAX_DISPLAYS} displays")]
    TooMany,
    #[error("dashboard {0} is not one of this tenant's")]
    UnknownDashboard(i64),
}

/// What a display session may read: its dashboards, and the topics their pages follow (the
/// widgets', the dashboards' edits; never the notification centre's, see
/// `permissions::FOR_PEOPLE_ONLY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayScope {
    pub id: i64,
    pub tenant: TenantId,
    pub name: String,
    pub dashboards: Vec<i64>,
    pub topics: HashSet<String>,
    pub rotate_secs: u32,
    pub theme: DisplayTheme,
}

/// id, name, rotate_secs, theme, created_at, last_seen_at, last_seen_addr, revoked_at
type DisplayRow = (i64, String, i64, String, i64, Option<i64>, Option<String>, Option<i64>);
const DISPLAY_COLUMNS: &str = "id, name, rotate_secs, theme, created_at, last_seen_at, last_seen_addr, revoked_at";

fn theme(text: &str) -> Result<DisplayTheme, StoreError> {
    DisplayTheme::parse(text).ok_or_else(|| StoreError::Invalid(format!("stored display theme {text:?}")))
}

fn info(row: DisplayRow, dashboards: Vec<i64>) -> Result<DisplayInfo, StoreError> {
    let (id, name, rotate_secs, theme_text, created_at, last_seen_at, last_seen_addr, revoked_at) = row;
    Ok(DisplayInfo {
        id,
        settings: NewDisplay { name, dashboards, rotate_secs: rotate_secs as u32, theme: theme(&theme_text)? },
        created_at,
        last_seen_at,
        last_seen_addr,
        revoked_at,
    })
}

/// Puts `dashboards` in display `id`'s rotation, in order, inside transaction `tx` (a macro, as
/// the body runs on either backend: see `on_backend!`). `Err` names the first dashboard that is not
/// one of `tenant`'s; the caller then rolls back.
macro_rules! place_dashboards {
    ($tx:ident, $id:expr, $tenant:expr, $dashboards:expr) => {{
        let mut placed = Ok(());
        for (position, dashboard) in $dashboards.iter().enumerate() {
            let added = sqlx::query(
                "INSERT INTO display_dashboards (display_id, position, dashboard_id)
                 SELECT $1, $2, id FROM dashboards WHERE id = $3 AND tenant_id = $4",
            )
            .bind($id)
            .bind(position as i64)
            .bind(dashboard)
            .bind($tenant.as_str())
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if added == 0 {
                placed = Err(DisplayError::UnknownDashboard(*dashboard));
                break;
            }
        }
        placed
    }};
}

impl Store {
    /// Makes a display of `tenant` whose link's secret hashes to `secret_hash`.
    pub async fn create_display(
        &self,
        tenant: &TenantId,
        display: &NewDisplay,
        secret_hash: &str,
    ) -> Result<Result<DisplayInfo, DisplayError>, StoreError> {
        let made: Result<i64, DisplayError> = on_backend!(self, pool => {
            // Counted and added under the tenant's lock, so two admins adding at once cannot pass
            // the limit together.
            let mut tx = Dialect::begin_write(pool).await?;
            let lock = format!("SELECT id FROM tenants WHERE id = $1{}", lock_row(pool));
            sqlx::query(&lock).bind(tenant.as_str()).execute(&mut *tx).await?;
            let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM displays WHERE tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_one(&mut *tx)
                .await?;
            if count as usize >= MAX_DISPLAYS {
                Err(DisplayError::TooMany)
            } else {
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO displays (tenant_id, name, secret_hash, rotate_secs, theme, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(tenant.as_str())
                .bind(display.name.trim())
                .bind(secret_hash)
                .bind(i64::from(display.rotate_secs))
                .bind(display.theme.as_str())
                .bind(now_secs())
                .fetch_one(&mut *tx)
                .await?;
                let placed = place_dashboards!(tx, id, tenant, display.dashboards).map(|()| id);
                if placed.is_ok() {
                    tx.commit().await?;
                }
                placed
            }
        });
        match made {
            Ok(id) => Ok(self.display(tenant, id).await?.ok_or(DisplayError::NotFound)),
            Err(e) => Ok(Err(e)),
        }
    }

    /// One display of `tenant`, revoked or not.
    pub async fn display(&self, tenant: &TenantId, id: i64) -> Result<Option<DisplayInfo>, StoreError> {
        let sql = format!("SELECT {DISPLAY_COLUMNS} FROM displays WHERE id = $1 AND tenant_id = $2");
        let row: Option<DisplayRow> = on_backend!(self, pool => {
            sqlx::query_as(&sql).bind(id).bind(tenant.as_str()).fetch_optional(pool).await?
        });
        let Some(row) = row else { return Ok(None) };
        let dashboards = self.dashboards_of(id).await?;
        info(row, dashboards).map(Some)
    }

    /// The tenant's displays, oldest first.
    pub async fn displays(&self, tenant: &TenantId) -> Result<Vec<DisplayInfo>, StoreError> {
        let sql = format!("SELECT {DISPLAY_COLUMNS} FROM displays WHERE tenant_id = $1 ORDER BY id");
        let rows: Vec<DisplayRow> = on_backend!(self, pool => {
            sqlx::query_as(&sql).bind(tenant.as_str()).fetch_all(pool).await?
        });
        // Every display's dashboards in one query, in rotation order.
        let placed: Vec<(i64, i64)> = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT dd.display_id, dd.dashboard_id FROM display_dashboards dd JOIN displays d ON d.id = dd.display_id
                 WHERE d.tenant_id = $1 ORDER BY dd.display_id, dd.position",
            )
            .bind(tenant.as_str())
            .fetch_all(pool)
            .await?
        });
        let mut by_display: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for (display, dashboard) in placed {
            by_display.entry(display).or_default().push(dashboard);
        }
        rows.into_iter()
            .map(|row| {
                let dashboards = by_display.remove(&row.0).unwrap_or_default();
                info(row, dashboards)
            })
            .collect()
    }

    /// Display `id`'s dashboards, in rotation order.
    async fn dashboards_of(&self, id: i64) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = on_backend!(self, pool => {
            sqlx::query_as("SELECT dashboard_id FROM display_dashboards WHERE display_id = $1 ORDER BY position")
                .bind(id)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|(d,)| d).collect())
    }

    /// Replaces a display's settings (a revoked one stays revoked).
    pub async fn edit_display(
        &self,
        tenant: &TenantId,
        id: i64,
        display: &NewDisplay,
    ) -> Result<Result<DisplayInfo, DisplayError>, StoreError> {
        let edited: Result<(), DisplayError> = on_backend!(self, pool => {
            let mut tx = Dialect::begin_write(pool).await?;
            let updated = sqlx::query(
                "UPDATE displays SET name = $1, rotate_secs = $2, theme = $3 WHERE id = $4 AND tenant_id = $5",
            )
            .bind(display.name.trim())
            .bind(i64::from(display.rotate_secs))
            .bind(display.theme.as_str())
            .bind(id)
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let mut outcome = if updated == 1 { Ok(()) } else { Err(DisplayError::NotFound) };
            if outcome.is_ok() {
                sqlx::query("DELETE FROM display_dashboards WHERE display_id = $1").bind(id).execute(&mut *tx).await?;
                outcome = place_dashboards!(tx, id, tenant, display.dashboards);
            }
            if outcome.is_ok() {
                tx.commit().await?;
            }
            outcome
        });
        match edited {
            Ok(()) => Ok(self.display(tenant, id).await?.ok_or(DisplayError::NotFound)),
            Err(e) => Ok(Err(e)),
        }
    }

    /// Revokes a display for good. `Ok(false)` when it was revoked already.
    pub async fn revoke_display(&self, tenant: &TenantId, id: i64) -> Result<Result<bool, DisplayError>, StoreError> {
        let (found, revoked) = on_backend!(self, pool => {
            let found: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT revoked_at FROM displays WHERE id = $1 AND tenant_id = $2")
                    .bind(id)
                    .bind(tenant.as_str())
                    .fetch_optional(pool)
                    .await?;
            let revoked = sqlx::query("UPDATE displays SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL")
                .bind(now_secs())
                .bind(id)
                .bind(tenant.as_str())
                .execute(pool)
                .await?
                .rows_affected();
            (found, revoked)
        });
        Ok(match found {
            None => Err(DisplayError::NotFound),
            Some(_) => Ok(revoked == 1),
        })
    }

    /// The tenant and secret hash of a display that is not revoked, for a screen trading its
    /// link's secret for a session.
    pub async fn display_secret(&self, id: i64) -> Result<Option<(TenantId, String)>, StoreError> {
        let row: Option<(String, String)> = on_backend!(self, pool => {
            sqlx::query_as("SELECT tenant_id, secret_hash FROM displays WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(|(tenant, hash)| {
            let tenant = TenantId::parse(&tenant).map_err(|e| StoreError::Invalid(format!("display {id}: {e}")))?;
            Ok((tenant, hash))
        })
        .transpose()
    }

    /// What a display that is not revoked may read; `None` once it is revoked or gone.
    pub async fn display_scope(&self, id: i64) -> Result<Option<DisplayScope>, StoreError> {
        let row: Option<(String, String, i64, String)> = on_backend!(self, pool => {
            sqlx::query_as("SELECT tenant_id, name, rotate_secs, theme FROM displays WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        let Some((tenant, name, rotate_secs, theme_text)) = row else { return Ok(None) };
        let tenant = TenantId::parse(&tenant).map_err(|e| StoreError::Invalid(format!("display {id}: {e}")))?;
        let dashboards = self.dashboards_of(id).await?;
        // The topics its pages follow, as a page works them out (the widgets' feeds, the centre,
        // the dashboards' edits).
        let mut topics = HashSet::new();
        for dashboard in &dashboards {
            if let Some(view) = self.dashboard(&tenant, *dashboard, -id).await? {
                topics.extend(view.page_feeds().into_iter().map(|feed| feed.topic));
            }
        }
        Ok(Some(DisplayScope {
            id,
            tenant,
            name,
            dashboards,
            topics,
            rotate_secs: rotate_secs as u32,
            theme: theme(&theme_text)?,
        }))
    }

    /// A screen used display `id` at `at` (Unix seconds) from `addr`.
    pub async fn display_seen(&self, id: i64, at: i64, addr: &str) -> Result<(), StoreError> {
        on_backend!(self, pool => {
            sqlx::query("UPDATE displays SET last_seen_at = $1, last_seen_addr = $2 WHERE id = $3")
                .bind(at)
                .bind(addr)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::DisplayError;
    use crate::store::{Store, testing::on_each_backend};
    use crate::topic_name::TenantId;
    use protocol::dashboard::{NewWidget, WidgetKind, WidgetMode};
    use protocol::display::{DisplayTheme, NewDisplay};

    on_each_backend!(displays_are_made_listed_edited_scoped_and_revoked);

    async fn displays_are_made_listed_edited_scoped_and_revoked(store: Store) {
        let (acme, globex) = (TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap());
        for tenant in [&acme, &globex] {
            store.ensure_tenant(tenant, tenant.as_str()).await.unwrap();
        }
        let floor = store.create_dashboard(&acme, "Floor").await.unwrap();
        let sales = store.create_dashboard(&acme, "Sales").await.unwrap();
        let theirs = store.create_dashboard(&globex, "Theirs").await.unwrap();
        let widget = |topic: &str| NewWidget {
            title: topic.into(),
            kind: WidgetKind::KpiTiles,
            topic: topic.into(),
            default_mode: WidgetMode::default(),
            notify: None,
            thresholds: vec![],
        };
        store.add_widget(&acme, floor.id, &widget("ops/kpi")).await.unwrap().unwrap();
        store.add_widget(&acme, sales.id, &widget("sales/orders")).await.unwrap().unwrap();
        let wall = NewDisplay {
            name: " Ops wall ".into(),
            dashboards: vec![floor.id],
            rotate_secs: 30,
            theme: DisplayTheme::Dark,
        };
        let made = store.create_display(&acme, &wall, "hash").await.unwrap().unwrap();
        assert_eq!((made.settings.name.as_str(), made.settings.dashboards.clone()), ("Ops wall", vec![floor.id]));
        let other = NewDisplay { dashboards: vec![theirs.id], ..wall.clone() };
        assert_eq!(
            store.create_display(&acme, &other, "h").await.unwrap(),
            Err(DisplayError::UnknownDashboard(theirs.id)),
            "another tenant's dashboard"
        );
        assert_eq!(store.displays(&acme).await.unwrap().len(), 1, "the refused one left nothing");
        assert!(store.displays(&globex).await.unwrap().is_empty());

        let scope = store.display_scope(made.id).await.unwrap().unwrap();
        assert_eq!(scope.tenant, acme);
        assert!(scope.topics.contains("ops/kpi") && !scope.topics.contains("sales/orders"));
        let rotation = NewDisplay { dashboards: vec![sales.id, floor.id], rotate_secs: 20, ..wall.clone() };
        let edited = store.edit_display(&acme, made.id, &rotation).await.unwrap().unwrap();
        assert_eq!(edited.settings.dashboards, vec![sales.id, floor.id]);
        assert!(store.display_scope(made.id).await.unwrap().unwrap().topics.contains("sales/orders"));
        assert_eq!(store.edit_display(&globex, made.id, &rotation).await.unwrap(), Err(DisplayError::NotFound));

        store.display_seen(made.id, 1234, "203.0.113.9").await.unwrap();
        let seen = store.display(&acme, made.id).await.unwrap().unwrap();
        assert_eq!((seen.last_seen_at, seen.last_seen_addr.as_deref()), (Some(1234), Some("203.0.113.9")));
        assert_eq!(store.display_secret(made.id).await.unwrap().unwrap().1, "hash");

        assert_eq!(store.revoke_display(&globex, made.id).await.unwrap(), Err(DisplayError::NotFound));
        assert_eq!(store.revoke_display(&acme, made.id).await.unwrap(), Ok(true));
        assert_eq!(store.revoke_display(&acme, made.id).await.unwrap(), Ok(false));
        assert_eq!(store.display_scope(made.id).await.unwrap(), None);
        assert_eq!(store.display_secret(made.id).await.unwrap(), None);
        assert!(store.display(&acme, made.id).await.unwrap().unwrap().revoked_at.is_some());
    }
}
