//! Running a short SQLite write transaction inline ([`crate::store::Store::run_quick`]): the
//! writer connection executes statements inline ([`super::Inline`]), so a transaction whose
//! connection is free completes within one poll, on whichever thread polls it.

use super::StoreError;
use diesel_async::pooled_connection::deadpool::Pool;
use std::cell::Cell;
use std::future::Future;
use std::task::{Context, Poll, Waker};

thread_local! {
    /// Set while [`crate::store::Store::run_quick`] polls its work on the calling thread.
    static INLINE: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as polling quick work until dropped.
pub(crate) struct Inline {
    was: bool,
}

impl Inline {
    pub(crate) fn begin() -> Self {
        Self {
            was: INLINE.replace(true),
        }
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        INLINE.set(self.was);
    }
}

/// Whether this thread is polling quick work inline now.
pub(crate) fn is_inline() -> bool {
    INLINE.get()
}

/// `BEGIN IMMEDIATE` if no other connection (another process: the CLI, a restore) holds the
/// database's write lock, without waiting for it: SQLite's busy timeout is 0 for the attempt
/// and restored after. `Ok(false)`: the lock is taken, nothing began.
pub(crate) fn begin_at_once(c: &mut diesel::SqliteConnection) -> diesel::QueryResult<bool> {
    use diesel::RunQueryDsl as _;
    use diesel::connection::{AnsiTransactionManager, SimpleConnection as _, TransactionManager};
    #[derive(diesel::QueryableByName)]
    struct Busy {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        timeout: i64,
    }
    let ms = diesel::sql_query("PRAGMA busy_timeout")
        .get_result::<Busy>(c)?
        .timeout;
    c.batch_execute("PRAGMA busy_timeout = 0")?;
    let began = AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE").is_ok();
    if let Err(e) = c.batch_execute(&format!("PRAGMA busy_timeout = {ms}")) {
        if began {
            let _ = AnsiTransactionManager::rollback_transaction(c);
        }
        return Err(e);
    }
    Ok(began)
}

/// Completes at its second poll: awaited within quick work it ends the inline poll, so that
/// what follows runs where [`on_writer`] sends it (the writer's thread).
pub(crate) async fn off_this_thread() {
    let mut first = true;
    std::future::poll_fn(|cx| {
        if std::mem::take(&mut first) {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
}

/// Runs a write transaction on the SQLite writer. Within quick work it is first polled here,
/// once: with the writer connection free it completes in that poll (its statements run
/// inline) and no thread is woken. Otherwise, and always outside quick work, it runs on the
/// writer's thread: it is spawned there as it stands (the connection wait it may have
/// started is polled again there), so it finishes even if its caller is dropped.
pub async fn on_writer<T: Send + 'static>(
    writer_rt: &tokio::runtime::Handle,
    tx: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let mut tx = Box::pin(tx);
    if INLINE.get() {
        let _rt = writer_rt.enter();
        if let Poll::Ready(out) = tx.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return out;
        }
    }
    writer_rt.spawn(tx).await.map_err(|_| StoreError::Join)?
}

/// How often the SQLite log is copied into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Checkpoints the SQLite write-ahead log every second, on the writer's thread (the task runs
/// on its runtime and ends with it). The writer connection does not checkpoint on commit
/// (`wal_autocheckpoint = 0`): otherwise the commit that crosses SQLite's 1,000-page mark
/// copies the log into the database and waits for the disk, and a commit made inline by an
/// HTTP worker ([`crate::store::Store::run_quick`]) would hold up every request that worker
/// serves meanwhile. A passive checkpoint never waits for readers; the log grows by at most a
/// second's writes between two.
pub(crate) async fn checkpoints(writer: Pool<super::SqliteWriteConn>) {
    use diesel::connection::SimpleConnection as _;
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Ok(mut conn) = writer.get().await else {
            continue;
        };
        let done = conn
            .spawn_blocking(|c| c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)"))
            .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "SQLite checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::store::{Db, Store};
    use std::future::Future;
    use std::task::{Context, Waker};

    async fn sqlite() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let store = Store::open(&config).await.unwrap();
        (dir, store)
    }

    /// One throttle count: a short write transaction through `Store::run_quick`.
    fn take(store: &Store, key: &str) -> impl Future<Output = ()> {
        let store = store.clone();
        let key = key.to_owned();
        async move {
            let taken = store
                .throttle_take(vec![(key, 10)], 1_000, 60, |_| Vec::new())
                .await
                .unwrap();
            assert!(taken.is_ok());
        }
    }

    async fn count(store: &Store, key: &str) -> i64 {
        let c = store
            .throttle_counters(vec![key.to_owned()], 1_000, 60)
            .await
            .unwrap();
        c.first().map_or(0, |c| c.count)
    }

    /// What `read` finds once it finds something, or 0 after five seconds.
    async fn settled<F: Future<Output = i64>>(read: impl Fn() -> F) -> i64 {
        for _ in 0..100 {
            let n = read().await;
            if n > 0 {
                return n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        0
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quick_write_on_a_free_writer_commits_within_one_poll_of_its_caller() {
        let (_dir, store) = sqlite().await;
        let mut write = Box::pin(take(&store, "free"));
        let first = write.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(first.is_ready(), "no thread hand-off was needed");
        assert_eq!(count(&store, "free").await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quick_write_dropped_while_the_writer_is_busy_still_commits_once() {
        let (_dir, store) = sqlite().await;
        let Db::Sqlite { writer, .. } = &store.db else {
            unreachable!("the default store is SQLite")
        };
        // Another transaction holds the writer connection.
        let held = writer.get().await.unwrap();
        let mut write = Box::pin(take(&store, "busy"));
        let first = write.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(first.is_pending(), "the writer was busy");
        // The request that asked for it hangs up; the writer is then free again.
        drop(write);
        drop(held);
        let n = settled(|| count(&store, "busy")).await;
        assert_eq!(n, 1, "the write finished on the writer's thread, once");
    }

    /// Rows of `throttle_counters` in the database file itself, not in the log: an
    /// `immutable` connection reads only the main file.
    fn counters_in_the_file(dir: &std::path::Path) -> i64 {
        use diesel::{Connection, RunQueryDsl, SqliteConnection, sql_query};
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let url = format!("file:{}?immutable=1", dir.join("latchkey.db").display());
        let mut c = SqliteConnection::establish(&url).unwrap();
        sql_query("SELECT count(*) AS n FROM throttle_counters")
            .load::<N>(&mut c)
            .unwrap()
            .first()
            .map_or(0, |r| r.n)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_checkpointed_by_the_writers_thread_within_seconds_of_a_write() {
        let (dir, store) = sqlite().await;
        assert_eq!(counters_in_the_file(dir.path()), 0);
        // One small write: far below the 1,000 pages at which a commit would checkpoint.
        take(&store, "checkpointed").await;
        let n = settled(|| std::future::ready(counters_in_the_file(dir.path()))).await;
        assert_eq!(n, 1, "the writer's thread copied the log into the database");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_quick_write_never_waits_on_its_callers_thread_for_another_process_lock() {
        use diesel::Connection as _;
        use diesel::connection::SimpleConnection as _;
        let (dir, store) = sqlite().await;
        // Another process (the CLI, a restore) holds the database's write lock.
        let url = dir.path().join("latchkey.db").display().to_string();
        let mut other = diesel::SqliteConnection::establish(&url).unwrap();
        other.batch_execute("BEGIN IMMEDIATE").unwrap();
        let mut write = Box::pin(take(&store, "locked"));
        let t0 = std::time::Instant::now();
        let first = write.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        // Not SQLite's busy timeout (5 s) on the HTTP worker: handed to the writer's thread.
        assert!(first.is_pending());
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t0.elapsed()
        );
        drop(write);
        other.batch_execute("COMMIT").unwrap();
        let n = settled(|| count(&store, "locked")).await;
        assert_eq!(
            n, 1,
            "the write waited for the lock on the writer's thread, then committed"
        );
    }
}
