//! Scheduled backups' runs (`backup::schedule`): one row per interval, inserted by the node
//! that claims it (the others see the conflict and skip), finished with its outcome.

use super::schema::backup_runs as br;
use super::{Store, StoreError};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use serde::Serialize;

/// A run `running` for this long is taken to have died with its node.
const STALE_SECS: i64 = 3600;

/// One scheduled backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupRun {
    pub slot: i64,
    pub node: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `running`, `ok` (written and verified) or `failed`.
    pub status: String,
    pub file: Option<String>,
    pub bytes: Option<i64>,
    pub rows: Option<i64>,
    pub error: Option<String>,
}

/// How a run ended.
pub struct Finished {
    pub ok: bool,
    pub file: Option<String>,
    pub bytes: Option<i64>,
    pub rows: Option<i64>,
    pub error: Option<String>,
}

impl Store {
    /// Claims interval `slot` for `node`: true when this call inserted it, or took over a run
    /// that has been `running` for over an hour (its node died).
    pub async fn claim_backup(&self, slot: i64, node: &str, now: i64) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let node = node.to_owned();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::insert_into(br::table)
                    .values((
                        br::slot.eq(slot),
                        br::node.eq(&node),
                        br::started_at.eq(now),
                        br::status.eq("running"),
                    ))
                    .on_conflict_do_nothing()
                    .execute(&mut *conn)
                    .await?;
                if n == 1 {
                    return Ok(true);
                }
                let taken = diesel::update(
                    br::table
                        .find(slot)
                        .filter(br::status.eq("running"))
                        .filter(br::started_at.lt(now - STALE_SECS)),
                )
                .set((br::node.eq(&node), br::started_at.eq(now)))
                .execute(&mut *conn)
                .await?;
                Ok(taken == 1)
            })
        })
        .await
    }

    pub async fn finish_backup(&self, slot: i64, now: i64, f: Finished) -> Result<(), StoreError> {
        let db = self.db.clone();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::update(br::table.find(slot))
                    .set((
                        br::finished_at.eq(now),
                        br::status.eq(if f.ok { "ok" } else { "failed" }),
                        br::file.eq(&f.file),
                        br::bytes.eq(f.bytes),
                        br::rows.eq(f.rows),
                        br::error.eq(&f.error),
                    ))
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// The newest runs first.
    pub async fn backup_runs(&self, limit: i64) -> Result<Vec<BackupRun>, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            type Row = (i64, String, i64, Option<i64>, String, Option<String>, Option<i64>, Option<i64>, Option<String>);
            let rows: Vec<Row> = crate::with_conn!(&db, conn => br::table
                .order(br::slot.desc())
                .limit(limit)
                .select((br::slot, br::node, br::started_at, br::finished_at, br::status, br::file, br::bytes, br::rows, br::error))
                .load(&mut *conn)
                .await?);
            Ok(rows
                .into_iter()
                .map(|r| BackupRun {
                    slot: r.0,
                    node: r.1,
                    started_at: r.2,
                    finished_at: r.3,
                    status: r.4,
                    file: r.5,
                    bytes: r.6,
                    rows: r.7,
                    error: r.8,
                })
                .collect())
        })
        .await
    }

    /// When the newest successful run finished.
    pub async fn last_backup(&self) -> Result<Option<i64>, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            let t: Option<Option<i64>> = crate::with_conn!(&db, conn => br::table
                .filter(br::status.eq("ok"))
                .order(br::finished_at.desc())
                .select(br::finished_at)
                .first(&mut *conn)
                .await
                .optional()?);
            Ok(t.flatten())
        })
        .await
    }
}
