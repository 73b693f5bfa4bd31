//! The rows of a backup: every table that holds state, read in one consistent snapshot (an
//! SQLite read transaction; a PostgreSQL `REPEATABLE READ READ ONLY` transaction), and
//! written back into an empty database of either kind in one transaction.
//!
//! Rows travel as JSON arrays in the columns' order: text as strings, integers as numbers,
//! booleans, bytes as base64url, `NULL` as `null`. [`for_each_table!`] is the one list of
//! tables and columns; `all_columns_listed` fails to compile when `schema.rs` gains a column
//! the list lacks. Left out, because they only live for minutes and a restore may drop them:
//! `login_flows`, `webauthn_ceremonies`, `throttle_counters`, `pushed_requests`,
//! `device_authorizations`, `dpop_proofs`; and the outboxes `mail_outbox` and
//! `logout_deliveries`.

use super::schema;
use super::{Db, Store, StoreError};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use serde_json::Value;
use tokio::sync::mpsc;

/// Rows per batch read from or written to the database.
const BATCH: usize = 500;
/// Rows per page read from SQLite.
const PAGE: i64 = 2000;

/// A column value's portable form.
pub trait Portable: Sized {
    fn to_json(&self) -> Value;
    fn from_json(v: Value) -> Result<Self, String>;
}

impl Portable for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
    fn from_json(v: Value) -> Result<Self, String> {
        match v {
            Value::String(s) => Ok(s),
            other => Err(format!("expected text, found {other}")),
        }
    }
}

impl Portable for i64 {
    fn to_json(&self) -> Value {
        Value::from(*self)
    }
    fn from_json(v: Value) -> Result<Self, String> {
        v.as_i64()
            .ok_or_else(|| format!("expected an integer, found {v}"))
    }
}

impl Portable for bool {
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_json(v: Value) -> Result<Self, String> {
        v.as_bool()
            .ok_or_else(|| format!("expected true or false, found {v}"))
    }
}

impl Portable for Vec<u8> {
    fn to_json(&self) -> Value {
        use base64::Engine;
        Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self))
    }
    fn from_json(v: Value) -> Result<Self, String> {
        use base64::Engine;
        let s = v
            .as_str()
            .ok_or_else(|| format!("expected base64url bytes, found {v}"))?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "expected base64url bytes".to_owned())
    }
}

impl<T: Portable> Portable for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_json)
    }
    fn from_json(v: Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            other => T::from_json(other).map(Some),
        }
    }
}

/// The Rust type a column's SQL type is read into.
pub trait SqlPortable {
    type Rust: Portable;
}
impl SqlPortable for diesel::sql_types::Text {
    type Rust = String;
}
impl SqlPortable for diesel::sql_types::BigInt {
    type Rust = i64;
}
impl SqlPortable for diesel::sql_types::Bool {
    type Rust = bool;
}
impl SqlPortable for diesel::sql_types::Binary {
    type Rust = Vec<u8>;
}
impl<T: SqlPortable + diesel::sql_types::SqlType> SqlPortable for diesel::sql_types::Nullable<T> {
    type Rust = Option<T::Rust>;
}

/// The Rust type of column `$t::$c`.
macro_rules! rust_type {
    ($t:ident, $c:ident) => {
        <<schema::$t::$c as diesel::Expression>::SqlType as SqlPortable>::Rust
    };
}

