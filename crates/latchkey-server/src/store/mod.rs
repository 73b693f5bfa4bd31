//! Storage: one `Store` over either database, with the queries for each artifact in its own
//! module (`labs`, `users`, `clients`, `sessions`, `flows`, `codes`, `grants`, `consents`,
//! `keys`). Nothing outside this module speaks to diesel.
//!
//! Both backends run the same query code: [`with_conn!`] expands one body once per connection
//! type, and backend differences live in `migrations/{sqlite,postgres}`. SQLite gets one
//! writer connection (SQLite serialises writes anyway; `BEGIN IMMEDIATE` avoids upgrade
//! deadlocks) and a pool of readers, in WAL mode. Every SQLite write transaction runs on one
//! dedicated thread whose connection executes statements inline ([`Inline`]), so transactions
//! run back to back without a thread hand-off per statement or between transactions.
//!
//! Every query runs on the service's multi-threaded runtime (`Store::run`), never on an
//! actix worker's single-threaded runtime: a cancelled SQLite query must be able to block in
//! place, and PostgreSQL connection drivers must live on a runtime that outlives any worker.
//! The exceptions are on SQLite, and run within one poll of the caller's task, which nothing
//! can cancel halfway: [`quick_read!`], a short read run inline; and [`Store::run_quick`], the
//! short writes of a sign-in and a code exchange, run inline when the writer connection is
//! free and otherwise handed on whole to the store's runtime ([`quick`]). The writer's log
//! is checkpointed by its own thread, never by a commit ([`quick::checkpoints`]).

pub mod account_links;
pub mod admin;
pub mod alerts;
pub mod audit;
pub mod backup;
pub mod backup_runs;
pub mod client_keys;
pub mod clients;
pub mod codes;
pub mod consents;
pub mod device_authorizations;
pub mod dpop;
pub mod factors;
pub mod flows;
pub mod grants;
pub mod grants_features;
pub mod invitations;
pub mod keys;
pub mod labs;
pub mod logout_deliveries;
pub mod outbox;
pub mod personal;
pub mod policy;
pub mod pushed;
pub mod quick;
pub mod refresh_reads;
pub mod refresh_rotation;
pub mod refresh_spends;
pub mod retention;
pub mod schema;
pub mod secrets;
pub mod sessions;
pub mod throttle;
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
/// The one SQLite connection that writes; see [`Inline`].
pub type SqliteWriteConn = SyncConnectionWrapper<diesel::SqliteConnection, Inline>;
pub type PgConn = AsyncPgConnection;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// How long a request waits for a database connection before failing.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// SQL each backend runs to serialise a critical section inside a transaction (PostgreSQL:
/// an advisory lock; SQLite: `BEGIN IMMEDIATE` already holds the write lock).
pub trait Dialect {
    const KEY_LOCK: &'static str;
    /// Serialises appends to the audit chain.
    const AUDIT_LOCK: &'static str;
    /// Serialises making the first system administrator (check, then insert).
    const BOOTSTRAP_LOCK: &'static str;
}
impl Dialect for PgConn {
    const KEY_LOCK: &'static str = "SELECT pg_advisory_xact_lock(7431002)";
    const AUDIT_LOCK: &'static str = "SELECT pg_advisory_xact_lock(7431003)";
    const BOOTSTRAP_LOCK: &'static str = "SELECT pg_advisory_xact_lock(7431004)";
}
impl Dialect for SqliteConn {
    const KEY_LOCK: &'static str = "SELECT 1";
    const AUDIT_LOCK: &'static str = "SELECT 1";
    const BOOTSTRAP_LOCK: &'static str = "SELECT 1";
}
impl Dialect for SqliteWriteConn {
    const KEY_LOCK: &'static str = "SELECT 1";
    const AUDIT_LOCK: &'static str = "SELECT 1";
    const BOOTSTRAP_LOCK: &'static str = "SELECT 1";
}
pub(crate) fn key_lock_sql<C: Dialect>(_: &C) -> &'static str {
    C::KEY_LOCK
}
pub(crate) fn bootstrap_lock_sql<C: Dialect>(_: &C) -> &'static str {
    C::BOOTSTRAP_LOCK
}
pub(crate) fn audit_lock_sql<C: Dialect>(_: &C) -> &'static str {
    C::AUDIT_LOCK
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
        writer: Pool<SqliteWriteConn>,
        /// The dedicated thread every SQLite write transaction runs on.
        writer_rt: tokio::runtime::Handle,
        readers: Pool<SqliteConn>,
        /// Readers for short lookups on the hottest paths (the refresh fast path's one
        /// statement, a sign-in's reads: [`quick_read!`]): they run inline on the calling
        /// task's thread ([`Inline`]), without the hand-off to a blocking thread and back that
        /// a `readers` call costs.
        quick_readers: Pool<SqliteWriteConn>,
        /// Ends the writer's thread when the last clone of the store is dropped.
        _writer_life: std::sync::Arc<tokio::sync::oneshot::Sender<()>>,
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
    /// A role named in the request is not defined in the lab (the caller's input is wrong,
    /// not the path).
    #[error("no role `{0}` in this lab")]
    NoSuchRole(String),
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

