//! Browser login sessions. The cookie holds a random token; the database holds its hash and
//! a separate public id (`sid` in tokens). Ending a session revokes the grants bound to it
//! (all but `offline_access` ones, which outlive the browser session by design).

use super::schema::{grants, sessions};
use super::{Store, StoreError, from_json_text, now, to_json_text};
use crate::audit::Event;
use crate::protocol::strength::Factor;
use crate::secret::TokenHash;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, TextExpressionMethods};
use diesel_async::RunQueryDsl;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The factors proven in this session and when (`protocol::strength`).
    pub factors: Vec<Factor>,
}

type Row = (String, String, i64, String, String, i64, i64, String, i64);

/// Where a session was started from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenFrom {
    /// The client's address (through trusted proxies only).
    pub source: String,
    pub user_agent: String,
}

/// A live session as the user's list of signed-in browsers shows it.
#[derive(Debug, Clone, PartialEq, Eq, diesel::Queryable)]
pub struct Listed {
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub acr: String,
    /// `None` for sessions started before this was recorded.
    pub source: Option<String>,
    pub user_agent: Option<String>,
}

/// Inside a write transaction: ends every live session of `$user`, revokes every grant
/// (refresh-token family) and expires every open mailed link (a reset or confirmation link
/// sent before an account is disabled or its factors reset must not outlive it) at `$now`;
/// evaluates to how many sessions ended.
#[macro_export]
macro_rules! end_sessions_and_grants {
    ($conn:expr, $user:expr, $now:expr) => {{
        use $crate::store::schema::{account_links, grants, sessions};
        diesel::update(
            account_links::table
                .filter(account_links::user_id.eq($user))
                .filter(account_links::used_at.is_null())
                .filter(account_links::expires_at.gt($now)),
        )
        .set(account_links::expires_at.eq($now))
        .execute($conn)
        .await?;
        let live: Vec<String> = sessions::table
            .filter(sessions::user_id.eq($user))
            .filter(sessions::ended_at.is_null())
            .select(sessions::id)
            .load($conn)
            .await?;
        // Back-channel logout to every client that got tokens from those sessions.
        let ended = $crate::end_listed_sessions!($conn, &live, $now);
        diesel::update(
            grants::table
                .filter(grants::user_id.eq($user))
                .filter(grants::revoked_at.is_null()),
        )
        .set(grants::revoked_at.eq(Some($now)))
        .execute($conn)
        .await?;
        ended
    }};
}

/// Ends the sessions `$ids` (a `&Vec<String>` of live sessions this transaction read) on
/// `$conn` and queues their back-channel logouts (`enqueue_logouts!`). Evaluates to the
/// number ended.
#[macro_export]
macro_rules! end_listed_sessions {
    ($conn:expr, $ids:expr, $now:expr) => {{
        use $crate::store::schema::sessions;
        let ids: &Vec<String> = $ids;
        let n = diesel::update(
            sessions::table
                .filter(sessions::id.eq_any(ids))
                .filter(sessions::ended_at.is_null()),
        )
        .set(sessions::ended_at.eq(Some($now)))
        .execute($conn)
        .await?;
        $crate::enqueue_logouts!($conn, ids, $now);
        n
    }};
}

impl Store {
    /// Whether `user_id` ever had a session (a first sign-in is no news to mail about).
    pub async fn ever_signed_in(&self, user_id: &str) -> Result<bool, StoreError> {
        let id = user_id.to_owned();
        crate::quick_read!(self, conn => Ok(sessions::table
            .filter(sessions::user_id.eq(&id))
            .select(sessions::id)
            .first::<String>(conn)
            .await
            .optional()?
            .is_some()))
    }

    /// The user's live sessions (not ended, not expired, used after `idle_since` when there
    /// is an idle timeout), most recently used first.
    pub async fn live_sessions_of(
        &self,
        user_id: &str,
        now: i64,
        idle_since: Option<i64>,
    ) -> Result<Vec<Listed>, StoreError> {
        let db = self.db.clone();
        let u = user_id.to_owned();
        self.run(async move {
            Ok(crate::with_conn!(&db, conn => sessions::table
                .filter(sessions::user_id.eq(&u))
                .filter(sessions::ended_at.is_null())
                .filter(sessions::expires_at.gt(now))
                .filter(sessions::last_seen_at.ge(idle_since.unwrap_or(i64::MIN)))
                .order(sessions::last_seen_at.desc())
                .select((
                    sessions::id,
                    sessions::created_at,
                    sessions::last_seen_at,
                    sessions::acr,
                    sessions::source,
                    sessions::user_agent,
                ))
                .load::<Listed>(conn)
                .await?))
        })
        .await
    }

