//! The hosted login page (`/login`): the password form of a login flow. A wrong password shows
//! the form again with a message and issues nothing; a right one starts a session and moves
//! the flow on (consent or code).

use super::State;
use super::authorize::{current_session, flow_client, flow_gone, proceed};
use super::cookies;
use super::errors::PageError;
use super::pages::{LoginPage, render_posting_to};
use crate::app::AppState;
use crate::audit::{Action, Event};
use crate::password::Verified;
use crate::protocol::strength::{self, Method};
use crate::secret::{OpaqueToken, TokenHash, TokenKind, random_id};
use crate::store::factors::Attempt;
use crate::store::flows::LoginFlow;
use crate::store::now;
use crate::store::sessions::Session;
use crate::store::users::User;
use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// Loads a flow and checks it belongs to this browser.
pub async fn load_flow(
    state: &AppState,
    req: &HttpRequest,
    id: Option<&str>,
) -> Result<(LoginFlow, String), PageError> {
    let id = id.ok_or_else(flow_gone)?;
    let flow = state.store.get_flow(id).await?.ok_or_else(flow_gone)?;
    let browser = cookies::existing_browser_id(state, req).ok_or_else(|| {
        PageError::bad_request(
            "Cookies are needed to sign in",
            "Your browser did not send Latchkey's cookie. Allow cookies for this site, then return to the application and start again.",
        )
    })?;
    if !TokenHash::of(&browser).matches(&flow.browser_hash) {
        return Err(PageError::bad_request(
            "This sign-in was started elsewhere",
            "This sign-in page belongs to another browser. Return to the application and start again.",
        ));
    }
    Ok((flow, browser))
}

pub fn csrf_purpose(flow_id: &str) -> String {
    format!("flow:{flow_id}")
}

pub async fn client_name(state: &AppState, client_id: &str) -> Result<String, PageError> {
    Ok(flow_client(state, client_id).await?.name.clone())
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
    )
    .await
}