/// Runs `$body` (returning `Result<T, StoreError>`: one short indexed read), with `$conn`
/// bound to a read connection, where it costs least. On SQLite it runs inline on the calling
/// thread, on a quick reader ([`Inline`]): no hand-off to the store's runtime, to a blocking
/// thread and back. Under load each hand-off waits for its thread to be scheduled, and the
/// request's own HTTP worker then queues it again behind everything else it is serving: a
/// sign-in's reads (its flow, session, user, throttle counters) would wait for the CPU four
/// times each. On PostgreSQL it runs on the store's runtime (`Store::run`), whose tasks drive
/// the connections. Called from `Store` methods (`$store`: `self`).
#[macro_export]
macro_rules! quick_read {
    ($store:expr, $conn:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite { quick_readers, .. } => {
                let mut obj = quick_readers.get().await?;
                let $conn: &mut $crate::store::SqliteWriteConn = &mut obj;
                $body
            }
            $crate::store::Db::Pg(pool) => {
                let pool = pool.clone();
                $store
                    .run(async move {
                        let mut obj = pool.get().await?;
                        let $conn: &mut $crate::store::PgConn = &mut obj;
                        $body
                    })
                    .await
            }
        }
    };
}

/// Runs `$body` (returning `Result<T, StoreError>`) in a write transaction: `BEGIN IMMEDIATE`
/// on the SQLite writer (on its dedicated thread, or inline within [`Store::run_quick`] when
/// the writer is free: [`quick::on_writer`]), a plain transaction on PostgreSQL.
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
            $crate::store::Db::Sqlite {
                writer, writer_rt, ..
            } => {
                let writer = writer.clone();
                $crate::store::quick::on_writer(writer_rt, async move {
                    let mut obj = writer.get().await?;
                    let c: &mut $crate::store::SqliteWriteConn = &mut obj;
                    $crate::store::sqlite_write_tx(c, async move |$conn| $body).await
                })
                .await
            }
        }
    };
}

/// An SQLite pool of connection type `$c` (readers, or the inline writer).
macro_rules! sqlite_pool {
    ($c:ty, $path:expr, $max:expr, $pragmas:expr) => {{
        let pragmas: String = $pragmas;
        let mut cfg = ManagerConfig::<$c>::default();
        // A local file cannot drop like a network connection: skip the `SELECT 1` round trip
        // that verified recycling adds to every checkout.
        cfg.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
        cfg.custom_setup =
            Box::new(move |url: &str| <$c as SqliteSetup>::open(url, pragmas.clone()));
        let mgr = AsyncDieselConnectionManager::<$c>::new_with_config($path, cfg);
        Pool::builder(mgr)
            .max_size($max)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Setup(e.to_string()))
    }};
}

