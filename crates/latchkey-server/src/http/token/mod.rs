//! The token endpoint (RFC 6749 section 3.2): client authentication, then one module per
//! grant type. Responses carry `Cache-Control: no-store` (section 5.1).

pub mod authorization_code;
pub mod client_auth;
mod client_credentials;
mod refresh_token;

use super::{Params, State};
use crate::protocol::OAuthError;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::ErrorCode;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

pub fn ok(body: &TokenResponse) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(body)
}

/// Checks the form content type (RFC 6749 section 3.2) and parses single-valued parameters.
pub fn form(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    let ctype = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ctype
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Params::parse(body).map_err(|k| {
        OAuthError::invalid_request(format!("the parameter `{k}` appears more than once"))
    })
}

pub async fn token(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = form(&req, &body)?;
    let client = client_auth::authenticate(&state, &req, &params).await?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    if !["authorization_code", "refresh_token", "client_credentials"].contains(&grant_type) {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type `{grant_type}` is not supported"),
        ));
    }
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use the {grant_type} grant"),
        ));
    }
    let response = match grant_type {
        "authorization_code" => authorization_code::exchange(&state, &client, &params).await?,
        "refresh_token" => refresh_token::exchange(&state, &client, &params).await?,
        _ => client_credentials::exchange(&state, &client, &params)?,
    };
    Ok(ok(&response))
}
