//! The account pages' operations on the signed-in user's own factors: enrol and remove an
//! authenticator app, register, rename and remove passkeys and security keys, regenerate
//! recovery codes. Every change needs a recent authentication (`reauth_window_secs`), else the
//! user is sent through a sign-in first; a factor the user's lab or roles require cannot be
//! removed if it is the last one that reaches the required level. Every change is audited in
//! its own transaction.

use super::{BrowserAt, Next, Origin, Requester, SignInError, flow, session};
use crate::audit::{Action, Event};
use crate::factors;
use crate::protocol::authorize::{AuthRequest, Prompt, ResponseMode};
use crate::protocol::strength::{self, Enrolled, Method, Rules, offer};
use crate::secret::OpaqueToken;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::audit::AuditEvent;
use crate::store::factors::{RecoveryStatus, TotpRow, WebauthnRow};
use crate::store::now;
use crate::store::sessions::{Listed, Session};
use crate::store::users::User;
use latchkey_core::Acr;

/// What changing factors needs beyond the live session, if anything: a fresh sign-in
/// (`true`) and/or the level the user can reach (`mfa` once they have any second factor, so a
/// stolen password alone cannot add or remove factors). `None`: the change may go ahead.
pub async fn change_requirement(
    state: &AppState,
    session: &Session,
    user_id: &str,
    now: i64,
) -> Result<Option<(bool, Acr)>, StoreError> {
    let enrolled = state.enrolled(user_id).await?;
    let need = if has_factors(&enrolled) {
        Acr::Mfa
    } else {
        Acr::Pwd
    };
    let since = now - state.config.authentication.reauth_window_secs;
    // The level must be fresh too: an old second factor plus a new password is not a recent
    // two-factor sign-in.
    let fresh = strength::strength(&session.factors, Some(since), Rules::of(&state.config));
    let level = fresh.as_ref().map_or(Acr::Pwd, |s| s.acr);
    Ok(if fresh.is_none() || level < need {
        Some((true, need))
    } else {
        None
    })
}

fn has_factors(e: &Enrolled) -> bool {
    e.totp || e.webauthn > 0 || e.recovery_codes > 0
}

/// A credential name as the user typed it, without control or text-direction characters:
/// trimmed, at most 64 characters, not empty.
pub fn clean_name(name: Option<&str>) -> Option<String> {
    let n: String = name?
        .chars()
        .filter(|c| !latchkey_core::names::is_unsafe_in_name(*c))
        .collect::<String>()
        .trim()
        .chars()
        .take(64)
        .collect();
    (!n.is_empty()).then_some(n)
}

/// Sends the browser through a sign-in that returns to the account page. With `fresh`, the
/// user must authenticate again even with a live session.
pub async fn sign_in_first(
    state: &AppState,
    current: Option<(Session, User)>,
    browser: BrowserAt<'_>,
    hint: Option<String>,
    fresh: bool,
    level: Option<Acr>,
    now: i64,
) -> Result<Next, SignInError> {
    let request = AuthRequest {
        client_id: flow::ACCOUNT_CLIENT_ID.into(),
        redirect_uri: "/account".into(),
        response_mode: ResponseMode::Query,
        scope: vec!["openid".into()],
        state: None,
        nonce: None,
        code_challenge: None,
        prompt: Prompt {
            login: fresh,
            ..Prompt::default()
        },
        max_age: None,
        login_hint: hint,
        acr_values: vec![],
        requested_at: now,
        proven: Vec::new(),
        requested_acr: level,
        deferred_enrolment: false,
        failed_codes: 0,
        lab_hint: None,
        lab: None,
        device: None,
        dpop_jkt: None,
        resources: Vec::new(),
    };
    let client = flow::client(state, flow::ACCOUNT_CLIENT_ID).await?;
    flow::proceed(
        state,
        request,
        &client,
        current,
        Origin::New { browser },
        now,
    )
    .await
}

/// Whether an account change may go ahead for this browser.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "made once per account-page request and taken apart at once"
)]
pub enum Guard {
    Allowed(Session, User),
    /// Sign in (again, or further) first.
    SignInFirst(Next),
}

/// What every account change starts with: a session and a recent authentication.
pub async fn guard(
    state: &AppState,
    current: Option<(Session, User)>,
    browser: BrowserAt<'_>,
    now: i64,
) -> Result<Guard, SignInError> {
    let Some((session, user)) = current else {
        let next = sign_in_first(state, None, browser, None, false, None, now).await?;
        return Ok(Guard::SignInFirst(next));
    };
    if let Some((fresh, level)) = change_requirement(state, &session, &user.id, now).await? {
        let hint = Some(user.email.clone());
        let next = sign_in_first(
            state,
            Some((session, user)),
            browser,
            hint,
            fresh,
            Some(level),
            now,
        )
        .await?;
        return Ok(Guard::SignInFirst(next));
    }
    Ok(Guard::Allowed(session, user))
}

