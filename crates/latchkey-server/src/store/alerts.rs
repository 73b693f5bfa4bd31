//! Security alerts and webhook deliveries (`security_alerts`, `webhook_deliveries`), and the
//! audit reads the detectors and the console's security page make. The rules are
//! [`crate::protocol::detect`]'s and the sending is `alerts`'; this module only stores.

use super::schema::{audit_events as ae, security_alerts as sa, webhook_deliveries as wd};
use super::{Store, StoreError};
use crate::audit::Event;
use diesel::{BoolExpressionMethods, ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;

/// An audit entry as the detectors and the security page read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub at: i64,
    pub action: String,
    pub target: String,
    pub details: String,
}

/// An alert to raise: its row, one delivery per receiver, its audit entry.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub id: String,
    pub key: String,
    pub at: i64,
    pub detector: String,
    pub subject: String,
    pub payload: String,
    pub urls: Vec<String>,
    pub event: Event,
}

/// A delivery, with the alert's payload it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub alert_id: String,
    pub url: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_result: Option<String>,
    pub delivered_at: Option<i64>,
    pub payload: String,
}

/// An alert with its deliveries, for the console.
#[derive(Debug, Clone)]
pub struct Alert {
    pub id: String,
    pub at: i64,
    pub detector: String,
    pub subject: String,
    pub payload: String,
    pub deliveries: Vec<Delivery>,
}

/// What an attempt came to.
#[derive(Debug, Clone)]
pub enum Attempted {
    Delivered { at: i64, result: String },
    Retry { next_at: i64, result: String },
    Failed { result: String },
}

/// Which entries of a read come first (and stay when the limit cuts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

type DeliveryRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    String,
);

/// (id, at, detector, subject, payload)
type AlertRow = (String, i64, String, String, String);

fn delivery(r: DeliveryRow) -> Delivery {
    Delivery {
        id: r.0,
        alert_id: r.1,
        url: r.2,
        status: r.3,
        attempts: r.4,
        next_attempt_at: r.5,
        last_result: r.6,
        delivered_at: r.7,
        payload: r.8,
    }
}

macro_rules! delivery_columns {
    () => {
        (
            wd::id,
            wd::alert_id,
            wd::url,
            wd::status,
            wd::attempts,
            wd::next_attempt_at,
            wd::last_result,
            wd::delivered_at,
            sa::payload,
        )
    };
}

