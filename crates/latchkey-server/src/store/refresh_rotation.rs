//! Refresh-token rotation (RFC 6749 section 6, RFC 9700 section 4.14.2): the refresh grant's
//! one write, and the busiest write path there is.
//!
//! A current token of a live grant, presented by its client (with its DPoP key, if bound),
//! takes the **fast path**: one read of everything the refresh needs (the token, its grant,
//! the user, the sign-in session, the member's roles and features) in one statement
//! (`refresh_reads`, on either database), then one conditional write that spends the token
//! only if it is still unspent and its grant still live, and stores its successor, in a group
//! commit with the other refreshes waiting (`refresh_spends`: one statement on PostgreSQL, so
//! no transaction is held open across round trips; one immediate transaction on the SQLite
//! writer). The answer is sent only after that write has committed: nothing is less durable
//! than a transaction.
//!
//! Everything else, and a fast path that lost a race (a concurrent use of the same token, a
//! revocation between the read and the write), goes through the **transaction** that decides
//! every case exactly: reuse detection and family revocation, another client's token, a
//! revoked or expired grant, a missing DPoP proof, a public client binding its grant to a
//! DPoP key.

use super::grants::{Grant, Row, from_row, grant_columns};
use super::grants_features::MemberGrants;
use super::refresh_reads::{Context, read_pg, read_sqlite};
use super::refresh_spends::{Spend, SpendQueue};
use super::{Db, Store, StoreError, now};
use crate::audit::Event;
use crate::secret::TokenHash;

/// What a rotation read besides the grant: everything the refresh needs to decide and to build
/// the new access token, so the refresh makes no other query.
#[derive(Debug)]
pub struct RotationReads {
    /// The grant's user is disabled (or gone): the caller refuses and revokes.
    pub disabled: bool,
    /// The grant's browser session is live (not ended, unexpired, used within the idle
    /// timeout); always true for a grant with `offline_access`, which outlives its session.
    pub session_live: bool,
    /// The user's roles and features in the grant's lab; `None` for a grant without a lab.
    pub member: Option<MemberGrants>,
}