/// The level the user's labs and roles require (what removing a factor must keep reachable):
/// the strictest across all their labs, since the account page is for no lab in particular
/// and a factor one lab needs must not be removable because another lab needs less.
pub async fn policy_level(state: &AppState, user_id: &str) -> Result<Acr, StoreError> {
    let mut level = Acr::Pwd;
    for lab in state.store.user_labs(user_id).await? {
        let p = state.store.member_policy(user_id, &lab).await?;
        level = level.max(p.lab.map(|l| l.min_acr).max(p.role_min).unwrap_or(Acr::Pwd));
    }
    Ok(level)
}

/// Everything the account page shows.
#[derive(Debug)]
pub struct Overview {
    pub totp: Option<TotpRow>,
    pub credentials: Vec<WebauthnRow>,
    pub recovery: RecoveryStatus,
    /// The user's audit events, oldest first.
    pub events: Vec<AuditEvent>,
    /// The level the session reached.
    pub acr: Acr,
    /// The level the user's labs and roles require.
    pub policy: Acr,
    /// The applications the user allowed: (client id, name, scope, given at), newest first.
    pub consents: Vec<(String, String, String, i64)>,
    /// The user's live sessions (signed-in browsers), most recently used first.
    pub sessions: Vec<Listed>,
}

pub async fn overview(
    state: &AppState,
    session: &Session,
    user: &User,
) -> Result<Overview, StoreError> {
    Ok(Overview {
        totp: state
            .store
            .get_totp(&user.id)
            .await?
            .filter(|t| t.confirmed),
        credentials: state.store.list_webauthn(&user.id).await?,
        recovery: state.store.recovery_status(&user.id).await?,
        events: state.store.audit_for(&user.id).await?,
        acr: strength::strength(&session.factors, None, Rules::of(&state.config))
            .map_or(Acr::Pwd, |s| s.acr),
        policy: policy_level(state, &user.id).await?,
        consents: state.store.consents_of(&user.id).await?,
        sessions: live_sessions(state, &user.id, now()).await?,
    })
}

/// Starts setting up an authenticator app: the new secret, to show as a QR code and text.
pub async fn begin_totp(state: &AppState, user: &User) -> Result<Vec<u8>, SignInError> {
    let secret = factors::new_totp_secret();
    match state
        .store
        .begin_totp(&user.id, factors::seal_totp(&state.kek, &user.id, &secret))
        .await
    {
        Ok(()) => Ok(secret),
        Err(StoreError::Conflict(_)) => Err(SignInError::TotpAlreadySetUp),
        Err(e) => Err(e.into()),
    }
}

/// The outcome of confirming an authenticator app.
#[derive(Debug)]
pub enum TotpConfirm {
    /// No setup is pending (already confirmed, or never begun).
    NothingPending,
    /// Wrong code: show the setup again (with this secret).
    Retry { secret: Vec<u8> },
    /// Enrolled; `token`: the session's new cookie token when the new factor counts for it.
    Enrolled { token: Option<OpaqueToken> },
}

/// Activates the pending authenticator after a correct code.
pub async fn confirm_totp(
    state: &AppState,
    current: (Session, User),
    code: &str,
    now: i64,
) -> Result<TotpConfirm, SignInError> {
    let user = &current.1;
    let Some(pending) = state
        .store
        .get_totp(&user.id)
        .await?
        .filter(|t| !t.confirmed)
    else {
        return Ok(TotpConfirm::NothingPending);
    };
    let had_factors = has_factors(&state.enrolled(&user.id).await?);
    let secret = factors::open_totp(&state.kek, &user.id, &pending.sealed_secret)
        .map_err(SignInError::internal)?;
    let event = Event::new(
        &user.id,
        Action::FactorEnrolled,
        &user.id,
        serde_json::json!({"factor": "totp"}),
    )
    .with_mail(factor_notice(state, user, true, "An authenticator app"));
    let accepted = match factors::check_totp(
        &secret,
        code,
        now,
        state.config.authentication.totp_steps_back,
    ) {
        Some(step) => {
            state
                .store
                .accept_totp_step(&user.id, step, true, Some(&event))
                .await?
        }
        None => false,
    };
    if !accepted {
        return Ok(TotpConfirm::Retry { secret });
    }
    // A first factor enrolled right after the password counts for this session (the code
    // proves possession); later enrolments add nothing to it.
    if had_factors {
        return Ok(TotpConfirm::Enrolled { token: None });
    }
    let user = current.1.clone();
    let (_, token) =
        session::establish(state, Some(current), &user, Method::Totp, None, None, now).await?;
    Ok(TotpConfirm::Enrolled { token: Some(token) })
}

