//! Grants and refresh tokens. A grant is what one authorization (or its refresh chain)
//! produced: its refresh tokens form a family and its access tokens carry its id (`gid`).
//! Refresh tokens rotate on every use; presenting a used one again means it was stolen, so
//! the whole family dies (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2).

pub use super::refresh_rotation::{RefreshUse, RotationCheck, RotationReads};
use super::schema::{grants, refresh_tokens as rt, sessions};
use super::{Store, StoreError, from_json_text, now, to_json_text};
use crate::audit::Event;
use crate::secret::TokenHash;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub scope: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub lab_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The DPoP key (RFC 9449 thumbprint) a public client's refresh tokens are bound to.
    pub dpop_jkt: Option<String>,
    /// The resources (RFC 8707) its access tokens may be for: those the authorization request
    /// named.
    pub resources: Vec<String>,
}

impl Grant {
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

pub(super) type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    String,
);

pub(super) fn from_row(r: Row) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: r.0,
        client_id: r.1,
        user_id: r.2,
        session_id: r.3,
        scope: r.4,
        auth_time: r.5,
        acr: r.6,
        amr: from_json_text(&r.7)?,
        lab_id: r.8,
        created_at: r.9,
        expires_at: r.10,
        revoked_at: r.11,
        dpop_jkt: r.12,
        resources: crate::protocol::resource::split(&r.13),
    })
}

macro_rules! grant_columns {
    () => {
        (
            grants::id,
            grants::client_id,
            grants::user_id,
            grants::session_id,
            grants::scope,
            grants::auth_time,
            grants::acr,
            grants::amr,
            grants::lab_id,
            grants::created_at,
            grants::expires_at,
            grants::revoked_at,
            grants::dpop_jkt,
            grants::resources,
        )
    };
}
pub(super) use grant_columns;

impl Store {
    /// Stores a new grant and, when given, its first refresh token. Refused (`Ok(false)`) when
    /// the login session has ended meanwhile, or when a grant with this id exists already (a
    /// replay of the code got there first and left it revoked).
    pub async fn create_grant(
        &self,
        g: &Grant,
        refresh: Option<TokenHash>,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let g = g.clone();
        self.run_quick(async move {
            crate::with_tx!(&db, conn => {
                let live: i64 = sessions::table
                    .filter(sessions::id.eq(&g.session_id))
                    .filter(sessions::ended_at.is_null())
                    .count()
                    .get_result(conn)
                    .await?;
                if live == 0 {
                    return Ok(false);
                }
                // A grant with this id exists when a replay of the code got here first.
                let inserted = diesel::insert_into(grants::table)
                    .values((
                        grants::id.eq(&g.id),
                        grants::client_id.eq(&g.client_id),
                        grants::user_id.eq(&g.user_id),
                        grants::session_id.eq(&g.session_id),
                        grants::scope.eq(&g.scope),
                        grants::auth_time.eq(g.auth_time),
                        grants::acr.eq(&g.acr),
                        grants::amr.eq(to_json_text(&g.amr)),
                        grants::lab_id.eq(&g.lab_id),
                        grants::dpop_jkt.eq(&g.dpop_jkt),
                        grants::resources.eq(crate::protocol::resource::join(&g.resources)),
                        grants::created_at.eq(g.created_at),
                        grants::expires_at.eq(g.expires_at),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                if inserted == 0 {
                    return Ok(false);
                }
                if let Some(h) = refresh {
                    diesel::insert_into(rt::table)
                        .values((
                            rt::token_hash.eq(h.to_vec()),
                            rt::grant_id.eq(&g.id),
                            rt::created_at.eq(g.created_at),
                        ))
                        .execute(conn)
                        .await?;
                }
                Ok(true)
            })
        })
        .await
    }

    pub async fn get_grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        let row: Option<Row> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => grants::table
                    .find(&id)
                    .select(grant_columns!())
                    .first(conn)
                    .await
                    .optional()?))
            })
            .await?;
        row.map(from_row).transpose()
    }

    /// The grant a refresh token belongs to, and whether that token is the current one.
    pub async fn grant_by_refresh_token(
        &self,
        hash: TokenHash,
    ) -> Result<Option<(Grant, bool)>, StoreError> {
        let db = self.db.clone();
        let row: Option<(String, Option<i64>)> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => rt::table
                    .find(hash.to_vec())
                    .select((rt::grant_id, rt::consumed_at))
                    .first(conn)
                    .await
                    .optional()?))
            })
            .await?;
        let Some((gid, consumed)) = row else {
            return Ok(None);
        };
        Ok(self.get_grant(&gid).await?.map(|g| (g, consumed.is_none())))
    }

    /// Revokes a grant (every refresh token of its family, and its access tokens at Latchkey's
    /// own endpoints), appending `event` in the same transaction. `None` only where the
    /// revocation is the refusal of a request that records no change of its own (a disabled
    /// user's or a too-weak grant's refresh).
    /// Revokes grant `id` and appends `event`, only if it was still live: whether it was.
    pub async fn revoke_live_grant(&self, id: &str, event: &Event) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        let t = now();
        let event = event.clone();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(grants::table.find(&id).filter(grants::revoked_at.is_null()))
                    .set(grants::revoked_at.eq(Some(t)))
                    .execute(conn)
                    .await?;
                if n > 0 {
                    super::audit::append(conn, t, &event).await?;
                }
                Ok(n > 0)
            })
        })
        .await
    }

    pub async fn revoke_grant(&self, id: &str, event: Option<&Event>) -> Result<(), StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        let t = now();
        let event = event.cloned();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                diesel::update(grants::table.find(&id).filter(grants::revoked_at.is_null()))
                    .set(grants::revoked_at.eq(Some(t)))
                    .execute(conn)
                    .await?;
                if let Some(e) = &event {
                    super::audit::append(conn, t, e).await?;
                }
                Ok(())
            })
        })
        .await
    }
}