#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    /// The refresh fast path's writes, committed in groups.
    spends: refresh_spends::SpendQueue,
    rt: tokio::runtime::Handle,
    /// Counts the committed changes, made through this store, that can end an access token's
    /// grant or change what UserInfo says of its user (revocations, logouts, disabled users,
    /// e-mail changes): the token read cache (`crate::token::access`) trusts nothing it saw
    /// before the last one.
    access_epoch: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    /// Connects, applies pending migrations, and returns the store. Must be called from within
    /// a multi-threaded tokio runtime, which then runs every query.
    pub async fn open(config: &Config) -> Result<Store, StoreError> {
        let url = config.database_url();
        let rt = tokio::runtime::Handle::current();
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            migrate_pg(url.clone()).await?;
            // Checkouts skip the `SELECT 1` that verified recycling sends first (a round trip
            // and a statement on every checkout: one of a refresh's three). A connection whose
            // server went away is not handed out once its driver has seen the socket close:
            // the pool discards at checkout a closed connection (or one left inside a
            // transaction) and opens another. Right after the server ends its connections (a
            // restart), a request can still draw one not yet seen closed and fail once.
            let mut cfg = ManagerConfig::<PgConn>::default();
            cfg.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
            let mgr = AsyncDieselConnectionManager::<PgConn>::new_with_config(url, cfg);
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
            // The writer never checkpoints on commit: `checkpoints` does, on its thread.
            let writer = sqlite_pool!(
                SqliteWriteConn,
                &path,
                1,
                format!("{pragmas} PRAGMA wal_autocheckpoint = 0;")
            )?;
            // One per thread that may read inline at the same moment: the HTTP workers and
            // the store's runtime (a quick read never waits while it holds its connection).
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let quick_readers = sqlite_pool!(
                SqliteWriteConn,
                &path,
                cores + config.workers(),
                pragmas.clone()
            )?;
            let readers = sqlite_pool!(
                SqliteConn,
                &path,
                config.database.max_connections.max(1),
                pragmas
            )?;
            let (writer_rt, life) = writer_runtime()?;
            writer_rt.spawn(quick::checkpoints(writer.clone()));
            Db::Sqlite {
                writer,
                writer_rt,
                readers,
                quick_readers,
                _writer_life: std::sync::Arc::new(life),
            }
        };
        let spends = refresh_spends::SpendQueue::start(&db);
        Ok(Store {
            db,
            spends,
            rt,
            access_epoch: Default::default(),
        })
    }

    /// The current access epoch: read it *before* the queries whose answer a cache keeps.
    pub(crate) fn access_epoch(&self) -> u64 {
        self.access_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A handle on the access epoch, for a task that must move it itself.
    pub(crate) fn access_epoch_handle(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.access_epoch.clone()
    }

    /// `(pool, open, idle, max)` of each connection pool, for `/metrics`.
    pub fn pool_status(&self) -> Vec<(&'static str, usize, usize, usize)> {
        let row = |name, s: deadpool::Status| (name, s.size, s.available, s.max_size);
        match &self.db {
            Db::Pg(p) => vec![row("postgres", p.status())],
            Db::Sqlite {
                writer,
                readers,
                quick_readers,
                ..
            } => vec![
                row("sqlite_writer", writer.status()),
                row("sqlite_readers", readers.status()),
                row("sqlite_quick_readers", quick_readers.status()),
            ],
        }
    }

    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Pg(_) => "postgres",
            Db::Sqlite { .. } => "sqlite",
        }
    }

    /// [`Store::run`] for a change that can end grants or alter a user's claims: the access
    /// epoch moves once it has committed (or failed: a needless move only costs a re-check),
    /// never before, so a check that read the database before the commit holds an older epoch
    /// and its cached answer is discarded.
    ///
    /// The epoch moves inside the spawned task, so it moves even when the caller is dropped
    /// before the change is done (a client that hung up on `/revoke`): the change commits
    /// either way, and the cache must not outlive it.
    pub(crate) async fn run_access_change<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let epoch = self.access_epoch.clone();
        self.run(async move {
            let out = fut.await;
            epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            out
        })
        .await
    }

    /// Runs a query future on the store's runtime.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.rt.spawn(fut).await.map_err(|_| StoreError::Join)?
    }

    /// [`Store::run`] for the short writes of a sign-in and a code exchange (a throttle
    /// count, a session, a flow's step, a code, a token's grant). On SQLite the work is
    /// first polled once on the calling thread, in the store runtime's context, with its
    /// write transactions run inline when the writer connection is free ([`with_tx!`]): a
    /// transaction of a few statements then costs tens of microseconds of this thread, not
    /// four thread hand-offs (to the store's runtime, to the writer's thread and back), each
    /// of which, under load, waits for its thread to be scheduled and then for the request's
    /// HTTP worker to come back to it behind everything else it serves.
    ///
    /// Whatever does not finish in that one poll (the writer is busy with another
    /// transaction, a read waits for a blocking thread) goes on, as it is, on the store's
    /// runtime, exactly as [`Store::run`] would have run it: the work is never dropped halfway
    /// (a poll cannot be interrupted, and a spawned task outlives its caller). On PostgreSQL
    /// this is [`Store::run`].
    pub(crate) async fn run_quick<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        if matches!(self.db, Db::Pg(_)) {
            return self.run(fut).await;
        }
        let mut fut = Box::pin(fut);
        let first = {
            let _rt = self.rt.enter();
            let _inline = quick::Inline::begin();
            fut.as_mut()
                .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
        };
        match first {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => self.run(fut).await,
        }
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

/// Opening an SQLite connection of either kind with the configured PRAGMAs.
trait SqliteSetup: Sized {
    fn open(url: &str, pragmas: String) -> BoxFuture<'_, ConnectionResult<Self>>;
}

impl<S> SqliteSetup for SyncConnectionWrapper<diesel::SqliteConnection, S>
where
    S: diesel_async::sync_connection_wrapper::SpawnBlocking + Send + 'static,
    SyncConnectionWrapper<diesel::SqliteConnection, S>: diesel_async::AsyncConnection,
{
    fn open(url: &str, pragmas: String) -> BoxFuture<'_, ConnectionResult<Self>> {
        Box::pin(async move {
            use diesel_async::AsyncConnection;
            let mut conn = Self::establish(url).await?;
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
    }
}

/// A single-threaded runtime on its own thread, for SQLite write transactions; the thread
/// ends when the returned sender is dropped.
fn writer_runtime() -> Result<(tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>), StoreError>
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Setup(format!("cannot start the SQLite writer: {e}")))?;
    let handle = rt.handle().clone();
    let (life, end) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || {
            let _ = rt.block_on(end);
        })
        .map_err(|e| StoreError::Setup(format!("cannot start the SQLite writer: {e}")))?;
    Ok((handle, life))
}

