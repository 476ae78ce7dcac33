//! Durable state in SQLite (sqlx): tenants, users, sessions, API keys, the audit trail, settings.
//!
//! One file, created and migrated on start, is all a single node needs. Every query here is plain
//! SQL checked by the tests against a real database file.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod audit_digest;
pub mod dashboards;
pub mod sessions;
pub mod settings;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::{str::FromStr, time::Duration};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to date.
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Seconds since the Unix epoch, the unit of every timestamp column.
pub fn now_secs() -> i64 {
    crate::broker::now_ms() / 1000
}

#[cfg(test)]
pub(crate) mod testing {
    use super::Store;

    /// A store in a fresh temporary file; the directory lives as long as the returned guard.
    pub async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db");
        (Store::open(path.to_str().unwrap()).await.unwrap(), dir)
    }
}
