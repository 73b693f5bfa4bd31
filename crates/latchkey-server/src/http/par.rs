//! The pushed authorization request endpoint (RFC 9126): parse, authenticate the client as
//! the token endpoint does, push the request ([`crate::signin::pushed::push`]), answer
//! `201 Created` with the `request_uri`. A pushed request is stored state like a login flow,
//! so it counts against the same per-address budget (`throttle.flows_per_source`): anyone can
//! push for a public client.

use super::token::{client_auth, form};
use super::{State, decode_pairs};
use crate::protocol::OAuthError;
use crate::store::now;
use actix_web::{HttpRequest, HttpResponse, web};

const MAX_BODY: usize = 32 * 1024;

pub async fn push(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    // A request's parameters take a few kilobytes (each is bounded by validation).
    if body.len() > MAX_BODY {
        return Err(OAuthError::invalid_request(format!(
            "the pushed request is larger than {MAX_BODY} bytes"
        )));
    }
    // `form` refuses another content type and any parameter sent twice.
    let params = form(&req, &body)?;
    let credentials = client_auth::credentials(&req, &params)?;
    let client = crate::token::client_auth::authenticate(&state, &credentials).await?;
    let source = super::client_addr::requester(&state, &req).ip;
    if let Some(retry_after) = crate::signin::throttle::flow_gate(&state, source, now()).await? {
        return Ok(HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", retry_after.to_string()))
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": "too many authorization requests from this address lately; retry later",
            })));
    }
    let pushed = crate::signin::pushed::push(&state, &client, decode_pairs(&body), now()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(pushed))
}
