//! Authorization codes (RFC 6749 section 4.1.2): stored hashed, single use, short-lived.
//! Consuming one is atomic, and happens only for a request the code is bound to (its client,
//! redirect URI and PKCE verifier); a second such use revokes the grant the first use created
//! (RFC 6749 section 4.1.2: "SHOULD revoke ... all tokens previously issued based on that
//! authorization code").

use super::schema::{authorization_codes as ac, grants};
use super::{Store, StoreError, from_json_text, now, to_json_text};
use crate::audit::Event;
use crate::protocol::code::CodeRefusal;
use crate::secret::TokenHash;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub lab_id: Option<String>,
    /// The DPoP key the code is bound to (RFC 9449 section 10).
    pub dpop_jkt: Option<String>,
    /// The resources (RFC 8707) the authorization request named.
    pub resources: Vec<String>,
    pub expires_at: i64,
}

#[derive(Debug)]
pub enum CodeUse {
    /// First use: the code's data, now consumed.
    First(Box<AuthCode>),
    /// The code was used before; the grant it produced has been revoked.
    Replayed,
    /// The binding check refused the request: nothing was changed (the code is not consumed,
    /// a replay is not acted on).
    Refused(CodeRefusal),
    Unknown,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
    String,
);

impl Store {
    pub async fn insert_code(&self, hash: TokenHash, code: &AuthCode) -> Result<(), StoreError> {
        let db = self.db.clone();
        let c = code.clone();
        let t = now();
        self.run_quick(async move {
            crate::with_tx!(&db, conn => {
                diesel::insert_into(ac::table)
                    .values((
                        ac::code_hash.eq(hash.to_vec()),
                        ac::grant_id.eq(&c.grant_id),
                        ac::client_id.eq(&c.client_id),
                        ac::user_id.eq(&c.user_id),
                        ac::session_id.eq(&c.session_id),
                        ac::redirect_uri.eq(&c.redirect_uri),
                        ac::scope.eq(&c.scope),
                        ac::nonce.eq(&c.nonce),
                        ac::code_challenge.eq(&c.code_challenge),
                        ac::auth_time.eq(c.auth_time),
                        ac::acr.eq(&c.acr),
                        ac::amr.eq(to_json_text(&c.amr)),
                        ac::lab_id.eq(&c.lab_id),
                        ac::dpop_jkt.eq(&c.dpop_jkt),
                        ac::resources.eq(crate::protocol::resource::join(&c.resources)),
                        ac::created_at.eq(t),
                        ac::expires_at.eq(c.expires_at),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Consumes a code atomically, once `binding` (the caller's check that the request comes
    /// from the code's client with its redirect URI and verifier; told whether the code was
    /// used before, so that a replay is acted on whatever else it asks) accepts it: a refused
    /// request changes nothing. Expiry is the caller's check (it knows `now`); an expired code
    /// is still consumed so it can never be tried again. A replay that passes `binding`
    /// revokes what the first use issued and appends `on_replay` in the same transaction.
    pub async fn consume_code(
        &self,
        hash: TokenHash,
        binding: impl FnOnce(&AuthCode, bool) -> Result<(), CodeRefusal> + Send + 'static,
        on_replay: &Event,
    ) -> Result<CodeUse, StoreError> {
        let db = self.db.clone();
        let t = now();
        let on_replay = on_replay.clone();
        let epoch = self.access_epoch_handle();
        self.run_quick(async move {
            let out = crate::with_tx!(&db, conn => {
                let row: Option<Row> = ac::table
                    .find(hash.to_vec())
                    .select((
                        ac::grant_id,
                        ac::client_id,
                        ac::user_id,
                        ac::session_id,
                        ac::redirect_uri,
                        ac::scope,
                        ac::nonce,
                        ac::code_challenge,
                        ac::auth_time,
                        ac::acr,
                        ac::amr,
                        ac::lab_id,
                        ac::expires_at,
                        ac::consumed_at,
                        ac::dpop_jkt,
                        ac::resources,
                    ))
                    .first::<Row>(conn)
                    .await
                    .optional()?;
                let Some(row) = row else { return Ok(CodeUse::Unknown) };
                let consumed = row.13.is_some();
                let code = from_row(row)?;
                if let Err(refusal) = binding(&code, consumed) {
                    return Ok(CodeUse::Refused(refusal));
                }
                // Only the request that flips consumed_at is the first use; a concurrent use of
                // the same code (PostgreSQL runs these in parallel) is a replay too.
                let first = !consumed
                    && diesel::update(ac::table.find(hash.to_vec()).filter(ac::consumed_at.is_null()))
                        .set(ac::consumed_at.eq(Some(t)))
                        .execute(conn)
                        .await?
                        == 1;
                if first {
                    return Ok(CodeUse::First(Box::new(code)));
                }
                // Revoke what the first use issued. When its exchange has not stored the grant
                // yet, store it revoked, so that exchange fails instead of issuing live tokens;
                // when it is storing it right now (PostgreSQL), the insert waits for it and the
                // update that follows sees it.
                let inserted = diesel::insert_into(grants::table)
                    .values((
                        grants::id.eq(&code.grant_id),
                        grants::client_id.eq(&code.client_id),
                        grants::user_id.eq(&code.user_id),
                        grants::session_id.eq(&code.session_id),
                        grants::scope.eq(&code.scope),
                        grants::auth_time.eq(code.auth_time),
                        grants::acr.eq(&code.acr),
                        grants::amr.eq(to_json_text(&code.amr)),
                        grants::lab_id.eq(&code.lab_id),
                        grants::created_at.eq(t),
                        grants::expires_at.eq(t),
                        grants::revoked_at.eq(Some(t)),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                let revoked = diesel::update(
                    grants::table
                        .find(&code.grant_id)
                        .filter(grants::revoked_at.is_null()),
                )
                .set(grants::revoked_at.eq(Some(t)))
                .execute(conn)
                .await?;
                // Recorded once per grant, by the replay that revoked it: replaying the code
                // again (still refused) cannot flood the log or the alerts.
                if inserted + revoked > 0 {
                    let mut e = on_replay.clone();
                    e.details["grant"] = code.grant_id.clone().into();
                    super::audit::append(conn, t, &e).await?;
                }
                Ok(CodeUse::Replayed)
            });
            // In the task: a replay's revocation ends cached answers even if the caller is gone.
            if matches!(out, Ok(CodeUse::Replayed)) {
                epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
            out
        })
        .await
    }
}

fn from_row(r: Row) -> Result<AuthCode, StoreError> {
    Ok(AuthCode {
        grant_id: r.0,
        client_id: r.1,
        user_id: r.2,
        session_id: r.3,
        redirect_uri: r.4,
        scope: r.5,
        nonce: r.6,
        code_challenge: r.7,
        auth_time: r.8,
        acr: r.9,
        amr: from_json_text(&r.10)?,
        lab_id: r.11,
        expires_at: r.12,
        dpop_jkt: r.14,
        resources: crate::protocol::resource::split(&r.15),
    })
}