/// Calls `$m!(args; table: [columns]; …)` with every table a backup holds, parents before
/// the tables that reference them, each table's columns in `schema.rs` order.
macro_rules! for_each_table {
    ($m:ident ! ($($args:tt)*)) => {
        $m! {$($args)*;
            labs: [id, name, created_at];
            users: [id, email, name, password_hash, disabled, created_at, system_admin, erased_at,
                email_verified_at, deletion_requested_at];
            memberships: [user_id, lab_id, created_at, admin];
            clients: [id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types,
                access_token_ttl_secs, id_token_alg, skip_consent, created_at, min_acr, admin_of,
                disabled_at, expires_at, previous_secret_hash, previous_secret_expires_at,
                pkce_optional, all_labs, features, require_par, jwks, jwks_uri, require_dpop,
                backchannel_logout_uri, resource_uri, resources];
            client_labs: [client_id, lab_id];
            sessions: [id, token_hash, user_id, auth_time, amr, acr, created_at, expires_at,
                ended_at, factors, last_seen_at, source, user_agent];
            consents: [user_id, client_id, scope, created_at, resources];
            authorization_codes: [code_hash, grant_id, client_id, user_id, session_id,
                redirect_uri, scope, nonce, code_challenge, auth_time, acr, amr, lab_id,
                created_at, expires_at, consumed_at, dpop_jkt, resources];
            grants: [id, client_id, user_id, session_id, scope, auth_time, acr, amr, lab_id,
                created_at, expires_at, revoked_at, dpop_jkt, resources];
            refresh_tokens: [token_hash, grant_id, created_at, consumed_at];
            signing_keys: [kid, alg, state, private_key, public_jwk, created_at, activated_at,
                retired_at, activate_at];
            server_secrets: [name, sealed, created_at];
            audit_events: [id, at, actor, action, target, details, seq, prev_hash, hash];
            audit_checkpoints: [seq, hash, pruned, created_at, mac];
            totp_credentials: [user_id, secret, confirmed, last_step, created_at];
            webauthn_credentials: [id, user_id, name, kind, credential, sign_count,
                backup_eligible, backup_state, created_at, last_used_at, attestation_root];
            recovery_codes: [user_id, code_hash, created_at, used_at, keyed];
            auth_failures: [user_id, kind, failures, locked_until];
            lab_policies: [lab_id, min_acr, grace_days, grace_logins, updated_at];
            roles: [lab_id, name, min_acr, created_at];
            user_roles: [user_id, lab_id, role, created_at];
            role_features: [lab_id, role, feature, created_at];
            member_features: [user_id, lab_id, feature, allow, created_at];
            mfa_grace: [user_id, lab_id, started_at, logins];
            invitations: [id, token_hash, lab_id, email, roles, created_by, created_at,
                expires_at, accepted_at, accepted_by, link_disclosed];
            security_alerts: [id, key, at, detector, subject, payload];
            webhook_deliveries: [id, alert_id, url, status, attempts, next_attempt_at,
                last_result, delivered_at];
            backup_runs: [slot, node, started_at, finished_at, status, file, bytes, rows, error];
            account_links: [token_hash, user_id, purpose, email, change_id, created_at, expires_at,
                used_at];
        }
    };
}

macro_rules! table_list {
    (; $($t:ident: [$($c:ident),+ $(,)?];)+) => {
        /// Every table a backup holds, in restore order, with its columns.
        pub const TABLES: &[(&str, &[&str])] = &[$((stringify!($t), &[$(stringify!($c)),+])),+];

        /// Fails to compile when a table gains, loses or reorders a column without the list.
        #[allow(dead_code)]
        fn all_columns_listed() {
            $(let _: <schema::$t::table as diesel::Table>::AllColumns = ($(schema::$t::$c,)+);)+
        }
    };
}
for_each_table!(table_list!());

/// The tables a database has that a backup leaves out on purpose.
/// The mail outbox is one: a restored service must not send again what the old one sent.
/// Used client assertions (`jti`) are another: they live at most ten minutes. Back-channel
/// logout deliveries too: a restored service must not log relying parties out again.
pub const TRANSIENT: &[&str] = &[
    "login_flows",
    "webauthn_ceremonies",
    "throttle_counters",
    "mail_outbox",
    "pushed_requests",
    "client_assertions",
    "device_authorizations",
    "dpop_proofs",
    "logout_deliveries",
];

