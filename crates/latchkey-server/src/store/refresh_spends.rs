//! The refresh fast path's write, in group commits: spend the presented token and store its
//! successor, only if the token is unspent and its grant live.
//!
//! A refresh's write is small; its commit's fixed cost (on SQLite `BEGIN IMMEDIATE`, the WAL
//! frames and wal-index update, a share of the checkpoints, all on the one writer; on
//! PostgreSQL a statement's executor set-up and a WAL flush, `fdatasync`, per commit) outweighed
//! the write itself. Spends wait in a queue instead, and one task per store takes every spend
//! waiting (up to [`MAX_BATCH`]) into one commit: one immediate transaction on the SQLite
//! writer, one statement on PostgreSQL. Each spend is answered only after that commit: as
//! durable as a transaction each (the database's own durability settings apply to it). No
//! spend waits for company: a batch is whatever queued while the previous one ran, so an idle
//! store commits a lone spend at once.
//!
//! The spends in a batch are independent conditional writes; two spends of one token in a
//! batch have one winner, the other finding the token spent. Should a batch fail, every spend
//! in it gets a server error, as when its own transaction failed: a failed transaction or
//! statement spent nothing (a connection lost after the commit leaves the tokens spent, and a
//! client's retry with one is then reuse, as it was with a transaction per refresh). On
//! PostgreSQL a statement the server refused is retried spend by spend, and up to
//! [`PG_BATCHES`] batches run at once, so that one token's trouble (a deadlock, a row lock held
//! elsewhere) stays that token's.

use super::{Db, PgConn, Pool, SqliteWriteConn, StoreError};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Binary, Text};
use tokio::sync::{mpsc, oneshot};

/// At most this many spends commit together (a bound on one transaction's length, so that the
/// SQLite writer's other transactions wait for it about a millisecond at most).
const MAX_BATCH: usize = 64;

/// PostgreSQL batches in flight at once, each on its own connection: a batch held up (a row
/// lock another transaction holds on one of its tokens) holds up its own spends only.
const PG_BATCHES: usize = 2;

/// Spends waiting beyond this many make their senders wait.
const QUEUE: usize = 1024;

/// One fast-path write: spend `old` and store `new` in grant `gid`'s family, at `t`.
pub(super) struct Spend {
    pub old: Vec<u8>,
    pub new: Vec<u8>,
    pub gid: String,
    pub t: i64,
}

struct Job {
    spend: Spend,
    done: oneshot::Sender<Result<bool, StoreError>>,
}

/// The queue in front of the group commits.
#[derive(Clone)]
pub struct SpendQueue(mpsc::Sender<Job>);

impl SpendQueue {
    /// Starts the group-commit task: on the SQLite writer's runtime (it ends with that runtime),
    /// or on the current runtime for PostgreSQL (it ends when the last queue handle is dropped).
    pub(super) fn start(db: &Db) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
        match db {
            Db::Sqlite {
                writer, writer_rt, ..
            } => {
                let writer = writer.clone();
                writer_rt.spawn(async move {
                    let mut jobs = Vec::with_capacity(MAX_BATCH);
                    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
                        let jobs = std::mem::take(&mut jobs);
                        survive(answer(jobs, async |spends| {
                            commit_sqlite(&writer, spends).await
                        }))
                        .await;
                    }
                });
            }
            Db::Pg(pool) => {
                let pool = pool.clone();
                let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(PG_BATCHES));
                tokio::spawn(async move {
                    let mut jobs = Vec::with_capacity(MAX_BATCH);
                    while let Ok(slot) = slots.clone().acquire_owned().await
                        && rx.recv_many(&mut jobs, MAX_BATCH).await > 0
                    {
                        let (jobs, pool) = (std::mem::take(&mut jobs), pool.clone());
                        tokio::spawn(async move {
                            survive(answer(jobs, async |spends| commit_pg(&pool, spends).await))
                                .await;
                            drop(slot);
                        });
                    }
                });
            }
        }
        SpendQueue(tx)
    }

    /// Spends in the next group commit: whether the token was spent (false: not unspent, not
    /// of that grant, or the grant not live), answered once the commit is durable.
    pub(super) async fn spend(&self, spend: Spend) -> Result<bool, StoreError> {
        let (done, answer) = oneshot::channel();
        self.0
            .send(Job { spend, done })
            .await
            .map_err(|_| StoreError::Join)?;
        answer.await.map_err(|_| StoreError::Join)?
    }
}

