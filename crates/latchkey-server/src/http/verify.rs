//! Step-up and enrolment pages of a login flow.
//!
//! `/login/verify` asks a signed-in user for **only the missing factor**: an authenticator-app
//! code, a passkey or security key (`webauthn.js`), or a recovery code, whichever reach the
//! level the request needs. A TOTP code is accepted once per time step; five wrong codes end
//! the flow, and wrong codes also count per user across flows and nodes: from the fifth in a
//! row on, codes are refused unchecked for 30 s, doubling up to an hour. `/login/enrol` leads a user who has no suitable factor through setting one up
//! while their lab's grace period lasts, and lets them defer it when only policy demands it.

use super::State;
use super::authorize::{current_session, demands_for, flow_client, proceed, see_other};
use super::cookies;
use super::errors::PageError;
use super::login::{FlowQuery, client_name, continue_flow, csrf_purpose, establish, load_flow};
use super::pages::{EnrolPage, VerifyPage, render_posting_to};
use crate::app::AppState;
use crate::audit::{Action, Event};
use crate::factors;
use crate::protocol::strength::{self, Method, offer};
use crate::store::factors::Attempt;
use crate::store::flows::LoginFlow;
use crate::store::now;
use crate::store::sessions::Session;
use crate::store::users::User;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::Acr;

/// Wrong second-factor codes allowed in one flow before it ends.
const MAX_FAILED_CODES: u32 = 5;

/// The flow, its browser and the signed-in user; `Err(response)` redirects to the login page
/// when the flow has no session.
async fn flow_and_user(
    state: &AppState,
    req: &HttpRequest,
    flow_id: Option<&str>,
) -> Result<Result<(LoginFlow, String, Session, User), HttpResponse>, PageError> {
    let (flow, browser) = load_flow(state, req, flow_id).await?;
    match current_session(state, req).await? {
        Some((s, u)) => Ok(Ok((flow, browser, s, u))),
        None => Ok(Err(see_other(&format!("/login?flow={}", flow.id)))),
    }
}

/// The level this flow needs from this user now (with a deferred enrolment honoured).
async fn needed(
    state: &AppState,
    flow: &LoginFlow,
    user: &User,
) -> Result<
    (
        Acr,
        Option<strength::Grace>,
        strength::Demands,
        strength::Enrolled,
    ),
    PageError,
> {
    let client = flow_client(state, &flow.request.client_id).await?;
    let (demands, enrolled, grace) = demands_for(state, &flow.request, &client, &user.id).await?;
    let need = if flow.request.deferred_enrolment && grace.is_some() {
        demands.without_policy()
    } else {
        demands.level()
    };
    Ok((need, grace, demands, enrolled))
}

