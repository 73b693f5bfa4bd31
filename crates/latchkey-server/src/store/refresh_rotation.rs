//! Refresh-token rotation (RFC 6749 section 6, RFC 9700 section 4.14.2): the refresh grant's
//! one write, and the busiest write path there is.
//!
//! A current token of a live grant, presented by its client (with its DPoP key, if bound),
//! takes the **fast path**: one read of everything the refresh needs (the token, its grant,
//! the user, the sign-in session, the member's roles and features) on a reader connection
//! (SQLite) or in one statement (PostgreSQL), then one conditional write that spends the token
//! only if it is still unspent and its grant still live, and stores its successor (on
//! PostgreSQL one statement, so no transaction is held open across round trips). The answer
//! is sent only after that write has committed: nothing is less durable than a transaction.
//!
//! Everything else, and a fast path that lost a race (a concurrent use of the same token, a
//! revocation between the read and the write), goes through the **transaction** that decides
//! every case exactly: reuse detection and family revocation, another client's token, a
//! revoked or expired grant, a missing DPoP proof, a public client binding its grant to a
//! DPoP key.

use super::grants::{Grant, Row, from_row, grant_columns};
use super::grants_features::MemberGrants;
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

/// What the fast path read: the token's state, its grant, and the [`RotationReads`].
struct Context {
    consumed: bool,
    grant: Row,
    reads: RotationReads,
}

