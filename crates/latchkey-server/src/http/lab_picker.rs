//! The lab picker (`/login/lab`): a signed-in user who belongs to several labs, whose
//! authorization request named none of them (the `lab` parameter), chooses the lab the tokens
//! will be for. The rules are [`signin::lab`]; this module parses and renders.

use super::State;
use super::authorize::{current_session, respond, see_other};
use super::cookies;
use super::errors::PageError;
use super::login::{FlowQuery, client_name, csrf_purpose, load_flow};
use super::pages::{LabPickerPage, render_posting_to};
use crate::signin::lab;
use crate::state::AppState;
use crate::store::flows::LoginFlow;
use crate::store::labs::Lab;
use crate::store::now;
use crate::store::users::User;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// `GET /login/lab?flow=…`.
pub async fn page(
    state: State,
    req: HttpRequest,
    q: web::Query<FlowQuery>,
) -> Result<HttpResponse, PageError> {
    let (flow, browser) = load_flow(&state, &req, q.flow_id()).await?;
    let Some((_, user)) = current_session(&state, &req).await? else {
        return Ok(see_other(&format!("/login?flow={}", flow.id)));
    };
    let Some(labs) = lab::choices(&state, &flow, &user).await? else {
        // Nothing to choose (any more): let the flow decide where to go.
        return Ok(see_other(&format!("/login/continue?flow={}", flow.id)));
    };
    picker(&state, &flow, &browser, &user, labs, None).await
}

async fn picker(
    state: &AppState,
    flow: &LoginFlow,
    browser: &str,
    user: &User,
    labs: Vec<Lab>,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    // The answer may redirect to the client: CSP `form-action` must allow it.
    Ok(render_posting_to(
        status,
        &LabPickerPage {
            client_name: client_name(state, &flow.request.client_id).await?,
            flow: flow.id.clone(),
            csrf: cookies::csrf_token(state, browser, &csrf_purpose(&flow.id)),
            email: user.email.clone(),
            labs: labs
                .into_iter()
                .map(|l| {
                    let hinted = flow
                        .request
                        .lab_hint
                        .as_deref()
                        .is_some_and(|h| h == l.id || h == l.name);
                    (l.id, l.name, hinted)
                })
                .collect(),
            error,
        },
        Some(&flow.request.redirect_uri),
    ))
}

/// `POST /login/lab` (form `flow`, `csrf`, `lab` = a lab id).
pub async fn submit(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let (flow, browser) = load_flow(&state, &req, form.get("flow")).await?;
    let Some(current) = current_session(&state, &req).await? else {
        return Ok(see_other(&format!("/login?flow={}", flow.id)));
    };
    super::require_csrf(&state, &browser, &csrf_purpose(&flow.id), &form)?;
    let user = current.1.clone();
    match lab::pick(&state, &flow, current, form.get("lab"), now()).await? {
        lab::Outcome::Retry { labs, message } => {
            picker(&state, &flow, &browser, &user, labs, Some(message)).await
        }
        lab::Outcome::Next(next) => respond(&state, next, None, None),
    }
}