#[derive(Debug)]
pub enum RefreshUse {
    /// The token was current: it is now consumed and its successor stored.
    Rotated(Box<Grant>, Box<RotationReads>),
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
/// It may be asked twice (a fast path that lost a race, then the transaction).
pub type RotationCheck = std::sync::Arc<
    dyn Fn(Option<&str>, &str) -> Result<(), crate::protocol::OAuthError> + Send + Sync,
>;

/// The fast path of one rotation: what it needs, owned, to run on the store's runtime.
struct Fast {
    old: Vec<u8>,
    new: Vec<u8>,
    client_id: String,
    jkt: Option<String>,
    bind: Option<String>,
    check: RotationCheck,
    t: i64,
    idle_since: i64,
}

impl Fast {
    /// The read, the checks, the conditional write. `None`: not a plain rotation, or the write
    /// lost a race; the transaction decides.
    async fn run(self, db: &Db, spends: &SpendQueue) -> Result<Option<RefreshUse>, StoreError> {
        let Fast {
            old,
            new,
            client_id,
            jkt,
            bind,
            check,
            t,
            idle_since,
        } = self;
        let plain = |ctx: &Context| ctx.is_plain(&client_id, jkt.as_deref(), bind.as_deref(), t);
        let ctx = match db {
            Db::Pg(pool) => read_pg(&mut *pool.get().await?, old.clone(), t, idle_since).await?,
            Db::Sqlite { quick_readers, .. } => {
                let mut c = quick_readers.get().await?;
                let read = old.clone();
                c.spawn_blocking(move |c| Ok(read_sqlite(c, read, t, idle_since)))
                    .await??
            }
        };
        let Some(ctx) = ctx.filter(plain) else {
            return Ok(None);
        };
        if let Err(e) = check(ctx.grant.8.as_deref(), &ctx.grant.13) {
            return Ok(Some(RefreshUse::Rejected(Box::new(e))));
        }
        let gid = ctx.grant.0.clone();
        let spent = spends
            .spend(Spend { old, new, gid, t })
            .await?
            .then_some(ctx);
        Ok(match spent {
            Some(ctx) => Some(RefreshUse::Rotated(
                Box::new(from_row(ctx.grant)?),
                Box::new(ctx.reads),
            )),
            None => None,
        })
    }
}

impl Store {
    /// Rotates a refresh token: consumes `old` and stores `new` in the same family, or, when
    /// `old` was already used, revokes the family and appends `on_reuse`. A token of another
    /// client than `client_id` is `Invalid`, used or not, and changes nothing. A grant bound to
    /// a DPoP key rotates only with `dpop_jkt` naming it (`WrongKey` otherwise); with
    /// `bind_unbound` (a public client), an unbound grant is bound to `dpop_jkt` when one
    /// comes. `check` refuses the request (`Rejected`) before anything changes. A rotated
    /// token comes with what the refresh decides with ([`RotationReads`]: the user disabled,
    /// the grant's session live as of `idle_since`, the member's roles and features), so the
    /// refresh needs no other query. See the module documentation for the two paths.
    #[allow(clippy::too_many_arguments)]
    pub async fn rotate_refresh_token(
        &self,
        (old, new): (TokenHash, TokenHash),
        client_id: &str,
        dpop_jkt: Option<&str>,
        bind_unbound: bool,
        on_reuse: &Event,
        check: RotationCheck,
        idle_since: Option<i64>,
    ) -> Result<RefreshUse, StoreError> {
        let idle_since = idle_since.unwrap_or(i64::MIN);
        let t = now();
        let bind = dpop_jkt.filter(|_| bind_unbound).map(str::to_owned);
        let fast = Fast {
            old: old.to_vec(),
            new: new.to_vec(),
            client_id: client_id.to_owned(),
            jkt: dpop_jkt.map(str::to_owned),
            bind,
            check: check.clone(),
            t,
            idle_since,
        };
        let (db, spends) = (self.db.clone(), self.spends.clone());
        if let Some(used) = self
            .run(async move { fast.run(&db, &spends).await })
            .await?
        {
            return Ok(used);
        }
        self.rotate_in_transaction(
            (old, new),
            client_id,
            dpop_jkt,
            bind_unbound,
            on_reuse,
            check,
            (t, idle_since),
        )
        .await
    }

    /// The fast path's write on its own: spends refresh token `old` and stores `new` in grant
    /// `gid`'s family, only if `old` is unspent and belongs to `gid`, and `gid` is live at `t`.
    /// Whether it did. (The refresh grant goes through [`Store::rotate_refresh_token`]; this is
    /// its race guard, exposed so that tests can hold it to its conditions on both databases.)
    pub async fn spend_current_refresh_token(
        &self,
        (old, new): (&TokenHash, &TokenHash),
        gid: &str,
        t: i64,
    ) -> Result<bool, StoreError> {
        let spends = self.spends.clone();
        let (old, new, gid) = (old.to_vec(), new.to_vec(), gid.to_owned());
        self.run(async move { spends.spend(Spend { old, new, gid, t }).await })
            .await
    }

