//! Step-up and enrolment pages of a login flow.
//!
//! `/login/verify` asks a signed-in user for **only the missing factor**: an authenticator-app
//! code, a passkey or security key (`webauthn.js`), or a recovery code, whichever reach the
//! level the request needs ([`signin::second_factor`]). `/login/enrol` leads a user who has no
//! suitable factor through setting one up while their lab's grace period lasts, and lets them
//! defer it when only policy demands it ([`signin::enrolment`]).

use super::State;
use super::authorize::{current_session, respond, see_other};
use super::cookies;
use super::errors::PageError;
use super::login::{FlowQuery, client_name, csrf_purpose, load_flow};
use super::pages::{EnrolPage, VerifyPage, render_posting_to};
use crate::signin::second_factor::{self, CodeKind};
use crate::signin::{self, enrolment};
use crate::state::AppState;
use crate::store::flows::LoginFlow;
use crate::store::now;
use crate::store::users::User;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::Acr;

/// `GET /login/verify?flow=…`.
pub async fn page(
    state: State,
    req: HttpRequest,
    q: web::Query<FlowQuery>,
) -> Result<HttpResponse, PageError> {
    let (flow, browser) = load_flow(&state, &req, q.flow_id()).await?;
    let Some((_, user)) = current_session(&state, &req).await? else {
        return Ok(to_login(&flow));
    };
    verify_page(&state, &flow, &browser, &user, None).await
}

/// A flow step that needs the session the flow started: back to its login page.
fn to_login(flow: &LoginFlow) -> HttpResponse {
    see_other(&format!("/login?flow={}", flow.id))
}

async fn verify_page(
    state: &AppState,
    flow: &LoginFlow,
    browser: &str,
    user: &User,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let ask = second_factor::ask(state, flow, user).await?;
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    // The form's answer may redirect to the client: CSP `form-action` must allow it.
    Ok(render_posting_to(
        status,
        &VerifyPage {
            client_name: client_name(state, &flow.request.client_id).await?,
            flow: flow.id.clone(),
            csrf: cookies::csrf_token(state, browser, &csrf_purpose(&flow.id)),
            need: ask.need.as_str().to_owned(),
            email: user.email.clone(),
            totp: ask.offer.totp,
            webauthn: ask.offer.webauthn,
            recovery: ask.offer.recovery_code,
            error,
        },
        Some(&flow.request.redirect_uri),
    ))
}

/// `POST /login/verify` (form `flow`, `csrf`, `method` = `totp` | `recovery`, `code`).
pub async fn submit(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let (flow, browser) = load_flow(&state, &req, form.get("flow")).await?;
    let Some(current) = current_session(&state, &req).await? else {
        return Ok(to_login(&flow));
    };
    super::require_csrf(&state, &browser, &csrf_purpose(&flow.id), &form)?;
    let kind = match form.get("method") {
        Some("totp") => CodeKind::Totp,
        Some("recovery") => CodeKind::Recovery,
        _ => CodeKind::Other,
    };
    let code = form.get("code").unwrap_or("");
    let user = current.1.clone();
    let who = super::client_addr::requester(&state, &req);
    match second_factor::submit(&state, flow, current, &who, kind, code, now()).await? {
        second_factor::Outcome::Retry {
            flow,
            message,
            lock,
        } => {
            let mut r = verify_page(&state, &flow, &browser, &user, Some(message)).await?;
            // Locked codes: 429, and when the lock ends (a block waits for an administrator).
            if let Some(lock) = lock {
                *r.status_mut() = actix_web::http::StatusCode::TOO_MANY_REQUESTS;
                if let crate::protocol::throttle::CodeLock::For(secs) = lock {
                    r.headers_mut().insert(
                        actix_web::http::header::RETRY_AFTER,
                        actix_web::http::header::HeaderValue::from(secs.max(1)),
                    );
                }
            }
            Ok(r)
        }
        second_factor::Outcome::SignedIn(s) => respond(&state, s.next, None, Some(&s.token)),
    }
}

/// `GET /login/enrol?flow=…`.
pub async fn enrol_page(
    state: State,
    req: HttpRequest,
    q: web::Query<FlowQuery>,
) -> Result<HttpResponse, PageError> {
    let (flow, browser) = load_flow(&state, &req, q.flow_id()).await?;
    let Some((session, user)) = current_session(&state, &req).await? else {
        return Ok(to_login(&flow));
    };
    let Some(e) = enrolment::current(&state, &flow, &session, &user, now()).await? else {
        // Nothing to enrol (any more): let the flow decide where to go.
        return Ok(see_other(&format!("/login/continue?flow={}", flow.id)));
    };
    Ok(render_posting_to(
        StatusCode::OK,
        &EnrolPage {
            client_name: client_name(&state, &flow.request.client_id).await?,
            flow: flow.id.clone(),
            csrf_flow: cookies::csrf_token(&state, &browser, &csrf_purpose(&flow.id)),
            csrf_account: cookies::csrf_token(&state, &browser, super::account::CSRF_PURPOSE),
            need: e.need.as_str().to_owned(),
            offer_totp: e.need == Acr::Mfa,
            can_defer: e.can_defer,
            days_left: e.days_left,
            logins_left: e.logins_left,
            passkeys: state.webauthn.is_some(),
        },
        Some(&flow.request.redirect_uri),
    ))
}

/// `POST /login/enrol` (form `flow`, `csrf`): "not now".
pub async fn defer(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let (flow, browser) = load_flow(&state, &req, form.get("flow")).await?;
    let Some(current) = current_session(&state, &req).await? else {
        return Ok(to_login(&flow));
    };
    super::require_csrf(&state, &browser, &csrf_purpose(&flow.id), &form)?;
    let next = signin::enrolment::defer(&state, &flow, current, now()).await?;
    respond(&state, next, None, None)
}
