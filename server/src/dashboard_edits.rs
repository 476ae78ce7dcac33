//! Word that a stored dashboard changed (created, a widget added, removed or moved), for every open
//! page of the tenant on every node.
//!
//! The outline of the dashboard (title, widget ids in order) is published on the tenant's
//! server-owned topic `dashboards/edits` (a collection, one document per dashboard), through the
//! engine like any topic, so Redis carries it between nodes and a page that was offline catches up
//! by resume or snapshot. Pages compare it with what they show and load the dashboard again when it
//! differs. SSE streams carry the same feed to their page and, reading it as it passes, follow
//! their dashboard's new set of widgets (`transport/sse.rs`).

use crate::broker::engine::Engine;
use crate::topic_name::{TenantId, TopicKey, TopicName};
use protocol::dashboard::DashboardOutline;
use protocol::topics::DASHBOARD_EDITS_TOPIC;
use protocol::{Change, ChangeOp, Item, TopicKind};
use std::sync::Arc;

pub struct DashboardEdits {
    engine: Arc<dyn Engine>,
}

impl std::fmt::Debug for DashboardEdits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardEdits").finish_non_exhaustive()
    }
}

impl DashboardEdits {
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        Self { engine }
    }

    /// Announces the dashboard as it now is. The edit is stored already: a failed announcement
    /// is logged and counted, and pages catch up with the next one.
    pub async fn edited(&self, tenant: &TenantId, dashboard: i64, outline: DashboardOutline) {
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
}
