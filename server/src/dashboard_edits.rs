//! Word that a stored dashboard changed (created, a widget added, removed or moved).
//!
//! Two audiences:
//! - every open page of the tenant, on every node: the outline of the dashboard (title, widget ids
//!   in order) is published on the tenant's server-owned topic `dashboards/edits` (a collection,
//!   one document per dashboard), through the engine like any topic, so Redis carries it between
//!   nodes and a page that was offline catches up by resume or snapshot. Pages compare it with
//!   what they show and load the dashboard again when it differs.
//! - this node's SSE streams, which serve a fixed set of feeds per dashboard and must follow its
//!   new set of widgets: one process-wide broadcast channel. Edits are rare, and a stream that
//!   falls behind on them only re-reads its dashboard once more (a lagged receiver reloads, it
//!   loses nothing).

use crate::broker::{
    engine::Engine,
    topic_name::{TenantId, TopicKey, TopicName},
};
use app::{
    dashboard::DashboardOutline,
    protocol::{Change, ChangeOp, DASHBOARD_EDITS_TOPIC, Item, TopicKind},
};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Edits a slow stream may fall behind by before it just reloads.
const BACKLOG: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub tenant: TenantId,
    pub dashboard: i64,
}

pub struct DashboardEdits {
    sender: broadcast::Sender<Edit>,
    engine: Arc<dyn Engine>,
}

impl std::fmt::Debug for DashboardEdits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardEdits").field("streams", &self.sender.receiver_count()).finish_non_exhaustive()
    }
}

impl DashboardEdits {
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        Self { sender: broadcast::channel(BACKLOG).0, engine }
    }

    /// Announces the dashboard as it now is. The edit is stored already: a failed announcement
    /// is logged and counted, and pages catch up with the next one.
    pub async fn edited(&self, tenant: &TenantId, dashboard: i64, outline: DashboardOutline) {
        // No receiver means no stream is open: nobody to tell.
        let _ = self.sender.send(Edit { tenant: tenant.clone(), dashboard });
        let key = TopicKey::new(tenant.clone(), TopicName::parse(DASHBOARD_EDITS_TOPIC).expect("a valid topic"));
        let doc = match serde_json::to_value(outline) {
            Ok(serde_json::Value::Object(doc)) => doc,
            _ => unreachable!("an outline serialises to an object"),
        };
        let change = Change { op: ChangeOp::Upsert, id: dashboard.to_string(), doc: Some(doc) };
        if let Err(e) = self.engine.publish(key, TopicKind::Collection, vec![Item::Change(change)]).await {
            metrics::counter!(crate::telemetry::DROPS, "reason" => "dashboard_edit_announcement").increment(1);
            tracing::warn!(error = %e, dashboard, "could not announce a dashboard edit");
        }
    }

    pub fn watch(&self) -> broadcast::Receiver<Edit> {
        self.sender.subscribe()
    }
}
