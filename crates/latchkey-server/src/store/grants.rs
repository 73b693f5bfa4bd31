//! Grants and refresh tokens. A grant is what one authorization (or its refresh chain)
//! produced: its refresh tokens form a family and its access tokens carry its id (`gid`).
//! Refresh tokens rotate on every use; presenting a used one again means it was stolen, so
//! the whole family dies (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2).

use super::schema::{grants, refresh_tokens as rt, sessions};
use super::{Db, Store, StoreError, from_json_text, now, to_json_text};
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

#[derive(Debug)]
pub enum RefreshUse {
    /// The token was current: it is now consumed and its successor stored. The flag says
    /// whether the grant's user is disabled (the caller refuses and revokes then).
    Rotated(Box<Grant>, bool),
    /// The token had been used before: the family is revoked, and the event recorded.
    Reused,
    /// Unknown token, another client's token, or its grant is revoked or expired.
    Invalid,
    /// A current token bound to a DPoP key (RFC 9449 section 5) presented without a proof by
    /// that key: refused, and left unspent for its holder.
    WrongKey,
    /// A current token whose request the caller's check refused (its `resource`, RFC 8707):
    /// left unspent.
    Rejected(Box<crate::protocol::OAuthError>),
}

/// The caller's last word on a current refresh token's request, before it is spent: given the
/// grant's lab and its resources (as the column holds them).
pub type RotationCheck =
    Box<dyn FnOnce(Option<&str>, &str) -> Result<(), crate::protocol::OAuthError> + Send>;

