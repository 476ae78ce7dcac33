//! The audit trail: logins, connects, subscribes and denials.
//!
//! Recording must never slow the request that causes it, so entries go through a bounded channel to
//! one writer task that inserts them in batches, each batch in one transaction. When the channel is
//! full an entry is dropped and logged rather than making a socket wait. Denials pass through a
//! [`DenialDigest`] first, so one address hammering the server writes a few lines and a summary,
//! not one line per attempt; and the writer deletes entries older than the retention period.

use super::{Store, StoreError, audit_digest::DenialDigest, on_backend};
use serde::Serialize;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
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

/// How often the writer ends digest windows and deletes expired entries.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub struct AuditSettings {
    /// Denials of one source written one by one per minute.
    pub denials_per_min: usize,
    /// How long an entry is kept.
    pub retention: Duration,
}

/// Hands entries to the writer task. Cheap to clone; the writer stops once every clone is gone.
#[derive(Clone, Debug)]
pub struct Auditor {
    tx: mpsc::Sender<(i64, AuditEntry)>,
    digest: Arc<Mutex<DenialDigest>>,
}

impl Auditor {
    pub fn start(store: Store, settings: AuditSettings) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let window_ms = HOUSEKEEPING.as_millis() as i64;
        let digest = Arc::new(Mutex::new(DenialDigest::new(settings.denials_per_min, window_ms)));
        let writer = tokio::spawn(write_all(store, rx, digest.clone(), settings.retention));
        (Self { tx, digest }, writer)
    }

    pub fn record(&self, entry: AuditEntry) {
        let now = crate::broker::now_ms();
        if entry.outcome == Outcome::Denied && !self.digest.lock().expect("digest lock").admit(&entry, now) {
            metrics::counter!(crate::telemetry::DROPS, "reason" => "audit_digest").increment(1);
            return;
        }
        self.send(now, entry);
    }

    fn send(&self, now: i64, entry: AuditEntry) {
        if let Err(e) = self.tx.try_send((now, entry)) {
            metrics::counter!(crate::telemetry::DROPS, "reason" => "audit_queue_full").increment(1);
            tracing::warn!(error = %e, "audit queue full; entry dropped");
        }
    }
}

async fn write_all(
    store: Store,
    mut rx: mpsc::Receiver<(i64, AuditEntry)>,
    digest: Arc<Mutex<DenialDigest>>,
    retention: Duration,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    loop {
        tokio::select! {
            received = rx.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    break;
                }
            }
            _ = housekeeping.tick() => {
                let now = crate::broker::now_ms();
                batch.extend(digest.lock().expect("digest lock").summaries(now).into_iter().map(|e| (now, e)));
                match store.prune_audit(now - retention.as_millis() as i64).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(entries = n, "expired audit entries deleted"),
                    Err(e) => tracing::error!(error = %e, "could not delete expired audit entries"),
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        if let Err(e) = store.insert_audit(&batch).await {
            tracing::error!(error = %e, entries = batch.len(), "could not write audit entries");
        }
        batch.clear();
    }
    let now = crate::broker::now_ms();
    let summaries: Vec<_> =
        digest.lock().expect("digest lock").summaries(i64::MAX).into_iter().map(|e| (now, e)).collect();
    if !summaries.is_empty()
        && let Err(e) = store.insert_audit(&summaries).await
    {
        tracing::error!(error = %e, "could not write the last audit summaries");
    }
}

impl Store {
    async fn insert_audit(&self, entries: &[(i64, AuditEntry)]) -> Result<(), StoreError> {
        on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            for (ts, e) in entries {
                sqlx::query(
                    "INSERT INTO audit (ts, tenant_id, actor, action, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                )
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
        });
        Ok(())
    }

    /// Deletes the entries older than `before`, a batch at a time, so that a long backlog never
    /// turns into one statement past the database's timeout; returns how many.
    pub async fn prune_audit(&self, before: i64) -> Result<u64, StoreError> {
        const BATCH: i64 = 10_000;
        let mut deleted = 0;
        loop {
            let batch = on_backend!(self, pool => {
                sqlx::query("DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts < $1 LIMIT $2)")
                    .bind(before)
                    .bind(BATCH)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
            deleted += batch;
            if batch < BATCH as u64 {
                return Ok(deleted);
            }
        }
    }

    pub async fn audit_by_actor(&self, actor: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let records = on_backend!(self, pool => {
            sqlx::query_as("SELECT ts, actor, action, outcome, detail FROM audit WHERE actor = $1 ORDER BY id DESC")
                .bind(actor)
                .fetch_all(pool)
                .await?
        });
        Ok(records)
    }

    pub async fn audit_log(&self, tenant: &str, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let records = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT ts, actor, action, outcome, detail FROM audit WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(tenant)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::on_each_backend;

    const SETTINGS: AuditSettings = AuditSettings { denials_per_min: 3, retention: Duration::from_secs(3600) };

    on_each_backend!(
        entries_are_written_in_order_and_kept_per_tenant,
        denials_from_one_source_are_digested_and_old_entries_expire
    );

    async fn entries_are_written_in_order_and_kept_per_tenant(store: Store) {
        let (auditor, writer) = Auditor::start(store.clone(), SETTINGS);
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

    async fn denials_from_one_source_are_digested_and_old_entries_expire(store: Store) {
        let (auditor, writer) = Auditor::start(store.clone(), SETTINGS);
        for _ in 0..500 {
            auditor.record(AuditEntry {
                tenant: None,
                actor: Some("6.6.6.6".into()),
                action: "connect",
                outcome: Outcome::Denied,
                detail: Some("4429: too many".into()),
            });
        }
        drop(auditor);
        writer.await.unwrap();
        let rows = store.audit_by_actor("6.6.6.6").await.unwrap();
        assert_eq!(rows.len(), 4, "three lines and the summary written at the end: {rows:?}");
        assert_eq!(rows[0].detail.as_deref(), Some("497 more denials in 60 s not recorded one by one"));
        assert_eq!(store.prune_audit(crate::broker::now_ms() + 1).await.unwrap(), 4);
        assert!(store.audit_by_actor("6.6.6.6").await.unwrap().is_empty());
    }
}