/// Runs one batch; should it panic, its spends get an error (their answers are dropped) and
/// the task goes on with the next batch, rather than leaving every later refresh unanswered.
async fn survive(batch: impl std::future::Future<Output = ()>) {
    use futures_util::FutureExt;
    if std::panic::AssertUnwindSafe(batch)
        .catch_unwind()
        .await
        .is_err()
    {
        tracing::error!("a group commit of refresh tokens panicked");
    }
}

/// What a batch's commit says of each spend, in order: spent or not, or its own error.
type Outcomes = Vec<Result<bool, StoreError>>;

/// Commits one batch with `commit` and answers every job in it.
async fn answer(
    jobs: Vec<Job>,
    commit: impl AsyncFnOnce(Vec<Spend>) -> Result<Outcomes, StoreError>,
) {
    let (spends, done): (Vec<Spend>, Vec<_>) = jobs.into_iter().map(|j| (j.spend, j.done)).unzip();
    match commit(spends).await {
        Ok(outcomes) => {
            for (done, outcome) in done.into_iter().zip(outcomes) {
                let _ = done.send(outcome);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, spends = done.len(), "a group commit of refresh tokens failed");
            let message = e.to_string();
            for done in done {
                let _ = done.send(Err(batch_failed(&message)));
            }
        }
    }
}

/// The error every spend of a failed batch gets (the original cannot be cloned).
fn batch_failed(message: &str) -> StoreError {
    use diesel::result::{DatabaseErrorKind, Error};
    StoreError::Db(Error::DatabaseError(
        DatabaseErrorKind::Unknown,
        Box::new(format!("group commit of refresh tokens failed: {message}")),
    ))
}

/// One batch on SQLite: one immediate transaction on the writer, each spend a conditional
/// write ([`sqlite_spend`]) in order.
async fn commit_sqlite(
    writer: &Pool<SqliteWriteConn>,
    spends: Vec<Spend>,
) -> Result<Outcomes, StoreError> {
    let mut obj = writer.get().await?;
    let c: &mut SqliteWriteConn = &mut obj;
    let spent: Vec<bool> = c
        .spawn_blocking(move |c| {
            Ok(c.immediate_transaction::<_, StoreError, _>(|c| {
                spends
                    .iter()
                    .map(|s| sqlite_spend(c, &s.old, &s.new, &s.gid, s.t))
                    .collect()
            }))
        })
        .await??;
    Ok(spent.into_iter().map(Ok).collect())
}

/// One batch on PostgreSQL: one statement ([`PgSpendAll`]). Should the server refuse it (a
/// deadlock with another transaction, say one deleting a client's grants), it applied nothing,
/// and each spend is tried on its own, so that one spend's trouble is that spend's only. A
/// statement whose outcome is unknown (the connection lost) is not tried again: it may have
/// committed.
async fn commit_pg(pool: &Pool<PgConn>, spends: Vec<Spend>) -> Result<Outcomes, StoreError> {
    use diesel::result::{DatabaseErrorKind, Error};
    let all = pg_spend_all(&mut *pool.get().await?, &spends).await;
    match all {
        Err(StoreError::Db(Error::DatabaseError(kind, _)))
            if spends.len() > 1 && !matches!(kind, DatabaseErrorKind::UnableToSendCommand) =>
        {
            let mut c = pool.get().await?;
            let mut outcomes = Vec::with_capacity(spends.len());
            for s in &spends {
                let one = pg_spend_all(&mut c, std::slice::from_ref(s)).await;
                outcomes.push(one.map(|spent| spent[0]));
            }
            Ok(outcomes)
        }
        other => Ok(other?.into_iter().map(Ok).collect()),
    }
}

