//! The account security page (`/account`): the signed-in user's authenticator app, passkeys
//! and security keys, recovery codes and recent security events.
//!
//! Viewing needs a live session; every change needs a recent authentication
//! (`authentication.reauth_window_secs`), else the user is sent through a sign-in first. A
//! factor the user's lab or roles require cannot be removed if it is the last one that reaches
//! the required level. Every change is audited.

use super::authorize::{ACCOUNT_CLIENT_ID, current_session, proceed, see_other};
use super::cookies;
use super::errors::PageError;
use super::pages::{AccountPage, RecoveryCodesPage, TotpSetupPage, render, render_posting_to};
use super::{Params, State};
use crate::app::AppState;
use crate::audit::{Action, Event};
use crate::factors;
use crate::protocol::authorize::{AuthRequest, Prompt, ResponseMode};
use crate::protocol::strength::{self, Enrolled, Method, offer};
use crate::store::now;
use crate::store::sessions::Session;
use crate::store::users::User;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::Acr;

pub const CSRF_PURPOSE: &str = "account";

/// What changing factors needs beyond the live session, if anything: a fresh sign-in
/// (`true`) and/or the level the user can reach (`mfa` once they have any second factor, so a
/// stolen password alone cannot add or remove factors). `None`: the change may go ahead.
pub async fn change_requirement(
    state: &AppState,
    session: &Session,
    user_id: &str,
) -> Result<Option<(bool, Acr)>, PageError> {
    let enrolled = state.store.enrolled(user_id).await?;
    let need = if enrolled.totp || enrolled.webauthn > 0 || enrolled.recovery_codes > 0 {
        Acr::Mfa
    } else {
        Acr::Pwd
    };
    let since = now() - state.config.authentication.reauth_window_secs;
    let fresh = strength::strength(&session.factors, Some(since)).is_some();
    // The level must be fresh too: an old second factor plus a new password is not a recent
    // two-factor sign-in.
    let level = strength::strength(&session.factors, Some(since)).map_or(Acr::Pwd, |s| s.acr);
    Ok(if !fresh || level < need {
        Some((true, need))
    } else {
        None
    })
}

/// A credential name as the user typed it: trimmed, at most 64 characters, not empty.
pub fn clean_name(name: Option<&str>) -> Option<String> {
    let n: String = name?.trim().chars().take(64).collect();
    (!n.is_empty()).then_some(n)
}

/// Sends the browser through a sign-in that returns to the account page. With `fresh`, the
/// user must authenticate again even with a live session.
async fn sign_in_first(
    state: &AppState,
    req: &HttpRequest,
    hint: Option<String>,
    fresh: bool,
    level: Option<Acr>,
) -> Result<HttpResponse, PageError> {
    let request = AuthRequest {
        client_id: ACCOUNT_CLIENT_ID.into(),
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
        requested_at: now(),
        authenticated: false,
        requested_acr: level,
        deferred_enrolment: false,
        failed_codes: 0,
        lab_hint: None,
        lab: None,
    };
    let client = super::authorize::flow_client(state, ACCOUNT_CLIENT_ID).await?;
    let session = current_session(state, req).await?;
    proceed(state, req, request, &client, session, None).await
}

/// The level the user's labs and roles require (what removing a factor must keep reachable):
/// the strictest across all their labs, since the account page is for no lab in particular
/// and a factor one lab needs must not be removable because another lab needs less.
async fn policy_level(state: &AppState, user_id: &str) -> Result<Acr, PageError> {
    let mut level = Acr::Pwd;
    for lab in state.store.user_labs(user_id).await? {
        let p = state.store.member_policy(user_id, &lab).await?;
        level = level.max(p.lab.map(|l| l.min_acr).max(p.role_min).unwrap_or(Acr::Pwd));
    }
    Ok(level)
}