/// The outcome of a removal.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    /// Done (or there was nothing to remove).
    Done,
    /// Refused, with the reason (e.g. the last factor that reaches the policy's level).
    Refused(String),
}

/// Refuses a removal that would leave the user unable to reach their policy's level.
async fn removal_allowed(
    state: &AppState,
    user: &User,
    after: Enrolled,
) -> Result<Option<String>, StoreError> {
    let level = policy_level(state, &user.id).await?;
    if level > Acr::Pwd && !offer(&after, level, Rules::of(&state.config)).any() {
        return Ok(Some(format!(
            "Your lab requires `{level}` sign-in, and this is your last sign-in method that reaches it. Add another one first, then remove this one."
        )));
    }
    Ok(None)
}

/// "A passkey", "A security key".
fn kind_name(kind: &str) -> &'static str {
    if kind == "passkey" {
        "A passkey"
    } else {
        "A security key"
    }
}

/// The notice mailed to the account when a sign-in method is added or removed (queued with
/// the change's audit entry; `mail::wake` runs after the commit in the handler's next poll).
fn factor_notice(
    state: &AppState,
    user: &User,
    added: bool,
    what: &str,
) -> Option<crate::audit::QueuedMail> {
    let (what, from) = (what.to_owned(), String::new());
    let content = if added {
        crate::mail::Content::FactorAdded { what, from }
    } else {
        crate::mail::Content::FactorRemoved { what, from }
    };
    crate::mail::compose(state, &user.email, Some(&user.id), &content)
}

/// Removes the user's authenticator app.
pub async fn remove_totp(state: &AppState, user: &User) -> Result<Removal, SignInError> {
    let mut after = state.enrolled(&user.id).await?;
    after.totp = false;
    if let Some(why) = removal_allowed(state, user, after).await? {
        return Ok(Removal::Refused(why));
    }
    let event = Event::new(
        &user.id,
        Action::FactorRemoved,
        &user.id,
        serde_json::json!({"factor": "totp"}),
    )
    .with_mail(factor_notice(state, user, false, "The authenticator app"));
    state.store.delete_totp(&user.id, &event).await?;
    Ok(Removal::Done)
}

/// Removes one of the user's passkeys or security keys (`id`: its credential id).
pub async fn remove_webauthn(
    state: &AppState,
    user: &User,
    id: &str,
) -> Result<Removal, SignInError> {
    let creds = state.store.list_webauthn(&user.id).await?;
    let Some(cred) = creds.iter().find(|c| c.id == id) else {
        return Ok(Removal::Done);
    };
    let mut after = state.enrolled(&user.id).await?;
    after.webauthn = after.webauthn.saturating_sub(1);
    if cred.kind == "passkey" {
        after.passkeys = after.passkeys.saturating_sub(1);
    }
    if state.is_hardware(cred) {
        after.hardware = after.hardware.saturating_sub(1);
        if cred.kind == "passkey" {
            after.hardware_passkeys = after.hardware_passkeys.saturating_sub(1);
        }
    }
    if let Some(why) = removal_allowed(state, user, after).await? {
        return Ok(Removal::Refused(why));
    }
    let what = format!("{} “{}”", kind_name(&cred.kind), cred.name);
    let event = Event::new(
        &user.id,
        Action::FactorRemoved,
        &user.id,
        serde_json::json!({"factor": cred.kind, "credential": cred.id}),
    )
    .with_mail(factor_notice(state, user, false, &what));
    state.store.delete_webauthn(&user.id, id, &event).await?;
    Ok(Removal::Done)
}

/// Renames one of the user's passkeys or security keys.
pub async fn rename_webauthn(
    state: &AppState,
    user: &User,
    id: &str,
    name: Option<&str>,
) -> Result<(), SignInError> {
    let name = clean_name(name).ok_or(SignInError::NameMissing)?;
    let event = Event::new(
        &user.id,
        Action::FactorRenamed,
        &user.id,
        serde_json::json!({"credential": id, "name": name}),
    );
    state
        .store
        .rename_webauthn(&user.id, id, &name, &event)
        .await?;
    Ok(())
}

/// Ten new recovery codes, to show once; the old ones stop working.
pub async fn regenerate_recovery_codes(
    state: &AppState,
    user: &User,
) -> Result<Vec<String>, SignInError> {
    let codes = factors::new_recovery_codes();
    let event = Event::new(
        &user.id,
        Action::RecoveryCodesGenerated,
        &user.id,
        serde_json::json!({"count": codes.len()}),
    );
    state
        .store
        .replace_recovery_codes(
            &user.id,
            codes
                .iter()
                .map(|c| state.recovery_key.hash(&user.id, c))
                .collect(),
            &event,
        )
        .await?;
    Ok(codes)
}