/// What a snapshot sends, in order: the row counts, then each table and its rows.
#[derive(Debug)]
pub enum Dumped {
    Counts(Vec<(&'static str, u64)>),
    Table(&'static str),
    Rows(Vec<Vec<Value>>),
}

/// What a restore receives: a table (by name, with the columns the backup lists), its rows.
#[derive(Debug)]
pub enum Restoring {
    Table {
        name: String,
        columns: Vec<String>,
    },
    Rows(Vec<Vec<Value>>),
    /// The whole backup was read and checked: only now may the transaction commit.
    End {
        rows: u64,
    },
}

macro_rules! count_tables {
    ($conn:ident; $($t:ident: [$($c:ident),+ $(,)?];)+) => {{
        let mut counts = Vec::new();
        $(
            let n: i64 = schema::$t::table.count().get_result(&mut *$conn).await?;
            counts.push((stringify!($t), n as u64));
        )+
        counts
    }};
}

/// Hands one row (bound to the column names) to the batch, sending full batches.
macro_rules! push_row {
    ($tx:ident, $batch:ident, [$($c:ident),+]) => {
        $batch.push(vec![$(Portable::to_json(&$c)),+]);
        if $batch.len() == BATCH {
            $tx.send(Dumped::Rows(std::mem::take(&mut $batch))).await.map_err(|_| closed())?;
        }
    };
}

/// Sends every table's rows without holding a whole table: SQLite in pages by `rowid`
/// (stable within the read transaction), PostgreSQL as a stream from one query.
macro_rules! dump_tables {
    (pages, $conn:ident, $tx:ident; $($t:ident: [$($c:ident),+ $(,)?];)+) => {{
        use diesel::sql_types::{BigInt, Bool};
        $(
            $tx.send(Dumped::Table(stringify!($t))).await.map_err(|_| closed())?;
            let mut batch = Vec::with_capacity(BATCH);
            let mut last = i64::MIN;
            loop {
                let page: Vec<(i64, $(rust_type!($t, $c),)+)> = schema::$t::table
                    .select((diesel::dsl::sql::<BigInt>("rowid"), $(schema::$t::$c,)+))
                    .filter(diesel::dsl::sql::<Bool>("rowid > ").bind::<BigInt, _>(last))
                    .order(diesel::dsl::sql::<BigInt>("rowid"))
                    .limit(PAGE)
                    .load(&mut *$conn)
                    .await?;
                let full = page.len() as i64 == PAGE;
                for (rowid, $($c,)+) in page {
                    last = rowid;
                    push_row!($tx, batch, [$($c),+]);
                }
                if !full {
                    break;
                }
            }
            if !batch.is_empty() {
                $tx.send(Dumped::Rows(batch)).await.map_err(|_| closed())?;
            }
        )+
    }};
    (stream, $conn:ident, $tx:ident; $($t:ident: [$($c:ident),+ $(,)?];)+) => {{
        use futures_util::StreamExt as _;
        $(
            $tx.send(Dumped::Table(stringify!($t))).await.map_err(|_| closed())?;
            let mut batch = Vec::with_capacity(BATCH);
            let mut rows = schema::$t::table
                .select(($(schema::$t::$c,)+))
                .load_stream::<($(rust_type!($t, $c),)+)>(&mut *$conn)
                .await?;
            while let Some(row) = rows.next().await {
                let ($($c,)+) = row?;
                push_row!($tx, batch, [$($c),+]);
            }
            drop(rows);
            if !batch.is_empty() {
                $tx.send(Dumped::Rows(batch)).await.map_err(|_| closed())?;
            }
        )+
    }};
}

/// Writes `$values` (a Vec of `(column.eq(value), …)` tuples) into `$t`: one statement for
/// them all on PostgreSQL, one statement each on SQLite (diesel batches SQLite inserts only on
/// its synchronous connection; inside one transaction SQLite takes single rows fast).
macro_rules! flush {
    (batch, $conn:ident, $t:ident, $values:ident) => {
        diesel::insert_into(schema::$t::table)
            .values(std::mem::take(&mut $values))
            .execute(&mut *$conn)
            .await?;
    };
    (single, $conn:ident, $t:ident, $values:ident) => {
        for v in std::mem::take(&mut $values) {
            diesel::insert_into(schema::$t::table)
                .values(v)
                .execute(&mut *$conn)
                .await?;
        }
    };
}

macro_rules! insert_rows {
    ($mode:ident, $conn:ident, $name:expr, $rows:expr; $($t:ident: [$($c:ident),+ $(,)?];)+) => {
        match $name {
            $(stringify!($t) => {
                // Within every backend's limit on bound parameters per statement.
                let per = (10_000 / [$(stringify!($c)),+].len()).max(1);
                let mut values = Vec::with_capacity(per.min($rows.len()));
                let total = $rows.len();
                for (i, row) in $rows.into_iter().enumerate() {
                    let bad = |why: String| StoreError::Corrupt(
                        format!("table {}, row {}: {why}", stringify!($t), i + 1));
                    let width = [$(stringify!($c)),+].len();
                    if row.len() != width {
                        return Err(bad(format!("{} values for {width} columns", row.len())));
                    }
                    let mut it = row.into_iter();
                    $(
                        let $c = <rust_type!($t, $c) as Portable>::from_json(
                            it.next().unwrap_or(Value::Null),
                        )
                        .map_err(|e| bad(format!("{}: {e}", stringify!($c))))?;
                    )+
                    values.push(($(schema::$t::$c.eq($c),)+));
                    if values.len() == per || i + 1 == total {
                        flush!($mode, $conn, $t, values);
                    }
                }
            })+
            other => return Err(StoreError::Corrupt(format!("unknown table `{other}`"))),
        }
    };
}

/// The restore transaction: refuse a database that is not empty, drop the console client the
/// migrations seeded (the backup has its own), then write each table as it arrives.
macro_rules! restore_body {
    ($mode:ident, $conn:ident, $rx:ident) => {{
        let mut rx = $rx;
        let conn = $conn;
        let occupied = for_each_table!(count_tables!(conn));
        let seeded: i64 = schema::clients::table
            .filter(schema::clients::id.eq(SEEDED_CLIENT))
            .count()
            .get_result(&mut *conn)
            .await?;
        if let Some((t, _)) = occupied
            .iter()
            .find(|(t, n)| *n > if *t == "clients" { seeded as u64 } else { 0 })
        {
            return Err(StoreError::Conflict(format!(
                "the database is not empty (table {t} has rows): restore into a new database"
            )));
        }
        diesel::delete(schema::clients::table.filter(schema::clients::id.eq(SEEDED_CLIENT)))
            .execute(&mut *conn)
            .await?;
        let mut current: Option<&'static str> = None;
        let mut seen: Vec<&'static str> = Vec::new();
        let mut written = 0u64;
        let mut ended = false;
        while let Some(item) = rx.recv().await {
            match item {
                Restoring::End { rows } => {
                    if rows != written {
                        return Err(StoreError::Corrupt(format!(
                            "{written} rows arrived of {rows}"
                        )));
                    }
                    ended = true;
                    break;
                }
                Restoring::Table { name, columns } => {
                    let Some((t, cols)) = TABLES.iter().find(|(t, _)| *t == name) else {
                        return Err(StoreError::Corrupt(format!(
                            "the backup has a table this latchkey does not know: `{name}`"
                        )));
                    };
                    if columns.iter().map(String::as_str).ne(cols.iter().copied()) {
                        return Err(StoreError::Corrupt(format!(
                            "table {t}: the backup's columns ({}) are not this schema's ({})",
                            columns.join(", "),
                            cols.join(", ")
                        )));
                    }
                    if seen.contains(t) {
                        return Err(StoreError::Corrupt(format!("table {t} appears twice")));
                    }
                    seen.push(t);
                    current = Some(t);
                }
                Restoring::Rows(rows) => {
                    let Some(t) = current else {
                        return Err(StoreError::Corrupt("rows before any table".into()));
                    };
                    written += rows.len() as u64;
                    for_each_table!(insert_rows!($mode, conn, t, rows));
                }
            }
        }
        if !ended {
            return Err(StoreError::Corrupt(
                "the backup was not read to its end".into(),
            ));
        }
        if let Some((missing, _)) = TABLES.iter().find(|(t, _)| !seen.contains(t)) {
            return Err(StoreError::Corrupt(format!(
                "the backup ends before table {missing}"
            )));
        }
        // The scheduled run that made this backup was still running in its snapshot: here it
        // never finishes, and must not hold its interval.
        diesel::update(
            schema::backup_runs::table.filter(schema::backup_runs::status.eq("running")),
        )
        .set((
            schema::backup_runs::status.eq("failed"),
            schema::backup_runs::error.eq("not finished when the backup restored here was taken"),
        ))
        .execute(&mut *conn)
        .await?;
        Ok(written)
    }};
}

fn closed() -> StoreError {
    StoreError::Setup("the backup writer stopped".into())
}

/// The built-in console client the migrations insert: a new database has it, and a backup
/// carries the backed-up service's own row.
const SEEDED_CLIENT: &str = "latchkey:admin";

impl Store {
    /// Sends every backed-up table's rows to `tx` from one consistent snapshot.
    pub async fn dump(&self, tx: mpsc::Sender<Dumped>) -> Result<(), StoreError> {
        let db = self.db.clone();
        self.run(async move {
            use diesel_async::AsyncConnection as _;
            match &db {
                Db::Pg(pool) => {
                    let mut obj = pool.get().await?;
                    let c: &mut super::PgConn = &mut obj;
                    c.build_transaction()
                        .repeatable_read()
                        .read_only()
                        .run::<_, StoreError, _>(async move |conn| {
                            let counts = for_each_table!(count_tables!(conn));
                            tx.send(Dumped::Counts(counts))
                                .await
                                .map_err(|_| closed())?;
                            for_each_table!(dump_tables!(stream, conn, tx));
                            Ok(())
                        })
                        .await
                }
                Db::Sqlite { readers, .. } => {
                    let mut obj = readers.get().await?;
                    let c: &mut super::SqliteConn = &mut obj;
                    // WAL: the read transaction sees one snapshot from its first read on.
                    c.transaction::<_, StoreError, _>(async move |conn| {
                        let counts = for_each_table!(count_tables!(conn));
                        tx.send(Dumped::Counts(counts))
                            .await
                            .map_err(|_| closed())?;
                        for_each_table!(dump_tables!(pages, conn, tx));
                        Ok(())
                    })
                    .await
                }
            }
        })
        .await
    }

    /// The tables that hold rows (beyond what the migrations insert), with their counts.
    pub async fn occupied_tables(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            let mut counts: Vec<(&'static str, u64)> =
                crate::with_conn!(&db, conn => for_each_table!(count_tables!(conn)));
            let seeded: i64 = crate::with_conn!(&db, conn => schema::clients::table
                .filter(schema::clients::id.eq(SEEDED_CLIENT))
                .count()
                .get_result(&mut *conn)
                .await?);
            for (t, n) in counts.iter_mut() {
                if *t == "clients" {
                    *n -= seeded as u64;
                }
            }
            counts.retain(|(_, n)| *n > 0);
            Ok(counts)
        })
        .await
    }

    /// Writes the tables `rx` delivers into this database, all in one transaction: nothing
    /// is written unless every row is and [`Restoring::End`] arrives. The database must be
    /// empty ([`Store::occupied_tables`]). Returns the rows written.
    pub async fn restore(&self, rx: mpsc::Receiver<Restoring>) -> Result<u64, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            use diesel_async::AsyncConnection as _;
            match &db {
                Db::Pg(pool) => {
                    let mut obj = pool.get().await?;
                    let c: &mut super::PgConn = &mut obj;
                    c.transaction::<_, StoreError, _>(async move |conn| {
                        restore_body!(batch, conn, rx)
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
                            super::sqlite_write_tx(c, async move |conn| {
                                restore_body!(single, conn, rx)
                            })
                            .await
                        })
                        .await
                        .map_err(|_| StoreError::Join)?
                }
            }
        })
        .await
    }
}