/// `GET /login/verify?flow=…`.
pub async fn page(
    state: State,
    req: HttpRequest,
    q: web::Query<FlowQuery>,
) -> Result<HttpResponse, PageError> {
    let (flow, browser, _session, user) = match flow_and_user(&state, &req, q.flow_id()).await? {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    verify_page(&state, &flow, &browser, &user, None).await
}

async fn verify_page(
    state: &AppState,
    flow: &LoginFlow,
    browser: &str,
    user: &User,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let (need, _, _, enrolled) = needed(state, flow, user).await?;
    let o = offer(&enrolled, need);
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
            need: need.as_str().to_owned(),
            email: user.email.clone(),
            totp: o.totp,
            webauthn: o.webauthn,
            recovery: o.recovery_code,
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
    let (flow, browser, _session, user) =
        match flow_and_user(&state, &req, form.get("flow")).await? {
            Ok(v) => v,
            Err(resp) => return Ok(resp),
        };
    super::require_csrf(&state, &browser, &csrf_purpose(&flow.id), &form)?;
    let code = form.get("code").unwrap_or("");
    let t = now();
    let failures = state.store.failures(&user.id, Attempt::Code).await?;
    if let Some((_, until)) = failures
        && until > t
    {
        return verify_page(
            &state,
            &flow,
            &browser,
            &user,
            Some(locked_message(until - t)),
        )
        .await;
    }
    let (need, _, _, enrolled) = needed(&state, &flow, &user).await?;
    let o = offer(&enrolled, need);
    let outcome = match form.get("method") {
        Some("totp") if o.totp => check_totp(&state, &user, code).await?,
        Some("recovery") if o.recovery_code => {
            if state
                .store
                .use_recovery_code(&user.id, factors::recovery_code_hash(&user.id, code))
                .await?
            {
                let left = state.store.recovery_status(&user.id).await?.unused;
                state
                    .store
                    .audit(Event::new(
                        &user.id,
                        Action::LoginRecoveryCode,
                        &user.id,
                        serde_json::json!({"unused_left": left}),
                    ))
                    .await?;
                Ok(Method::RecoveryCode)
            } else {
                Err("That recovery code is not valid or was already used.".to_owned())
            }
        }
        _ => Err("Choose one of the ways offered on this page.".to_owned()),
    };
    let method = match outcome {
        Ok(m) => m,
        Err(mut message) => {
            // Wrong codes count per user, whatever flow or node they come from.
            let (failures, until) = state
                .store
                .record_failure(&user.id, Attempt::Code, t)
                .await?;
            if until > 0 {
                message = locked_message(until - t);
                state
                    .store
                    .audit(Event::new(
                        &user.id,
                        Action::FactorLocked,
                        &user.id,
                        serde_json::json!({"failures": failures, "locked_for_secs": until - t}),
                    ))
                    .await?;
            }
            let mut request = flow.request.clone();
            request.failed_codes += 1;
            tracing::info!(user = %user.id, flow = %flow.id, failures, "second factor refused");
            if request.failed_codes >= MAX_FAILED_CODES {
                state.store.finish_flow(&flow.id).await?;
                return Err(PageError::bad_request(
                    "Too many wrong codes",
                    "This sign-in was stopped after too many wrong codes. Return to the application and start again.",
                ));
            }
            state.store.update_flow_request(&flow.id, &request).await?;
            let flow = LoginFlow { request, ..flow };
            return verify_page(&state, &flow, &browser, &user, Some(message)).await;
        }
    };
    if failures.is_some() {
        state.store.reset_failures(&user.id, Attempt::Code).await?;
    }
    let (session, cookie) = establish(&state, &req, &user, method).await?;
    if method == Method::Totp {
        state
            .store
            .audit(Event::new(
                &user.id,
                Action::LoginStepUp,
                &user.id,
                serde_json::json!({"method": method.label(), "session": session.id}),
            ))
            .await?;
    }
    continue_flow(&state, &req, flow, session, user, Some(cookie)).await
}

pub fn locked_message(secs: i64) -> String {
    format!(
        "Too many wrong codes. Wait {} before trying again.",
        if secs < 90 {
            format!("{} seconds", secs.max(1))
        } else {
            format!("{} minutes", (secs + 59) / 60)
        }
    )
}

/// Checks a TOTP code and accepts its time step at most once.
async fn check_totp(
    state: &AppState,
    user: &User,
    code: &str,
) -> Result<Result<Method, String>, PageError> {
    let Some(row) = state
        .store
        .get_totp(&user.id)
        .await?
        .filter(|t| t.confirmed)
    else {
        return Ok(Err("No authenticator app is set up.".into()));
    };
    let secret = factors::open_totp(&state.kek, &user.id, &row.sealed_secret)
        .map_err(PageError::internal)?;
    let Some(step) = factors::check_totp(&secret, code, now()) else {
        return Ok(Err("That code is not correct.".into()));
    };
    if state.store.accept_totp_step(&user.id, step, false).await? {
        Ok(Ok(Method::Totp))
    } else {
        state
            .store
            .audit(Event::new(
                &user.id,
                Action::TotpReplayRefused,
                &user.id,
                serde_json::json!({}),
            ))
            .await?;
        Ok(Err(
            "That code was already used. Wait for your app to show the next code.".into(),
        ))
    }
}

/// The step `next_step` decides for this flow and user now (consent taken as given: only the
/// authentication part matters here).
async fn step_now(
    state: &AppState,
    flow: &LoginFlow,
    session: &Session,
    user: &User,
) -> Result<(crate::protocol::authorize::Next, Option<strength::Grace>), PageError> {
    let client = flow_client(state, &flow.request.client_id).await?;
    let (demands, enrolled, grace) = demands_for(state, &flow.request, &client, &user.id).await?;
    let standing = crate::protocol::authorize::Standing {
        factors: &session.factors,
        demands,
        enrolled,
        grace,
    };
    Ok((
        crate::protocol::authorize::next_step(&flow.request, Some(standing), true, now()),
        grace,
    ))
}

/// `GET /login/enrol?flow=…`.
pub async fn enrol_page(
    state: State,
    req: HttpRequest,
    q: web::Query<FlowQuery>,
) -> Result<HttpResponse, PageError> {
    let (flow, browser, session, user) = match flow_and_user(&state, &req, q.flow_id()).await? {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    let (step, grace) = step_now(&state, &flow, &session, &user).await?;
    let crate::protocol::authorize::Next::Enrol { need, can_defer } = step else {
        // Nothing to enrol (any more): let the flow decide where to go.
        return Ok(see_other(&format!("/login/continue?flow={}", flow.id)));
    };
    let t = now();
    Ok(render_posting_to(
        StatusCode::OK,
        &EnrolPage {
            client_name: client_name(&state, &flow.request.client_id).await?,
            flow: flow.id.clone(),
            csrf_flow: cookies::csrf_token(&state, &browser, &csrf_purpose(&flow.id)),
            csrf_account: cookies::csrf_token(&state, &browser, super::account::CSRF_PURPOSE),
            need: need.as_str().to_owned(),
            offer_totp: need == Acr::Mfa,
            can_defer,
            days_left: grace.filter(|_| can_defer).and_then(|g| g.days_left(t)),
            logins_left: grace.filter(|_| can_defer).and_then(|g| g.logins_left()),
            passkeys: state.webauthn.is_some(),
        },
        Some(&flow.request.redirect_uri),
    ))
}

/// `POST /login/enrol` (form `flow`, `csrf`): "not now", only where the enrolment page offers
/// it (the user has no factor that reaches the level, only lab or role policy demands it, and
/// the grace period is open).
pub async fn defer(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let (flow, browser, session, user) = match flow_and_user(&state, &req, form.get("flow")).await?
    {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    super::require_csrf(&state, &browser, &csrf_purpose(&flow.id), &form)?;
    let (step, _) = step_now(&state, &flow, &session, &user).await?;
    if !matches!(
        step,
        crate::protocol::authorize::Next::Enrol {
            can_defer: true,
            ..
        }
    ) {
        return Ok(see_other(&format!("/login/continue?flow={}", flow.id)));
    }
    // The grace counted is the flow's lab's (the one whose policy offered the deferral).
    if let Some(lab) = &flow.request.lab {
        state.store.count_grace_login(&user.id, lab).await?;
    }
    let mut request = flow.request.clone();
    request.deferred_enrolment = true;
    state.store.update_flow_request(&flow.id, &request).await?;
    let client = flow_client(&state, &request.client_id).await?;
    proceed(
        &state,
        &req,
        request,
        &client,
        Some((session, user)),
        Some(&flow.id),
    )
    .await
}
