//! Signing-key rows: the private key sealed by the KEK, the public JWK, and the key's place in
//! the rotation (`protocol::rotation`). Every change runs under a lock (PostgreSQL advisory
//! lock, SQLite `BEGIN IMMEDIATE`) and re-plans from the rows it reads, so when several nodes
//! tick at once exactly one performs each step. Key events go to `audit_events` in the same
//! transaction.

use super::schema::signing_keys as sk;
use super::{Store, StoreError, key_lock_sql};
use crate::protocol::rotation::{self, Action, KeyInfo, KeyState, Policy};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use latchkey_core::SigningAlg;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    pub activate_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

impl KeyRow {
    pub fn info(&self) -> Option<KeyInfo> {
        Some(KeyInfo {
            kid: self.kid.clone(),
            alg: self.alg.parse().ok()?,
            state: KeyState::parse(&self.state)?,
            activate_at: self.activate_at,
            activated_at: self.activated_at,
            retired_at: self.retired_at,
        })
    }
}

type Row = (
    String,
    String,
    String,
    Vec<u8>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn from_row(r: Row) -> KeyRow {
    KeyRow {
        kid: r.0,
        alg: r.1,
        state: r.2,
        private_key: r.3,
        public_jwk: r.4,
        created_at: r.5,
        activate_at: r.6,
        activated_at: r.7,
        retired_at: r.8,
    }
}

macro_rules! key_columns {
    () => {
        (
            sk::kid,
            sk::alg,
            sk::state,
            sk::private_key,
            sk::public_jwk,
            sk::created_at,
            sk::activate_at,
            sk::activated_at,
            sk::retired_at,
        )
    };
}

/// Inserts a key row in `state` inside the current transaction.
macro_rules! insert_key {
    ($conn:expr, $row:expr, $state:expr) => {{
        let row: &KeyRow = $row;
        let state: &str = $state;
        let activated = if state == "active" {
            row.activated_at.or(Some(row.created_at))
        } else {
            None
        };
        diesel::insert_into(sk::table)
            .values((
                sk::kid.eq(&row.kid),
                sk::alg.eq(&row.alg),
                sk::state.eq(state),
                sk::private_key.eq(&row.private_key),
                sk::public_jwk.eq(&row.public_jwk),
                sk::created_at.eq(row.created_at),
                sk::activate_at.eq(row.activate_at),
                sk::activated_at.eq(activated),
            ))
            .execute($conn)
            .await?
    }};
}

/// Appends an audit event to the chain inside the current transaction.
macro_rules! audit {
    ($conn:expr, $now:expr, $actor:expr, $action:ident, $target:expr, $details:expr) => {
        $crate::store::audit::append(
            $conn,
            $now,
            &$crate::audit::Event::new($actor, $crate::audit::Action::$action, $target, $details),
        )
        .await?
    };
}

/// The outcome of a locked rotation step.
#[derive(Debug, Default)]
pub struct Applied {
    pub actions: Vec<Action>,
    /// Algorithms that needed a new key but had none prepared (the caller generates and retries).
    pub needs_key: Vec<SigningAlg>,
}

impl Store {
    /// All keys that are still published (staged, active, retiring), oldest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let db = self.db.clone();
        let rows: Vec<Row> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => sk::table
                    .filter(sk::state.ne("removed"))
                    .order(sk::created_at.asc())
                    .select(key_columns!())
                    .load::<Row>(conn)
                    .await?))
            })
            .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Inserts `candidate` as the active key for its algorithm unless another node already
    /// did: several processes may start on an empty database at the same moment.
    pub async fn insert_active_key_if_missing(
        &self,
        candidate: KeyRow,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::sql_query(key_lock_sql(&*conn)).execute(conn).await?;
                let existing: i64 = sk::table
                    .filter(sk::alg.eq(&candidate.alg))
                    .filter(sk::state.eq("active"))
                    .count()
                    .get_result(conn)
                    .await?;
                if existing > 0 {
                    return Ok(false);
                }
                insert_key!(conn, &candidate, "active");
                audit!(conn, candidate.created_at, "system", KeyCreated, &candidate.kid,
                    serde_json::json!({"alg": candidate.alg, "state": "active"}));
                Ok(true)
            })
        })
        .await
    }

    /// Runs one rotation step under the lock: plans from fresh rows (scheduled, or `manual`
    /// for `latchkey keys rotate`) and applies what it can with the `prepared` keys.
    pub async fn rotate_keys(
        &self,
        policy: Policy,
        manual: bool,
        now: i64,
        actor: &str,
        prepared: HashMap<SigningAlg, KeyRow>,
    ) -> Result<Applied, StoreError> {
        let db = self.db.clone();
        let actor = actor.to_owned();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::sql_query(key_lock_sql(&*conn)).execute(conn).await?;
                let rows: Vec<Row> = sk::table
                    .filter(sk::state.ne("removed"))
                    .select(key_columns!())
                    .load::<Row>(conn)
                    .await?;
                let infos: Vec<KeyInfo> = rows.into_iter().filter_map(|r| from_row(r).info()).collect();
                let plan = if manual {
                    rotation::plan_manual(&infos, policy, now)
                } else {
                    rotation::plan(&infos, policy, now)
                };
                let mut applied = Applied::default();
                for action in plan {
                    match &action {
                        Action::Stage { alg, activate_at } => {
                            let Some(row) = prepared.get(alg) else {
                                applied.needs_key.push(*alg);
                                continue;
                            };
                            let mut row = row.clone();
                            row.activate_at = Some(*activate_at);
                            row.created_at = now;
                            insert_key!(conn, &row, "staged");
                            audit!(conn, now, actor.as_str(), KeyStaged, &row.kid,
                                serde_json::json!({"alg": row.alg, "activate_at": activate_at}));
                        }
                        Action::Promote { staged, retire } => {
                            if let Some(old) = retire {
                                diesel::update(sk::table.find(old))
                                    .set((sk::state.eq("retiring"), sk::retired_at.eq(Some(now))))
                                    .execute(conn)
                                    .await?;
                                audit!(conn, now, actor.as_str(), KeyRetiring, old, serde_json::json!({}));
                            }
                            diesel::update(sk::table.find(staged))
                                .set((sk::state.eq("active"), sk::activated_at.eq(Some(now))))
                                .execute(conn)
                                .await?;
                            audit!(conn, now, actor.as_str(), KeyActivated, staged, serde_json::json!({}));
                        }
                        Action::Remove { kid } => {
                            diesel::update(sk::table.find(kid))
                                .set((sk::state.eq("removed"), sk::private_key.eq(Vec::<u8>::new())))
                                .execute(conn)
                                .await?;
                            audit!(conn, now, actor.as_str(), KeyRemoved, kid, serde_json::json!({"reason": "expired"}));
                        }
                    }
                    applied.actions.push(action);
                }
                Ok(applied)
            })
        })
        .await
    }

    /// Emergency revocation: the key is unpublished at once. If it was signing, the staged key
    /// for its algorithm takes over, else `replacement` does.
    pub async fn revoke_key(
        &self,
        kid: &str,
        replacement: KeyRow,
        now: i64,
        actor: &str,
    ) -> Result<Option<String>, StoreError> {
        let db = self.db.clone();
        let (kid, actor) = (kid.to_owned(), actor.to_owned());
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::sql_query(key_lock_sql(&*conn)).execute(conn).await?;
                let row: Option<Row> = sk::table
                    .find(&kid)
                    .filter(sk::state.ne("removed"))
                    .select(key_columns!())
                    .first::<Row>(conn)
                    .await
                    .optional()?;
                let Some(row) = row.map(from_row) else {
                    return Err(StoreError::NotFound(format!("no published key with kid `{kid}`")));
                };
                diesel::update(sk::table.find(&kid))
                    .set((sk::state.eq("removed"), sk::private_key.eq(Vec::<u8>::new()), sk::retired_at.eq(Some(now))))
                    .execute(conn)
                    .await?;
                audit!(conn, now, actor.as_str(), KeyRevoked, &kid, serde_json::json!({"alg": row.alg, "was": row.state}));
                if row.state != "active" {
                    return Ok(None);
                }
                let staged: Option<String> = sk::table
                    .filter(sk::alg.eq(&row.alg))
                    .filter(sk::state.eq("staged"))
                    .select(sk::kid)
                    .first::<String>(conn)
                    .await
                    .optional()?;
                let successor = match staged {
                    Some(s) => {
                        diesel::update(sk::table.find(&s))
                            .set((sk::state.eq("active"), sk::activated_at.eq(Some(now))))
                            .execute(conn)
                            .await?;
                        s
                    }
                    None => {
                        let mut r = replacement;
                        r.created_at = now;
                        r.activated_at = Some(now);
                        insert_key!(conn, &r, "active");
                        r.kid
                    }
                };
                audit!(conn, now, actor.as_str(), KeyActivated, &successor, serde_json::json!({"reason": "revocation"}));
                Ok(Some(successor))
            })
        })
        .await
    }

    /// KEK rotation: under the key lock, re-reads every stored key, TOTP secret and server
    /// secret and re-seals it from `old` to `new`, and re-signs the audit checkpoints, all in one transaction (all
    /// or none).
    pub async fn rewrap_keys(
        &self,
        old: std::sync::Arc<crate::crypto::Kek>,
        new: std::sync::Arc<crate::crypto::Kek>,
        now: i64,
    ) -> Result<usize, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::sql_query(key_lock_sql(&*conn)).execute(conn).await?;
                let rows: Vec<(String, Vec<u8>)> = sk::table
                    .filter(sk::state.ne("removed"))
                    .select((sk::kid, sk::private_key))
                    .load(conn)
                    .await?;
                let mut n = 0;
                for (kid, sealed) in &rows {
                    let der = old
                        .open(kid.as_bytes(), sealed)
                        .map_err(|e| StoreError::Corrupt(format!("key {kid}: {e}")))?;
                    diesel::update(sk::table.find(kid))
                        .set(sk::private_key.eq(new.seal(kid.as_bytes(), &der)))
                        .execute(conn)
                        .await?;
                    n += 1;
                }
                // TOTP secrets are sealed under the same KEK.
                let secrets: Vec<(String, Vec<u8>)> = super::schema::totp_credentials::table
                    .select((super::schema::totp_credentials::user_id, super::schema::totp_credentials::secret))
                    .load(conn)
                    .await?;
                for (user, sealed) in &secrets {
                    let aad = crate::crypto::kek::totp_aad(user);
                    let secret = old
                        .open(&aad, sealed)
                        .map_err(|e| StoreError::Corrupt(format!("TOTP secret of {user}: {e}")))?;
                    diesel::update(super::schema::totp_credentials::table.find(user))
                        .set(super::schema::totp_credentials::secret.eq(new.seal(&aad, &secret)))
                        .execute(conn)
                        .await?;
                }
                // Server secrets (the recovery codes' key) are sealed under the KEK too.
                use super::schema::server_secrets as ss;
                let secrets: Vec<(String, Vec<u8>)> = ss::table
                    .select((ss::name, ss::sealed))
                    .load(&mut *conn)
                    .await?;
                for (name, sealed) in &secrets {
                    let aad = super::secrets::secret_aad(name);
                    let secret = old
                        .open(&aad, sealed)
                        .map_err(|e| StoreError::Corrupt(format!("server secret {name}: {e}")))?;
                    diesel::update(ss::table.find(name))
                        .set(ss::sealed.eq(new.seal(&aad, &secret)))
                        .execute(&mut *conn)
                        .await?;
                }
                // Audit checkpoints are signed under a key derived from the KEK: re-sign the
                // valid ones (under the append lock, so no prune signs under the old KEK
                // meanwhile). An invalid one is left as it is, still reported by `verify`:
                // re-signing it would launder a forgery.
                diesel::sql_query(super::audit_lock_sql(&*conn)).execute(&mut *conn).await?;
                let (old_key, new_key) = (
                    crate::audit::chain::checkpoint_key(&old),
                    crate::audit::chain::checkpoint_key(&new),
                );
                use super::schema::audit_checkpoints as ac;
                let checkpoints: Vec<super::audit::CheckpointRow> = ac::table
                    .select((ac::seq, ac::hash, ac::pruned, ac::created_at, ac::mac))
                    .load(&mut *conn)
                    .await?;
                let (mut resigned, mut invalid) = (0, 0);
                for cp in checkpoints.into_iter().map(super::audit::checkpoint) {
                    if !cp.is_valid(&old_key) {
                        invalid += 1;
                        continue;
                    }
                    let signed = crate::audit::chain::Checkpoint::signed(&new_key, cp.seq, cp.hash, cp.pruned, cp.created_at);
                    diesel::update(ac::table.find(cp.seq))
                        .set(ac::mac.eq(&signed.mac))
                        .execute(&mut *conn)
                        .await?;
                    resigned += 1;
                }
                if invalid > 0 {
                    tracing::warn!(invalid, "audit checkpoints with an invalid signature were not re-signed; run `latchkey audit verify`");
                }
                audit!(conn, now, "cli", KekRewrapped, "signing_keys", serde_json::json!({"keys": n, "totp_secrets": secrets.len(), "audit_checkpoints": resigned, "invalid_audit_checkpoints": invalid}));
                Ok(n)
            })
        })
        .await
    }
}
