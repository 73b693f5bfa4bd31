//! The consent page (`/consent`): the user allows or denies a client the requested scopes.
//! Consent is remembered per user and client; first-party clients can skip it.

use super::State;
use super::authorize::{current_session, error_response, proceed};
use super::cookies;
use super::errors::PageError;
use super::login::{FlowQuery, client_name, csrf_purpose, load_flow};
use super::pages::{ConsentPage, describe_scope, render_posting_to};
use crate::protocol::OAuthError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::ErrorCode;

pub async fn page(
    state: State,
    req: HttpRequest,
    q: web::Query<FlowQuery>,
) -> Result<HttpResponse, PageError> {
    let q = q.into_inner();
    let (flow, browser) = load_flow(&state, &req, q.flow_id()).await?;
    let Some((_, user)) = current_session(&state, &req).await? else {
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/login?flow={}", flow.id)))
            .finish());
    };
    Ok(render_posting_to(
        StatusCode::OK,
        &ConsentPage {
            client_name: client_name(&state, &flow.request.client_id).await?,
            flow: flow.id.clone(),
            csrf: cookies::csrf_token(&state, &browser, &csrf_purpose(&flow.id)),
            scopes: flow
                .request
                .scope
                .iter()
                .map(|s| (s.clone(), describe_scope(s).to_owned()))
                .collect(),
            user_email: user.email,
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
    let Some((session, user)) = current_session(&state, &req).await? else {
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/login?flow={}", flow.id)))
            .finish());
    };
    let r = &flow.request;
    match form.get("decision") {
        Some("allow") => {
            state
                .store
                .save_consent(&user.id, &r.client_id, &r.scope)
                .await?;
            let client = state
                .client(&r.client_id)
                .await?
                .ok_or_else(super::authorize::flow_gone)?;
            let mut request = flow.request.clone();
            // Consent was just given: don't ask again within this flow.
            request.prompt.consent = false;
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
        Some("deny") => {
            state.store.finish_flow(&flow.id).await?;
            Ok(error_response(
                &state,
                &r.redirect_uri,
                r.response_mode,
                r.state.as_deref(),
                &OAuthError::new(ErrorCode::AccessDenied, "the user denied the request"),
            ))
        }
        _ => Err(PageError::bad_request(
            "Invalid form",
            "Choose Allow or Deny.",
        )),
    }
}