impl Context {
    /// Whether the fast path may spend the token: current, of `client_id`'s live grant, with
    /// the grant's DPoP key if it has one, and no key to bind.
    fn is_plain(&self, client_id: &str, jkt: Option<&str>, bind: Option<&str>, t: i64) -> bool {
        let g = &self.grant;
        let key_ok = match g.12.as_deref() {
            Some(bound) => jkt == Some(bound),
            None => bind.is_none(),
        };
        g.1 == client_id && !self.consumed && g.11.is_none() && g.10 > t && key_ok
    }
}

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
    async fn run(self, db: &Db) -> Result<Option<RefreshUse>, StoreError> {
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
        let spent = match db {
            Db::Pg(pool) => {
                use diesel::OptionalExtension;
                use diesel_async::RunQueryDsl;
                // One connection for both statements; no transaction is open between them.
                let mut c = pool.get().await?;
                let row: Option<pg::ContextRow> = pg::ReadContext {
                    old: old.clone(),
                    t,
                    idle_since,
                }
                .get_result(&mut *c)
                .await
                .optional()?;
                let Some(ctx) = row.map(pg::IntoContext::into_context).filter(plain) else {
                    return Ok(None);
                };
                if let Err(e) = check(ctx.grant.8.as_deref(), &ctx.grant.13) {
                    return Ok(Some(RefreshUse::Rejected(Box::new(e))));
                }
                let gid = ctx.grant.0.clone();
                pg_spend(&mut c, old, new, gid, t).await?.then_some(ctx)
            }
            Db::Sqlite {
                readers,
                writer,
                writer_rt,
                ..
            } => {
                let mut c = readers.get().await?;
                let read = old.clone();
                let ctx = c
                    .spawn_blocking(move |c| Ok(sqlite_context(c, &read, t, idle_since)))
                    .await??;
                drop(c);
                let Some(ctx) = ctx.filter(plain) else {
                    return Ok(None);
                };
                if let Err(e) = check(ctx.grant.8.as_deref(), &ctx.grant.13) {
                    return Ok(Some(RefreshUse::Rejected(Box::new(e))));
                }
                let gid = ctx.grant.0.clone();
                sqlite_spend_on_writer(writer, writer_rt, old, new, gid, t)
                    .await?
                    .then_some(ctx)
            }
        };
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
        let db = self.db.clone();
        if let Some(used) = self.run(async move { fast.run(&db).await }).await? {
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
        let db = self.db.clone();
        let (old, new, gid) = (old.to_vec(), new.to_vec(), gid.to_owned());
        self.run(async move {
            match &db {
                Db::Pg(pool) => pg_spend(&mut *pool.get().await?, old, new, gid, t).await,
                Db::Sqlite {
                    writer, writer_rt, ..
                } => sqlite_spend_on_writer(writer, writer_rt, old, new, gid, t).await,
            }
        })
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

/// [`Store::rotation_context`] on an SQLite reader (one snapshot: a read transaction).
fn sqlite_context(
    c: &mut diesel::SqliteConnection,
    old: &[u8],
    t: i64,
    idle_since: i64,
) -> Result<Option<Context>, StoreError> {
    use super::schema::{grants, refresh_tokens as rt, sessions, users};
    use diesel::{Connection, ExpressionMethods, OptionalExtension, QueryDsl, RunQueryDsl};
    c.transaction::<_, StoreError, _>(|c| {
        let tok: Option<(String, Option<i64>)> = rt::table
            .find(old)
            .select((rt::grant_id, rt::consumed_at))
            .first(c)
            .optional()?;
        let Some((gid, consumed)) = tok else {
            return Ok(None);
        };
        let grant: Option<Row> = grants::table
            .find(&gid)
            .select(grant_columns!())
            .first(c)
            .optional()?;
        let Some(grant) = grant else { return Ok(None) };
        let disabled: Option<bool> = users::table
            .find(&grant.2)
            .select(users::disabled)
            .first(c)
            .optional()?;
        let offline = grant
            .4
            .split(' ')
            .any(|s| s == crate::protocol::scope::OFFLINE_ACCESS);
        let session_live = offline
            || sessions::table
                .find(&grant.3)
                .filter(sessions::ended_at.is_null())
                .filter(sessions::expires_at.gt(t))
                .filter(sessions::last_seen_at.gt(idle_since))
                .select(sessions::last_seen_at)
                .first::<i64>(c)
                .optional()?
                .is_some();
        let member = match grant.8.as_deref() {
            Some(lab) => Some(MemberGrants::of(crate::member_grant_rows!(
                c,
                &grant.2,
                lab,
                []
            ))),
            None => None,
        };
        Ok(Some(Context {
            consumed: consumed.is_some(),
            reads: RotationReads {
                disabled: disabled.unwrap_or(true),
                session_live,
                member,
            },
            grant,
        }))
    })
}

/// The fast path's write on PostgreSQL: [`pg::Spend`].
async fn pg_spend(
    c: &mut super::PgConn,
    old: Vec<u8>,
    new: Vec<u8>,
    gid: String,
    t: i64,
) -> Result<bool, StoreError> {
    use diesel_async::RunQueryDsl;
    Ok(pg::Spend { t, old, new, gid }.execute(c).await? == 1)
}

/// The fast path's write on SQLite: [`sqlite_spend`] in an immediate transaction on the writer.
async fn sqlite_spend_on_writer(
    writer: &super::Pool<super::SqliteWriteConn>,
    writer_rt: &tokio::runtime::Handle,
    old: Vec<u8>,
    new: Vec<u8>,
    gid: String,
    t: i64,
) -> Result<bool, StoreError> {
    let writer = writer.clone();
    writer_rt
        .spawn(async move {
            let mut obj = writer.get().await?;
            let c: &mut super::SqliteWriteConn = &mut obj;
            c.spawn_blocking(move |c| {
                Ok(c.immediate_transaction::<_, StoreError, _>(|c| {
                    sqlite_spend(c, &old, &new, &gid, t)
                }))
            })
            .await?
        })
        .await
        .map_err(|_| StoreError::Join)?
}

/// The fast path's write inside the SQLite writer's immediate transaction.
fn sqlite_spend(
    c: &mut diesel::SqliteConnection,
    old: &[u8],
    new: &[u8],
    gid: &str,
    t: i64,
) -> Result<bool, StoreError> {
    use super::schema::{grants, refresh_tokens as rt};
    use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, RunQueryDsl};
    let live = grants::table
        .find(gid)
        .filter(grants::revoked_at.is_null())
        .filter(grants::expires_at.gt(t))
        .select(grants::id)
        .first::<String>(c)
        .optional()?
        .is_some();
    if !live {
        return Ok(false);
    }
    let spent = diesel::update(
        rt::table
            .find(old)
            .filter(rt::grant_id.eq(gid))
            .filter(rt::consumed_at.is_null()),
    )
    .set(rt::consumed_at.eq(Some(t)))
    .execute(c)?;
    if spent != 1 {
        return Ok(false);
    }
    diesel::insert_into(rt::table)
        .values((
            rt::token_hash.eq(new),
            rt::grant_id.eq(gid),
            rt::created_at.eq(t),
        ))
        .execute(c)?;
    Ok(true)
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

/// The fast path's two PostgreSQL statements, written out (diesel's DSL has no `ARRAY(…)`
/// subqueries or data-modifying CTEs) as statements diesel prepares once per connection.
mod pg {
    use super::{Context, RotationReads};
    use crate::store::grants::Row;
    use crate::store::grants_features::MemberGrants;
    use diesel::QueryResult;
    use diesel::pg::Pg;
    use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
    use diesel::sql_types::{Array, BigInt, Binary, Bool, Nullable, Text};

    /// The SQL types of the grant columns, in `grant_columns!` order.
    type GrantSql = (
        Text,
        Text,
        Text,
        Text,
        Text,
        BigInt,
        Text,
        Text,
        Nullable<Text>,
        BigInt,
        BigInt,
        Nullable<BigInt>,
        Nullable<Text>,
        Text,
    );

    /// Everything the fast path reads, by the token's hash, in one statement.
    pub(super) struct ReadContext {
        pub old: Vec<u8>,
        pub t: i64,
        pub idle_since: i64,
    }

    pub(super) type ContextRow = (
        Option<i64>,
        Row,
        Option<bool>,
        bool,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        bool,
    );

    pub(super) trait IntoContext {
        fn into_context(self) -> Context;
    }

    impl IntoContext for ContextRow {
        fn into_context(self) -> Context {
            let (
                consumed,
                grant,
                disabled,
                session_live,
                roles,
                role_features,
                allows,
                denies,
                member,
            ) = self;
            let member = grant.8.is_some().then(|| {
                let overrides: Vec<(String, bool)> = allows
                    .into_iter()
                    .map(|f| (f, true))
                    .chain(denies.into_iter().map(|f| (f, false)))
                    .collect();
                MemberGrants::new(
                    roles,
                    role_features.iter().map(String::as_str),
                    overrides,
                    member,
                )
            });
            Context {
                consumed: consumed.is_some(),
                grant,
                reads: RotationReads {
                    disabled: disabled.unwrap_or(true),
                    session_live,
                    member,
                },
            }
        }
    }

    impl QueryId for ReadContext {
        type QueryId = ReadContext;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl Query for ReadContext {
        type SqlType = (
            Nullable<BigInt>,
            GrantSql,
            Nullable<Bool>,
            Bool,
            Array<Text>,
            Array<Text>,
            Array<Text>,
            Array<Text>,
            Bool,
        );
    }

    impl QueryFragment<Pg> for ReadContext {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            out.push_sql(
                "SELECT rt.consumed_at, \
                 g.id, g.client_id, g.user_id, g.session_id, g.scope, g.auth_time, g.acr, \
                 g.amr, g.lab_id, g.created_at, g.expires_at, g.revoked_at, g.dpop_jkt, \
                 g.resources, \
                 u.disabled, \
                 ('offline_access' = ANY(string_to_array(g.scope, ' ')) OR (s.ended_at IS NULL AND s.expires_at > ",
            );
            out.push_bind_param::<BigInt, _>(&self.t)?;
            out.push_sql(" AND s.last_seen_at > ");
            out.push_bind_param::<BigInt, _>(&self.idle_since)?;
            out.push_sql(
                ")) IS TRUE, \
                 ARRAY(SELECT ur.role FROM user_roles ur \
                       WHERE ur.user_id = g.user_id AND ur.lab_id = g.lab_id), \
                 ARRAY(SELECT rf.feature FROM user_roles ur JOIN role_features rf \
                         ON rf.lab_id = ur.lab_id AND rf.role = ur.role \
                       WHERE ur.user_id = g.user_id AND ur.lab_id = g.lab_id), \
                 ARRAY(SELECT mf.feature FROM member_features mf \
                       WHERE mf.user_id = g.user_id AND mf.lab_id = g.lab_id AND mf.allow), \
                 ARRAY(SELECT mf.feature FROM member_features mf \
                       WHERE mf.user_id = g.user_id AND mf.lab_id = g.lab_id AND NOT mf.allow), \
                 EXISTS(SELECT 1 FROM memberships m \
                        WHERE m.user_id = g.user_id AND m.lab_id = g.lab_id) \
                 FROM refresh_tokens rt \
                 JOIN grants g ON g.id = rt.grant_id \
                 LEFT JOIN users u ON u.id = g.user_id \
                 LEFT JOIN sessions s ON s.id = g.session_id \
                 WHERE rt.token_hash = ",
            );
            out.push_bind_param::<Binary, _>(&self.old)?;
            Ok(())
        }
    }

    /// Spends `old` and stores `new` in grant `gid`'s family, in one statement (so atomically,
    /// without a transaction held across round trips): only while `old` is unspent and the
    /// grant live. A concurrent use of the same token waits on the row lock and then finds it
    /// spent. Affects 1 row when it stored `new`, 0 otherwise.
    pub(super) struct Spend {
        pub t: i64,
        pub old: Vec<u8>,
        pub new: Vec<u8>,
        pub gid: String,
    }

    impl QueryId for Spend {
        type QueryId = Spend;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl QueryFragment<Pg> for Spend {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            out.push_sql("WITH spent AS (UPDATE refresh_tokens SET consumed_at = ");
            out.push_bind_param::<BigInt, _>(&self.t)?;
            out.push_sql(" WHERE token_hash = ");
            out.push_bind_param::<Binary, _>(&self.old)?;
            out.push_sql(" AND consumed_at IS NULL AND grant_id = ");
            out.push_bind_param::<Text, _>(&self.gid)?;
            out.push_sql(" AND EXISTS (SELECT 1 FROM grants WHERE id = ");
            out.push_bind_param::<Text, _>(&self.gid)?;
            out.push_sql(" AND revoked_at IS NULL AND expires_at > ");
            out.push_bind_param::<BigInt, _>(&self.t)?;
            out.push_sql(
                ") RETURNING grant_id) \
                 INSERT INTO refresh_tokens (token_hash, grant_id, created_at) SELECT ",
            );
            out.push_bind_param::<Binary, _>(&self.new)?;
            out.push_sql(", grant_id, ");
            out.push_bind_param::<BigInt, _>(&self.t)?;
            out.push_sql(" FROM spent");
            Ok(())
        }
    }
}