    /// Starts a session from `from` (the client's address and user agent, for the user's
    /// list of signed-in browsers); `event` (the sign-in) is audited in the same transaction.
    pub async fn create_session(
        &self,
        token: TokenHash,
        s: &Session,
        from: Option<&SeenFrom>,
        event: Option<&Event>,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let s = s.clone();
        let (source, user_agent) = from
            .map(|f| (f.source.clone(), f.user_agent.clone()))
            .unzip();
        let event = event.cloned();
        let t = now();
        self.run_quick(async move {
            crate::with_tx!(&db, conn => {
                diesel::insert_into(sessions::table)
                    .values((
                        sessions::id.eq(&s.id),
                        sessions::token_hash.eq(token.to_vec()),
                        sessions::user_id.eq(&s.user_id),
                        sessions::auth_time.eq(s.auth_time),
                        sessions::amr.eq(to_json_text(&s.amr)),
                        sessions::acr.eq(&s.acr),
                        sessions::created_at.eq(s.created_at),
                        sessions::expires_at.eq(s.expires_at),
                        sessions::factors.eq(to_json_text(&s.factors)),
                        sessions::last_seen_at.eq(t),
                        sessions::source.eq(source),
                        sessions::user_agent.eq(user_agent),
                    ))
                    .execute(&mut *conn)
                    .await?;
                if let Some(e) = &event {
                    crate::store::audit::append(&mut *conn, t, e).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The live session a cookie token names: not ended, not expired, and used after
    /// `idle_since` (the idle timeout's cut-off; `None`: no idle timeout); with when it was
    /// last used (see [`Store::touch_session`]). Creating or renewing a session uses it.
    pub async fn find_session(
        &self,
        token: TokenHash,
        idle_since: Option<i64>,
    ) -> Result<Option<(Session, i64)>, StoreError> {
        let t = now();
        let idle_since = idle_since.unwrap_or(i64::MIN);
        let token = token.to_vec();
        let row: Option<Row> = crate::quick_read!(self, conn => Ok(sessions::table
            .filter(sessions::token_hash.eq(&token))
            .filter(sessions::ended_at.is_null())
            .filter(sessions::expires_at.gt(t))
            .filter(sessions::last_seen_at.gt(idle_since))
            .select((
                sessions::id,
                sessions::user_id,
                sessions::auth_time,
                sessions::amr,
                sessions::acr,
                sessions::created_at,
                sessions::expires_at,
                sessions::factors,
                sessions::last_seen_at,
            ))
            .first::<Row>(conn)
            .await
            .optional()?))?;
        row.map(|r| {
            let session = Session {
                id: r.0,
                user_id: r.1,
                auth_time: r.2,
                amr: from_json_text(&r.3)?,
                acr: r.4,
                created_at: r.5,
                expires_at: r.6,
                factors: from_json_text(&r.7)?,
            };
            Ok((session, r.8))
        })
        .transpose()
    }

    /// When session `id` was last used, if it is live: not ended, not expired, and used after
    /// `idle_since` (`None`: no idle timeout).
    pub async fn live_session_seen(
        &self,
        id: &str,
        idle_since: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        let t = now();
        let idle_since = idle_since.unwrap_or(i64::MIN);
        self.run(async move {
            Ok(crate::with_conn!(&db, conn => sessions::table
                .find(&id)
                .filter(sessions::ended_at.is_null())
                .filter(sessions::expires_at.gt(t))
                .filter(sessions::last_seen_at.gt(idle_since))
                .select(sessions::last_seen_at)
                .first::<i64>(conn)
                .await
                .optional()?))
        })
        .await
    }

    /// Records that a session was used at `at` (the idle timeout counts from it). Callers
    /// touch at most once a minute, so reading a session rarely writes.
    pub async fn touch_session(&self, id: &str, at: i64) -> Result<(), StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::update(
                    sessions::table
                        .find(&id)
                        .filter(sessions::ended_at.is_null())
                        .filter(sessions::last_seen_at.lt(at)),
                )
                .set(sessions::last_seen_at.eq(at))
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// A fresh authentication of the same user in the same browser: the session keeps its id
    /// (`sid`, and the grants bound to it) but gets a new cookie token (no fixation) and the
    /// new authentication time and methods.
    pub async fn renew_session(
        &self,
        id: &str,
        token: TokenHash,
        s: &Session,
        event: Option<&Event>,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        let s = s.clone();
        let event = event.cloned();
        let t = now();
        self.run_quick(async move {
            crate::with_tx!(&db, conn => {
                diesel::update(sessions::table.find(&id))
                    .set((
                        sessions::token_hash.eq(token.to_vec()),
                        sessions::auth_time.eq(s.auth_time),
                        sessions::amr.eq(to_json_text(&s.amr)),
                        sessions::acr.eq(&s.acr),
                        sessions::expires_at.eq(s.expires_at),
                        sessions::factors.eq(to_json_text(&s.factors)),
                        sessions::last_seen_at.eq(t),
                    ))
                    .execute(&mut *conn)
                    .await?;
                if let Some(e) = &event {
                    crate::store::audit::append(&mut *conn, t, e).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Records the session's factors after a step-up (the cookie token stays).
    pub async fn update_session_factors(&self, s: &Session) -> Result<(), StoreError> {
        let db = self.db.clone();
        let s = s.clone();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::update(sessions::table.find(&s.id).filter(sessions::ended_at.is_null()))
                    .set((
                        sessions::factors.eq(to_json_text(&s.factors)),
                        sessions::acr.eq(&s.acr),
                        sessions::amr.eq(to_json_text(&s.amr)),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Ends a session and revokes the grants issued from it, except `offline_access` ones;
    /// `event` (a sign-out) is audited in the same transaction, and a back-channel logout is
    /// queued for every client that got tokens from it (once: ending an ended session queues
    /// nothing).
    pub async fn end_session(
        &self,
        session_id: &str,
        event: Option<&Event>,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let id = session_id.to_owned();
        let event = event.cloned();
        let t = now();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let ended = diesel::update(
                    sessions::table.find(&id).filter(sessions::ended_at.is_null()),
                )
                .set(sessions::ended_at.eq(Some(t)))
                .execute(&mut *conn)
                .await?;
                if ended == 1 {
                    // Back-channel logout to every client that got tokens from the session.
                    crate::enqueue_logouts!(&mut *conn, &vec![id.clone()], t);
                }
                diesel::update(
                    grants::table
                        .filter(grants::session_id.eq(&id))
                        .filter(grants::revoked_at.is_null())
                        .filter(grants::scope.not_like("%offline_access%")),
                )
                .set(grants::revoked_at.eq(Some(t)))
                .execute(&mut *conn)
                .await?;
                if let Some(e) = &event {
                    crate::store::audit::append(&mut *conn, t, e).await?;
                }
                Ok(())
            })
        })
        .await
    }
}
