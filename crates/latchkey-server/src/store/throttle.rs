//! Throttle counters: one row per budget and fixed window (`throttle_counters`), shared by
//! every node. The rules (which budgets, how large) are `signin::throttle`'s; this module only
//! counts. Taking is one transaction whose upserts hold each row's lock, so parallel attempts
//! on any node each see the count the ones before them left.

use super::schema::{auth_failures, throttle_counters as tc};
use super::{Store, StoreError};
use crate::audit::Event;
use diesel::{BoolExpressionMethods, ExpressionMethods, QueryDsl, TextExpressionMethods};
use diesel_async::RunQueryDsl;

/// A budget's counter in its current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub key: String,
    /// Attempts counted in this window, this one included when just taken.
    pub count: i64,
    /// When the window began; it ends `window` seconds later.
    pub window_start: i64,
}

impl Store {
    /// The live counters (window not over at `now`) of `keys`; keys without one are absent.
    pub async fn throttle_counters(
        &self,
        keys: Vec<String>,
        now: i64,
        window: i64,
    ) -> Result<Vec<Counter>, StoreError> {
        let rows: Vec<(String, i64, i64)> = crate::quick_read!(self, conn => Ok(tc::table
            .filter(tc::key.eq_any(&keys))
            .filter(tc::window_start.gt(now - window))
            .select((tc::key, tc::count, tc::window_start))
            .load(conn)
            .await?))?;
        Ok(rows
            .into_iter()
            .map(|(key, count, window_start)| Counter {
                key,
                count,
                window_start,
            })
            .collect())
    }

    /// Counts one attempt against each of `keys` (each with its limit; a window that is over
    /// starts again at `now`), in order, or against none: the first counter already at its
    /// limit stops the attempt, the ones counted before it are given back in the same
    /// transaction, and it is returned as `Err`. Each increment is conditional on the row
    /// locked by the update itself, so parallel attempts on any node never take a counter past
    /// its limit. `on_spent` makes the audit entries for the counters this attempt brought to
    /// their limit (once per window: later attempts stop at them); they commit with it.
    pub async fn throttle_take(
        &self,
        keys: Vec<(String, i64)>,
        now: i64,
        window: i64,
        on_spent: impl FnOnce(&[Counter]) -> Vec<Event> + Send + 'static,
    ) -> Result<Result<Vec<Counter>, Counter>, StoreError> {
        let db = self.db.clone();
        self.run_quick(async move {
            crate::with_tx!(&db, conn => {
                let mut out: Vec<Counter> = Vec::with_capacity(keys.len());
                let mut spent = Vec::new();
                for (key, limit) in &keys {
                    diesel::update(tc::table.find(key).filter(tc::window_start.le(now - window)))
                        .set((tc::window_start.eq(now), tc::count.eq(0)))
                        .execute(&mut *conn)
                        .await?;
                    diesel::insert_into(tc::table)
                        .values((tc::key.eq(key), tc::window_start.eq(now), tc::count.eq(0)))
                        .on_conflict(tc::key)
                        .do_nothing()
                        .execute(&mut *conn)
                        .await?;
                    let counted = diesel::update(tc::table.find(key).filter(tc::count.lt(*limit)))
                        .set(tc::count.eq(tc::count + 1))
                        .execute(&mut *conn)
                        .await?;
                    let (count, window_start): (i64, i64) = tc::table
                        .find(key)
                        .select((tc::count, tc::window_start))
                        .first(&mut *conn)
                        .await?;
                    let c = Counter { key: key.clone(), count, window_start };
                    if counted == 0 {
                        for taken in &out {
                            diesel::update(tc::table.find(&taken.key))
                                .set(tc::count.eq(tc::count - 1))
                                .execute(&mut *conn)
                                .await?;
                        }
                        return Ok(Err(c));
                    }
                    if count == *limit {
                        spent.push(c.clone());
                    }
                    out.push(c);
                }
                if !spent.is_empty() {
                    crate::store::audit::append_all(&mut *conn, now, &on_spent(&spent)).await?;
                }
                Ok(Ok(out))
            })
        })
        .await
    }

    /// Gives one attempt back to each counter that is still in the window it was taken in
    /// (the attempt turned out right: only wrong ones should use a budget up).
    pub async fn throttle_refund(&self, taken: Vec<Counter>) -> Result<(), StoreError> {
        let db = self.db.clone();
        self.run_quick(async move {
            crate::with_tx!(&db, conn => {
                for c in &taken {
                    diesel::update(
                        tc::table
                            .find(&c.key)
                            .filter(tc::window_start.eq(c.window_start).and(tc::count.gt(0))),
                    )
                    .set(tc::count.eq(tc::count - 1))
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// An administrator's reset of a user's sign-in attempts: deletes the counters whose key
    /// is one of `keys` or starts with one of `prefixes` (the account's budgets, whichever
    /// source or browser they came from) and the user's count of wrong codes, with the
    /// entries `events` makes of how many were removed. Returns that number.
    pub async fn reset_attempts(
        &self,
        user_id: &str,
        keys: Vec<String>,
        prefixes: Vec<String>,
        events: impl FnOnce(usize) -> Vec<Event> + Send + 'static,
    ) -> Result<usize, StoreError> {
        let db = self.db.clone();
        let user = user_id.to_owned();
        let at = super::now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let mut n = diesel::delete(tc::table.filter(tc::key.eq_any(&keys)))
                    .execute(&mut *conn)
                    .await?;
                for p in &prefixes {
                    // Prefixes are hex and `:` only, so no LIKE wildcard can hide in them.
                    n += diesel::delete(tc::table.filter(tc::key.like(format!("{p}%"))))
                        .execute(&mut *conn)
                        .await?;
                }
                n += diesel::delete(auth_failures::table.filter(auth_failures::user_id.eq(&user)))
                    .execute(&mut *conn)
                    .await?;
                crate::store::audit::append_all(&mut *conn, at, &events(n)).await?;
                Ok(n)
            })
        })
        .await
    }
}
