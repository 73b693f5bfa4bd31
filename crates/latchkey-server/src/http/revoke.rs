//! The revocation endpoint (RFC 7009): parse, authenticate the client, call
//! [`crate::token::revocation::revoke`], answer 200 (also for unknown tokens, section 2.2).

use super::State;
use super::token::{client_auth, form};
use crate::protocol::OAuthError;
use crate::token::revocation::{self, RevocationRequest};
use actix_web::{HttpRequest, HttpResponse, web};

pub async fn revoke(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = form(&req, &body)?;
    let credentials = client_auth::credentials(&req, &params)?;
    let client = crate::token::client_auth::authenticate(&state, &credentials).await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    revocation::revoke(
        &state,
        &client,
        &RevocationRequest {
            token: token.to_owned(),
        },
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}
