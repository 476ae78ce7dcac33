//! The audit trail: logins, connects, subscribes and denials.
//!
//! Recording must never slow the request that causes it, so entries go through a bounded channel to
//! one writer task that inserts them in batches, each batch in one transaction. An entry never
//! drops: one that finds the channel full, or whose batch the database refused, waits on disk
//! ([`Spill`]) and is written once the writer has caught up. What makes entries is bounded before
//! they are made: denials pass through a [`DenialDigest`], so one address hammering the server
//! writes a few lines and a summary, not one line per attempt; a connection's subscriptions are one
//! summary row (`transport::subscription_log`). The writer deletes entries older than the
//! retention period.

pub mod digest;
pub mod spill;

use super::{Store, StoreError, on_backend};
use digest::DenialDigest;
use serde::{Deserialize, Serialize};
use spill::Spill;
use std::{
    borrow::Cow,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{sync::mpsc, task::JoinHandle};

/// Entries waiting in memory to be written; more wait on disk.
pub const QUEUE: usize = 4096;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// An entry as it is written: with its time, and owned (it may come back from a spill file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub ts: i64,
    pub tenant: Option<String>,
    pub actor: Option<String>,
    pub action: Cow<'static, str>,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

impl Row {
    fn new(ts: i64, entry: AuditEntry) -> Self {
        let AuditEntry { tenant, actor, action, outcome, detail } = entry;
        Self { ts, tenant, actor, action: Cow::Borrowed(action), outcome, detail }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    /// Who acted: a user's e-mail, an API key id, or an address.
    pub actor: Option<String>,
    /// `login`, `connect`, `publish`, `dashboard_create`, …
    pub action: String,
    /// `ok` or `denied`.
    pub outcome: String,
    pub detail: Option<String>,
}

/// How often the writer ends digest windows and deletes expired entries.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Denials of one source written one by one per minute.
    pub denials_per_min: usize,
    /// How long an entry is kept.
    pub retention: Duration,
    /// Entries waiting in memory (normally [`QUEUE`]).
    pub queue: usize,
    /// Where entries wait when the queue is full or the database refuses them.
    pub spill_dir: PathBuf,
}

/// Hands entries to the writer task. Cheap to clone; the writer stops once every clone is gone.
#[derive(Clone, Debug)]
pub struct Auditor {
    tx: mpsc::Sender<Row>,
    digest: Arc<Mutex<DenialDigest>>,
    spill: Arc<Spill>,
}

impl Auditor {
    pub fn start(store: Store, settings: AuditSettings) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let window_ms = HOUSEKEEPING.as_millis() as i64;
        let digest = Arc::new(Mutex::new(DenialDigest::new(settings.denials_per_min, window_ms)));
        let spill = Arc::new(Spill::new(settings.spill_dir.clone()));
        let writer = Writer { store, digest: digest.clone(), spill: spill.clone(), unfinished: Vec::new() };
        let writer = tokio::spawn(writer.run(rx, settings.retention));
        (Self { tx, digest, spill }, writer)
    }

    /// Entries recorded and not written yet: queued in memory, and waiting on disk.
    pub fn backlog(&self) -> u64 {
        (self.tx.max_capacity() - self.tx.capacity()) as u64 + self.spill.waiting()
    }

    pub fn record(&self, entry: AuditEntry) {
        let now = crate::clock::now_ms();
        if entry.outcome == Outcome::Denied && !self.digest.lock().expect("digest lock").admit(&entry, now) {
            // Counted, and written as the source's summary line when its window ends.
            metrics::counter!(crate::telemetry::DROPS, "reason" => "audit_digest").increment(1);
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(row) | mpsc::error::TrySendError::Closed(row)) =
            self.tx.try_send(Row::new(now, entry))
        {
            spill(&self.spill, &row);
        }
    }
}

/// Puts a row the writer cannot take now on disk.
fn spill(spill: &Spill, row: &Row) {
    match spill.push(row) {
        Ok(()) => metrics::counter!(crate::telemetry::AUDIT_SPILLED).increment(1),
        Err(e) => {
            // The disk refused too: the one way a row is lost, and never silently.
            metrics::counter!(crate::telemetry::DROPS, "reason" => "audit_spill_failed").increment(1);
            tracing::error!(error = %e, ?row, "an audit entry could not be kept: the queue is full and the spill failed");
        }
    }
}

