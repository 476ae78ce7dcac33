//! Each widget's alert history: what its thresholds' states did, the latest
//! [`ALERTS_KEPT`] per widget (written by the node that made the change, see
//! [`crate::notifying`]).

use super::{Dialect, Store, StoreError, on_backend};
use protocol::thresholds::{ALERTS_KEPT, AlertRecord, ThresholdState};

type AlertRow = (String, String, String, f64, i64, i64);

fn state(text: &str) -> Result<ThresholdState, StoreError> {
    ThresholdState::parse(text).ok_or_else(|| StoreError::Invalid(format!("stored alert state {text:?}")))
}

impl Store {
    /// Adds an alert to `widget`'s history and lets the oldest go past [`ALERTS_KEPT`].
    pub async fn record_alert(&self, widget: i64, alert: &AlertRecord) -> Result<(), StoreError> {
        on_backend!(self, pool => {
            let mut tx = Dialect::begin_write(pool).await?;
            sqlx::query(
                "INSERT INTO alert_events (widget_id, key, from_state, to_state, value, since_ms, at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(widget)
            .bind(&alert.key)
            .bind(alert.from.as_str())
            .bind(alert.to.as_str())
            .bind(alert.value)
            .bind(alert.since)
            .bind(alert.at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM alert_events WHERE widget_id = $1 AND id <= (
                     SELECT id FROM alert_events WHERE widget_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            )
            .bind(widget)
            .bind(ALERTS_KEPT as i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// `widget`'s alerts, newest first.
    pub async fn alert_history(&self, widget: i64) -> Result<Vec<AlertRecord>, StoreError> {
        let rows: Vec<AlertRow> = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT key, from_state, to_state, value, since_ms, at_ms FROM alert_events
                 WHERE widget_id = $1 ORDER BY id DESC",
            )
            .bind(widget)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(key, from, to, value, since, at)| {
                Ok(AlertRecord { key, from: state(&from)?, to: state(&to)?, value, since, at })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, testing::on_each_backend};
    use crate::topic_name::TenantId;
    use protocol::dashboard::{NewWidget, WidgetKind, WidgetMode};
    use protocol::thresholds::{ALERTS_KEPT, AlertRecord, ThresholdState};

    on_each_backend!(a_widget_keeps_its_latest_alerts_and_they_go_with_it);

    async fn a_widget_keeps_its_latest_alerts_and_they_go_with_it(store: Store) {
        let acme = TenantId::parse("acme").unwrap();
        store.ensure_tenant(&acme, "Acme").await.unwrap();
        let dashboard = store.create_dashboard(&acme, "Floor").await.unwrap();
        let new = NewWidget {
            title: "Throughput".into(),
            kind: WidgetKind::KpiTiles,
            topic: "ops/kpi".into(),
            default_mode: WidgetMode::default(),
            notify: None,
            thresholds: vec![],
        };
        let widget = store.add_widget(&acme, dashboard.id, &new).await.unwrap().unwrap();
        let alert = |n: i64| AlertRecord {
            key: "orders".into(),
            from: ThresholdState::Ok,
            to: ThresholdState::Critical,
            value: n as f64,
            since: n,
            at: n,
        };
        for n in 0..ALERTS_KEPT as i64 + 5 {
            store.record_alert(widget.id, &alert(n)).await.unwrap();
        }
        let history = store.alert_history(widget.id).await.unwrap();
        assert_eq!(history.len(), ALERTS_KEPT);
        assert_eq!(history[0], alert(ALERTS_KEPT as i64 + 4), "newest first");
        assert_eq!(history.last().unwrap().since, 5, "the oldest went");
        store.remove_widget(&acme, dashboard.id, widget.id).await.unwrap().unwrap();
        assert!(store.alert_history(widget.id).await.unwrap().is_empty());
    }
}
