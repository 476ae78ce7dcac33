//! Durable state (sqlx): tenants, users, sessions, API keys, the audit trail, dashboards, topic
//! rules, settings.
//!
//! A SQLite file, created and migrated on start, is all a single node needs. Several nodes share
//! one PostgreSQL instead, so a login made on one node is checked, and revoked, on every other.
//! Both run the same query text (`$1` placeholders, which SQLite also reads); the few places where
//! the two must differ are in [`backend::Dialect`]. Every test of this module runs against both.

pub mod accounts;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod dashboards;
pub mod displays;
pub mod sessions;
pub mod settings;
pub mod topic_rules;

mod backend;

pub use crate::redact::redacted;
pub(crate) use backend::{Backend, Dialect, lock_row, on_backend};

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
    #[error("the database did not answer within {0:?}")]
    TimedOut(std::time::Duration),
}

/// The durable state, on SQLite or PostgreSQL. Cloning shares the connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

impl Store {
    /// Opens the database `location` names, creating it when missing and bringing its schema up
    /// to date: a `postgres://` URL, or else a SQLite file path (`sqlite://` optional).
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        Ok(Self { backend: Backend::open(location).await? })
    }

    /// `"sqlite"` or `"postgres"`, for logs.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Answers when the database does, within the store's query timeout (`/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }
}

#[cfg(test)]
pub(crate) mod testing;