    /// The rotation as one transaction, deciding every case: reuse, another client's token,
    /// a revoked or expired grant, a DPoP key to check or to bind. On SQLite the whole
    /// transaction runs in one blocking call on the writer; both backends expand the same
    /// body from [`rotate_body!`]. Detecting reuse writes nothing, so the revocation and its
    /// audit entry (an async append the blocking call cannot make) follow in a transaction of
    /// their own, in the same task: no state holds a revoked family without its entry, a
    /// dropped request still revokes, and a crash between the two leaves the reused token to be
    /// detected again.
    #[allow(clippy::too_many_arguments)]
    async fn rotate_in_transaction(
        &self,
        (old, new): (TokenHash, TokenHash),
        client_id: &str,
        dpop_jkt: Option<&str>,
        bind_unbound: bool,
        on_reuse: &Event,
        check: RotationCheck,
        (t, idle_since): (i64, i64),
    ) -> Result<RefreshUse, StoreError> {
        let db = self.db.clone();
        let client_id = client_id.to_owned();
        let jkt = dpop_jkt.map(str::to_owned);
        let store = self.clone();
        let on_reuse = on_reuse.clone();
        let out: Rotation = self
            .run(async move {
                let out: Rotation = match &db {
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
                                (t, idle_since),
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
                                            (t, idle_since),
                                            check,
                                        )
                                    }))
                                })
                                .await?
                            })
                            .await
                            .map_err(|_| StoreError::Join)?
                    }
                }?;
                // Revoked in this task, so a caller that hangs up cannot leave a reused token
                // spent and its family live. Recorded once per family, by the reuse that
                // revoked it.
                if let Rotation::Reused(grant_id) = &out {
                    let mut e = on_reuse;
                    e.details["grant"] = grant_id.clone().into();
                    store.revoke_live_grant(grant_id, &e).await?;
                }
                Ok(out)
            })
            .await?;
        Ok(match out {
            Rotation::Rotated(row, reads) => RefreshUse::Rotated(Box::new(from_row(*row)?), reads),
            Rotation::Invalid => RefreshUse::Invalid,
            Rotation::WrongKey => RefreshUse::WrongKey,
            Rotation::Rejected(e) => RefreshUse::Rejected(e),
            Rotation::Reused(_) => RefreshUse::Reused,
        })
    }
}

enum Rotation {
    Rotated(Box<Row>, Box<RotationReads>),
    /// The grant whose family must be revoked.
    Reused(String),
    Invalid,
    WrongKey,
    Rejected(Box<crate::protocol::OAuthError>),
}

/// The refresh rotation, written once; `[.await]` or `[]` makes it async or sync.
macro_rules! rotate_body {
    ($c:ident, $old:ident, $new:ident, $client_id:ident, $jkt:ident, $bind:ident, $t:ident, $idle_since:ident, $check:ident, [$($aw:tt)*]) => {{
        use crate::store::schema::{grants, refresh_tokens as rt, sessions, users};
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
        // Without offline_access a grant lives only as long as its sign-in session.
        let offline = grant.4.split(' ').any(|s| s == crate::protocol::scope::OFFLINE_ACCESS);
        let session_live = offline
            || sessions::table
                .find(&grant.3)
                .filter(sessions::ended_at.is_null())
                .filter(sessions::expires_at.gt($t))
                .filter(sessions::last_seen_at.gt($idle_since))
                .select(sessions::last_seen_at)
                .first::<i64>($c) $($aw)*
                .optional()?
                .is_some();
        let member = match grant.8.as_deref() {
            Some(lab) => Some(crate::store::grants_features::MemberGrants::of(
                crate::member_grant_rows!($c, &grant.2, lab, [$($aw)*]),
            )),
            None => None,
        };
        let reads = RotationReads {
            disabled: disabled.unwrap_or(true),
            session_live,
            member,
        };
        Ok(Rotation::Rotated(Box::new(grant), Box::new(reads)))
    }};
}

mod rotate_async {
    use super::{Rotation, RotationReads, Row, StoreError, TokenHash, grant_columns};
    use diesel_async::RunQueryDsl;

    pub(super) async fn rotate(
        c: &mut crate::store::PgConn,
        (old, new): (&TokenHash, &TokenHash),
        client_id: &String,
        jkt: Option<&str>,
        bind: Option<&str>,
        (t, idle_since): (i64, i64),
        check: super::RotationCheck,
    ) -> Result<Rotation, StoreError> {
        rotate_body!(c, old, new, client_id, jkt, bind, t, idle_since, check, [.await])
    }
}

mod rotate_sync {
    use super::{Rotation, RotationReads, Row, StoreError, TokenHash, grant_columns};
    use diesel::RunQueryDsl;

    pub(super) fn rotate(
        c: &mut diesel::SqliteConnection,
        (old, new): (&TokenHash, &TokenHash),
        client_id: &String,
        jkt: Option<&str>,
        bind: Option<&str>,
        (t, idle_since): (i64, i64),
        check: super::RotationCheck,
    ) -> Result<Rotation, StoreError> {
        rotate_body!(c, old, new, client_id, jkt, bind, t, idle_since, check, [])
    }
}
