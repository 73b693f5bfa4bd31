//! Storage: one `Store` over either database, with the queries for each artifact in its own
//! module (`labs`, `users`, `clients`, `sessions`, `flows`, `codes`, `grants`, `consents`,
//! `keys`). Nothing outside this module speaks to diesel.
//!
//! Both backends run the same query code: [`with_conn!`] expands one body once per connection
//! type, and backend differences live in `migrations/{sqlite,postgres}`. SQLite gets one
//! writer connection (SQLite serialises writes anyway; `BEGIN IMMEDIATE` avoids upgrade
//! deadlocks) and a pool of readers, in WAL mode.
//!
//! Every query runs on the service's multi-threaded runtime (`Store::run`), never on an
//! actix worker's single-threaded runtime: a cancelled SQLite query must be able to block in
//! place, and PostgreSQL connection drivers must live on a runtime that outlives any worker.

pub mod clients;
pub mod codes;
pub mod consents;
pub mod flows;
pub mod grants;
pub mod keys;
pub mod labs;
pub mod retention;
pub mod schema;
pub mod sessions;
pub mod users;

use crate::config::{Config, SqliteSynchronous};
use diesel::ConnectionResult;
use diesel::connection::SimpleConnection;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::future::BoxFuture;
use std::future::Future;

pub type SqliteConn = SyncConnectionWrapper<diesel::SqliteConnection>;
pub type PgConn = AsyncPgConnection;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// How long a request waits for a database connection before failing.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// SQL each backend runs to serialise a critical section inside a transaction (PostgreSQL:
/// an advisory lock; SQLite: `BEGIN IMMEDIATE` already holds the write lock).
pub trait Dialect {
    const KEY_LOCK: &'static str;
}
impl Dialect for PgConn {
    const KEY_LOCK: &'static str = "SELECT pg_advisory_xact_lock(7431002)";
}
impl Dialect for SqliteConn {
    const KEY_LOCK: &'static str = "SELECT 1";
}
pub(crate) fn key_lock_sql<C: Dialect>(_: &C) -> &'static str {
    C::KEY_LOCK
}

/// Maps a unique-constraint violation to a readable conflict.
pub(crate) fn conflict(e: diesel::result::Error, what: &str) -> StoreError {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            StoreError::Conflict(what.to_owned())
        }
        other => StoreError::Db(other),
    }
}

#[derive(Clone)]
pub enum Db {
    Pg(Pool<PgConn>),
    Sqlite {
        writer: Pool<SqliteConn>,
        readers: Pool<SqliteConn>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("database connection error: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    #[error("database setup error: {0}")]
    Setup(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database task failed")]
    Join,
}

/// Runs `$body` with `$conn` bound to a read connection of whichever backend is configured.
#[macro_export]
macro_rules! with_conn {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Pg(pool) => {
                let mut obj = pool.get().await?;
                let $conn: &mut $crate::store::PgConn = &mut obj;
                $body
            }
            $crate::store::Db::Sqlite { readers, .. } => {
                let mut obj = readers.get().await?;
                let $conn: &mut $crate::store::SqliteConn = &mut obj;
                $body
            }
        }
    };
}

/// Runs `$body` (returning `Result<T, StoreError>`) in a write transaction: `BEGIN IMMEDIATE`
/// on the SQLite writer, a plain transaction on PostgreSQL.
#[macro_export]
macro_rules! with_tx {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Pg(pool) => {
                use diesel_async::AsyncConnection as _;
                let mut obj = pool.get().await?;
                let c: &mut $crate::store::PgConn = &mut obj;
                c.transaction::<_, $crate::store::StoreError, _>(async move |$conn| $body)
                    .await
            }
            $crate::store::Db::Sqlite { writer, .. } => {
                let mut obj = writer.get().await?;
                let c: &mut $crate::store::SqliteConn = &mut obj;
                c.immediate_transaction::<_, $crate::store::StoreError, _>(async move |$conn| $body)
                    .await
            }
        }
    };
}

#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    rt: tokio::runtime::Handle,
}

