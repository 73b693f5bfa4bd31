//! The mail outbox: messages queued inside the transaction of the change they tell of
//! (through [`crate::audit::Event::with_mail`]), then sent by every node's sender
//! (`mail::sender`). A node claims a due message for a lease before sending it, so two nodes
//! never send one message at the same time; a message whose node died mid-send is claimed
//! again once its lease runs out (and carries the same `Message-ID`). The body is sealed
//! under the KEK and dropped once the message is sent or given up.

use super::schema::mail_outbox as mo;
use super::{Store, StoreError};
use diesel::{BoolExpressionMethods, ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use serde::Serialize;

/// The states of a message.
pub const QUEUED: &str = "queued";
pub const SENDING: &str = "sending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

/// Inserts one queued message on `$conn` (inside the caller's transaction).
#[macro_export]
macro_rules! enqueue_body {
    ($conn:expr, $mail:expr) => {{
        use diesel::ExpressionMethods;
        use diesel_async::RunQueryDsl;
        use $crate::store::schema::mail_outbox as mo;
        let m: &$crate::audit::QueuedMail = $mail;
        diesel::insert_into(mo::table)
            .values((
                mo::id.eq(&m.id),
                mo::recipient.eq(&m.to),
                mo::kind.eq(m.kind),
                mo::subject.eq(&m.subject),
                mo::body.eq(Some(&m.sealed_body)),
                mo::user_id.eq(&m.user_id),
                mo::state.eq($crate::store::outbox::QUEUED),
                mo::attempts.eq(0i64),
                mo::created_at.eq(m.created_at),
                mo::next_attempt_at.eq(m.created_at),
            ))
            .execute($conn)
            .await?;
        Ok(())
    }};
}

/// A message this node claimed, to send.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub to: String,
    pub kind: String,
    pub subject: String,
    pub sealed_body: Option<Vec<u8>>,
    pub attempts: i64,
    pub created_at: i64,
}

/// A message as the console lists it: never its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    pub id: String,
    pub recipient: String,
    pub kind: String,
    pub subject: String,
    /// `queued`, `sending`, `sent` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

/// What an attempt came to.
#[derive(Debug)]
pub enum MailOutcome {
    Sent {
        at: i64,
    },
    /// A temporary failure: try again at `next_at`.
    Retry {
        next_at: i64,
        error: String,
    },
    /// Refused for good (or retried for too long): the body is dropped.
    Failed {
        error: String,
    },
}

type ClaimRow = (String, String, String, String, Option<Vec<u8>>, i64, i64);

impl Store {
    /// Claims up to `limit` messages due at `now` (queued and due, or sending with a lease
    /// that ran out) until `lease_until`, oldest first. Each is claimed by a conditional
    /// update, so a message another node claimed meanwhile is skipped.
    pub async fn claim_mail(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            let due = mo::state
                .eq(QUEUED)
                .and(mo::next_attempt_at.le(now))
                .or(mo::state.eq(SENDING).and(mo::lease_until.lt(now)));
            let candidates: Vec<ClaimRow> = crate::with_conn!(&db, conn => mo::table
                .filter(due)
                .order(mo::next_attempt_at.asc())
                .limit(limit)
                .select((mo::id, mo::recipient, mo::kind, mo::subject, mo::body, mo::attempts,
                         mo::created_at))
                .load(conn)
                .await?);
            let mut claimed = Vec::new();
            for c in candidates {
                let id = c.0.clone();
                let n = crate::with_tx!(&db, conn => {
                    let due = mo::state
                        .eq(QUEUED)
                        .and(mo::next_attempt_at.le(now))
                        .or(mo::state.eq(SENDING).and(mo::lease_until.lt(now)));
                    Ok::<usize, StoreError>(diesel::update(mo::table.find(&id).filter(due))
                        .set((mo::state.eq(SENDING), mo::lease_until.eq(Some(lease_until))))
                        .execute(&mut *conn)
                        .await?)
                })?;
                if n == 1 {
                    claimed.push(Claimed {
                        id: c.0,
                        to: c.1,
                        kind: c.2,
                        subject: c.3,
                        sealed_body: c.4,
                        attempts: c.5,
                        created_at: c.6,
                    });
                }
            }
            Ok(claimed)
        })
        .await
    }

    /// Records what sending a claimed message came to.
    pub async fn record_mail(&self, id: &str, outcome: MailOutcome) -> Result<(), StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let row = mo::table.find(&id).filter(mo::state.eq(SENDING));
                let bump = mo::attempts.eq(mo::attempts + 1);
                let no_lease = mo::lease_until.eq(None::<i64>);
                match outcome {
                    MailOutcome::Sent { at } => diesel::update(row)
                        .set((bump, no_lease, mo::state.eq(SENT), mo::sent_at.eq(Some(at)),
                              mo::body.eq(None::<Vec<u8>>), mo::last_error.eq(None::<String>)))
                        .execute(&mut *conn).await?,
                    MailOutcome::Retry { next_at, error } => diesel::update(row)
                        .set((bump, no_lease, mo::state.eq(QUEUED), mo::next_attempt_at.eq(next_at),
                              mo::last_error.eq(Some(error))))
                        .execute(&mut *conn).await?,
                    MailOutcome::Failed { error } => diesel::update(row)
                        .set((bump, no_lease, mo::state.eq(FAILED), mo::body.eq(None::<Vec<u8>>),
                              mo::last_error.eq(Some(error))))
                        .execute(&mut *conn).await?,
                };
                Ok(())
            })
        })
        .await
    }

    /// The newest `limit` messages, newest first (the console's outbox page).
    pub async fn outbox(&self, limit: i64) -> Result<Vec<OutboxEntry>, StoreError> {
        let db = self.db.clone();
        type Row = (
            String,
            String,
            String,
            String,
            String,
            i64,
            i64,
            i64,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => mo::table
                    .order((mo::created_at.desc(), mo::id.desc()))
                    .limit(limit)
                    .select((mo::id, mo::recipient, mo::kind, mo::subject, mo::state, mo::attempts,
                             mo::created_at, mo::next_attempt_at, mo::sent_at, mo::last_error))
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| OutboxEntry {
                id: r.0,
                recipient: r.1,
                kind: r.2,
                subject: r.3,
                state: r.4,
                attempts: r.5,
                created_at: r.6,
                next_attempt_at: r.7,
                sent_at: r.8,
                last_error: r.9,
            })
            .collect())
    }

    /// Messages per state (for `/metrics` and the console).
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            Ok(crate::with_conn!(&db, conn => mo::table
                .group_by(mo::state)
                .select((mo::state, diesel::dsl::count_star()))
                .load(conn)
                .await?))
        })
        .await
    }
}
