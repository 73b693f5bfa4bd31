//! WebAuthn ceremonies as JSON endpoints for `static/webauthn.js`: passwordless sign-in with
//! a passkey (also conditional-UI autofill), a passkey or security key as the step-up factor,
//! and registration from the account pages. The ceremonies themselves (challenges, their
//! storage and browser binding, verification) are [`signin::webauthn`]; this module parses
//! and renders.
//!
//! `POST /webauthn/{login,verify,register}/begin` (form with `csrf`) answers
//! `{ceremony, options}`; `POST /webauthn/finish` (JSON `{ceremony, credential, name?}`)
//! answers `{next}` (where the page goes) or `{error}`. The finish endpoint takes JSON only,
//! which a cross-site form cannot send, and needs the unguessable ceremony id.

use super::State;
use super::authorize::{current_session, flow_gone};
use super::cookies;
use super::errors::PageError;
use super::login::{csrf_purpose, load_flow};
use crate::signin::webauthn::{self, Answer, Begun, Finished, Kind, Refusal};
use crate::state::AppState;
use crate::store::now;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

/// Renders a refusal: JSON `{error}` with its status, or the page for missing passkeys.
fn refused(r: Refusal) -> Result<HttpResponse, PageError> {
    let (status, message) = match &r {
        Refusal::Unavailable => {
            return Err(PageError::bad_request(
                "Passkeys are not available",
                "Passkeys and security keys are not available at this address. Ask your administrator to serve Latchkey under a domain name.",
            ));
        }
        Refusal::SignInEnded => (
            StatusCode::UNAUTHORIZED,
            "Your sign-in has ended. Return to the application and start again.",
        ),
        Refusal::NoCredentials => (
            StatusCode::BAD_REQUEST,
            "You have no passkey or security key.",
        ),
        Refusal::NotSignedIn => (StatusCode::UNAUTHORIZED, "You are not signed in."),
        Refusal::ConfirmFirst => (
            StatusCode::FORBIDDEN,
            "Please confirm it is you before adding a passkey: reload the page and sign in again.",
        ),
        Refusal::CookiesNeeded => (StatusCode::BAD_REQUEST, "Cookies are needed."),
        Refusal::Expired => (
            StatusCode::BAD_REQUEST,
            "This request has expired. Try again.",
        ),
        Refusal::OtherBrowser => (
            StatusCode::BAD_REQUEST,
            "This request was started in another browser.",
        ),
        Refusal::Malformed => (StatusCode::BAD_REQUEST, "Malformed credential."),
        Refusal::Anonymous => (
            StatusCode::BAD_REQUEST,
            "This passkey did not say whose it is.",
        ),
        Refusal::UnknownCredential => (
            StatusCode::UNAUTHORIZED,
            "This passkey is not registered with Latchkey (it may have been removed).",
        ),
        Refusal::CounterRegression => (
            StatusCode::UNAUTHORIZED,
            "This passkey or security key reported a signature counter that went backwards, which suggests it was copied. It was not accepted; contact your administrator.",
        ),
        Refusal::NotVerified => (
            StatusCode::UNAUTHORIZED,
            "The passkey or security key could not be verified.",
        ),
        Refusal::AccountCannotSignIn => (StatusCode::UNAUTHORIZED, "This account cannot sign in."),
        Refusal::SessionEnded => (StatusCode::UNAUTHORIZED, "Your sign-in has ended."),
        Refusal::SessionChanged => (StatusCode::UNAUTHORIZED, "Your sign-in changed."),
        Refusal::NotYours => (
            StatusCode::UNAUTHORIZED,
            "This passkey or security key is not registered to your account.",
        ),
        Refusal::NotRegistered => (
            StatusCode::BAD_REQUEST,
            "The passkey or security key could not be registered.",
        ),
        Refusal::Conflict(m) => (StatusCode::CONFLICT, m.as_str()),
    };
    Ok(HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "error": message })))
}

/// Renders a ceremony begun (`{ceremony, options}`) or refused.
fn begun(outcome: Result<Begun, Refusal>) -> Result<HttpResponse, PageError> {
    match outcome {
        Ok(b) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(b)),
        Err(r) => refused(r),
    }
}

/// `POST /webauthn/login/begin` (form `flow`, `csrf`, `mode` = `modal` | `conditional`).
pub async fn login_begin(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let (flow, browser) = load_flow(&state, &req, form.get("flow")).await?;
    super::require_csrf(&state, &browser, &csrf_purpose(&flow.id), &form)?;
    let conditional = form.get("mode") == Some("conditional");
    begun(webauthn::begin_login(&state, &flow, &browser, conditional, now()).await?)
}

/// `POST /webauthn/verify/begin` (form `flow`, `csrf`, `need` = `mfa` | `phr`): a challenge
/// for the signed-in user's own credentials.
pub async fn verify_begin(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let (flow, browser) = load_flow(&state, &req, form.get("flow")).await?;
    super::require_csrf(&state, &browser, &csrf_purpose(&flow.id), &form)?;
    let need = form.get("need").and_then(|n| n.parse().ok());
    let current = current_session(&state, &req).await?;
    begun(webauthn::begin_verify(&state, &flow, &browser, current, need, now()).await?)
}

/// `POST /webauthn/register/begin` (form `csrf`, `kind` = `passkey` | `security_key`, and
/// `flow` when enrolling during a sign-in). Needs a recent authentication.
pub async fn register_begin(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let browser = cookies::existing_browser_id(&state, &req).ok_or_else(flow_gone)?;
    super::require_csrf(&state, &browser, super::account::CSRF_PURPOSE, &form)?;
    let kind = match form.get("kind") {
        Some("security_key") => Kind::SecurityKey,
        _ => Kind::Passkey,
    };
    let current = current_session(&state, &req).await?;
    let outcome =
        webauthn::begin_register(&state, &browser, current, kind, form.get("flow"), now()).await?;
    begun(outcome)
}

#[derive(Deserialize)]
pub struct Finish {
    ceremony: String,
    credential: serde_json::Value,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /webauthn/finish`.
pub async fn finish(
    state: State,
    req: HttpRequest,
    body: web::Json<Finish>,
) -> Result<HttpResponse, PageError> {
    let Finish {
        ceremony,
        credential,
        name,
    } = body.into_inner();
    let browser = cookies::existing_browser_id(&state, &req);
    let current = current_session(&state, &req).await?;
    let answer = Answer {
        ceremony,
        credential,
        name,
        origin: super::client_addr::requester(&state, &req).details(),
    };
    match webauthn::finish(&state, browser.as_deref(), current, answer, now()).await? {
        Ok(f) => next(&state, f),
        Err(r) => refused(r),
    }
}

/// Renders a finished ceremony: `{next}`, with the session's new cookie if it changed.
fn next(state: &AppState, f: Finished) -> Result<HttpResponse, PageError> {
    let mut resp = HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "next": f.next }));
    if let Some(t) = f.token {
        resp.add_cookie(&cookies::session_cookie(state, &t))
            .map_err(PageError::internal)?;
    }
    Ok(resp)
}
