//! Back-channel logout deliveries (OpenID Connect Back-Channel Logout 1.0): one row per ended
//! session and client that has a `backchannel_logout_uri` and got tokens from that session,
//! queued by [`enqueue_logouts!`] inside the transaction that ends the session, then sent
//! (and retried) by whichever node takes it (`crate::backchannel`). The logout token itself
//! is signed at each attempt: the row holds nothing secret.

/// What an attempt came to: the webhook deliveries' outcomes.
pub use super::alerts::Attempted;
use super::schema::logout_deliveries as ld;
use super::{Store, StoreError};
use diesel::{BoolExpressionMethods, ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;

/// The states of a delivery.
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// Queues a logout delivery on `$conn` (inside the caller's transaction) for every client
/// with a `backchannel_logout_uri` that holds a grant from one of the sessions `$sessions`
/// (a `Vec<String>` of session ids that this transaction ends). Evaluates to the number queued.
#[macro_export]
macro_rules! enqueue_logouts {
    ($conn:expr, $sessions:expr, $now:expr) => {{
        use diesel::{ExpressionMethods, JoinOnDsl, QueryDsl};
        use diesel_async::RunQueryDsl;
        use $crate::store::schema::{clients, grants, logout_deliveries as ld};
        let sessions: &Vec<String> = $sessions;
        let targets: Vec<(String, String, String, Option<String>)> = if sessions.is_empty() {
            Vec::new()
        } else {
            grants::table
                .inner_join(clients::table.on(clients::id.eq(grants::client_id)))
                .filter(grants::session_id.eq_any(sessions))
                .filter(clients::backchannel_logout_uri.is_not_null())
                .select((
                    grants::client_id,
                    grants::user_id,
                    grants::session_id,
                    clients::backchannel_logout_uri,
                ))
                .distinct()
                .load($conn)
                .await?
        };
        let n = targets.len();
        for (client_id, user_id, session_id, url) in targets {
            diesel::insert_into(ld::table)
                .values((
                    ld::id.eq($crate::secret::random_id()),
                    ld::client_id.eq(client_id),
                    ld::user_id.eq(user_id),
                    ld::session_id.eq(session_id),
                    ld::url.eq(url.unwrap_or_default()),
                    ld::status.eq($crate::store::logout_deliveries::PENDING),
                    ld::attempts.eq(0i64),
                    ld::created_at.eq($now),
                    ld::next_attempt_at.eq(Some($now)),
                ))
                .execute($conn)
                .await?;
        }
        n
    }};
}

/// A delivery: which session's logout goes to which client, and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutDelivery {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub url: String,
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: Option<i64>,
    pub last_result: Option<String>,
    pub delivered_at: Option<i64>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

fn from_row(r: Row) -> LogoutDelivery {
    LogoutDelivery {
        id: r.0,
        client_id: r.1,
        user_id: r.2,
        session_id: r.3,
        url: r.4,
        status: r.5,
        attempts: r.6,
        created_at: r.7,
        next_attempt_at: r.8,
        last_result: r.9,
        delivered_at: r.10,
    }
}

macro_rules! columns {
    () => {
        (
            ld::id,
            ld::client_id,
            ld::user_id,
            ld::session_id,
            ld::url,
            ld::status,
            ld::attempts,
            ld::created_at,
            ld::next_attempt_at,
            ld::last_result,
            ld::delivered_at,
        )
    };
}

impl Store {
    /// Pending deliveries due at `now`, oldest first (at most `limit`).
    pub async fn due_logouts(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<LogoutDelivery>, StoreError> {
        let db = self.db.clone();
        let rows: Vec<Row> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => ld::table
                    .filter(ld::status.eq(PENDING))
                    .filter(ld::next_attempt_at.le(now))
                    .order(ld::next_attempt_at.asc())
                    .limit(limit)
                    .select(columns!())
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Takes a due delivery for `lease_until`: moves its next attempt there, only if no other
    /// node did since it was read. Whether this node has it.
    pub async fn claim_logout(
        &self,
        d: &LogoutDelivery,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let (id, seen) = (d.id.clone(), d.next_attempt_at);
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(
                    ld::table
                        .find(&id)
                        .filter(ld::status.eq(PENDING).and(ld::next_attempt_at.eq(seen))),
                )
                .set(ld::next_attempt_at.eq(Some(lease_until)))
                .execute(&mut *conn)
                .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    /// Records an attempt's outcome.
    pub async fn record_logout_attempt(
        &self,
        id: &str,
        outcome: Attempted,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let row = ld::table.find(&id);
                let bump = ld::attempts.eq(ld::attempts + 1);
                match outcome {
                    Attempted::Delivered { at, result } => diesel::update(row)
                        .set((bump, ld::status.eq(DELIVERED), ld::next_attempt_at.eq(None::<i64>),
                              ld::delivered_at.eq(Some(at)), ld::last_result.eq(Some(result))))
                        .execute(&mut *conn).await?,
                    Attempted::Retry { next_at, result } => diesel::update(row)
                        .set((bump, ld::next_attempt_at.eq(Some(next_at)),
                              ld::last_result.eq(Some(result))))
                        .execute(&mut *conn).await?,
                    Attempted::Failed { result } => diesel::update(row)
                        .set((bump, ld::status.eq(FAILED), ld::next_attempt_at.eq(None::<i64>),
                              ld::last_result.eq(Some(result))))
                        .execute(&mut *conn).await?,
                };
                Ok(())
            })
        })
        .await
    }

    /// A client's newest `limit` deliveries, newest first (the console's client page).
    pub async fn recent_logouts(
        &self,
        client_id: &str,
        limit: i64,
    ) -> Result<Vec<LogoutDelivery>, StoreError> {
        let db = self.db.clone();
        let client_id = client_id.to_owned();
        let rows: Vec<Row> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => ld::table
                    .filter(ld::client_id.eq(&client_id))
                    .order((ld::created_at.desc(), ld::id.desc()))
                    .limit(limit)
                    .select(columns!())
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }
}
