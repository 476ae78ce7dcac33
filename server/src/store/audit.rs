//! The audit trail: logins, connects, subscribes and denials.
//!
//! Recording must never slow the request that causes it, so entries go through a bounded channel to
//! one writer task that inserts them in batches, each batch in one transaction. When the channel is
//! full an entry is dropped and logged rather than making a socket wait.

use super::{Store, StoreError};
use serde::Serialize;
use tokio::{sync::mpsc, task::JoinHandle};

/// Entries waiting to be written before new ones are dropped.
const QUEUE: usize = 4096;
/// Most entries written in one transaction.
const BATCH: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub tenant: Option<String>,
    /// Who acted: a user's e-mail, an API key id, or an IP address.
    pub actor: Option<String>,
    pub action: &'static str,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    pub actor: Option<String>,
    pub action: String,
    pub outcome: String,
    pub detail: Option<String>,
}

/// Hands entries to the writer task. Cheap to clone; the writer stops once every clone is gone.
#[derive(Clone, Debug)]
pub struct Auditor {
    tx: mpsc::Sender<(i64, AuditEntry)>,
}

impl Auditor {
    pub fn start(store: Store) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self { tx }, tokio::spawn(write_all(store, rx)))
    }

    pub fn record(&self, entry: AuditEntry) {
        if let Err(e) = self.tx.try_send((crate::broker::now_ms(), entry)) {
            metrics::counter!(crate::telemetry::DROPS, "reason" => "audit_queue_full").increment(1);
            tracing::warn!(error = %e, "audit queue full; entry dropped");
        }
    }
}

async fn write_all(store: Store, mut rx: mpsc::Receiver<(i64, AuditEntry)>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        if let Err(e) = store.insert_audit(&batch).await {
            tracing::error!(error = %e, entries = batch.len(), "could not write audit entries");
        }
        batch.clear();
    }
}

impl Store {
    async fn insert_audit(&self, entries: &[(i64, AuditEntry)]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for (ts, e) in entries {
            sqlx::query("INSERT INTO audit (ts, tenant_id, actor, action, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(ts)
                .bind(&e.tenant)
                .bind(&e.actor)
                .bind(e.action)
                .bind(e.outcome.as_str())
                .bind(&e.detail)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The newest `limit` entries of one tenant, newest first.
    pub async fn audit_log(&self, tenant: &str, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let records = sqlx::query_as(
            "SELECT ts, actor, action, outcome, detail FROM audit WHERE tenant_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(tenant)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::store;

    #[tokio::test]
    async fn entries_are_written_in_order_and_kept_per_tenant() {
        let (store, _dir) = store().await;
        let (auditor, writer) = Auditor::start(store.clone());
        for (tenant, action) in [("acme", "login"), ("globex", "login"), ("acme", "subscribe")] {
            auditor.record(AuditEntry {
                tenant: Some(tenant.into()),
                actor: Some("ops@x.test".into()),
                action,
                outcome: Outcome::Ok,
                detail: None,
            });
        }
        drop(auditor);
        writer.await.unwrap();
        let acme: Vec<String> = store.audit_log("acme", 10).await.unwrap().into_iter().map(|r| r.action).collect();
        assert_eq!(acme, vec!["subscribe", "login"]);
        assert_eq!(store.audit_log("globex", 10).await.unwrap().len(), 1);
    }
}
