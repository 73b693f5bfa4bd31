//! Personal data of one user (GDPR articles 15, 17 and 20): [`Store::export_user`] gathers
//! everything Latchkey holds about a person as JSON, and [`Store::erase_user`] removes it.
//!
//! Erasure keeps the audit chain verifiable: audit entries name users only by their opaque id
//! (never an email or a name), so erasing the `users` row's personal fields pseudonymises the
//! log without touching a hashed entry. The row itself stays (email replaced by a placeholder,
//! name and password hash cleared, disabled, `erased_at` set) so those ids still point at
//! something, and the erasure is itself audited (`user.erased`).

use super::schema::{
    audit_events, auth_failures, authorization_codes, clients, consents, grants, labs,
    member_features, memberships, mfa_grace, recovery_codes, refresh_tokens, sessions,
    totp_credentials, user_roles, users, webauthn_ceremonies, webauthn_credentials,
};
use super::{Store, StoreError, now};
use diesel::{BoolExpressionMethods, ExpressionMethods, JoinOnDsl, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use latchkey_core::names::UserId;
use serde_json::{Value, json};

/// TOTP time step (RFC 6238, as `factors` uses): `last_step * 30` is when a code was last used.
const TOTP_STEP_SECS: i64 = 30;

type UserRow = (
    String,
    String,
    Option<String>,
    bool,
    i64,
    Option<i64>,
    bool,
    Option<i64>,
);
type MailRow = (String, String, String, String, i64, Option<i64>);
type SessionRow = (
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);
type GrantRow = (
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<i64>,
    String,
    String,
);
type WebauthnRow = (String, String, String, i64, Option<i64>, bool, bool);
type AuditRow = (Option<i64>, i64, String, String, String, String);

/// Everything read for an export, before it becomes JSON.
struct Raw {
    user: UserRow,
    memberships: Vec<(String, String, i64)>,
    roles: Vec<(String, String, i64)>,
    overrides: Vec<(String, String, bool, i64)>,
    grace: Vec<(String, i64, i64)>,
    totp: Option<(bool, Option<i64>, i64)>,
    webauthn: Vec<WebauthnRow>,
    recovery: Vec<(i64, Option<i64>)>,
    sessions: Vec<SessionRow>,
    grants: Vec<GrantRow>,
    consents: Vec<(String, String, String, i64)>,
    failures: Vec<(String, i64, i64)>,
    audit: Vec<AuditRow>,
    mail: Vec<MailRow>,
}

/// A JSON list column (amr, factors) as JSON, or as the text it holds when it is not JSON.
fn json_text(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

impl Raw {
    fn into_json(self, exported_at: i64) -> Value {
        let u = self.user;
        json!({
            "exported_at": exported_at,
            "user": {
                "id": u.0,
                "email": u.1,
                "name": u.2,
                "disabled": u.3,
                "created_at": u.4,
                "erased_at": u.5,
                "has_password": u.6,
                "email_verified_at": u.7,
            },
            "memberships": self.memberships.into_iter().map(|(id, name, at)| json!({
                "lab_id": id, "lab_name": name, "joined_at": at,
            })).collect::<Vec<_>>(),
            "roles": self.roles.into_iter().map(|(lab, role, at)| json!({
                "lab_id": lab, "role": role, "assigned_at": at,
            })).collect::<Vec<_>>(),
            "feature_overrides": self.overrides.into_iter().map(|(lab, feature, allow, at)| json!({
                "lab_id": lab, "feature": feature, "allow": allow, "created_at": at,
            })).collect::<Vec<_>>(),
            "mfa_enrolment_deferrals": self.grace.into_iter().map(|(lab, started, logins)| json!({
                "lab_id": lab, "started_at": started, "sign_ins_deferred": logins,
            })).collect::<Vec<_>>(),
            "factors": {
                "totp": self.totp.map(|(confirmed, last_step, created)| json!({
                    "confirmed": confirmed,
                    "created_at": created,
                    "last_used_at": last_step.map(|s| s * TOTP_STEP_SECS),
                })),
                "webauthn": self.webauthn.into_iter().map(|w| json!({
                    "id": w.0, "name": w.1, "kind": w.2, "created_at": w.3,
                    "last_used_at": w.4, "backup_eligible": w.5, "backed_up": w.6,
                })).collect::<Vec<_>>(),
                "recovery_codes": self.recovery.into_iter().map(|(created, used)| json!({
                    "created_at": created, "used_at": used,
                })).collect::<Vec<_>>(),
            },
            "sessions": self.sessions.into_iter().map(|s| json!({
                "id": s.0, "created_at": s.1, "auth_time": s.2, "expires_at": s.3,
                "ended_at": s.4, "acr": s.5, "amr": json_text(&s.6), "factors": json_text(&s.7),
                "source": s.8, "user_agent": s.9,
            })).collect::<Vec<_>>(),
            "grants": self.grants.into_iter().map(|g| json!({
                "id": g.0, "client_id": g.1, "lab_id": g.2, "scope": g.3, "created_at": g.4,
                "expires_at": g.5, "revoked_at": g.6, "acr": g.7, "amr": json_text(&g.8),
            })).collect::<Vec<_>>(),
            "consents": self.consents.into_iter().map(|(client, client_name, scope, at)| json!({
                "client_id": client, "client_name": client_name, "scope": scope, "created_at": at,
            })).collect::<Vec<_>>(),
            "sign_in_failures": self.failures.into_iter().map(|(kind, n, until)| json!({
                "kind": kind, "consecutive_failures": n, "locked_until": until,
            })).collect::<Vec<_>>(),
            "mail": self.mail.into_iter().map(|m| json!({
                "to": m.0, "kind": m.1, "subject": m.2, "state": m.3, "created_at": m.4,
                "sent_at": m.5,
            })).collect::<Vec<_>>(),
            "audit_events": self.audit.into_iter().map(|a| json!({
                "seq": a.0, "at": a.1, "actor": a.2, "action": a.3, "target": a.4,
                "details": json_text(&a.5),
            })).collect::<Vec<_>>(),
        })
    }
}

impl Store {
    /// Everything Latchkey holds about one user, as JSON: the account (never the password
    /// hash), lab memberships with lab names, roles, feature overrides, factor metadata (names,
    /// creation and last use; never TOTP secrets, credential keys or recovery-code hashes),
    /// sessions and grants (never token hashes), consents, sign-in failure counters, the
    /// messages mailed to them (never their bodies), and the
    /// audit entries where the user is the actor or the target. `None` for an unknown id.
    pub async fn export_user(&self, user_id: &UserId) -> Result<Option<Value>, StoreError> {
        let db = self.db.clone();
        let id = user_id.as_str().to_owned();
        let raw: Option<Raw> = self
            .run(async move {
                crate::with_conn!(&db, conn => {
                    let user: Option<UserRow> = users::table
                        .find(&id)
                        .select((
                            users::id,
                            users::email,
                            users::name,
                            users::disabled,
                            users::created_at,
                            users::erased_at,
                            users::password_hash.is_not_null(),
                            users::email_verified_at,
                        ))
                        .first(conn)
                        .await
                        .optional()?;
                    let Some(user) = user else {
                        return Ok(None);
                    };
                    let memberships = memberships::table
                        .inner_join(labs::table)
                        .filter(memberships::user_id.eq(&id))
                        .order(memberships::created_at.asc())
                        .select((memberships::lab_id, labs::name, memberships::created_at))
                        .load(conn)
                        .await?;
                    let roles = user_roles::table
                        .filter(user_roles::user_id.eq(&id))
                        .order((user_roles::lab_id.asc(), user_roles::role.asc()))
                        .select((user_roles::lab_id, user_roles::role, user_roles::created_at))
                        .load(conn)
                        .await?;
                    let overrides = member_features::table
                        .filter(member_features::user_id.eq(&id))
                        .order((member_features::lab_id.asc(), member_features::feature.asc()))
                        .select((
                            member_features::lab_id,
                            member_features::feature,
                            member_features::allow,
                            member_features::created_at,
                        ))
                        .load(conn)
                        .await?;
                    let grace = mfa_grace::table
                        .filter(mfa_grace::user_id.eq(&id))
                        .select((mfa_grace::lab_id, mfa_grace::started_at, mfa_grace::logins))
                        .load(conn)
                        .await?;
                    let totp = totp_credentials::table
                        .find(&id)
                        .select((
                            totp_credentials::confirmed,
                            totp_credentials::last_step,
                            totp_credentials::created_at,
                        ))
                        .first(conn)
                        .await
                        .optional()?;
                    let webauthn = webauthn_credentials::table
                        .filter(webauthn_credentials::user_id.eq(&id))
                        .order(webauthn_credentials::created_at.asc())
                        .select((
                            webauthn_credentials::id,
                            webauthn_credentials::name,
                            webauthn_credentials::kind,
                            webauthn_credentials::created_at,
                            webauthn_credentials::last_used_at,
                            webauthn_credentials::backup_eligible,
                            webauthn_credentials::backup_state,
                        ))
                        .load(conn)
                        .await?;
                    let recovery = recovery_codes::table
                        .filter(recovery_codes::user_id.eq(&id))
                        .order(recovery_codes::created_at.asc())
                        .select((recovery_codes::created_at, recovery_codes::used_at))
                        .load(conn)
                        .await?;
                    let sessions = sessions::table
                        .filter(sessions::user_id.eq(&id))
                        .order(sessions::created_at.asc())
                        .select((
                            sessions::id,
                            sessions::created_at,
                            sessions::auth_time,
                            sessions::expires_at,
                            sessions::ended_at,
                            sessions::acr,
                            sessions::amr,
                            sessions::factors,
                            sessions::source,
                            sessions::user_agent,
                        ))
                        .load(conn)
                        .await?;
                    let grants = grants::table
                        .filter(grants::user_id.eq(&id))
                        .order(grants::created_at.asc())
                        .select((
                            grants::id,
                            grants::client_id,
                            grants::lab_id,
                            grants::scope,
                            grants::created_at,
                            grants::expires_at,
                            grants::revoked_at,
                            grants::acr,
                            grants::amr,
                        ))
                        .load(conn)
                        .await?;
                    let consents = consents::table
                        .inner_join(clients::table.on(clients::id.eq(consents::client_id)))
                        .filter(consents::user_id.eq(&id))
                        .order(consents::created_at.asc())
                        .select((
                            consents::client_id,
                            clients::name,
                            consents::scope,
                            consents::created_at,
                        ))
                        .load(conn)
                        .await?;
                    let failures = auth_failures::table
                        .filter(auth_failures::user_id.eq(&id))
                        .select((
                            auth_failures::kind,
                            auth_failures::failures,
                            auth_failures::locked_until,
                        ))
                        .load(conn)
                        .await?;
                    use super::schema::mail_outbox as mo;
                    let mail = mo::table
                        .filter(mo::user_id.eq(&id).or(mo::user_id.is_null().and(mo::recipient.eq(&user.1))))
                        .order(mo::created_at.asc())
                        .select((mo::recipient, mo::kind, mo::subject, mo::state, mo::created_at, mo::sent_at))
                        .load(conn)
                        .await?;
                    let audit = audit_events::table
                        .filter(audit_events::actor.eq(&id).or(audit_events::target.eq(&id)))
                        .order((audit_events::seq.asc(), audit_events::at.asc()))
                        .select((
                            audit_events::seq,
                            audit_events::at,
                            audit_events::actor,
                            audit_events::action,
                            audit_events::target,
                            audit_events::details,
                        ))
                        .load(conn)
                        .await?;
                    Ok::<_, StoreError>(Some(Raw {
                        user,
                        memberships,
                        roles,
                        overrides,
                        grace,
                        totp,
                        webauthn,
                        recovery,
                        sessions,
                        grants,
                        consents,
                        failures,
                        audit,
                        mail,
                    }))
                })
            })
            .await?;
        Ok(raw.map(|r| r.into_json(now())))
    }

    /// Erases a user's personal data in one transaction: deletes their factors (TOTP,
    /// passkeys and security keys, recovery codes), sessions, grants with their refresh
    /// tokens, authorization codes, consents, lab memberships, roles, feature overrides,
    /// enrolment deferrals, failure counters and WebAuthn ceremonies (queueing a back-channel
    /// logout for each live session's relying parties first); replaces the email with
    /// `erased-<random uuid>@invalid`, clears name and password hash, disables the account
    /// and sets `erased_at`; appends `user.erased` (by `actor`) to the audit log. Audit
    /// entries stay as they are: they name the user only by id. False for an unknown id.
    pub async fn erase_user(&self, user_id: &UserId, actor: &str) -> Result<bool, StoreError> {
        self.erase_user_if(user_id, actor, None).await
    }

    /// Erases the user as [`Store::erase_user`] does, only if, in the same transaction, they
    /// still asked for it before `requested_before` (not cancelled since), are no system
    /// administrator and are not erased yet: the grace period's completion.
    pub async fn erase_requested(
        &self,
        user_id: &UserId,
        requested_before: i64,
    ) -> Result<bool, StoreError> {
        self.erase_user_if(user_id, "system", Some(requested_before))
            .await
    }

    async fn erase_user_if(
        &self,
        user_id: &UserId,
        actor: &str,
        requested_before: Option<i64>,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let (id, actor) = (user_id.as_str().to_owned(), actor.to_owned());
        let t = now();
        let placeholder = format!("erased-{}@invalid", uuid::Uuid::new_v4());
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let exists: i64 = match requested_before {
                    None => users::table.find(&id).count().get_result(&mut *conn).await?,
                    Some(before) => users::table
                        .find(&id)
                        .filter(users::deletion_requested_at.lt(before))
                        .filter(users::system_admin.eq(false))
                        .filter(users::erased_at.is_null())
                        .count()
                        .get_result(&mut *conn)
                        .await?,
                };
                if exists == 0 {
                    return Ok(false);
                }
                diesel::delete(totp_credentials::table.filter(totp_credentials::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(webauthn_credentials::table.filter(webauthn_credentials::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(webauthn_ceremonies::table.filter(webauthn_ceremonies::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                // The relying parties of the person's live sessions are told those ended
                // (back-channel logout), before the grants that name them go.
                let live: Vec<String> = sessions::table
                    .filter(sessions::user_id.eq(&id))
                    .filter(sessions::ended_at.is_null())
                    .select(sessions::id)
                    .load(&mut *conn)
                    .await?;
                crate::enqueue_logouts!(&mut *conn, &live, t);
                diesel::delete(refresh_tokens::table.filter(
                    refresh_tokens::grant_id.eq_any(
                        grants::table.filter(grants::user_id.eq(&id)).select(grants::id),
                    ),
                ))
                .execute(&mut *conn)
                .await?;
                diesel::delete(grants::table.filter(grants::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(authorization_codes::table.filter(authorization_codes::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(sessions::table.filter(sessions::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(consents::table.filter(consents::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(member_features::table.filter(member_features::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(user_roles::table.filter(user_roles::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(mfa_grace::table.filter(mfa_grace::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(memberships::table.filter(memberships::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(auth_failures::table.filter(auth_failures::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                // Open invitations to the person's address name them too, and so do the
                // messages to them and the links mailed to them.
                let email: String = users::table.find(&id).select(users::email).first(&mut *conn).await?;
                diesel::delete(
                    super::schema::mail_outbox::table.filter(
                        super::schema::mail_outbox::user_id.eq(&id).or(
                            super::schema::mail_outbox::user_id
                                .is_null()
                                .and(super::schema::mail_outbox::recipient.eq(&email)),
                        ),
                    ),
                )
                .execute(&mut *conn)
                .await?;
                diesel::delete(super::schema::account_links::table.filter(super::schema::account_links::user_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(
                    super::schema::invitations::table
                        .filter(super::schema::invitations::email.eq(&email))
                        .filter(super::schema::invitations::accepted_at.is_null()),
                )
                .execute(&mut *conn)
                .await?;
                diesel::update(
                    super::schema::invitations::table
                        .filter(super::schema::invitations::accepted_by.eq(&id)),
                )
                .set(super::schema::invitations::email.eq(&placeholder))
                .execute(&mut *conn)
                .await?;
                diesel::update(users::table.find(&id))
                    .set((
                        users::system_admin.eq(false),
                        users::email.eq(&placeholder),
                        users::name.eq(None::<String>),
                        users::password_hash.eq(None::<String>),
                        users::disabled.eq(true),
                        users::erased_at.eq(Some(t)),
                        users::deletion_requested_at.eq(None::<i64>),
                        users::email_verified_at.eq(None::<i64>),
                    ))
                    .execute(&mut *conn)
                    .await?;
                crate::store::audit::append(&mut *conn, t, &crate::audit::Event::new(actor.as_str(), crate::audit::Action::UserErased, id.as_str(), serde_json::json!({}))).await?;
                Ok(true)
            })
        })
        .await
    }
}
