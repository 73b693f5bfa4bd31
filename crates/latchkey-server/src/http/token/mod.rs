//! The token endpoint (RFC 6749 section 3.2): parse the form, authenticate the client, call
//! [`crate::token::issue`], render. Responses carry `Cache-Control: no-store` (section 5.1).

pub mod client_auth;

use super::{Params, State};
use crate::protocol::OAuthError;
use crate::store::now;
use crate::token::authorization_code::CodeRequest;
use crate::token::client_credentials::ClientCredentialsRequest;
use crate::token::device_code::DeviceCodeRequest;
use crate::token::refresh_token::RefreshRequest;
use crate::token::{self, TokenRequest, TokenResponse};
use actix_web::{HttpRequest, HttpResponse, web};

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

/// The typed request for the form's `grant_type`.
pub fn token_request(params: &Params) -> Result<TokenRequest, OAuthError> {
    let get = |k: &str| params.get(k).map(str::to_owned);
    match params.get("grant_type") {
        None => Err(OAuthError::invalid_request("grant_type is missing")),
        Some("authorization_code") => Ok(TokenRequest::AuthorizationCode(CodeRequest {
            code: get("code"),
            redirect_uri: get("redirect_uri"),
            code_verifier: get("code_verifier"),
            resource: params.resources().to_vec(),
        })),
        Some("refresh_token") => Ok(TokenRequest::RefreshToken(RefreshRequest {
            refresh_token: get("refresh_token"),
            scope: get("scope"),
            resource: params.resources().to_vec(),
        })),
        Some("client_credentials") => {
            Ok(TokenRequest::ClientCredentials(ClientCredentialsRequest {
                scope: get("scope"),
                resource: params.resources().to_vec(),
            }))
        }
        Some(crate::protocol::device_code::GRANT_TYPE) => {
            Ok(TokenRequest::DeviceCode(DeviceCodeRequest {
                device_code: get("device_code"),
                resource: params.resources().to_vec(),
            }))
        }
        Some(other) => Err(token::unsupported_grant_type(other)),
    }
}

pub async fn token(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = form(&req, &body)?;
    let credentials = client_auth::credentials(&req, &params)?;
    let client = token::client_auth::authenticate(&state, &credentials).await?;
    let request = token_request(&params)?;
    let origin = super::client_addr::requester(&state, &req).details();
    let t = now();
    // RFC 9449 section 5: a proof of possession binds the tokens to its key.
    let proof = super::dpop::endpoint_proof(&state, &req, "/token", t).await?;
    let jkt = proof.as_ref().map(|p| p.jkt.as_str());
    let issued = token::issue(&state, &client, &request, t, &origin, jkt).await?;
    state.metrics.token_issued(request.grant_type());
    let mut r = ok(&issued);
    if let Some((name, value)) = super::dpop::next_nonce(&state, proof.as_ref(), t) {
        use actix_web::http::header::{HeaderName, HeaderValue};
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
    Ok(r)
}
