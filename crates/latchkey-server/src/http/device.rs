//! The device authorization grant (RFC 8628): the device authorization endpoint
//! (`POST /device_authorization`, section 3.1, authenticated like the token endpoint), and the
//! user's pages: `/device`, where the code the device shows is typed (section 3.3), and
//! `/device/done`, the outcome. The rules are [`crate::token::device_code`] and
//! [`crate::signin::device_authorization`].

use super::authorize::{current_session, respond};
use super::errors::PageError;
use super::pages::{DevicePage, MessagePage, render};
use super::token::{client_auth, form};
use super::{State, cookies};
use crate::protocol::OAuthError;
use crate::signin::device_authorization::{Entered, enter, outcome};
use crate::signin::{self, BrowserAt};
use crate::store::now;
use crate::token::device_code::{DeviceRequest, authorize};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

const CSRF_PURPOSE: &str = "device";

/// `POST /device_authorization`: a device asks to be authorized.
pub async fn device_authorization(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = form(&req, &body)?;
    let credentials = client_auth::credentials(&req, &params)?;
    let client = crate::token::client_auth::authenticate(&state, &credentials).await?;
    // Each request is stored until it expires, and anyone can ask for a public client: it
    // counts against the address's budget of sign-ins (`throttle.flows_per_source`).
    let source = super::client_addr::requester(&state, &req).ip;
    if let Some(retry_after) = signin::throttle::flow_gate(&state, source, now()).await? {
        state.metrics.throttled("flows");
        return Ok(HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", retry_after.to_string()))
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({
                "error": "slow_down",
                "error_description": "too many device authorizations from this address lately; retry later",
            })));
    }
    let get = |k: &str| params.get(k).map(str::to_owned);
    let request = DeviceRequest {
        scope: get("scope"),
        acr_values: get("acr_values"),
        lab: get("lab"),
        resource: params.resources().to_vec(),
    };
    let answer = authorize(&state, &client, &request, now()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

#[derive(serde::Deserialize)]
pub struct CodeQuery {
    user_code: Option<String>,
}

/// `GET /device`: the form for the code (filled in from `verification_uri_complete`).
pub async fn page(
    state: State,
    req: HttpRequest,
    q: web::Query<CodeQuery>,
) -> Result<HttpResponse, PageError> {
    let (browser, cookie) = cookies::browser_id(&state, &req);
    let typed = q.into_inner().user_code.unwrap_or_default();
    let mut resp = form_page(&state, &browser, clip(&typed), None, StatusCode::OK);
    if let Some(c) = cookie {
        resp.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(resp)
}

/// `POST /device`: the user typed a code; a right one starts its sign-in flow.
pub async fn submit(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let browser =
        cookies::existing_browser_id(&state, &req).ok_or(signin::SignInError::CookiesNeeded)?;
    super::require_csrf(&state, &browser, CSRF_PURPOSE, &form)?;
    let typed = form.get("user_code").unwrap_or("");
    let session = current_session(&state, &req).await?;
    let at = BrowserAt {
        id: &browser,
        source: super::client_addr::requester(&state, &req).ip,
    };
    match enter(&state, typed, session, at, now()).await? {
        Entered::Flow(next) => respond(&state, next, None, None),
        Entered::Unknown => Ok(form_page(
            &state,
            &browser,
            clip(typed),
            Some(
                "That code is not valid, or it has expired. Check the code your device shows now and enter it again.",
            ),
            StatusCode::BAD_REQUEST,
        )),
    }
}

/// What the form shows back of a typed code: a code is 9 characters; anything long is cut.
fn clip(typed: &str) -> &str {
    match typed.char_indices().nth(32) {
        Some((i, _)) => &typed[..i],
        None => typed,
    }
}

fn form_page(
    state: &crate::state::AppState,
    browser: &str,
    typed: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    render(
        status,
        &DevicePage {
            csrf: cookies::csrf_token(state, browser, CSRF_PURPOSE),
            user_code: typed.to_owned(),
            error: error.map(str::to_owned),
        },
    )
}

#[derive(serde::Deserialize)]
pub struct DoneQuery {
    outcome: Option<String>,
}

/// `GET /device/done`: what became of the device's request.
pub async fn done(q: web::Query<DoneQuery>) -> HttpResponse {
    let (title, message) = match q.outcome.as_deref() {
        Some(outcome::APPROVED) => (
            "Device connected",
            "The device is signed in to your account. You can close this page and return to it.",
        ),
        Some(outcome::DENIED) => (
            "Device not connected",
            "You denied the device's request; it gets no access to your account. You can close this page.",
        ),
        Some(outcome::UNMET) => (
            "Device not connected",
            "This device needs a stronger sign-in than any method your account has set up. Set up a passkey or an authenticator app on your account page, then start again on the device.",
        ),
        _ => (
            "Device not connected",
            "The device's request expired or was answered already. Start again on the device.",
        ),
    };
    render(
        StatusCode::OK,
        &MessagePage {
            title: title.into(),
            message: message.into(),
            detail: None,
            error_code: None,
        },
    )
}