impl Store {
    /// At most `limit` audit entries whose action is one of `actions`, after `after_seq`,
    /// recorded after `since`, the oldest or the newest first.
    pub async fn audit_entries(
        &self,
        actions: Vec<String>,
        after_seq: i64,
        since: i64,
        order: Order,
        limit: i64,
    ) -> Result<Vec<Entry>, StoreError> {
        let db = self.db.clone();
        let rows: Vec<(Option<i64>, i64, String, String, String)> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => {
                    let q = ae::table
                        .filter(ae::action.eq_any(&actions))
                        .filter(ae::seq.gt(after_seq))
                        .filter(ae::at.gt(since))
                        .select((ae::seq, ae::at, ae::action, ae::target, ae::details))
                        .limit(limit)
                        .into_boxed();
                    let q = match order {
                        Order::OldestFirst => q.order(ae::seq.asc()),
                        Order::NewestFirst => q.order(ae::seq.desc()),
                    };
                    q.load(conn).await?
                }))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Entry {
                seq: r.0.unwrap_or_default(),
                at: r.1,
                action: r.2,
                target: r.3,
                details: r.4,
            })
            .collect())
    }

    /// Raises `alert` unless one with its key exists: the row, its deliveries and its audit
    /// entry commit together. Whether it was raised here.
    pub async fn raise_alert(&self, alert: NewAlert) -> Result<bool, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::insert_into(sa::table)
                    .values((
                        sa::id.eq(&alert.id),
                        sa::key.eq(&alert.key),
                        sa::at.eq(alert.at),
                        sa::detector.eq(&alert.detector),
                        sa::subject.eq(&alert.subject),
                        sa::payload.eq(&alert.payload),
                    ))
                    .on_conflict(sa::key)
                    .do_nothing()
                    .execute(&mut *conn)
                    .await?;
                if n == 0 {
                    return Ok(false);
                }
                for url in &alert.urls {
                    diesel::insert_into(wd::table)
                        .values((
                            wd::id.eq(uuid::Uuid::now_v7().to_string()),
                            wd::alert_id.eq(&alert.id),
                            wd::url.eq(url),
                            wd::status.eq("pending"),
                            wd::attempts.eq(0i64),
                            wd::next_attempt_at.eq(Some(alert.at)),
                        ))
                        .execute(&mut *conn)
                        .await?;
                }
                crate::store::audit::append(&mut *conn, alert.at, &alert.event).await?;
                Ok(true)
            })
        })
        .await
    }

    /// Pending deliveries due at `now`, oldest first (at most `limit`).
    pub async fn due_deliveries(&self, now: i64, limit: i64) -> Result<Vec<Delivery>, StoreError> {
        let db = self.db.clone();
        let rows: Vec<DeliveryRow> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => wd::table
                    .inner_join(sa::table)
                    .filter(wd::status.eq("pending"))
                    .filter(wd::next_attempt_at.le(now))
                    .order(wd::next_attempt_at.asc())
                    .limit(limit)
                    .select(delivery_columns!())
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(rows.into_iter().map(delivery).collect())
    }

    /// Takes a due delivery for `lease_until`: moves its next attempt there, only if no other
    /// node did since it was read. Whether this node has it.
    pub async fn claim_delivery(&self, d: &Delivery, lease_until: i64) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let (id, seen) = (d.id.clone(), d.next_attempt_at);
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(
                    wd::table.find(&id).filter(
                        wd::status
                            .eq("pending")
                            .and(wd::next_attempt_at.eq(seen)),
                    ),
                )
                .set(wd::next_attempt_at.eq(Some(lease_until)))
                .execute(&mut *conn)
                .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    /// Records an attempt's outcome.
    pub async fn record_attempt(&self, id: &str, outcome: Attempted) -> Result<(), StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let row = wd::table.find(&id);
                let bump = wd::attempts.eq(wd::attempts + 1);
                match outcome {
                    Attempted::Delivered { at, result } => diesel::update(row)
                        .set((bump, wd::status.eq("delivered"), wd::next_attempt_at.eq(None::<i64>),
                              wd::delivered_at.eq(Some(at)), wd::last_result.eq(Some(result))))
                        .execute(&mut *conn).await?,
                    Attempted::Retry { next_at, result } => diesel::update(row)
                        .set((bump, wd::next_attempt_at.eq(Some(next_at)),
                              wd::last_result.eq(Some(result))))
                        .execute(&mut *conn).await?,
                    Attempted::Failed { result } => diesel::update(row)
                        .set((bump, wd::status.eq("failed"), wd::next_attempt_at.eq(None::<i64>),
                              wd::last_result.eq(Some(result))))
                        .execute(&mut *conn).await?,
                };
                Ok(())
            })
        })
        .await
    }

    /// The newest `limit` alerts, newest first, with their deliveries.
    pub async fn recent_alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        let db = self.db.clone();
        let (alerts, deliveries): (Vec<AlertRow>, Vec<DeliveryRow>) = self
            .run(async move {
                crate::with_conn!(&db, conn => {
                    let alerts: Vec<AlertRow> = sa::table
                        .order((sa::at.desc(), sa::id.desc()))
                        .limit(limit)
                        .select((sa::id, sa::at, sa::detector, sa::subject, sa::payload))
                        .load(conn)
                        .await?;
                    let ids: Vec<&String> = alerts.iter().map(|a| &a.0).collect();
                    let deliveries: Vec<DeliveryRow> = wd::table
                        .inner_join(sa::table)
                        .filter(wd::alert_id.eq_any(ids))
                        .order(wd::url.asc())
                        .select(delivery_columns!())
                        .load(conn)
                        .await?;
                    Ok((alerts, deliveries))
                })
            })
            .await?;
        let mut deliveries: Vec<Delivery> = deliveries.into_iter().map(delivery).collect();
        Ok(alerts
            .into_iter()
            .map(|(id, at, detector, subject, payload)| {
                let (mine, rest): (Vec<Delivery>, Vec<Delivery>) =
                    deliveries.drain(..).partition(|d| d.alert_id == id);
                deliveries = rest;
                Alert {
                    id,
                    at,
                    detector,
                    subject,
                    payload,
                    deliveries: mine,
                }
            })
            .collect())
    }
}
