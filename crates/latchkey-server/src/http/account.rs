//! The account security page (`/account`): the signed-in user's authenticator app, passkeys
//! and security keys, recovery codes and recent security events. The rules (recent
//! authentication, the last factor a policy needs, auditing) are [`signin::account`]; this
//! module parses and renders.

use super::authorize::{current_session, respond, see_other};
use super::client_addr;
use super::cookies;
use super::errors::PageError;
use super::pages::{
    AccountPage, ConsentView, RecoveryCodesPage, SessionView, TotpSetupPage, render,
    render_posting_to,
};
use super::{Params, State};
use crate::factors;
use crate::signin::BrowserAt;
use crate::signin::account::{self as ops, Guard, Removal, TotpConfirm};
use crate::signin::password_change::{self, Changed};
use crate::state::AppState;
use crate::store::now;
use crate::store::sessions::Session;
use crate::store::users::User;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// The start of every account form's handler: [`check`] (CSRF, session, a recent enough
/// sign-in), giving `(form, session, user)`, or returning from the handler with where the
/// browser must go first.
macro_rules! checked {
    ($state:expr, $req:expr, $body:expr) => {
        match $crate::http::account::check($state, $req, $body).await? {
            $crate::http::account::Checked::Allowed(f, s, u) => (f, s, u),
            $crate::http::account::Checked::Elsewhere(r) => return Ok(r),
        }
    };
}
pub(super) use checked;

pub use crate::signin::account::clean_name;

pub const CSRF_PURPOSE: &str = "account";

pub use crate::signin::dates::fmt_time;

pub use crate::signin::device::browser_label;

/// A sentence for the account page's event list; the factor events name the factor.
fn describe_event(action: &str, details: &str) -> Option<String> {
    let d: serde_json::Value = serde_json::from_str(details).unwrap_or_default();
    let factor = match (d["factor"].as_str(), d["name"].as_str()) {
        (Some("totp"), _) => " (authenticator app)".to_owned(),
        (Some("passkey"), Some(n)) => format!(" (passkey “{n}”)"),
        (Some("security_key"), Some(n)) => format!(" (security key “{n}”)"),
        _ => String::new(),
    };
    // A reset asked for but not sent (the hourly allowance was used) is not news to the user.
    if action == "password.reset_requested" && d["sent"] == serde_json::Value::Bool(false) {
        return None;
    }
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
        "factor.renamed" => "Renamed a passkey or security key",
        "recovery_codes.generated" => "Created new recovery codes",
        "password.changed" => "Changed the password",
        "password.reset_requested" => "A password-reset link was sent to your address",
        "password.reset" => "Reset the password with a link sent by e-mail",
        "email.confirmed" => "Confirmed the e-mail address",
        "email.change_requested" => "Asked to change the e-mail address",
        "email.changed" => "Changed the e-mail address",
        "user.deletion_requested" => "Asked for the account to be deleted",
        "user.deletion_cancelled" => "Cancelled the account's deletion",
        "user.exported" => "Downloaded the account's data",
        "consent.withdrawn" => "Withdrew an application's access",
        "webauthn.counter_regression" => "A copied passkey or security key was refused",
        "totp.replay_refused" => "A reused authenticator code was refused",
        "factor.locked" => "Too many wrong codes: codes were refused for a while",
        "login.locked" => "Too many wrong passwords: password sign-in was paused",
        "login.throttled" => {
            "Many wrong passwords were tried: password attempts from browsers \
                              you have not signed in with were paused for a while"
        }
        "user.reset_attempts" => "An administrator reset your sign-in attempts",
        _ => return None,
    })
}

/// `GET /account`.
pub async fn page(state: State, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let current = current_session(&state, &req).await?;
    let (browser, cookie) = cookies::browser_id(&state, &req);
    let Some((session, user)) = current else {
        let at = BrowserAt {
            id: &browser,
            source: client_addr::requester(&state, &req).ip,
        };
        let next = ops::sign_in_first(&state, None, at, None, false, None, now()).await?;
        return respond(&state, next, cookie, None);
    };
    render_account(&state, &req, &session, &user, None).await
}

pub(super) async fn render_account(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    user: &User,
    notice: Option<String>,
) -> Result<HttpResponse, PageError> {
    render_account_with(state, req, session, user, notice, None).await
}

