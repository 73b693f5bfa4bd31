//! Second factors and passkeys: the TOTP authenticator (secret sealed under the KEK, last
//! accepted time step), WebAuthn credentials (webauthn-rs's public credential record, counter
//! and backup flags), recovery codes (HMAC-SHA256 under a KEK-derived key; older ones SHA-256), and WebAuthn ceremonies in progress.
//! Every "use once" rule is one conditional UPDATE, so two nodes racing cannot both accept.

use super::schema::{
    auth_failures, recovery_codes, totp_credentials, webauthn_ceremonies, webauthn_credentials,
};
use super::{Store, StoreError, conflict, now};
use crate::audit::Event;
use crate::protocol::strength::Enrolled;
use crate::protocol::throttle::{Attempt, CodeLock, code_lock};
use diesel::{BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

#[derive(Debug, Clone)]
pub struct TotpRow {
    pub sealed_secret: Vec<u8>,
    pub confirmed: bool,
    pub last_step: Option<i64>,
    pub created_at: i64,
}

/// A registered WebAuthn credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebauthnRow {
    /// The credential id, base64url.
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// `passkey` (discoverable, user verification) or `security_key`.
    pub kind: String,
    /// webauthn-rs `Credential` as JSON: public key, counter, flags. No secret.
    pub credential: String,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// The trusted root its attestation chained to at registration (hex SHA-256 of the
    /// root certificate), if any: see [`crate::attestation`].
    pub attestation_root: Option<String>,
}

type WebauthnTuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    bool,
    bool,
    i64,
    Option<i64>,
    Option<String>,
);

fn webauthn_row(r: WebauthnTuple) -> WebauthnRow {
    WebauthnRow {
        id: r.0,
        user_id: r.1,
        name: r.2,
        kind: r.3,
        credential: r.4,
        sign_count: r.5,
        backup_eligible: r.6,
        backup_state: r.7,
        created_at: r.8,
        last_used_at: r.9,
        attestation_root: r.10,
    }
}

macro_rules! webauthn_columns {
    () => {
        (
            webauthn_credentials::id,
            webauthn_credentials::user_id,
            webauthn_credentials::name,
            webauthn_credentials::kind,
            webauthn_credentials::credential,
            webauthn_credentials::sign_count,
            webauthn_credentials::backup_eligible,
            webauthn_credentials::backup_state,
            webauthn_credentials::created_at,
            webauthn_credentials::last_used_at,
            webauthn_credentials::attestation_root,
        )
    };
}

/// Recovery codes as the account page shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryStatus {
    pub unused: i64,
    pub total: i64,
    pub last_used_at: Option<i64>,
    /// Unused codes made before keyed hashes (weaker): the user should make new ones.
    pub legacy_unused: i64,
}

/// What [`Store::take_ceremony`] found.
#[derive(Debug, Clone)]
pub enum Taken {
    /// The ceremony, now deleted: it can be finished once.
    Ceremony(Ceremony),
    /// Unknown, expired or already taken.
    Gone,
    /// Live, but begun in another browser: left in place.
    OtherBrowser,
}

/// A WebAuthn ceremony's server-side state.
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub id: String,
    pub browser_hash: Vec<u8>,
    pub user_id: Option<String>,
    /// What the ceremony is for (`login:<flow>`, `step_up:<flow>`, `register:passkey`, ...).
    pub purpose: String,
    /// webauthn-rs state, JSON.
    pub state: String,
    pub expires_at: i64,
}

impl Store {
    // ---- TOTP -------------------------------------------------------------------------