/// Stores a passkey or security key just registered by the signed-in user (`kind`:
/// `passkey` | `security_key`). Returns the session's new cookie token when the credential
/// is the user's first factor and so counts for this session.
pub async fn register_webauthn(
    state: &AppState,
    current: (Session, User),
    kind: &str,
    name: Option<&str>,
    cred: &webauthn_rs::prelude::Credential,
    now: i64,
) -> Result<Option<OpaqueToken>, SignInError> {
    let user = current.1.clone();
    let had_factors = has_factors(&state.enrolled(&user.id).await?);
    let default_name = if kind == "passkey" {
        "Passkey"
    } else {
        "Security key"
    };
    let attestation_root = state.attestation.root_of(cred);
    let attested_by = attestation_root
        .as_deref()
        .and_then(|r| state.attestation.subject(r));
    let hw = state
        .attestation
        .is_hardware(attestation_root.as_deref(), cred.backup_eligible);
    let row = WebauthnRow {
        id: factors::cred_id_b64(&cred.cred_id),
        user_id: user.id.clone(),
        name: clean_name(name).unwrap_or_else(|| default_name.into()),
        kind: kind.to_owned(),
        credential: serde_json::to_string(cred).map_err(SignInError::internal)?,
        sign_count: i64::from(cred.counter),
        backup_eligible: cred.backup_eligible,
        backup_state: cred.backup_state,
        created_at: now,
        last_used_at: None,
        attestation_root: attestation_root.clone(),
    };
    let what = format!("{} “{}”", kind_name(kind), row.name);
    let event = Event::new(
        &user.id,
        Action::FactorEnrolled,
        &user.id,
        serde_json::json!({
            "factor": kind,
            "credential": row.id,
            "attested_by": attested_by,
            "hardware": hw,
        }),
    )
    .with_mail(factor_notice(state, &user, true, &what));
    state.store.add_webauthn(&row, &event).await?;
    // A user's first factor, enrolled right after their password, counts as the second
    // factor of this session (possession of the new credential was just proven), but never as
    // `phr`: the session began with a password, which a phishing proxy could have relayed.
    // To reach `phr` the user signs in with the passkey itself. Later registrations add
    // nothing to the session.
    if had_factors {
        return Ok(None);
    }
    let method = Method::Webauthn {
        uv: false,
        synced: cred.backup_eligible,
        hw,
    };
    let (_, token) =
        session::establish(state, Some(current), &user, method, None, None, now).await?;
    Ok(Some(token))
}

/// Withdraws the user's consent to `client_id`: the application's grants and refresh tokens
/// end, and its next sign-in asks for consent again. Refused when there was no such consent.
pub async fn withdraw_consent(
    state: &AppState,
    user: &User,
    client_id: &str,
    who: &Requester,
) -> Result<Removal, SignInError> {
    let target = user.id.clone();
    let mut details = who.details();
    details["client"] = client_id.into();
    let withdrawn = state
        .store
        .withdraw_consent(&user.id, client_id, move |revoked| {
            details["grants_revoked"] = revoked.into();
            Event::new(&target, Action::ConsentWithdrawn, &target, details)
        })
        .await?;
    Ok(match withdrawn {
        Some(_) => Removal::Done,
        None => Removal::Refused("That application has no access to withdraw.".into()),
    })
}

/// The user's live sessions, as session look-up counts them live (the idle timeout included).
async fn live_sessions(
    state: &AppState,
    user_id: &str,
    now: i64,
) -> Result<Vec<Listed>, StoreError> {
    let idle = state.config.tokens.session_idle_timeout_secs;
    let idle_since = (idle > 0).then(|| now - idle);
    state.store.live_sessions_of(user_id, now, idle_since).await
}

/// Signs the user's browser session `id` out from the account page (another browser, not
/// this one: this one signs out with "Sign out"); what was issued from it ends as at sign-out.
/// Refused when `id` is not one of the user's other live sessions.
pub async fn end_other_session(
    state: &AppState,
    current: &Session,
    user: &User,
    id: &str,
    who: &Requester,
) -> Result<Removal, SignInError> {
    let now = now();
    if id == current.id
        || !live_sessions(state, &user.id, now)
            .await?
            .iter()
            .any(|s| s.id == id)
    {
        return Ok(Removal::Refused(
            "That browser is not signed in (or is this one: use Sign out).".into(),
        ));
    }
    let mut details = who.details();
    details["reason"] = "signed out from the account page".into();
    details["session"] = id.into();
    let event = Event::new(&user.id, Action::SessionEnded, &user.id, details);
    state.store.end_session(id, Some(&event)).await?;
    Ok(Removal::Done)
}