pub fn fmt_time(t: i64) -> String {
    // UTC, minute precision; pages show times to the user, not to machines.
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A sentence for the account page's event list; the factor events name the factor.
fn describe_event(action: &str, details: &str) -> Option<String> {
    let d: serde_json::Value = serde_json::from_str(details).unwrap_or_default();
    let factor = match (d["factor"].as_str(), d["name"].as_str()) {
        (Some("totp"), _) => " (authenticator app)".to_owned(),
        (Some("passkey"), Some(n)) => format!(" (passkey “{n}”)"),
        (Some("security_key"), Some(n)) => format!(" (security key “{n}”)"),
        _ => String::new(),
    };
    let base = describe_action(action)?;
    Some(if action.starts_with("factor.") {
        format!("{base}{factor}")
    } else {
        base.to_owned()
    })
}

fn describe_action(action: &str) -> Option<&'static str> {
    Some(match action {
        "login.password" => "Signed in with password",
        "login.failed" => "A sign-in with a wrong password failed",
        "login.passkey" => "Signed in with a passkey",
        "login.step_up" => "Confirmed a sign-in with a second factor",
        "login.recovery_code" => "Used a recovery code to sign in",
        "factor.enrolled" => "Added a sign-in method",
        "factor.removed" => "Removed a sign-in method",
        "recovery_codes.generated" => "Created new recovery codes",
        "webauthn.counter_regression" => "A copied passkey or security key was refused",
        "totp.replay_refused" => "A reused authenticator code was refused",
        "factor.locked" => "Too many wrong codes: codes were refused for a while",
        "login.locked" => "Too many wrong passwords: password sign-in was paused",
        _ => return None,
    })
}

/// `GET /account`.
pub async fn page(state: State, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let Some((session, user)) = current_session(&state, &req).await? else {
        return sign_in_first(&state, &req, None, false, None).await;
    };
    render_account(&state, &req, &session, &user, None).await
}