    pub async fn get_totp(&self, user_id: &str) -> Result<Option<TotpRow>, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        let row: Option<(Vec<u8>, bool, Option<i64>, i64)> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => totp_credentials::table
                    .find(&id)
                    .select((
                        totp_credentials::secret,
                        totp_credentials::confirmed,
                        totp_credentials::last_step,
                        totp_credentials::created_at,
                    ))
                    .first(conn)
                    .await
                    .optional()?))
            })
            .await?;
        Ok(row.map(|r| TotpRow {
            sealed_secret: r.0,
            confirmed: r.1,
            last_step: r.2,
            created_at: r.3,
        }))
    }

    /// Stores a new, unconfirmed TOTP secret, replacing an unconfirmed one. Refused (conflict)
    /// when a confirmed authenticator exists: it must be removed first.
    pub async fn begin_totp(&self, user_id: &str, sealed: Vec<u8>) -> Result<(), StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::delete(
                    totp_credentials::table
                        .filter(totp_credentials::user_id.eq(&id))
                        .filter(totp_credentials::confirmed.eq(false)),
                )
                .execute(conn)
                .await?;
                diesel::insert_into(totp_credentials::table)
                    .values((
                        totp_credentials::user_id.eq(&id),
                        totp_credentials::secret.eq(&sealed),
                        totp_credentials::confirmed.eq(false),
                        totp_credentials::created_at.eq(t),
                    ))
                    .execute(conn)
                    .await
                    .map_err(|e| conflict(e, "an authenticator app is already set up"))?;
                Ok(())
            })
        })
        .await
    }

    /// Accepts time step `step` for the user's authenticator if no equal or later step was
    /// accepted before (RFC 6238 section 5.2: one use per step). With `confirm`, this also
    /// activates a pending enrolment; without, only a confirmed authenticator counts.
    pub async fn accept_totp_step(
        &self,
        user_id: &str,
        step: i64,
        confirm: bool,
        event: Option<&Event>,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        let event = event.cloned();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(
                    totp_credentials::table
                        .filter(totp_credentials::user_id.eq(&id))
                        .filter(totp_credentials::confirmed.eq(!confirm))
                        .filter(
                            totp_credentials::last_step
                                .is_null()
                                .or(totp_credentials::last_step.lt(step)),
                        ),
                )
                .set((
                    totp_credentials::last_step.eq(Some(step)),
                    totp_credentials::confirmed.eq(true),
                ))
                .execute(&mut *conn)
                .await?;
                if n == 1 && let Some(e) = &event {
                    crate::store::audit::append(&mut *conn, t, e).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    /// Removes the user's authenticator app; `event` is audited with the removal (if any).
    pub async fn delete_totp(&self, user_id: &str, event: &Event) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        let event = event.clone();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::delete(totp_credentials::table.find(&id))
                    .execute(&mut *conn)
                    .await?;
                if n == 1 {
                    crate::store::audit::append(&mut *conn, t, &event).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    // ---- WebAuthn credentials ---------------------------------------------------------

    /// Registers a credential; `event` is audited with it.
    pub async fn add_webauthn(&self, row: &WebauthnRow, event: &Event) -> Result<(), StoreError> {
        let db = self.db.clone();
        let r = row.clone();
        let event = event.clone();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::insert_into(webauthn_credentials::table)
                    .values((
                        webauthn_credentials::id.eq(&r.id),
                        webauthn_credentials::user_id.eq(&r.user_id),
                        webauthn_credentials::name.eq(&r.name),
                        webauthn_credentials::kind.eq(&r.kind),
                        webauthn_credentials::credential.eq(&r.credential),
                        webauthn_credentials::sign_count.eq(r.sign_count),
                        webauthn_credentials::backup_eligible.eq(r.backup_eligible),
                        webauthn_credentials::backup_state.eq(r.backup_state),
                        webauthn_credentials::created_at.eq(r.created_at),
                        webauthn_credentials::attestation_root.eq(&r.attestation_root),
                    ))
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| conflict(e, "this credential is already registered"))?;
                crate::store::audit::append(&mut *conn, t, &event).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn list_webauthn(&self, user_id: &str) -> Result<Vec<WebauthnRow>, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        let rows: Vec<WebauthnTuple> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => webauthn_credentials::table
                    .filter(webauthn_credentials::user_id.eq(&id))
                    .order(webauthn_credentials::created_at.asc())
                    .select(webauthn_columns!())
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(rows.into_iter().map(webauthn_row).collect())
    }

    pub async fn find_webauthn(&self, cred_id: &str) -> Result<Option<WebauthnRow>, StoreError> {
        let db = self.db.clone();
        let id = cred_id.to_owned();
        let row: Option<WebauthnTuple> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => webauthn_credentials::table
                    .find(&id)
                    .select(webauthn_columns!())
                    .first(conn)
                    .await
                    .optional()?))
            })
            .await?;
        Ok(row.map(webauthn_row))
    }

    /// Records a successful assertion: the updated credential (counter, backup state) and
    /// when it was used. False when the stored counter is already at or past `sign_count`
    /// (a concurrent or replayed assertion from a cloned authenticator): nothing changes.
    pub async fn record_webauthn_use(
        &self,
        cred_id: &str,
        credential: String,
        sign_count: i64,
        backup_state: bool,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = cred_id.to_owned();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                // A counter of 0 means the authenticator keeps none (most synced passkeys):
                // then the stored one must be 0 too; else it must move forward.
                let bound = if sign_count == 0 { 1 } else { sign_count };
                let n = diesel::update(
                    webauthn_credentials::table
                        .find(&id)
                        .filter(webauthn_credentials::sign_count.lt(bound)),
                )
                .set((
                    webauthn_credentials::credential.eq(&credential),
                    webauthn_credentials::sign_count.eq(sign_count),
                    webauthn_credentials::backup_state.eq(backup_state),
                    webauthn_credentials::last_used_at.eq(Some(t)),
                ))
                .execute(conn)
                .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    pub async fn rename_webauthn(
        &self,
        user_id: &str,
        cred_id: &str,
        name: &str,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let (user, id, name) = (user_id.to_owned(), cred_id.to_owned(), name.to_owned());
        let event = event.clone();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(
                    webauthn_credentials::table
                        .find(&id)
                        .filter(webauthn_credentials::user_id.eq(&user)),
                )
                .set(webauthn_credentials::name.eq(&name))
                .execute(&mut *conn)
                .await?;
                if n == 1 {
                    crate::store::audit::append(&mut *conn, t, &event).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    /// Removes a credential of the user; `event` is audited with the removal (if any).
    pub async fn delete_webauthn(
        &self,
        user_id: &str,
        cred_id: &str,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let (user, id) = (user_id.to_owned(), cred_id.to_owned());
        let event = event.clone();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::delete(
                    webauthn_credentials::table
                        .find(&id)
                        .filter(webauthn_credentials::user_id.eq(&user)),
                )
                .execute(&mut *conn)
                .await?;
                if n == 1 {
                    crate::store::audit::append(&mut *conn, t, &event).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    // ---- Recovery codes ---------------------------------------------------------------

    /// Replaces the user's recovery codes with new ones (given as keyed hashes,
    /// [`crate::factors::RecoveryKey`]); `event` is audited with them.
    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: Vec<Vec<u8>>,
        event: &Event,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        let event = event.clone();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                for h in &hashes {
                    diesel::insert_into(recovery_codes::table)
                        .values((
                            recovery_codes::user_id.eq(&id),
                            recovery_codes::code_hash.eq(h),
                            recovery_codes::created_at.eq(t),
                            recovery_codes::keyed.eq(true),
                        ))
                        .execute(&mut *conn)
                        .await?;
                }
                crate::store::audit::append(&mut *conn, t, &event).await?;
                Ok(())
            })
        })
        .await
    }

    /// Marks a recovery code used and appends the event `on_use` makes of the number of codes
    /// left, in one transaction; false (and nothing written) when the code is unknown or
    /// already used. `keyed` is the code's keyed hash, `legacy` its hash as codes made before
    /// keyed hashes were stored; each is compared only with codes stored that way.
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        keyed: Vec<u8>,
        legacy: Vec<u8>,
        on_use: impl FnOnce(i64) -> Event + Send + 'static,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(
                    recovery_codes::table
                        .filter(recovery_codes::user_id.eq(&id))
                        .filter(
                            recovery_codes::keyed
                                .eq(true)
                                .and(recovery_codes::code_hash.eq(&keyed))
                                .or(recovery_codes::keyed
                                    .eq(false)
                                    .and(recovery_codes::code_hash.eq(&legacy))),
                        )
                        .filter(recovery_codes::used_at.is_null()),
                )
                .set(recovery_codes::used_at.eq(Some(t)))
                .execute(&mut *conn)
                .await?;
                if n != 1 {
                    return Ok(false);
                }
                let left: i64 = recovery_codes::table
                    .filter(recovery_codes::user_id.eq(&id))
                    .filter(recovery_codes::used_at.is_null())
                    .count()
                    .get_result(&mut *conn)
                    .await?;
                crate::store::audit::append(&mut *conn, t, &on_use(left)).await?;
                Ok(true)
            })
        })
        .await
    }

    pub async fn recovery_status(&self, user_id: &str) -> Result<RecoveryStatus, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        let rows: Vec<(Option<i64>, bool)> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => recovery_codes::table
                    .filter(recovery_codes::user_id.eq(&id))
                    .select((recovery_codes::used_at, recovery_codes::keyed))
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(RecoveryStatus {
            unused: rows.iter().filter(|(u, _)| u.is_none()).count() as i64,
            total: rows.len() as i64,
            last_used_at: rows.iter().filter_map(|(u, _)| *u).max(),
            legacy_unused: rows.iter().filter(|(u, k)| u.is_none() && !k).count() as i64,
        })
    }

    /// What the user can authenticate with beyond a password; `hardware` tells which
    /// WebAuthn credentials are hardware keys now (`AppState::enrolled` asks the trusted
    /// attestation roots).
    pub async fn enrolled(
        &self,
        user_id: &str,
        hardware: &(dyn Fn(&WebauthnRow) -> bool + Sync),
    ) -> Result<Enrolled, StoreError> {
        let totp = self.get_totp(user_id).await?.is_some_and(|t| t.confirmed);
        let creds = self.list_webauthn(user_id).await?;
        let recovery = self.recovery_status(user_id).await?;
        Ok(Enrolled {
            totp,
            webauthn: creds.len(),
            passkeys: creds.iter().filter(|c| c.kind == "passkey").count(),
            recovery_codes: recovery.unused as usize,
            hardware: creds.iter().filter(|c| hardware(c)).count(),
            hardware_passkeys: creds
                .iter()
                .filter(|c| c.kind == "passkey" && hardware(c))
                .count(),
        })
    }

    // ---- Failed attempts ----------------------------------------------------------------

    /// The user's count of consecutive failures of `kind` and until when further attempts
    /// are refused unchecked (`None`: no failure on record).
    pub async fn failures(
        &self,
        user_id: &str,
        kind: Attempt,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        self.run(async move {
            Ok(crate::with_conn!(&db, conn => auth_failures::table
                .find((&id, kind.as_str()))
                .select((auth_failures::failures, auth_failures::locked_until))
                .first(conn)
                .await
                .optional()?))
        })
        .await
    }

    /// Counts a failed attempt (atomically, whichever node or flow it came from); from the
    /// threshold on ([`code_lock`] with at most `max` failures), locks further attempts out
    /// and, when no lock was running, appends the event `on_lock` makes of the failure count
    /// and the lock, in the same transaction. Returns the lock, if one is set.
    pub async fn record_failure(
        &self,
        user_id: &str,
        kind: Attempt,
        now: i64,
        max: i64,
        on_lock: impl FnOnce(i64, CodeLock) -> Event + Send + 'static,
    ) -> Result<Option<CodeLock>, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let key = (&id, kind.as_str());
                // One statement takes the row's lock (two first failures racing cannot both
                // insert); what is read after it is what the attempts before this one left.
                diesel::insert_into(auth_failures::table)
                    .values((
                        auth_failures::user_id.eq(&id),
                        auth_failures::kind.eq(kind.as_str()),
                        auth_failures::failures.eq(1),
                        auth_failures::locked_until.eq(0),
                    ))
                    .on_conflict((auth_failures::user_id, auth_failures::kind))
                    .do_update()
                    .set(auth_failures::failures.eq(auth_failures::failures + 1))
                    .execute(&mut *conn)
                    .await?;
                let (failures, locked_before): (i64, i64) = auth_failures::table
                    .find(key)
                    .select((auth_failures::failures, auth_failures::locked_until))
                    .first(&mut *conn)
                    .await?;
                let Some(lock) = code_lock(failures, max) else {
                    return Ok(None);
                };
                diesel::update(auth_failures::table.find(key))
                    .set(auth_failures::locked_until.eq(now + lock.secs()))
                    .execute(&mut *conn)
                    .await?;
                // One entry per lock: failures of guesses that were already being checked
                // when it started extend it silently. Reaching the block is always recorded.
                if locked_before <= now || (lock == CodeLock::Blocked && failures == max) {
                    crate::store::audit::append(&mut *conn, now, &on_lock(failures, lock)).await?;
                }
                Ok(Some(lock))
            })
        })
        .await
    }

    /// A successful attempt: the count starts again.
    pub async fn reset_failures(&self, user_id: &str, kind: Attempt) -> Result<(), StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::delete(auth_failures::table.find((&id, kind.as_str())))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    // ---- WebAuthn ceremonies ----------------------------------------------------------

    pub async fn put_ceremony(&self, c: &Ceremony) -> Result<(), StoreError> {
        let db = self.db.clone();
        let c = c.clone();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::delete(
                    webauthn_ceremonies::table.filter(webauthn_ceremonies::expires_at.lt(t)),
                )
                .execute(conn)
                .await?;
                diesel::insert_into(webauthn_ceremonies::table)
                    .values((
                        webauthn_ceremonies::id.eq(&c.id),
                        webauthn_ceremonies::browser_hash.eq(&c.browser_hash),
                        webauthn_ceremonies::user_id.eq(&c.user_id),
                        webauthn_ceremonies::purpose.eq(&c.purpose),
                        webauthn_ceremonies::state.eq(&c.state),
                        webauthn_ceremonies::expires_at.eq(c.expires_at),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Removes and returns a live ceremony (each challenge is answered at most once).
    /// Takes (deletes and returns) a live ceremony, only for the browser that began it
    /// (`is_browser` tells whether a stored browser hash is the caller's): another browser's
    /// attempt leaves the ceremony for its owner.
    pub async fn take_ceremony(
        &self,
        id: &str,
        is_browser: impl FnOnce(&[u8]) -> bool + Send + 'static,
    ) -> Result<Taken, StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        let t = now();
        type R = (String, Vec<u8>, Option<String>, String, String, i64);
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let row: Option<R> = webauthn_ceremonies::table
                    .find(&id)
                    .select((
                        webauthn_ceremonies::id,
                        webauthn_ceremonies::browser_hash,
                        webauthn_ceremonies::user_id,
                        webauthn_ceremonies::purpose,
                        webauthn_ceremonies::state,
                        webauthn_ceremonies::expires_at,
                    ))
                    .first(&mut *conn)
                    .await
                    .optional()?;
                let Some(r) = row.filter(|r| r.5 > t) else {
                    return Ok(Taken::Gone);
                };
                if !is_browser(&r.1) {
                    return Ok(Taken::OtherBrowser);
                }
                // Only the request that deletes the row may use it (two racing finishes of
                // one ceremony: one wins).
                let n = diesel::delete(webauthn_ceremonies::table.find(&id))
                    .execute(&mut *conn)
                    .await?;
                if n != 1 {
                    return Ok(Taken::Gone);
                }
                Ok(Taken::Ceremony(Ceremony {
                    id: r.0,
                    browser_hash: r.1,
                    user_id: r.2,
                    purpose: r.3,
                    state: r.4,
                    expires_at: r.5,
                }))
            })
        })
        .await
    }
}
