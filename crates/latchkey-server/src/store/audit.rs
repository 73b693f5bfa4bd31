//! The audit log: security events appended to `audit_events` as a hash chain
//! ([`crate::audit::chain`]): key lifecycle, sign-ins and step-ups, factor enrolment and
//! removal, recovery-code use, refused replays and cloned keys, policy changes. Events never
//! carry secrets, codes or tokens. Appends are serialised (PostgreSQL advisory lock; SQLite's
//! single writer) so the chain has one order on every node.
//!
//! Retention (`latchkey audit prune`, or `audit.retention_days`) deletes the oldest entries
//! under the same lock and leaves a signed [`Checkpoint`] in `audit_checkpoints`, so the
//! remaining chain still verifies ([`crate::audit::chain::verify_with_checkpoints`]).

use super::schema::{audit_checkpoints, audit_events};
use super::{Store, StoreError, audit_lock_sql, now};
use crate::audit::Event;
use crate::audit::chain::{
    Checkpoint, Entry, GENESIS, Stored, entry_hash, verify_with_checkpoints,
};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

/// An event as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
}

macro_rules! append_body {
    ($conn:expr, $entry:expr) => {{
        let conn = $conn;
        let mut entry: Entry = $entry;
        diesel::sql_query(audit_lock_sql(&*conn))
            .execute(&mut *conn)
            .await?;
        let last: Option<(Option<i64>, Option<Vec<u8>>)> = audit_events::table
            .filter(audit_events::seq.is_not_null())
            .order(audit_events::seq.desc())
            .select((audit_events::seq, audit_events::hash))
            .first(&mut *conn)
            .await
            .optional()?;
        let (prev_seq, prev_hash) = match last {
            Some((Some(s), Some(h))) => (s, h),
            _ => (0, GENESIS.to_vec()),
        };
        entry.seq = prev_seq + 1;
        let hash = entry_hash(&prev_hash, &entry);
        diesel::insert_into(audit_events::table)
            .values((
                audit_events::id.eq(uuid::Uuid::now_v7().to_string()),
                audit_events::at.eq(entry.at),
                audit_events::actor.eq(&entry.actor),
                audit_events::action.eq(&entry.action),
                audit_events::target.eq(&entry.target),
                audit_events::details.eq(&entry.details),
                audit_events::seq.eq(Some(entry.seq)),
                audit_events::prev_hash.eq(Some(prev_hash)),
                audit_events::hash.eq(Some(hash)),
            ))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }};
}

/// Appends `event`, recorded at `at`, after the chain's last entry, on `conn`: call it inside
/// the write transaction of the change the event records, so both commit or neither does.
pub async fn append<C>(conn: &mut C, at: i64, event: &Event) -> Result<(), StoreError>
where
    C: AppendConn,
{
    conn.append(entry(at, event)).await?;
    for m in &event.mails {
        conn.enqueue(m).await?;
    }
    Ok(())
}

/// Appends `events` in order, as [`append`] does one: the audit entries of one change.
pub async fn append_all<C>(conn: &mut C, at: i64, events: &[Event]) -> Result<(), StoreError>
where
    C: AppendConn,
{
    for e in events {
        append(conn, at, e).await?;
    }
    Ok(())
}

fn entry(at: i64, e: &Event) -> Entry {
    Entry {
        seq: 0,
        at,
        actor: e.actor.clone(),
        action: e.action.as_str().to_owned(),
        target: e.target.clone(),
        details: e.details.to_string(),
    }
}