/// The newest migration this build carries (its version, e.g. `20261203000020`).
pub fn latest_migration(sqlite: bool) -> String {
    use diesel::migration::MigrationSource;
    let versions: Vec<String> = if sqlite {
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
            .map(|m| m.iter().map(|m| m.name().version().to_string()).collect())
            .unwrap_or_default()
    } else {
        MigrationSource::<diesel::pg::Pg>::migrations(&PG_MIGRATIONS)
            .map(|m| m.iter().map(|m| m.name().version().to_string()).collect())
            .unwrap_or_default()
    };
    versions.into_iter().max().unwrap_or_default()
}

#[derive(diesel::QueryableByName)]
struct SchemaVersion {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    version: Option<String>,
}

impl Store {
    /// The newest migration applied to the database (a round trip: it also shows the
    /// database answers).
    pub async fn schema_version(&self) -> Result<Option<String>, StoreError> {
        use diesel_async::RunQueryDsl as _;
        let db = self.db.clone();
        self.run(async move {
            let row: SchemaVersion = crate::with_conn!(&db, conn => diesel::sql_query(
                "SELECT MAX(version) AS version FROM __diesel_schema_migrations",
            )
            .get_result(conn)
            .await?);
            Ok(row.version)
        })
        .await
    }

    /// Whether the database is SQLite.
    pub fn is_sqlite(&self) -> bool {
        matches!(self.db, Db::Sqlite { .. })
    }
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
pub(crate) fn to_json_text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn from_json_text<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Runs a connection's "blocking" work inline. Used by the SQLite writer, whose every
/// transaction runs on a dedicated single-threaded runtime (`Store::writer_rt`): consecutive
/// write transactions then run back to back on one thread, with no thread hand-off per
/// statement or between transactions (thread wake-ups, not SQLite, limited write throughput);
/// and by the quick readers, for single indexed lookups of tens of microseconds, which would
/// cost more in two thread hand-offs than they block the calling worker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inline;

impl diesel_async::sync_connection_wrapper::SpawnBlocking for Inline {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>,
    >
    where
        R: Send + 'static,
    {
        let r = task();
        Box::pin(std::future::ready(Ok(r)))
    }

    fn get_runtime() -> Self {
        Inline
    }
}

/// `BEGIN IMMEDIATE` … `COMMIT` on the writer (diesel-async offers `immediate_transaction`
/// only for its tokio spawner). Another process (the CLI) may write to the same file, so the
/// write lock is taken up front rather than upgraded.
pub(crate) async fn sqlite_write_tx<R, F>(conn: &mut SqliteWriteConn, f: F) -> Result<R, StoreError>
where
    F: AsyncFnOnce(&mut SqliteWriteConn) -> Result<R, StoreError>,
{
    use diesel::connection::AnsiTransactionManager;
    use diesel_async::TransactionManager as _;
    type Tm = diesel_async::sync_connection_wrapper::SyncTransactionManagerWrapper<
        AnsiTransactionManager,
    >;
    // Within quick work, on an HTTP worker: the write lock only if no other process holds it
    // (waiting for it there would stall every request the worker serves); otherwise this
    // transaction goes on, and waits, on the writer's thread ([`quick::on_writer`]).
    let inline = quick::is_inline();
    let began = inline && conn.spawn_blocking(quick::begin_at_once).await?;
    if !began {
        if inline {
            quick::off_this_thread().await;
        }
        conn.spawn_blocking(|c| {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        })
        .await?;
    }
    match f(&mut *conn).await {
        Ok(v) => {
            Tm::commit_transaction(conn).await?;
            Ok(v)
        }
        Err(e) => {
            let _ = Tm::rollback_transaction(conn).await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::{Connection, RunQueryDsl, SqliteConnection, sql_query};

    #[derive(diesel::QueryableByName)]
    struct Used {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        used: i32,
    }

    /// `.cargo/config.toml` builds SQLite with `SQLITE_ENABLE_QPSG`: without it every diesel
    /// `.first()` (a bound `LIMIT`) re-prepares its statement on each execution.
    #[test]
    fn sqlite_is_built_with_a_stable_query_planner() -> Result<(), Box<dyn std::error::Error>> {
        let mut c = SqliteConnection::establish(":memory:")?;
        let rows: Vec<Used> =
            sql_query("SELECT sqlite_compileoption_used('ENABLE_QPSG') AS used").load(&mut c)?;
        assert_eq!(rows.first().map(|r| r.used), Some(1));
        Ok(())
    }
}