struct Writer {
    store: Store,
    digest: Arc<Mutex<DenialDigest>>,
    spill: Arc<Spill>,
    /// Spill files a drain could not finish (the database failed again).
    unfinished: Vec<PathBuf>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Row>, retention: Duration) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        // Rows a stopped process left on disk, first.
        self.drain_spill().await;
        loop {
            tokio::select! {
                received = rx.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        break;
                    }
                }
                _ = housekeeping.tick() => {
                    let now = crate::clock::now_ms();
                    let summaries = self.digest.lock().expect("digest lock").summaries(now);
                    batch.extend(summaries.into_iter().map(|e| Row::new(now, e)));
                    match self.store.prune_audit(now - retention.as_millis() as i64).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(entries = n, "expired audit entries deleted"),
                        Err(e) => tracing::error!(error = %e, "could not delete expired audit entries"),
                    }
                }
            }
            self.write(&mut batch).await;
            // Caught up: what waits on disk goes in now.
            if rx.is_empty() && (self.spill.waiting() > 0 || !self.unfinished.is_empty()) {
                self.drain_spill().await;
            }
        }
        let now = crate::clock::now_ms();
        let summaries = self.digest.lock().expect("digest lock").summaries(i64::MAX);
        batch.extend(summaries.into_iter().map(|e| Row::new(now, e)));
        self.write(&mut batch).await;
        self.drain_spill().await;
    }

    /// Inserts `batch`, or puts it on disk if the database refuses it.
    async fn write(&self, batch: &mut Vec<Row>) {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.store.insert_audit(batch).await {
            tracing::error!(error = %e, entries = batch.len(), "could not write audit entries; they wait on disk");
            for row in batch.iter() {
                spill(&self.spill, row);
            }
        }
        batch.clear();
    }

    async fn drain_spill(&mut self) {
        let mut files = std::mem::take(&mut self.unfinished);
        files.extend(self.spill.take_files());
        let mut files = files.into_iter();
        while let Some(file) = files.next() {
            match self.drain_file(&file).await {
                Ok(rows) => {
                    self.spill.drained(&file, rows);
                    if rows > 0 {
                        tracing::info!(rows, "audit entries that waited on disk are written");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audit entries still wait on disk");
                    self.unfinished.push(file);
                    self.unfinished.extend(files);
                    return;
                }
            }
        }
    }

    async fn drain_file(&self, file: &std::path::Path) -> Result<u64, StoreError> {
        let rows = Spill::read(file).map_err(|e| StoreError::Invalid(format!("reading {}: {e}", file.display())))?;
        let mut count = 0;
        let mut batch = Vec::with_capacity(BATCH);
        for row in rows {
            batch.push(row);
            if batch.len() == BATCH {
                self.store.insert_audit(&batch).await?;
                count += batch.len() as u64;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.store.insert_audit(&batch).await?;
            count += batch.len() as u64;
        }
        Ok(count)
    }
}

impl Store {
    async fn insert_audit(&self, entries: &[Row]) -> Result<(), StoreError> {
        on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            for e in entries {
                sqlx::query(
                    "INSERT INTO audit (ts, tenant_id, actor, action, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(e.ts)
                .bind(&e.tenant)
                .bind(&e.actor)
                .bind(e.action.as_ref())
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

    fn settings(dir: &tempfile::TempDir) -> AuditSettings {
        AuditSettings {
            denials_per_min: 3,
            retention: Duration::from_secs(3600),
            queue: QUEUE,
            spill_dir: dir.path().to_owned(),
        }
    }

    on_each_backend!(
        entries_are_written_in_order_and_kept_per_tenant,
        denials_from_one_source_are_digested_and_old_entries_expire,
        entries_a_full_queue_cannot_take_wait_on_disk_and_are_all_written
    );

    async fn entries_are_written_in_order_and_kept_per_tenant(store: Store) {
        let dir = tempfile::tempdir().unwrap();
        let (auditor, writer) = Auditor::start(store.clone(), settings(&dir));
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
        let dir = tempfile::tempdir().unwrap();
        let (auditor, writer) = Auditor::start(store.clone(), settings(&dir));
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
        assert_eq!(store.prune_audit(crate::clock::now_ms() + 1).await.unwrap(), 4);
        assert!(store.audit_by_actor("6.6.6.6").await.unwrap().is_empty());
    }

    async fn entries_a_full_queue_cannot_take_wait_on_disk_and_are_all_written(store: Store) {
        let dir = tempfile::tempdir().unwrap();
        // A queue of 4: a burst of 2,000 finds it full almost every time.
        let (auditor, writer) = Auditor::start(store.clone(), AuditSettings { queue: 4, ..settings(&dir) });
        for n in 0..2_000 {
            auditor.record(AuditEntry {
                tenant: Some("acme".into()),
                actor: Some("burst@acme.test".into()),
                action: "login",
                outcome: Outcome::Ok,
                detail: Some(format!("{n}")),
            });
        }
        assert!(auditor.spill.waiting() > 0, "some waited on disk");
        drop(auditor);
        writer.await.unwrap();
        let rows = store.audit_by_actor("burst@acme.test").await.unwrap();
        let mut seen: Vec<u32> = rows.iter().map(|r| r.detail.as_deref().unwrap().parse().unwrap()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..2_000).collect::<Vec<_>>(), "every entry, once");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the spill files are gone");
    }
}