async fn render_account(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    user: &User,
    notice: Option<String>,
) -> Result<HttpResponse, PageError> {
    let (browser, cookie) = cookies::browser_id(state, req);
    let totp = state
        .store
        .get_totp(&user.id)
        .await?
        .filter(|t| t.confirmed);
    let creds = state.store.list_webauthn(&user.id).await?;
    let recovery = state.store.recovery_status(&user.id).await?;
    let mut events: Vec<(String, String)> = state
        .store
        .audit_for(&user.id)
        .await?
        .into_iter()
        .rev()
        .filter_map(|e| describe_event(&e.action, &e.details).map(|d| (fmt_time(e.at), d)))
        .take(10)
        .collect();
    events.shrink_to_fit();
    let current = strength::strength(&session.factors, None);
    let page = AccountPage {
        email: user.email.clone(),
        csrf: cookies::csrf_token(state, &browser, CSRF_PURPOSE),
        acr: current
            .as_ref()
            .map_or("pwd", |s| s.acr.as_str())
            .to_owned(),
        policy: policy_level(state, &user.id).await?.as_str().to_owned(),
        totp_since: totp.map(|t| fmt_time(t.created_at)),
        credentials: creds
            .iter()
            .map(|c| super::pages::CredentialView {
                id: c.id.clone(),
                name: c.name.clone(),
                kind: if c.kind == "passkey" {
                    "Passkey".into()
                } else {
                    "Security key".into()
                },
                synced: c.backup_eligible,
                added: fmt_time(c.created_at),
                last_used: c.last_used_at.map(fmt_time),
            })
            .collect(),
        recovery_unused: recovery.unused,
        recovery_total: recovery.total,
        recovery_last_used: recovery.last_used_at.map(fmt_time),
        events,
        notice,
        passkeys: state.webauthn.is_some(),
    };
    let mut resp = render(StatusCode::OK, &page);
    if let Some(c) = cookie {
        resp.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(resp)
}

/// [`guard`] in a handler: the parsed form, session and user, or return the redirect.
macro_rules! guarded {
    ($state:expr, $req:expr, $body:expr) => {
        match guard(&$state, &$req, &$body).await? {
            Ok(v) => v,
            Err(resp) => return Ok(resp),
        }
    };
}

/// What every account change starts with: a parsed form with a valid CSRF token, a session,
/// and a recent authentication. `Err(response)` is where the browser goes instead.
async fn guard(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<Result<(Params, Session, User), HttpResponse>, PageError> {
    let form = super::page_form(body)?;
    let browser = cookies::existing_browser_id(state, req).unwrap_or_default();
    super::require_csrf(state, &browser, CSRF_PURPOSE, &form)?;
    let Some((session, user)) = current_session(state, req).await? else {
        return Ok(Err(sign_in_first(state, req, None, false, None).await?));
    };
    if let Some((fresh, level)) = change_requirement(state, &session, &user.id).await? {
        return Ok(Err(sign_in_first(
            state,
            req,
            Some(user.email.clone()),
            fresh,
            Some(level),
        )
        .await?));
    }
    Ok(Ok((form, session, user)))
}

/// Where a change made during a sign-in (enrolment) returns to.
fn back(form: &Params) -> String {
    match form.get("flow") {
        Some(f) => format!(
            "/login/continue?flow={}",
            url::form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
        ),
        None => "/account".into(),
    }
}

/// `POST /account/totp/setup`: a new secret, shown as a QR code and as text.
pub async fn totp_setup(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, _session, user) = guarded!(state, req, body);
    let secret = factors::new_totp_secret();
    match state
        .store
        .begin_totp(&user.id, factors::seal_totp(&state.kek, &user.id, &secret))
        .await
    {
        Ok(()) => {}
        Err(crate::store::StoreError::Conflict(_)) => {
            return Err(PageError::bad_request(
                "Authenticator app already set up",
                "Remove the current authenticator app first, then set up the new one.",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    totp_setup_page(&state, &req, &user, &secret, form.get("flow"), None).await
}

/// The client redirect URI a sign-in flow ends at (for the CSP of pages whose forms continue
/// it), if `flow` names a live one.
async fn flow_target(state: &AppState, flow: Option<&str>) -> Result<Option<String>, PageError> {
    Ok(match flow {
        Some(id) => state
            .store
            .get_flow(id)
            .await?
            .map(|f| f.request.redirect_uri),
        None => None,
    })
}

async fn totp_setup_page(
    state: &AppState,
    req: &HttpRequest,
    user: &User,
    secret: &[u8],
    flow: Option<&str>,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let target = flow_target(state, flow).await?;
    let e =
        factors::totp_enrolment(secret, "Latchkey", &user.email).map_err(PageError::internal)?;
    let browser = cookies::existing_browser_id(state, req).unwrap_or_default();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render_posting_to(
        status,
        &TotpSetupPage {
            csrf: cookies::csrf_token(state, &browser, CSRF_PURPOSE),
            qr: e.qr_data_uri,
            key: e.key_base32,
            flow: flow.map(str::to_owned),
            error,
        },
        target.as_deref(),
    ))
}

/// `POST /account/totp/confirm`: activates the pending authenticator after a correct code.
pub async fn totp_confirm(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, _session, user) = guarded!(state, req, body);
    let Some(pending) = state
        .store
        .get_totp(&user.id)
        .await?
        .filter(|t| !t.confirmed)
    else {
        return Ok(see_other(&back(&form)));
    };
    let before = state.store.enrolled(&user.id).await?;
    let had_factors = before.totp || before.webauthn > 0 || before.recovery_codes > 0;
    let secret = factors::open_totp(&state.kek, &user.id, &pending.sealed_secret)
        .map_err(PageError::internal)?;
    let code = form.get("code").unwrap_or("");
    let accepted = match factors::check_totp(&secret, code, now()) {
        Some(step) => state.store.accept_totp_step(&user.id, step, true).await?,
        None => false,
    };
    if !accepted {
        return totp_setup_page(
            &state,
            &req,
            &user,
            &secret,
            form.get("flow"),
            Some("That code is not correct. Check the time on your device and enter the current 6-digit code.".into()),
        )
        .await;
    }
    state
        .store
        .audit(Event::new(
            &user.id,
            Action::FactorEnrolled,
            &user.id,
            serde_json::json!({"factor": "totp"}),
        ))
        .await?;
    // A first factor enrolled right after the password counts for this session (the code
    // proves possession); later enrolments add nothing to it.
    if had_factors {
        return Ok(see_other(&back(&form)));
    }
    let (_, cookie) = super::login::establish(&state, &req, &user, Method::Totp).await?;
    let mut resp = see_other(&back(&form));
    resp.add_cookie(&cookie).map_err(PageError::internal)?;
    Ok(resp)
}

/// Refuses a removal that would leave the user unable to reach their policy's level.
async fn removal_allowed(
    state: &AppState,
    user: &User,
    after: Enrolled,
) -> Result<Option<String>, PageError> {
    let level = policy_level(state, &user.id).await?;
    if level > Acr::Pwd && !offer(&after, level).any() {
        return Ok(Some(format!(
            "Your lab requires `{level}` sign-in, and this is your last sign-in method that reaches it. Add another one first, then remove this one."
        )));
    }
    Ok(None)
}

/// `POST /account/totp/remove`.
pub async fn totp_remove(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (_form, session, user) = guarded!(state, req, body);
    let mut after = state.store.enrolled(&user.id).await?;
    after.totp = false;
    if let Some(why) = removal_allowed(&state, &user, after).await? {
        return render_account(&state, &req, &session, &user, Some(why)).await;
    }
    if state.store.delete_totp(&user.id).await? {
        state
            .store
            .audit(Event::new(
                &user.id,
                Action::FactorRemoved,
                &user.id,
                serde_json::json!({"factor": "totp"}),
            ))
            .await?;
    }
    Ok(see_other("/account"))
}

/// `POST /account/webauthn/remove` (form `id`).
pub async fn webauthn_remove(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, session, user) = guarded!(state, req, body);
    let id = form.get("id").unwrap_or("");
    let creds = state.store.list_webauthn(&user.id).await?;
    let Some(cred) = creds.iter().find(|c| c.id == id) else {
        return Ok(see_other("/account"));
    };
    let mut after = state.store.enrolled(&user.id).await?;
    after.webauthn -= 1;
    if cred.kind == "passkey" {
        after.passkeys = after.passkeys.saturating_sub(1);
    }
    if let Some(why) = removal_allowed(&state, &user, after).await? {
        return render_account(&state, &req, &session, &user, Some(why)).await;
    }
    if state.store.delete_webauthn(&user.id, id).await? {
        state
            .store
            .audit(Event::new(
                &user.id,
                Action::FactorRemoved,
                &user.id,
                serde_json::json!({"factor": cred.kind, "credential": cred.id}),
            ))
            .await?;
    }
    Ok(see_other("/account"))
}

/// `POST /account/webauthn/rename` (form `id`, `name`).
pub async fn webauthn_rename(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, _session, user) = guarded!(state, req, body);
    let Some(name) = clean_name(form.get("name")) else {
        return Err(PageError::bad_request(
            "Name missing",
            "Give the passkey or security key a name.",
        ));
    };
    state
        .store
        .rename_webauthn(&user.id, form.get("id").unwrap_or(""), &name)
        .await?;
    Ok(see_other("/account"))
}

/// `POST /account/recovery-codes`: ten new codes, shown once; the old ones stop working.
pub async fn recovery_codes(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, _session, user) = guarded!(state, req, body);
    let codes = factors::new_recovery_codes();
    state
        .store
        .replace_recovery_codes(
            &user.id,
            codes
                .iter()
                .map(|c| factors::recovery_code_hash(&user.id, c))
                .collect(),
        )
        .await?;
    state
        .store
        .audit(Event::new(
            &user.id,
            Action::RecoveryCodesGenerated,
            &user.id,
            serde_json::json!({"count": codes.len()}),
        ))
        .await?;
    Ok(render(
        StatusCode::OK,
        &RecoveryCodesPage {
            codes,
            next: back(&form),
        },
    ))
}
