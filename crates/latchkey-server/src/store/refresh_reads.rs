//! The refresh fast path's read: everything a refresh needs (the token, its grant, the user,
//! the sign-in session, the member's roles and features) in one statement by the token's hash,
//! on either backend.
//!
//! One statement is one snapshot on both databases, with no transaction to open and close, and
//! it is prepared once per connection (a static query id). On SQLite this matters most: every
//! commit on the writer empties the readers' page caches, so each statement saved is a set of
//! b-tree descents read again from the file. Diesel's DSL has no `ARRAY(…)` subqueries, so the
//! statement is written out; PostgreSQL collects the lists into arrays, SQLite into JSON
//! arrays (`json_group_array`).

use super::grants::Row;
use super::grants_features::MemberGrants;
use super::refresh_rotation::RotationReads;
use super::{PgConn, StoreError};
use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Array, BigInt, Binary, Bool, HasSqlType, Nullable, Text};
use diesel::sqlite::Sqlite;

/// What the fast path read: the token's state, its grant, and the [`RotationReads`].
pub(super) struct Context {
    pub consumed: bool,
    pub grant: Row,
    pub reads: RotationReads,
}

impl Context {
    /// Whether the fast path may spend the token: current, of `client_id`'s live grant, with
    /// the grant's DPoP key if it has one, and no key to bind.
    pub fn is_plain(&self, client_id: &str, jkt: Option<&str>, bind: Option<&str>, t: i64) -> bool {
        let g = &self.grant;
        let key_ok = match g.12.as_deref() {
            Some(bound) => jkt == Some(bound),
            None => bind.is_none(),
        };
        g.1 == client_id && !self.consumed && g.11.is_none() && g.10 > t && key_ok
    }
}

/// The read on PostgreSQL; `None` for an unknown token.
pub(super) async fn read_pg(
    c: &mut PgConn,
    old: Vec<u8>,
    t: i64,
    idle_since: i64,
) -> Result<Option<Context>, StoreError> {
    use diesel::OptionalExtension;
    use diesel_async::RunQueryDsl;
    let row: Option<ContextRow<Vec<String>>> = ReadContext::<Pg>::new(old, t, idle_since)
        .get_result(c)
        .await
        .optional()?;
    row.map(|r| context(r, Ok)).transpose()
}

/// The read on an SQLite reader; `None` for an unknown token.
pub(super) fn read_sqlite(
    c: &mut diesel::SqliteConnection,
    old: Vec<u8>,
    t: i64,
    idle_since: i64,
) -> Result<Option<Context>, StoreError> {
    use diesel::{OptionalExtension, RunQueryDsl};
    let row: Option<ContextRow<String>> = ReadContext::<Sqlite>::new(old, t, idle_since)
        .get_result(c)
        .optional()?;
    row.map(|r| context(r, |json: String| super::from_json_text(&json)))
        .transpose()
}

/// A row of the statement; `L` is how the backend returns a list of names.
type ContextRow<L> = (Option<i64>, Row, Option<bool>, bool, L, L, L, L, bool);

fn context<L>(
    (consumed, grant, disabled, session_live, roles, role_features, allows, denies, member): ContextRow<L>,
    list: impl Fn(L) -> Result<Vec<String>, StoreError>,
) -> Result<Context, StoreError> {
    let (roles, role_features) = (list(roles)?, list(role_features)?);
    let overrides: Vec<(String, bool)> = list(allows)?
        .into_iter()
        .map(|f| (f, true))
        .chain(list(denies)?.into_iter().map(|f| (f, false)))
        .collect();
    let member = grant.8.is_some().then(|| {
        MemberGrants::new(
            roles,
            role_features.iter().map(String::as_str),
            overrides,
            member,
        )
    });
    Ok(Context {
        consumed: consumed.is_some(),
        grant,
        reads: RotationReads {
            disabled: disabled.unwrap_or(true),
            session_live,
            member,
        },
    })
}

/// The statement, for backend `B`.
struct ReadContext<B> {
    old: Vec<u8>,
    t: i64,
    idle_since: i64,
    backend: std::marker::PhantomData<B>,
}

impl<B> ReadContext<B> {
    fn new(old: Vec<u8>, t: i64, idle_since: i64) -> Self {
        ReadContext {
            old,
            t,
            idle_since,
            backend: std::marker::PhantomData,
        }
    }

    /// The SQL, with `offline` (whether the grant's scope holds `offline_access`) and `list`
    /// (a subquery's rows as one value) in the backend's dialect.
    fn walk<'b, DB>(
        &'b self,
        mut out: AstPass<'_, 'b, DB>,
        offline: &str,
        list: fn(&str, &str) -> String,
    ) -> QueryResult<()>
    where
        DB: Backend + HasSqlType<BigInt> + HasSqlType<Binary>,
        i64: ToSql<BigInt, DB>,
        Vec<u8>: ToSql<Binary, DB>,
    {
        out.push_sql(
            "SELECT rt.consumed_at, \
             g.id, g.client_id, g.user_id, g.session_id, g.scope, g.auth_time, g.acr, g.amr, \
             g.lab_id, g.created_at, g.expires_at, g.revoked_at, g.dpop_jkt, g.resources, \
             u.disabled, (",
        );
        out.push_sql(offline);
        out.push_sql(" OR (s.ended_at IS NULL AND s.expires_at > ");
        out.push_bind_param::<BigInt, _>(&self.t)?;
        out.push_sql(" AND s.last_seen_at > ");
        out.push_bind_param::<BigInt, _>(&self.idle_since)?;
        out.push_sql(")) IS TRUE, ");
        let member = "WHERE ur.user_id = g.user_id AND ur.lab_id = g.lab_id";
        let own = "FROM member_features mf WHERE mf.user_id = g.user_id AND mf.lab_id = g.lab_id";
        out.push_sql(&list("ur.role", &format!("FROM user_roles ur {member}")));
        out.push_sql(", ");
        out.push_sql(&list(
            "rf.feature",
            &format!(
                "FROM user_roles ur JOIN role_features rf \
                 ON rf.lab_id = ur.lab_id AND rf.role = ur.role {member}"
            ),
        ));
        out.push_sql(", ");
        out.push_sql(&list("mf.feature", &format!("{own} AND mf.allow")));
        out.push_sql(", ");
        out.push_sql(&list("mf.feature", &format!("{own} AND NOT mf.allow")));
        out.push_sql(
            ", EXISTS(SELECT 1 FROM memberships m \
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

impl<B: 'static> QueryId for ReadContext<B> {
    type QueryId = ReadContext<B>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

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

type ContextSql<L> = (
    Nullable<BigInt>,
    GrantSql,
    Nullable<Bool>,
    Bool,
    L,
    L,
    L,
    L,
    Bool,
);

impl Query for ReadContext<Pg> {
    type SqlType = ContextSql<Array<Text>>;
}

impl QueryFragment<Pg> for ReadContext<Pg> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.walk(
            out,
            "'offline_access' = ANY(string_to_array(g.scope, ' '))",
            |value, from| format!("ARRAY(SELECT {value} {from})"),
        )
    }
}

impl Query for ReadContext<Sqlite> {
    type SqlType = ContextSql<Text>;
}

impl<C> diesel::RunQueryDsl<C> for ReadContext<Sqlite> {}

impl QueryFragment<Sqlite> for ReadContext<Sqlite> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.walk(
            out,
            // Scope tokens are case-sensitive (RFC 6749 section 3.3): instr, not LIKE.
            "instr(' ' || g.scope || ' ', ' offline_access ') > 0",
            |value, from| format!("(SELECT json_group_array({value}) {from})"),
        )
    }
}