/// The connection types the chain can be appended on (each write connection of either
/// backend); one body, expanded per type.
pub trait AppendConn {
    fn append(
        &mut self,
        entry: Entry,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;

    /// Queues `mail` in the outbox (`store::outbox`).
    fn enqueue(
        &mut self,
        mail: &crate::audit::QueuedMail,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
}

impl AppendConn for super::PgConn {
    async fn append(&mut self, entry: Entry) -> Result<(), StoreError> {
        append_body!(self, entry)
    }

    async fn enqueue(&mut self, mail: &crate::audit::QueuedMail) -> Result<(), StoreError> {
        crate::enqueue_body!(self, mail)
    }
}

impl AppendConn for super::SqliteWriteConn {
    async fn append(&mut self, entry: Entry) -> Result<(), StoreError> {
        append_body!(self, entry)
    }

    async fn enqueue(&mut self, mail: &crate::audit::QueuedMail) -> Result<(), StoreError> {
        crate::enqueue_body!(self, mail)
    }
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

macro_rules! row_columns {
    () => {
        (
            audit_events::at,
            audit_events::actor,
            audit_events::action,
            audit_events::target,
            audit_events::details,
            audit_events::seq,
            audit_events::prev_hash,
            audit_events::hash,
        )
    };
}

fn stored(r: Row) -> Stored {
    Stored {
        entry: Entry {
            seq: r.5.unwrap_or_default(),
            at: r.0,
            actor: r.1,
            action: r.2,
            target: r.3,
            details: r.4,
        },
        prev_hash: r.6,
        hash: r.7,
    }
}

pub(crate) type CheckpointRow = (i64, Vec<u8>, i64, i64, Vec<u8>);

macro_rules! checkpoint_columns {
    () => {
        (
            audit_checkpoints::seq,
            audit_checkpoints::hash,
            audit_checkpoints::pruned,
            audit_checkpoints::created_at,
            audit_checkpoints::mac,
        )
    };
}

pub(crate) fn checkpoint(r: CheckpointRow) -> Checkpoint {
    Checkpoint {
        seq: r.0,
        hash: r.1,
        pruned: r.2,
        created_at: r.3,
        mac: r.4,
    }
}

/// Everything `latchkey audit verify` needs, read consistently.
#[derive(Debug, Clone)]
pub struct AuditSnapshot {
    /// Checkpoints of pruned entries, oldest first.
    pub checkpoints: Vec<Checkpoint>,
    /// The remaining chain, in order.
    pub chain: Vec<Stored>,
    /// Rows outside the chain (no `seq`): inserted behind Latchkey's back.
    pub unchained: i64,
}

impl Store {
    /// Appends an event that records no change of its own (a sign-in, a refused replay): one
    /// transaction holding just the entry. A change appends its event with [`append`] inside
    /// the change's transaction instead.
    pub async fn audit(&self, event: Event) -> Result<(), StoreError> {
        let db = self.db.clone();
        let entry = entry(now(), &event);
        self.run(async move { crate::with_tx!(&db, conn => conn.append(entry).await) })
            .await
    }

    /// Chains the rows written before the log became a chain (once: only while no row is
    /// chained yet, so rows inserted behind Latchkey's back later stay visible as unchained).
    pub async fn chain_legacy_audit_rows(&self) -> Result<usize, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::sql_query(audit_lock_sql(&*conn)).execute(conn).await?;
                let chained: i64 = audit_events::table
                    .filter(audit_events::seq.is_not_null())
                    .count()
                    .get_result(conn)
                    .await?;
                if chained > 0 {
                    return Ok(0);
                }
                let rows: Vec<(String, i64, String, String, String, String)> = audit_events::table
                    .order((audit_events::at.asc(), audit_events::id.asc()))
                    .select((
                        audit_events::id,
                        audit_events::at,
                        audit_events::actor,
                        audit_events::action,
                        audit_events::target,
                        audit_events::details,
                    ))
                    .load(conn)
                    .await?;
                let mut prev = GENESIS.to_vec();
                for (i, r) in rows.iter().enumerate() {
                    let entry = Entry {
                        seq: i as i64 + 1,
                        at: r.1,
                        actor: r.2.clone(),
                        action: r.3.clone(),
                        target: r.4.clone(),
                        details: r.5.clone(),
                    };
                    let hash = entry_hash(&prev, &entry);
                    diesel::update(audit_events::table.find(&r.0))
                        .set((
                            audit_events::seq.eq(Some(entry.seq)),
                            audit_events::prev_hash.eq(Some(prev.clone())),
                            audit_events::hash.eq(Some(hash.clone())),
                        ))
                        .execute(conn)
                        .await?;
                    prev = hash;
                }
                Ok(rows.len())
            })
        })
        .await
    }

    /// Every entry in chain order, and how many rows are outside the chain (no `seq`).
    pub async fn audit_chain(&self) -> Result<(Vec<Stored>, i64), StoreError> {
        let db = self.db.clone();
        let (rows, unchained): (Vec<Row>, i64) = self
            .run(async move {
                crate::with_conn!(&db, conn => {
                    let rows: Vec<Row> = audit_events::table
                        .filter(audit_events::seq.is_not_null())
                        .order(audit_events::seq.asc())
                        .select(row_columns!())
                        .load(conn)
                        .await?;
                    let unchained: i64 = audit_events::table
                        .filter(audit_events::seq.is_null())
                        .count()
                        .get_result(conn)
                        .await?;
                    Ok::<_, StoreError>((rows, unchained))
                })
            })
            .await?;
        Ok((rows.into_iter().map(stored).collect(), unchained))
    }

    /// The checkpoints left by pruning, oldest first.
    pub async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let db = self.db.clone();
        let rows: Vec<CheckpointRow> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => audit_checkpoints::table
                    .order(audit_checkpoints::seq.asc())
                    .select(checkpoint_columns!())
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(rows.into_iter().map(checkpoint).collect())
    }

    /// The checkpoints and the remaining chain as of one moment: read, and read again when a
    /// prune committed in between (no lock is held, so verifying never blocks writers).
    pub async fn audit_snapshot(&self) -> Result<AuditSnapshot, StoreError> {
        let mut checkpoints = self.audit_checkpoints().await?;
        for _ in 0..5 {
            let (chain, unchained) = self.audit_chain().await?;
            let again = self.audit_checkpoints().await?;
            if again == checkpoints {
                return Ok(AuditSnapshot {
                    checkpoints,
                    chain,
                    unchained,
                });
            }
            checkpoints = again;
        }
        Err(StoreError::Conflict(
            "the audit log kept being pruned while it was read; try again".into(),
        ))
    }

    /// Prunes the entries written before `before` (Unix seconds), oldest first, never the
    /// newest entry. In one transaction under the append lock: verifies what it is about to
    /// delete (a broken chain is refused, not laundered into a checkpoint), writes a checkpoint
    /// for the last pruned entry signed with `key` ([`crate::audit::chain::checkpoint_key`]),
    /// deletes the entries, and appends an `audit.pruned` entry by `actor`. `None` when nothing
    /// was old enough.
    pub async fn prune_audit(
        &self,
        before: i64,
        key: ring::hmac::Key,
        actor: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let db = self.db.clone();
        let actor = actor.to_owned();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::sql_query(audit_lock_sql(&*conn)).execute(&mut *conn).await?;
                let newest: Option<i64> = audit_events::table
                    .filter(audit_events::seq.is_not_null())
                    .order(audit_events::seq.desc())
                    .select(audit_events::seq)
                    .first::<Option<i64>>(&mut *conn)
                    .await
                    .optional()?
                    .flatten();
                let Some(newest) = newest else { return Ok(None) };
                let last: Option<Option<i64>> = audit_events::table
                    .filter(audit_events::seq.lt(newest))
                    .filter(audit_events::at.lt(before))
                    .order(audit_events::seq.desc())
                    .select(audit_events::seq)
                    .first(&mut *conn)
                    .await
                    .optional()?;
                let Some(Some(through)) = last else { return Ok(None) };
                let checkpoints: Vec<Checkpoint> = audit_checkpoints::table
                    .order(audit_checkpoints::seq.asc())
                    .select(checkpoint_columns!())
                    .load::<CheckpointRow>(&mut *conn)
                    .await?
                    .into_iter()
                    .map(checkpoint)
                    .collect();
                let doomed: Vec<Stored> = audit_events::table
                    .filter(audit_events::seq.le(through))
                    .order(audit_events::seq.asc())
                    .select(row_columns!())
                    .load::<Row>(&mut *conn)
                    .await?
                    .into_iter()
                    .map(stored)
                    .collect();
                if let Some(b) = verify_with_checkpoints(&checkpoints, &doomed, &key) {
                    return Err(StoreError::Corrupt(format!(
                        "the audit log is broken at entry {}: {}; refusing to prune it (see `latchkey audit verify`)",
                        b.seq, b.reason
                    )));
                }
                let Some(hash) = doomed.last().and_then(|s| s.hash.clone()) else {
                    return Ok(None);
                };
                let cp = Checkpoint::signed(&key, through, hash, doomed.len() as i64, t);
                diesel::insert_into(audit_checkpoints::table)
                    .values((
                        audit_checkpoints::seq.eq(cp.seq),
                        audit_checkpoints::hash.eq(&cp.hash),
                        audit_checkpoints::pruned.eq(cp.pruned),
                        audit_checkpoints::created_at.eq(cp.created_at),
                        audit_checkpoints::mac.eq(&cp.mac),
                    ))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(audit_events::table.filter(audit_events::seq.le(through)))
                    .execute(&mut *conn)
                    .await?;
                append(
                    &mut *conn,
                    t,
                    &Event::new(
                        actor.as_str(),
                        crate::audit::Action::AuditPruned,
                        "audit_events",
                        serde_json::json!({
                            "through_seq": through,
                            "entries": cp.pruned,
                            "before": before,
                        }),
                    ),
                )
                .await?;
                Ok(Some(cp))
            })
        })
        .await
    }

    /// Events about one target, oldest first.
    pub async fn audit_for(&self, target: &str) -> Result<Vec<AuditEvent>, StoreError> {
        let db = self.db.clone();
        let target = target.to_owned();
        let rows: Vec<(i64, String, String, String, String)> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => audit_events::table
                    .filter(audit_events::target.eq(&target))
                    .order((audit_events::seq.asc(), audit_events::at.asc()))
                    .select((
                        audit_events::at,
                        audit_events::actor,
                        audit_events::action,
                        audit_events::target,
                        audit_events::details,
                    ))
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEvent {
                at: r.0,
                actor: r.1,
                action: r.2,
                target: r.3,
                details: r.4,
            })
            .collect())
    }
}