type Row = (
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

fn from_row(r: Row) -> Result<Grant, StoreError> {
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
        self.run(async move {
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

    /// Rotates a refresh token: consumes `old` and stores `new` in the same family, or, when
    /// `old` was already used, revokes the family and appends `on_reuse`. A token of another
    /// client than `client_id` is `Invalid`, used or not, and changes nothing. Also reports whether
    /// the grant's user is disabled, so the hot path needs no second query. A grant bound to a
    /// DPoP key rotates only with `dpop_jkt` naming it (`WrongKey` otherwise); with
    /// `bind_unbound` (a public client), an unbound grant is bound to `dpop_jkt` when one
    /// comes. `check` refuses the request (`Rejected`) before anything changes.
    ///
    /// This is the busiest write path, so on SQLite the whole transaction runs in one blocking
    /// call (one thread hand-off instead of one per statement); both backends expand the same
    /// body from [`rotate_body!`]. Detecting reuse writes nothing, so the revocation and its
    /// audit entry (an async append the blocking call cannot make) follow in a transaction of
    /// their own: no state holds a revoked family without its entry, and a crash between the
    /// two leaves the reused token to be detected again.
    pub async fn rotate_refresh_token(
        &self,
        (old, new): (TokenHash, TokenHash),
        client_id: &str,
        dpop_jkt: Option<&str>,
        bind_unbound: bool,
        on_reuse: &Event,
        check: RotationCheck,
    ) -> Result<RefreshUse, StoreError> {
        let db = self.db.clone();
        let client_id = client_id.to_owned();
        let jkt = dpop_jkt.map(str::to_owned);
        let t = now();
        let out: Rotation = self
            .run(async move {
                match &db {
                    Db::Pg(pool) => {
                        use diesel_async::AsyncConnection as _;
                        let mut obj = pool.get().await?;
                        let c: &mut super::PgConn = &mut obj;
                        c.transaction::<_, StoreError, _>(async move |c| {
                            let bind = jkt.as_deref().filter(|_| bind_unbound);
                            rotate_async::rotate(
                                c,
                                (&old, &new),
                                &client_id,
                                jkt.as_deref(),
                                bind,
                                t,
                                check,
                            )
                            .await
                        })
                        .await
                    }
                    Db::Sqlite {
                        writer, writer_rt, ..
                    } => {
                        let writer = writer.clone();
                        writer_rt
                            .spawn(async move {
                                let mut obj = writer.get().await?;
                                let c: &mut super::SqliteWriteConn = &mut obj;
                                c.spawn_blocking(move |c| {
                                    Ok(c.immediate_transaction::<_, StoreError, _>(|c| {
                                        rotate_sync::rotate(
                                            c,
                                            (&old, &new),
                                            &client_id,
                                            jkt.as_deref(),
                                            jkt.as_deref().filter(|_| bind_unbound),
                                            t,
                                            check,
                                        )
                                    }))
                                })
                                .await?
                            })
                            .await
                            .map_err(|_| StoreError::Join)?
                    }
                }
            })
            .await?;
        Ok(match out {
            Rotation::Rotated(row, disabled) => {
                RefreshUse::Rotated(Box::new(from_row(*row)?), disabled)
            }
            Rotation::Invalid => RefreshUse::Invalid,
            Rotation::WrongKey => RefreshUse::WrongKey,
            Rotation::Rejected(e) => RefreshUse::Rejected(e),
            Rotation::Reused(grant_id) => {
                // Recorded once per family, by the reuse that revoked it.
                let mut e = on_reuse.clone();
                e.details["grant"] = grant_id.clone().into();
                self.revoke_live_grant(&grant_id, &e).await?;
                RefreshUse::Reused
            }
        })
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
        self.run(async move {
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
        self.run(async move {
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

enum Rotation {
    Rotated(Box<Row>, bool),
    /// The grant whose family must be revoked.
    Reused(String),
    Invalid,
    WrongKey,
    Rejected(Box<crate::protocol::OAuthError>),
}

/// The refresh rotation, written once; `[.await]` or `[]` makes it async or sync.
macro_rules! rotate_body {
    ($c:ident, $old:ident, $new:ident, $client_id:ident, $jkt:ident, $bind:ident, $t:ident, $check:ident, [$($aw:tt)*]) => {{
        use crate::store::schema::{grants, refresh_tokens as rt, users};
        use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
        let tok: Option<(String, Option<i64>)> = rt::table
            .find($old.to_vec())
            .select((rt::grant_id, rt::consumed_at))
            .first($c) $($aw)*
            .optional()?;
        let Some((grant_id, consumed)) = tok else { return Ok(Rotation::Invalid) };
        let grant: Option<Row> = grants::table
            .find(&grant_id)
            .select(grant_columns!())
            .first($c) $($aw)*
            .optional()?;
        let Some(grant) = grant else { return Ok(Rotation::Invalid) };
        // Another client's token, used or not: refuse without consuming it or revoking its
        // family (RFC 6749 section 10.4 binds the token to its client; anyone else who learnt
        // it must not be able to end the victim's grant).
        if grant.1 != *$client_id {
            return Ok(Rotation::Invalid);
        }
        if consumed.is_some() {
            return Ok(Rotation::Reused(grant_id));
        }
        // Revoked or expired.
        if grant.11.is_some() || grant.10 <= $t {
            return Ok(Rotation::Invalid);
        }
        if let Some(bound) = grant.12.as_deref() && $jkt != Some(bound) {
            return Ok(Rotation::WrongKey);
        }
        if let Err(e) = $check(grant.8.as_deref(), &grant.13) {
            return Ok(Rotation::Rejected(Box::new(e)));
        }
        // A public client that starts DPoP at a refresh binds the grant from here on (RFC 9449
        // section 5): the new refresh token is good only with that key.
        let mut grant = grant;
        if grant.12.is_none() && let Some(key) = $bind {
            diesel::update(grants::table.find(&grant_id).filter(grants::dpop_jkt.is_null()))
                .set(grants::dpop_jkt.eq(key))
                .execute($c) $($aw)* ?;
            grant.12 = Some(key.to_owned());
        }
        // Only the request that flips consumed_at wins; a concurrent use of the same token
        // (PostgreSQL runs these transactions in parallel) counts as reuse.
        let won = diesel::update(rt::table.find($old.to_vec()).filter(rt::consumed_at.is_null()))
            .set(rt::consumed_at.eq(Some($t)))
            .execute($c) $($aw)* ?;
        if won != 1 {
            return Ok(Rotation::Reused(grant_id));
        }
        diesel::insert_into(rt::table)
            .values((rt::token_hash.eq($new.to_vec()), rt::grant_id.eq(&grant_id), rt::created_at.eq($t)))
            .execute($c) $($aw)* ?;
        let disabled: Option<bool> = users::table
            .find(&grant.2)
            .select(users::disabled)
            .first($c) $($aw)*
            .optional()?;
        Ok(Rotation::Rotated(Box::new(grant), disabled.unwrap_or(true)))
    }};
}

mod rotate_async {
    use super::{Rotation, Row, StoreError, TokenHash};
    use diesel_async::RunQueryDsl;

    pub(super) async fn rotate(
        c: &mut crate::store::PgConn,
        (old, new): (&TokenHash, &TokenHash),
        client_id: &String,
        jkt: Option<&str>,
        bind: Option<&str>,
        t: i64,
        check: super::RotationCheck,
    ) -> Result<Rotation, StoreError> {
        rotate_body!(c, old, new, client_id, jkt, bind, t, check, [.await])
    }
}

mod rotate_sync {
    use super::{Rotation, Row, StoreError, TokenHash};
    use diesel::RunQueryDsl;

    pub(super) fn rotate(
        c: &mut diesel::SqliteConnection,
        (old, new): (&TokenHash, &TokenHash),
        client_id: &String,
        jkt: Option<&str>,
        bind: Option<&str>,
        t: i64,
        check: super::RotationCheck,
    ) -> Result<Rotation, StoreError> {
        rotate_body!(c, old, new, client_id, jkt, bind, t, check, [])
    }
}
