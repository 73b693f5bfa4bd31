//! The pushed authorization request endpoint (RFC 9126): parse, authenticate the client as
//! the token endpoint does, push the request ([`crate::signin::pushed::push`]), answer
//! `201 Created` with the `request_uri`. A DPoP proof sent with the push binds the code to its
//! key (RFC 9449 section 10.1). A pushed request is stored state like a login flow,
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
    // RFC 9449 section 10.1: a proof here binds the authorization code to its key.
    let t = now();
    let proof = super::dpop::endpoint_proof(&state, &req, "/par", t).await?;
    let jkt = proof.as_ref().map(|p| p.jkt.as_str());
    let pushed = crate::signin::pushed::push(&state, &client, decode_pairs(&body), jkt, t).await?;
    let mut r = HttpResponse::Created();
    r.insert_header(("Cache-Control", "no-store"));
    if let Some(h) = super::dpop::next_nonce(&state, proof.as_ref(), t) {
        r.insert_header(h);
    }
    Ok(r.json(pushed))
}
