//! Word that a stored dashboard changed (a widget added or removed), so the streams serving it
//! follow its new set of widgets without the client reconnecting.
//!
//! One process-wide broadcast channel: edits are rare, and a stream that falls behind on them only
//! re-reads its dashboard once more (a lagged receiver reloads, it loses nothing).

use crate::broker::topic_name::TenantId;
use tokio::sync::broadcast;

/// Edits a slow stream may fall behind by before it just reloads.
const BACKLOG: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub tenant: TenantId,
    pub dashboard: i64,
}

#[derive(Debug)]
pub struct DashboardEdits {
    sender: broadcast::Sender<Edit>,
}

impl Default for DashboardEdits {
    fn default() -> Self {
        Self { sender: broadcast::channel(BACKLOG).0 }
    }
}

impl DashboardEdits {
    pub fn edited(&self, tenant: &TenantId, dashboard: i64) {
        // No receiver means no stream is open: nobody to tell.
        let _ = self.sender.send(Edit { tenant: tenant.clone(), dashboard });
    }

    pub fn watch(&self) -> broadcast::Receiver<Edit> {
        self.sender.subscribe()
    }
}