/// [`PgSpendAll`] over `spends`, in the order of the tokens' hashes (so that batches on two
/// nodes lock shared rows in one order): whether each was spent.
async fn pg_spend_all(c: &mut PgConn, spends: &[Spend]) -> Result<Vec<bool>, StoreError> {
    use diesel_async::RunQueryDsl;
    let mut order: Vec<&Spend> = spends.iter().collect();
    order.sort_by(|a, b| a.old.cmp(&b.old));
    let all = PgSpendAll {
        old: order.iter().map(|s| s.old.clone()).collect(),
        new: order.iter().map(|s| s.new.clone()).collect(),
        gid: order.iter().map(|s| s.gid.clone()).collect(),
        t: order.iter().map(|s| s.t).collect(),
    };
    let stored: std::collections::HashSet<Vec<u8>> =
        all.load::<Vec<u8>>(c).await?.into_iter().collect();
    Ok(spends.iter().map(|s| stored.contains(&s.new)).collect())
}

/// Spends every `old[i]` and stores `new[i]` in grant `gid[i]`'s family at `t[i]`, in one
/// statement (atomic, without a transaction held across round trips), each only while `old[i]`
/// is unspent and the grant live; returns the hashes of the tokens it stored. A concurrent use
/// of a token on another node waits on the row lock and then finds it spent; a token twice in
/// the batch is spent once (an `UPDATE … FROM` updates a row once). The grant is checked by a
/// scalar subquery, which PostgreSQL runs per token by the primary key: as an `EXISTS` it was
/// planned as a hash join over every grant.
struct PgSpendAll {
    old: Vec<Vec<u8>>,
    new: Vec<Vec<u8>>,
    gid: Vec<String>,
    t: Vec<i64>,
}

impl QueryId for PgSpendAll {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for PgSpendAll {
    type SqlType = Binary;
}

impl QueryFragment<Pg> for PgSpendAll {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Planned at each execution, never as a cached generic plan: that plan is chosen with
        // the statistics of the moment and an unknown batch size, and one chosen while the
        // table was small (a new database) scanned every refresh token for each batch long
        // after the table had grown. Planned with the batch in hand, the join looks each token
        // up by its key (planning costs some 0.1 ms per batch, not per refresh).
        out.unsafe_to_cache_prepared();
        out.push_sql("WITH i AS (SELECT * FROM unnest(");
        out.push_bind_param::<Array<Binary>, _>(&self.old)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Binary>, _>(&self.new)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.gid)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.t)?;
        out.push_sql(
            ") AS i(old, new, gid, t)), \
             spent AS (UPDATE refresh_tokens r SET consumed_at = i.t FROM i \
               WHERE r.token_hash = i.old AND r.consumed_at IS NULL AND r.grant_id = i.gid \
               AND (SELECT g.revoked_at IS NULL AND g.expires_at > i.t \
                 FROM grants g WHERE g.id = i.gid) \
               RETURNING i.new, i.gid, i.t) \
             INSERT INTO refresh_tokens (token_hash, grant_id, created_at) \
             SELECT new, gid, t FROM spent RETURNING token_hash",
        );
        Ok(())
    }
}

/// One spend inside the batch's transaction: spends `old` and stores `new` only if `old` is
/// unspent and belongs to grant `gid`, and `gid` is live at `t`.
fn sqlite_spend(
    c: &mut diesel::SqliteConnection,
    old: &[u8],
    new: &[u8],
    gid: &str,
    t: i64,
) -> Result<bool, StoreError> {
    use super::schema::{grants, refresh_tokens as rt};
    use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, RunQueryDsl};
    let live = grants::table
        .find(gid)
        .filter(grants::revoked_at.is_null())
        .filter(grants::expires_at.gt(t))
        .select(grants::id)
        .first::<String>(c)
        .optional()?
        .is_some();
    if !live {
        return Ok(false);
    }
    let spent = diesel::update(
        rt::table
            .find(old)
            .filter(rt::grant_id.eq(gid))
            .filter(rt::consumed_at.is_null()),
    )
    .set(rt::consumed_at.eq(Some(t)))
    .execute(c)?;
    if spent != 1 {
        return Ok(false);
    }
    diesel::insert_into(rt::table)
        .values((
            rt::token_hash.eq(new),
            rt::grant_id.eq(gid),
            rt::created_at.eq(t),
        ))
        .execute(c)?;
    Ok(true)
}