impl Store {
    /// Connects, applies pending migrations, and returns the store. Must be called from within
    /// a multi-threaded tokio runtime, which then runs every query.
    pub async fn open(config: &Config) -> Result<Store, StoreError> {
        let url = config.database_url();
        let rt = tokio::runtime::Handle::current();
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            migrate_pg(url.clone()).await?;
            let mgr = AsyncDieselConnectionManager::<PgConn>::new(url);
            let pool = Pool::builder(mgr)
                .max_size(config.database.max_connections.max(1))
                .runtime(deadpool::Runtime::Tokio1)
                .wait_timeout(Some(POOL_WAIT))
                .create_timeout(Some(POOL_WAIT))
                .build()
                .map_err(|e| StoreError::Setup(e.to_string()))?;
            Db::Pg(pool)
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(&url)
                .to_owned();
            if let Some(parent) = std::path::Path::new(&path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Setup(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let pragmas = sqlite_pragmas(config);
            migrate_sqlite(path.clone(), pragmas.clone()).await?;
            let writer = sqlite_pool(&path, 1, pragmas.clone())?;
            let readers = sqlite_pool(&path, config.database.max_connections.max(1), pragmas)?;
            Db::Sqlite { writer, readers }
        };
        Ok(Store { db, rt })
    }

    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Pg(_) => "postgres",
            Db::Sqlite { .. } => "sqlite",
        }
    }

    /// Runs a query future on the store's runtime.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.rt.spawn(fut).await.map_err(|_| StoreError::Join)?
    }
}

fn sqlite_pragmas(config: &Config) -> String {
    let sync = match config.database.sqlite_synchronous {
        SqliteSynchronous::Normal => "NORMAL",
        SqliteSynchronous::Full => "FULL",
    };
    format!(
        "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;",
        config.database.sqlite_busy_timeout_ms
    )
}

fn sqlite_pool(path: &str, max: usize, pragmas: String) -> Result<Pool<SqliteConn>, StoreError> {
    let mut cfg = ManagerConfig::<SqliteConn>::default();
    cfg.custom_setup = Box::new(
        move |url: &str| -> BoxFuture<'_, ConnectionResult<SqliteConn>> {
            let pragmas = pragmas.clone();
            Box::pin(async move {
                use diesel_async::AsyncConnection;
                let mut conn = SqliteConn::establish(url).await?;
                conn.spawn_blocking(move |c| {
                    for p in pragmas.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                        c.batch_execute(p)?;
                    }
                    Ok(())
                })
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(conn)
            })
        },
    );
    let mgr = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, cfg);
    Pool::builder(mgr)
        .max_size(max)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .build()
        .map_err(|e| StoreError::Setup(e.to_string()))
}

async fn migrate_sqlite(path: String, pragmas: String) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || {
        use diesel::Connection;
        let mut c = diesel::SqliteConnection::establish(&path)
            .map_err(|e| StoreError::Setup(format!("cannot open SQLite database {path}: {e}")))?;
        for p in pragmas.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            c.batch_execute(p)?;
        }
        c.run_pending_migrations(SQLITE_MIGRATIONS)
            .map_err(|e| StoreError::Setup(format!("migration failed: {e}")))?;
        Ok(())
    })
    .await
    .map_err(|_| StoreError::Join)?
}

async fn migrate_pg(url: String) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || {
        use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
        type W = AsyncConnectionWrapper<PgConn>;
        let mut c = <W as diesel::Connection>::establish(&url)
            .map_err(|e| StoreError::Setup(format!("cannot connect to PostgreSQL: {e}")))?;
        // Several nodes may start at once: the advisory lock lets one migrate at a time.
        c.batch_execute("SELECT pg_advisory_lock(7431001)")?;
        let result = c
            .run_pending_migrations(PG_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| StoreError::Setup(format!("migration failed: {e}")));
        c.batch_execute("SELECT pg_advisory_unlock(7431001)")?;
        result
    })
    .await
    .map_err(|_| StoreError::Join)?
}

/// Current time in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Encodes a list as JSON text for a TEXT column.
pub(crate) fn to_json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn from_json_text<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}