async fn login_form(
    state: &AppState,
    flow: &LoginFlow,
    browser: &str,
    email: String,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
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
    let (flow, browser) = load_flow(&state, &req, form.get("flow")).await?;
    super::require_csrf(&state, &browser, &csrf_purpose(&flow.id), &form)?;
    let email = form.get("username").unwrap_or("").trim().to_owned();
    let password = form.get("password").unwrap_or("");
    if email.is_empty() || password.is_empty() {
        return login_form(
            &state,
            &flow,
            &browser,
            email,
            Some("Enter your email and password.".into()),
        )
        .await;
    }
    let user = state.store.find_user_by_email(&email).await?;
    let t = crate::store::now();
    let failures = match &user {
        Some(u) => state.store.failures(&u.id, Attempt::Password).await?,
        None => None,
    };
    if let Some((_, until)) = failures
        && until > t
    {
        // Not even checked: the lock is what stops guessing. Passkeys still work.
        return login_form(
            &state,
            &flow,
            &browser,
            email,
            Some(format!(
                "{} Or sign in with a passkey.",
                super::verify::locked_message(until - t).replace("wrong codes", "failed sign-ins")
            )),
        )
        .await;
    }
    let verified = state
        .hasher
        .verify(
            password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await
        .map_err(PageError::internal)?;
    let user = match (user, verified) {
        (Some(u), Verified::Yes) if !u.disabled => u,
        (Some(u), Verified::YesRehash(h)) if !u.disabled => {
            state.store.set_password_hash(&u.id, &h).await?;
            u
        }
        (known, v) => {
            tracing::info!(flow = %flow.id, "login failed: wrong email or password");
            // Who and why, for the audit log; an unknown email is not recorded (personal data
            // of someone who may not be a user).
            let (target, reason) = match &known {
                None => ("unknown".to_owned(), "unknown email"),
                Some(u) if u.disabled && !matches!(v, Verified::No) => {
                    (u.id.clone(), "account disabled")
                }
                Some(u) => (u.id.clone(), "wrong password"),
            };
            let mut message = "The email or password is not correct.".to_owned();
            if let Some(u) = &known
                && reason == "wrong password"
            {
                let (failures, until) = state
                    .store
                    .record_failure(&u.id, Attempt::Password, t)
                    .await?;
                if until > 0 {
                    state
                        .store
                        .audit(Event::new(
                            &u.id,
                            Action::LoginLocked,
                            &u.id,
                            serde_json::json!({"failures": failures, "locked_for_secs": until - t}),
                        ))
                        .await?;
                    message = format!(
                        "{} Or sign in with a passkey.",
                        super::verify::locked_message(until - t)
                            .replace("wrong codes", "failed sign-ins")
                    );
                }
            }
            state
                .store
                .audit(Event::new(
                    &target,
                    Action::LoginFailed,
                    &target,
                    serde_json::json!({"reason": reason, "client": flow.request.client_id}),
                ))
                .await?;
            return login_form(&state, &flow, &browser, email, Some(message)).await;
        }
    };
    if failures.is_some() {
        state
            .store
            .reset_failures(&user.id, Attempt::Password)
            .await?;
    }
    let (session, cookie) = establish(&state, &req, &user, Method::Password).await?;
    tracing::info!(user = %user.id, session = %session.id, "login succeeded");
    state
        .store
        .audit(Event::new(
            &user.id,
            Action::LoginPassword,
            &user.id,
            serde_json::json!({}),
        ))
        .await?;
    continue_flow(&state, &req, flow, session, user, Some(cookie)).await
}

/// Records a factor the browser's user just proved: a first factor starts (or, for the same
/// user, renews) the session; a second factor needs the user's live session. The cookie token
/// changes every time (session fixation defence); the session keeps its id (`sid`).
pub async fn establish(
    state: &AppState,
    req: &HttpRequest,
    user: &User,
    method: Method,
) -> Result<(Session, Cookie<'static>), PageError> {
    let t = now();
    let token = OpaqueToken::generate(TokenKind::Session);
    let current = current_session(state, req).await?;
    let mut session = match current {
        Some((old, _)) if old.user_id == user.id => old,
        other => {
            if !matches!(method, Method::Password | Method::Webauthn { .. }) {
                return Err(PageError::bad_request(
                    "Sign in first",
                    "This step needs the sign-in you started. Return to the application and start again.",
                ));
            }
            if let Some((old, _)) = other {
                state.store.end_session(&old.id).await?;
            }
            Session {
                id: String::new(),
                user_id: user.id.clone(),
                auth_time: t,
                amr: vec![],
                acr: String::new(),
                created_at: t,
                expires_at: 0,
                factors: vec![],
            }
        }
    };
    strength::record(&mut session.factors, method, t);
    if let Some(s) = strength::strength(&session.factors, None) {
        session.acr = s.acr.as_str().to_owned();
        session.amr = s.amr.iter().map(|a| a.as_str().to_owned()).collect();
    }
    if matches!(method, Method::Password | Method::Webauthn { .. }) {
        session.auth_time = t;
    }
    session.expires_at = t + state.config.tokens.session_ttl_secs;
    if session.id.is_empty() {
        session.id = random_id();
        state.store.create_session(token.hash(), &session).await?;
    } else {
        state
            .store
            .renew_session(&session.id, token.hash(), &session)
            .await?;
    }
    Ok((session, cookies::session_cookie(state, &token)))
}

/// Moves a flow on after a factor was proven in it, setting the new session cookie.
pub async fn continue_flow(
    state: &AppState,
    req: &HttpRequest,
    flow: LoginFlow,
    session: Session,
    user: User,
    cookie: Option<Cookie<'static>>,
) -> Result<HttpResponse, PageError> {
    let client = flow_client(state, &flow.request.client_id).await?;
    let mut request = flow.request.clone();
    request.authenticated = true;
    state.store.update_flow_request(&flow.id, &request).await?;
    let mut resp = proceed(
        state,
        req,
        request,
        &client,
        Some((session, user)),
        Some(&flow.id),
    )
    .await?;
    if let Some(c) = cookie {
        resp.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(resp)
}

/// `GET /login/continue?flow=…`: re-evaluates a flow with the browser's session (after a
/// WebAuthn ceremony, whose JSON response cannot redirect the page itself).
pub async fn resume(
    state: State,
    req: HttpRequest,
    q: web::Query<FlowQuery>,
) -> Result<HttpResponse, PageError> {
    let (flow, _) = load_flow(&state, &req, q.flow.as_deref()).await?;
    let client = flow_client(&state, &flow.request.client_id).await?;
    let session = current_session(&state, &req).await?;
    proceed(
        &state,
        &req,
        flow.request.clone(),
        &client,
        session,
        Some(&flow.id),
    )
    .await
}
