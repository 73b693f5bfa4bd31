//! The UserInfo endpoint (OIDC Core section 5.3) with bearer tokens per RFC 6750: read the
//! token from the header or the form body, call [`crate::token::userinfo::userinfo`], render.

use super::State;
use crate::protocol::OAuthError;
use crate::store::now;
use crate::token::userinfo::userinfo;
use actix_web::{HttpRequest, HttpResponse, web};

/// RFC 6750 section 3.1: a request without any token gets a bare challenge.
fn no_token() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Bearer realm=\"latchkey\""))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let h = req.headers().get("authorization")?.to_str().ok()?;
    latchkey_core::bearer_token(h).map(str::to_owned)
}

async fn respond(state: &State, token: &str) -> Result<HttpResponse, OAuthError> {
    let info = userinfo(state, token, now()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(info))
}

pub async fn get(state: State, req: HttpRequest) -> Result<HttpResponse, OAuthError> {
    match bearer(&req) {
        Some(t) => respond(&state, &t).await,
        None => Ok(no_token()),
    }
}

/// RFC 6750 section 2.2 also allows the token in a form body.
pub async fn post(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    if let Some(t) = bearer(&req) {
        return respond(&state, &t).await;
    }
    let form = super::Params::parse(&body)
        .map_err(|k| OAuthError::invalid_request(format!("`{k}` appears more than once")))?;
    match form.get("access_token") {
        Some(t) => respond(&state, t).await,
        None => Ok(no_token()),
    }
}
