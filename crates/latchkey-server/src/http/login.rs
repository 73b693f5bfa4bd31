//! The hosted login page (`/login`): the password form of a login flow, and
//! `/login/continue`, which re-evaluates a flow after a step that could not redirect itself.
//! The rules are [`signin::password`] and [`signin::flow`]; this module parses and renders.

use super::State;
use super::authorize::{current_session, respond};
use super::client_addr;
use super::cookies;
use super::errors::PageError;
use super::pages::{LoginPage, render_posting_to};
use crate::signin::{self, SignInError, flow, password};
use crate::state::AppState;
use crate::store::flows::LoginFlow;
use crate::store::now;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

/// Loads a flow and checks it belongs to this browser; returns it with the browser's id.
pub async fn load_flow(
    state: &AppState,
    req: &HttpRequest,
    id: Option<&str>,
) -> Result<(LoginFlow, String), PageError> {
    let browser = cookies::existing_browser_id(state, req);
    let flow = flow::load(state, id, browser.as_deref()).await?;
    let browser = browser.ok_or(SignInError::CookiesNeeded)?;
    Ok((flow, browser))
}

pub fn csrf_purpose(flow_id: &str) -> String {
    format!("flow:{flow_id}")
}

pub async fn client_name(state: &AppState, client_id: &str) -> Result<String, PageError> {
    Ok(flow::client(state, client_id).await?.name.clone())
}

#[derive(serde::Deserialize)]
pub struct FlowQuery {
    flow: Option<String>,
}

impl FlowQuery {
    pub fn flow_id(&self) -> Option<&str> {
        self.flow.as_deref()
    }
}

pub async fn page(
    state: State,
    req: HttpRequest,
    q: web::Query<FlowQuery>,
) -> Result<HttpResponse, PageError> {
    let (flow, browser) = load_flow(&state, &req, q.flow.as_deref()).await?;
    login_form(
        &state,
        &flow,
        &browser,
        flow.request.login_hint.clone().unwrap_or_default(),
        None,
        StatusCode::OK,
    )
    .await
}

async fn login_form(
    state: &AppState,
    flow: &LoginFlow,
    browser: &str,
    email: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    Ok(render_posting_to(
        status,
        &LoginPage {
            client_name: client_name(state, &flow.request.client_id).await?,
            flow: flow.id.clone(),
            csrf: cookies::csrf_token(state, browser, &csrf_purpose(&flow.id)),
            email,
            error,
            passkeys: state.webauthn.is_some(),
        },
        Some(&flow.request.redirect_uri),
    ))
}

pub async fn submit(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let email = form.get("username").unwrap_or("").trim().to_owned();
    let password = form.get("password").unwrap_or("");
    let who = client_addr::requester(&state, &req);
    // A budget this node saw spent, or a full queue: refused from memory, before anything is
    // read, for a form whose CSRF token is this browser's for its flow (no read either).
    let csrf_ok = || {
        cookies::existing_browser_id(&state, &req).is_some_and(|browser| {
            let purpose = csrf_purpose(form.get("flow").unwrap_or(""));
            cookies::csrf_ok(&state, &browser, &purpose, form.get("csrf").unwrap_or(""))
        })
    };
    if !email.is_empty() && !password.is_empty() && csrf_ok() {
        if let Some(retry_after) = signin::throttle::spent_here(&state, &who, &email, now()) {
            state.metrics.login(crate::metrics::Login::Throttled, None);
            state.metrics.throttled("password");
            return Ok(refused_at_once(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in attempts",
                &crate::protocol::throttle::throttled_message(retry_after),
                retry_after,
            ));
        }
        // The queue for browsers the account does not know is full: shed from memory too.
        if signin::throttle::shed_here(&state, &who, &email) {
            state.metrics.login(crate::metrics::Login::Shed, None);
            state.metrics.throttled("shed");
            return Ok(refused_at_once(
                StatusCode::SERVICE_UNAVAILABLE,
                "Many people are signing in",
                password::BUSY,
                1,
            ));
        }
    }
    let (flow, browser) = load_flow(&state, &req, form.get("flow")).await?;
    super::require_csrf(&state, &browser, &csrf_purpose(&flow.id), &form)?;
    let current = current_session(&state, &req).await?;
    match password::submit(&state, &flow, current, &who, &email, password, now()).await? {
        password::Outcome::Retry { message } => {
            let status = StatusCode::UNAUTHORIZED;
            login_form(&state, &flow, &browser, email, Some(message), status).await
        }
        password::Outcome::Throttled {
            message,
            retry_after,
        } => {
            let status = StatusCode::TOO_MANY_REQUESTS;
            let mut r = login_form(&state, &flow, &browser, email, Some(message), status).await?;
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after.max(1)),
            );
            Ok(r)
        }
        password::Outcome::Busy {
            message,
            retry_after,
        } => {
            let status = StatusCode::SERVICE_UNAVAILABLE;
            let mut r = login_form(&state, &flow, &browser, email, Some(message), status).await?;
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after.max(1)),
            );
            Ok(r)
        }
        password::Outcome::SignedIn { signed_in, device } => {
            let mut r = respond(&state, signed_in.next, None, Some(&signed_in.token))?;
            let days = state.config.throttle.device_days;
            let cookie = cookies::build(
                &state,
                cookies::device_cookie_name(&state),
                device,
                actix_web::cookie::time::Duration::days(days),
            );
            r.add_cookie(&cookie).map_err(PageError::internal)?;
            Ok(r)
        }
    }
}

/// A password attempt refused from memory: a short page, with `Retry-After`.
fn refused_at_once(
    status: StatusCode,
    title: &str,
    message: &str,
    retry_after: i64,
) -> HttpResponse {
    let mut r = super::pages::message(
        status,
        title,
        message,
        Some("Go back to the sign-in page to try again then.".into()),
        None,
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(retry_after.max(1)),
    );
    r
}

/// `GET /login/continue?flow=…`: re-evaluates a flow with the browser's session (after a
/// WebAuthn ceremony, whose JSON response cannot redirect the page itself).
pub async fn resume(
    state: State,
    req: HttpRequest,
    q: web::Query<FlowQuery>,
) -> Result<HttpResponse, PageError> {
    let (flow, _) = load_flow(&state, &req, q.flow.as_deref()).await?;
    let session = current_session(&state, &req).await?;
    let next = signin::flow::resume(&state, &flow, session, now()).await?;
    respond(&state, next, None, None)
}
