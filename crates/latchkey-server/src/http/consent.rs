//! The consent page (`/consent`): the user allows or denies a client the requested scopes
//! ([`signin::consent`]). Consent is remembered per user and client; first-party clients can
//! skip it.

use super::State;
use super::authorize::{current_session, respond};
use super::cookies;
use super::errors::PageError;
use super::login::{FlowQuery, client_name, csrf_purpose, load_flow};
use super::pages::{ConsentPage, describe_scope, render_posting_to};
use crate::signin::consent::{self, Decision};
use crate::store::now;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

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
    let mut resources = Vec::new();
    for uri in &flow.request.resources {
        let server = match state.store.client_of_resource(uri).await? {
            Some(id) => state.client(&id).await?,
            None => None,
        };
        let name = server.map_or_else(|| uri.clone(), |c| c.name.clone());
        resources.push((name, uri.clone()));
    }
    Ok(render_posting_to(
        StatusCode::OK,
        &ConsentPage {
            resources,
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
            device_code: flow.request.device.as_ref().map(|d| d.user_code.clone()),
        },
        // A device's flow redirects nowhere but Latchkey's own pages.
        flow.request
            .device
            .is_none()
            .then_some(flow.request.redirect_uri.as_str()),
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
    let Some(current) = current_session(&state, &req).await? else {
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", format!("/login?flow={}", flow.id)))
            .finish());
    };
    let decision = match form.get("decision") {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => {
            return Err(PageError::bad_request(
                "Invalid form",
                "Choose Allow or Deny.",
            ));
        }
    };
    let next = consent::decide(&state, &flow, current, decision, now()).await?;
    respond(&state, next, None, None)
}
