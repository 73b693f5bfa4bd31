//! Step-up and enrolment pages of a login flow.
//!
//! `/login/verify` asks a signed-in user for **only the missing factor**: an authenticator-app
//! code, a passkey or security key (`webauthn.js`), or a recovery code, whichever reach the
//! level the request needs. A TOTP code is accepted once per time step; five wrong codes end
//! the flow. `/login/enrol` leads a user who has no suitable factor through setting one up
//! while their lab's grace period lasts, and lets them defer it when only policy demands it.

use super::authorize::{current_session, demands_for, flow_client, proceed, see_other};
use super::cookies;
use super::errors::PageError;
use super::login::{FlowQuery, client_name, continue_flow, csrf_purpose, establish, load_flow};
use super::pages::{EnrolPage, VerifyPage, render};
use super::{Params, State};
use crate::app::AppState;
use crate::factors;
use crate::protocol::authorize::fresh_since;
use crate::protocol::strength::{self, Gap, Method, offer};
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
    Ok(render(
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
    ))
}

/// `POST /login/verify` (form `flow`, `csrf`, `method` = `totp` | `recovery`, `code`).
pub async fn submit(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = Params::parse(&body).map_err(|k| {
        PageError::bad_request("Invalid form", format!("The field `{k}` was sent twice."))
    })?;
    let (flow, browser, _session, user) =
        match flow_and_user(&state, &req, form.get("flow")).await? {
            Ok(v) => v,
            Err(resp) => return Ok(resp),
        };
    if !cookies::csrf_ok(
        &state,
        &browser,
        &csrf_purpose(&flow.id),
        form.get("csrf").unwrap_or(""),
    ) {
        return Err(PageError::bad_request(
            "This form has expired",
            "The form could not be verified. Reload the page and try again.",
        ));
    }
    let code = form.get("code").unwrap_or("");
    let (need, _, _, enrolled) = needed(&state, &flow, &user).await?;
    let o = offer(&enrolled, need);
    let outcome = match form.get("method") {
        Some("totp") if o.totp => check_totp(&state, &user, code).await?,
        Some("recovery") if o.recovery_code => {
            if state
                .store
                .use_recovery_code(&user.id, factors::recovery_code_hash(code))
                .await?
            {
                let left = state.store.recovery_status(&user.id).await?.unused;
                state
                    .store
                    .audit(
                        &user.id,
                        "login.recovery_code",
                        &user.id,
                        serde_json::json!({"unused_left": left}),
                    )
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
        Err(message) => {
            let mut request = flow.request.clone();
            request.failed_codes += 1;
            tracing::info!(user = %user.id, flow = %flow.id, "second factor refused");
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
    let (session, cookie) = establish(&state, &req, &user, method).await?;
    if method == Method::Totp {
        state
            .store
            .audit(
                &user.id,
                "login.step_up",
                &user.id,
                serde_json::json!({"method": method.label(), "session": session.id}),
            )
            .await?;
    }
    continue_flow(&state, &req, flow, session, user, Some(cookie)).await
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
            .audit(
                &user.id,
                "totp.replay_refused",
                &user.id,
                serde_json::json!({}),
            )
            .await?;
        Ok(Err(
            "That code was already used. Wait for your app to show the next code.".into(),
        ))
    }
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
    let (need, grace, demands, _) = needed(&state, &flow, &user).await?;
    let t = now();
    let since = fresh_since(&flow.request, t).flatten();
    let have = match strength::assess(&session.factors, since, Acr::Pwd) {
        Gap::Met(s) => s.acr,
        _ => return Ok(see_other(&format!("/login?flow={}", flow.id))),
    };
    let open = grace.is_some_and(|g| g.open(t));
    Ok(render(
        StatusCode::OK,
        &EnrolPage {
            client_name: client_name(&state, &flow.request.client_id).await?,
            flow: flow.id.clone(),
            csrf_flow: cookies::csrf_token(&state, &browser, &csrf_purpose(&flow.id)),
            csrf_account: cookies::csrf_token(&state, &browser, super::account::CSRF_PURPOSE),
            need: need.as_str().to_owned(),
            offer_totp: need == Acr::Mfa,
            can_defer: open && have >= demands.without_policy(),
            days_left: grace.filter(|_| open).and_then(|g| g.days_left(t)),
            logins_left: grace.filter(|_| open).and_then(|g| g.logins_left()),
            passkeys: state.webauthn.is_some(),
        },
    ))
}

/// `POST /login/enrol` (form `flow`, `csrf`): "not now", while the grace period lasts.
pub async fn defer(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = Params::parse(&body).map_err(|k| {
        PageError::bad_request("Invalid form", format!("The field `{k}` was sent twice."))
    })?;
    let (flow, browser, session, user) = match flow_and_user(&state, &req, form.get("flow")).await?
    {
        Ok(v) => v,
        Err(resp) => return Ok(resp),
    };
    if !cookies::csrf_ok(
        &state,
        &browser,
        &csrf_purpose(&flow.id),
        form.get("csrf").unwrap_or(""),
    ) {
        return Err(PageError::bad_request(
            "This form has expired",
            "The form could not be verified. Reload the page and try again.",
        ));
    }
    let (_, grace, _, _) = needed(&state, &flow, &user).await?;
    if !grace.is_some_and(|g| g.open(now())) {
        return Ok(see_other(&format!("/login/enrol?flow={}", flow.id)));
    }
    if let Some(lab) = super::authorize::active_lab(&state, &user.id).await? {
        state.store.count_grace_login(&user.id, &lab).await?;
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
