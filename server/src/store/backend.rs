//! The two databases the store runs on, and the little that differs between them.
//!
//! Every query is written once and compiled once per backend by [`on_backend!`], so each is
//! type-checked against both drivers (sqlx's `Any` driver would check neither, and it decodes
//! SQLite's integer booleans as errors). What SQL cannot say one way for both is in [`Dialect`].

use super::StoreError;
use sqlx::{
    ConnectOptions, Connection, Database, Pool, Postgres, Sqlite, Transaction,
    migrate::MigrateDatabase,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions},
};
use std::{future::Future, str::FromStr, time::Duration};

/// How long a query may wait for a connection, a lock or the server before it fails: a stuck
/// database must turn into errors the handlers report, never into requests that hang.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite serialises writers anyway; a few connections let reads run beside a write.
const SQLITE_CONNECTIONS: u32 = 4;
/// Per node. PostgreSQL's default limit is 100 connections, so a dozen nodes fit beside the
/// operators' own tools.
const POSTGRES_CONNECTIONS: u32 = 8;

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// What a `LIVEDASH_DATABASE` value names.
#[derive(Debug, PartialEq, Eq)]
enum Location<'a> {
    SqliteFile(&'a str),
    Postgres(&'a str),
}

impl<'a> Location<'a> {
    fn parse(value: &'a str) -> Self {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Location::Postgres(value);
        }
        let path = value.strip_prefix("sqlite://").or_else(|| value.strip_prefix("sqlite:")).unwrap_or(value);
        Location::SqliteFile(path)
    }
}

impl Backend {
    pub(crate) async fn open(location: &str) -> Result<Self, StoreError> {
        match Location::parse(location) {
            Location::SqliteFile(path) => open_sqlite(path).await,
            Location::Postgres(url) => open_postgres(url).await,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

async fn open_sqlite(path: &str) -> Result<Backend, StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(QUERY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(SQLITE_CONNECTIONS)
        .acquire_timeout(QUERY_TIMEOUT)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    Ok(Backend::Sqlite(pool))
}

async fn open_postgres(url: &str) -> Result<Backend, StoreError> {
    let timeout = format!("{}ms", QUERY_TIMEOUT.as_millis());
    let options = PgConnectOptions::from_str(url)?
        .application_name("livedash")
        .options([("statement_timeout", timeout.as_str()), ("lock_timeout", timeout.as_str())]);
    let pool = match connect_postgres(options.clone()).await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNDEFINED_DATABASE) => {
            create_postgres_database(url).await?;
            connect_postgres(options).await?
        }
        connected => connected?,
    };
    // On a connection of its own without the statement timeout: a migration may take longer, and
    // sqlx's advisory lock (so that nodes starting together migrate once) may wait for another
    // node's.
    let mut migrating = PgConnectOptions::from_str(url)?.application_name("livedash migrations").connect().await?;
    sqlx::migrate!("./migrations/postgres").run(&mut migrating).await?;
    migrating.close().await?;
    Ok(Backend::Postgres(pool))
}

/// SQLSTATE 3D000, "database does not exist".
const UNDEFINED_DATABASE: &str = "3D000";

async fn connect_postgres(options: PgConnectOptions) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        .acquire_timeout(QUERY_TIMEOUT)
        .connect_with(options)
        .await
}

/// Creates the missing database, as SQLite creates its file. This needs the maintenance database
/// (`postgres`) and the right to create databases; without them the operator creates it. Nodes
/// starting together may race to create it: losing that race is fine.
async fn create_postgres_database(url: &str) -> Result<(), StoreError> {
    tracing::info!(database = %crate::redact::redacted(url), "creating the database");
    match Postgres::create_database(url).await {
        Ok(()) => Ok(()),
        Err(_) if Postgres::database_exists(url).await? => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever backend it is, within
/// [`ANSWER_TIMEOUT`]. The body is compiled once per backend; `?` in it returns a `StoreError`.
macro_rules! on_backend {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.backend() {
            $crate::store::Backend::Sqlite($pool) => {
                $crate::store::backend::in_time(async { Ok::<_, $crate::store::StoreError>($body) }).await?
            }
            $crate::store::Backend::Postgres($pool) => {
                $crate::store::backend::in_time(async { Ok::<_, $crate::store::StoreError>($body) }).await?
            }
        }
    };
}
pub(crate) use on_backend;

/// How long the server waits for the database to answer one store call (its queries together),
/// whatever the database does: the server-side timeouts cannot end a wait on a database host
/// that went silent (a partition, a frozen machine), which would otherwise hold the request for
/// as long as TCP takes to give up.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn in_time<T>(call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(ANSWER_TIMEOUT, call).await.map_err(|_| StoreError::TimedOut(ANSWER_TIMEOUT))?
}

/// Where the backends' SQL differs.
pub(crate) trait Dialect: Database {
    /// Appended to a `SELECT` of the row a read-check-write transaction guards, so a concurrent
    /// one waits: `FOR UPDATE` on PostgreSQL; nothing on SQLite, whose write transaction
    /// ([`Dialect::begin_write`]) already excludes every other writer.
    const LOCK_ROW: &'static str;

    /// Starts a transaction that will write after reading. SQLite must take its write lock up
    /// front (`BEGIN IMMEDIATE`): upgrading a read lock later can fail with `SQLITE_BUSY`.
    fn begin_write(pool: &Pool<Self>) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;
}

impl Dialect for Sqlite {
    const LOCK_ROW: &'static str = "";

    fn begin_write(pool: &Pool<Self>) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send {
        pool.begin_with("BEGIN IMMEDIATE")
    }
}

impl Dialect for Postgres {
    const LOCK_ROW: &'static str = " FOR UPDATE";

    fn begin_write(pool: &Pool<Self>) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send {
        pool.begin()
    }
}

/// `D::LOCK_ROW` for a pool whose type names `D`, for use inside [`on_backend!`].
pub(crate) fn lock_row<D: Dialect>(_: &Pool<D>) -> &'static str {
    D::LOCK_ROW
}

#[cfg(test)]
mod tests {
    use super::Location;

    #[test]
    fn a_postgres_url_selects_postgres_and_anything_else_is_a_sqlite_file() {
        assert_eq!(Location::parse("postgres://u@db/livedash"), Location::Postgres("postgres://u@db/livedash"));
        assert_eq!(Location::parse("postgresql://db/x"), Location::Postgres("postgresql://db/x"));
        assert_eq!(Location::parse("livedash.db"), Location::SqliteFile("livedash.db"));
        assert_eq!(Location::parse("sqlite:///var/lib/l.db"), Location::SqliteFile("/var/lib/l.db"));
        assert_eq!(Location::parse("sqlite:l.db"), Location::SqliteFile("l.db"));
    }
}
