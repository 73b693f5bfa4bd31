//! The UserInfo endpoint (OIDC Core section 5.3) with bearer tokens per RFC 6750 and
//! DPoP-bound tokens per RFC 9449 section 7: read the token from the header (or, for a bearer
//! token, the form body) and the DPoP proof, call [`crate::token::userinfo::userinfo`], render.

use super::State;
use super::dpop::{Presented, resource_proof};
use crate::protocol::OAuthError;
use crate::store::now;
use crate::token::userinfo::userinfo;
use actix_web::{HttpRequest, HttpResponse, web};

/// RFC 6750 section 3.1: a request without any token gets a bare challenge, for either scheme
/// (RFC 9449 section 7.1).
fn no_token() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Bearer realm=\"latchkey\""))
        .append_header((
            "WWW-Authenticate",
            format!("DPoP algs=\"{}\"", crate::token::dpop::algs().join(" ")),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

async fn respond(
    state: &State,
    req: &HttpRequest,
    presented: &Presented,
) -> Result<HttpResponse, OAuthError> {
    let proof = resource_proof(state, req, presented, "/userinfo")?;
    let info = userinfo(state, presented.token(), proof.as_ref(), now()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(info))
}

pub async fn get(state: State, req: HttpRequest) -> Result<HttpResponse, OAuthError> {
    match Presented::from_request(&req) {
        Some(p) => respond(&state, &req, &p).await,
        None => Ok(no_token()),
    }
}

/// RFC 6750 section 2.2 also allows a bearer token in a form body.
pub async fn post(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    if let Some(p) = Presented::from_request(&req) {
        return respond(&state, &req, &p).await;
    }
    let form = super::Params::parse(&body)
        .map_err(|k| OAuthError::invalid_request(format!("`{k}` appears more than once")))?;
    match form.get("access_token") {
        Some(t) => respond(&state, &req, &Presented::Bearer(t.to_owned())).await,
        None => Ok(no_token()),
    }
}