/// The account page with a refusal (`notice`) or a confirmation (`done`) at the top.
pub(super) async fn render_account_with(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    user: &User,
    notice: Option<String>,
    done: Option<String>,
) -> Result<HttpResponse, PageError> {
    let (browser, cookie) = cookies::browser_id(state, req);
    let o = ops::overview(state, session, user).await?;
    let mut events: Vec<(String, String)> = o
        .events
        .into_iter()
        .rev()
        .filter_map(|e| describe_event(&e.action, &e.details).map(|d| (fmt_time(e.at), d)))
        .take(10)
        .collect();
    events.shrink_to_fit();
    let page = AccountPage {
        email: user.email.clone(),
        csrf: cookies::csrf_token(state, &browser, CSRF_PURPOSE),
        acr: o.acr.as_str().to_owned(),
        policy: o.policy.as_str().to_owned(),
        totp_since: o.totp.map(|t| fmt_time(t.created_at)),
        credentials: o
            .credentials
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
                // The maker whose root vouched for the key, while it is a hardware key.
                hardware: state
                    .attestation
                    .maker(c.attestation_root.as_deref(), c.backup_eligible),
                added: fmt_time(c.created_at),
                last_used: c.last_used_at.map(fmt_time),
            })
            .collect(),
        recovery_unused: o.recovery.unused,
        recovery_total: o.recovery.total,
        recovery_last_used: o.recovery.last_used_at.map(fmt_time),
        recovery_legacy: o.recovery.legacy_unused,
        events,
        notice,
        done,
        has_password: user.password_hash.is_some(),
        email_verified: user.email_verified_at.is_some(),
        deletion: user.deletion_requested_at.map(|at| {
            crate::signin::own_data::erased_on(state, at).map_or_else(
                || "when an administrator completes it".to_owned(),
                |t| format!("on {}", crate::signin::dates::fmt_day(t)),
            )
        }),
        sessions: o
            .sessions
            .into_iter()
            .map(|s| SessionView {
                this: s.id == session.id,
                browser: s
                    .user_agent
                    .as_deref()
                    .map_or_else(|| "A browser".to_owned(), browser_label),
                user_agent: s.user_agent.unwrap_or_default(),
                source: s.source.unwrap_or_else(|| "unknown address".into()),
                signed_in: fmt_time(s.created_at),
                last_used: fmt_time(s.last_seen_at),
                acr: s.acr,
                id: s.id,
            })
            .collect(),
        consents: o
            .consents
            .into_iter()
            .map(|(client, name, scope, at)| ConsentView {
                client,
                name,
                scope,
                given: fmt_time(at),
                until: fmt_time(at.saturating_add(state.config.tokens.consent_ttl_days * 86_400)),
            })
            .collect(),
        passkeys: state.webauthn.is_some(),
    };
    // The account's one password check at a time is running for another request (a double
    // submit, the login in another tab): nothing was checked, so the answer says to retry,
    // as the login form's does.
    let busy = page.notice.as_deref() == Some(crate::signin::password::ACCOUNT_BUSY);
    let mut resp = super::pages::render_refusal(StatusCode::OK, busy, &page);
    if let Some(c) = cookie {
        resp.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(resp)
}

/// An account change's request: the parsed form with a valid CSRF token, and either the
/// session and user allowed to change factors, or where the browser must go first.
#[expect(
    clippy::large_enum_variant,
    reason = "made once per account-page request and taken apart at once"
)]
pub(super) enum Checked {
    Allowed(Params, Session, User),
    Elsewhere(HttpResponse),
}

