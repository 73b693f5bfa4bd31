//! `grant_type=client_credentials` (RFC 6749 section 4.4): a confidential client gets an access
//! token for itself. Stateless: a signed JWT, no database write (the hot path of service-to-
//! service calls).

use super::TokenResponse;
use crate::app::AppState;
use crate::http::Params;
use crate::protocol::OAuthError;
use crate::store::clients::Client;
use crate::store::now;
use crate::tokens::{self, AccessTokenInput};
use latchkey_core::ErrorCode;

pub fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    if let Some(s) = params.get("scope") {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("scope `{s}` cannot be granted to a client acting for itself"),
        ));
    }
    let ttl = client
        .access_token_ttl_secs
        .unwrap_or(state.config.tokens.access_token_ttl_secs);
    let access_token = tokens::access_token(
        &state.keys.current(),
        &AccessTokenInput {
            issuer: &state.issuer,
            subject: &client.id,
            client_id: &client.id,
            scope: "",
            ttl,
            now: now(),
            user: None,
        },
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: None,
        id_token: None,
        scope: String::new(),
    })
}