pub(super) async fn check(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<Checked, PageError> {
    let form = super::page_form(body)?;
    let existing = cookies::existing_browser_id(state, req).unwrap_or_default();
    super::require_csrf(state, &existing, CSRF_PURPOSE, &form)?;
    let current = current_session(state, req).await?;
    let (browser, cookie) = cookies::browser_id(state, req);
    let at = BrowserAt {
        id: &browser,
        source: client_addr::requester(state, req).ip,
    };
    Ok(match ops::guard(state, current, at, now()).await? {
        Guard::Allowed(session, user) => Checked::Allowed(form, session, user),
        Guard::SignInFirst(next) => Checked::Elsewhere(respond(state, next, cookie, None)?),
    })
}

/// Back to the account page after a change, or the page again with the refusal.
async fn settle(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    user: &User,
    done: Removal,
) -> Result<HttpResponse, PageError> {
    match done {
        Removal::Done => Ok(see_other("/account")),
        Removal::Refused(why) => render_account(state, req, session, user, Some(why)).await,
    }
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
    let (form, _, user) = checked!(&state, &req, &body);
    let secret = ops::begin_totp(&state, &user).await?;
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
    let (form, session, user) = checked!(&state, &req, &body);
    let code = form.get("code").unwrap_or("");
    match ops::confirm_totp(&state, (session, user.clone()), code, now()).await? {
        TotpConfirm::NothingPending => Ok(see_other(&back(&form))),
        TotpConfirm::Retry { secret } => {
            totp_setup_page(
                &state,
                &req,
                &user,
                &secret,
                form.get("flow"),
                Some("That code is not correct. Check the time on your device and enter the current 6-digit code.".into()),
            )
            .await
        }
        TotpConfirm::Enrolled { token } => {
            let mut resp = see_other(&back(&form));
            if let Some(t) = token {
                resp.add_cookie(&cookies::session_cookie(&state, &t))
                    .map_err(PageError::internal)?;
            }
            Ok(resp)
        }
    }
}

/// `POST /account/totp/remove`.
pub async fn totp_remove(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (_, session, user) = checked!(&state, &req, &body);
    let done = ops::remove_totp(&state, &user).await?;
    settle(&state, &req, &session, &user, done).await
}

/// `POST /account/webauthn/remove` (form `id`).
pub async fn webauthn_remove(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, session, user) = checked!(&state, &req, &body);
    let done = ops::remove_webauthn(&state, &user, form.get("id").unwrap_or("")).await?;
    settle(&state, &req, &session, &user, done).await
}

/// `POST /account/webauthn/rename` (form `id`, `name`).
pub async fn webauthn_rename(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, _, user) = checked!(&state, &req, &body);
    ops::rename_webauthn(
        &state,
        &user,
        form.get("id").unwrap_or(""),
        form.get("name"),
    )
    .await?;
    Ok(see_other("/account"))
}

/// `POST /account/recovery-codes`: ten new codes, shown once; the old ones stop working.
pub async fn recovery_codes(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, _, user) = checked!(&state, &req, &body);
    let codes = ops::regenerate_recovery_codes(&state, &user).await?;
    Ok(render(
        StatusCode::OK,
        &RecoveryCodesPage {
            codes,
            next: back(&form),
        },
    ))
}

/// `POST /account/password` (form `current`, `new`, `repeat`, `keep_others`): a new password
/// after the current one; other browsers and applications' tokens end unless kept.
pub async fn password_change(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, session, user) = checked!(&state, &req, &body);
    let who = client_addr::requester(&state, &req);
    let change = password_change::Change {
        current: form.get("current").unwrap_or(""),
        new: form.get("new").unwrap_or(""),
        repeated: form.get("repeat").unwrap_or(""),
        // A ticked checkbox sends "on"; anything else keeps nothing.
        keep_others: matches!(form.get("keep_others"), Some("on" | "true" | "1")),
    };
    match password_change::change(&state, &session, &user, change, &who, now()).await? {
        Changed::Done {
            sessions_ended,
            grants_revoked,
        } => {
            let done = if sessions_ended + grants_revoked == 0 {
                "Your password was changed.".to_owned()
            } else {
                format!(
                    "Your password was changed. Signed out elsewhere: {sessions_ended} \
                     browser(s); applications signed out: {grants_revoked}."
                )
            };
            render_account_with(&state, &req, &session, &user, None, Some(done)).await
        }
        Changed::Refused(why) => render_account(&state, &req, &session, &user, Some(why)).await,
    }
}

/// `POST /account/consents/withdraw` (form `client`): the application's access ends.
pub async fn consent_withdraw(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, session, user) = checked!(&state, &req, &body);
    let who = client_addr::requester(&state, &req);
    let client = form.get("client").unwrap_or("");
    let done = ops::withdraw_consent(&state, &user, client, &who).await?;
    settle(&state, &req, &session, &user, done).await
}

/// `POST /account/sessions/end` (form `session`): signs another of the user's browsers out.
pub async fn session_end(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let (form, session, user) = checked!(&state, &req, &body);
    let who = client_addr::requester(&state, &req);
    let id = form.get("session").unwrap_or("");
    let done = ops::end_other_session(&state, &session, &user, id, &who).await?;
    settle(&state, &req, &session, &user, done).await
}
