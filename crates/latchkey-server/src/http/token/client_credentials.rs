//! `grant_type=client_credentials` (RFC 6749 section 4.4): a confidential client gets an access
//! token for itself. Stateless: a signed JWT, no database write (the hot path of service-to-
//! service calls).

use super::TokenResponse;
use crate::admin::{ADMIN_AUDIENCE, ADMIN_SCOPE};
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
    // The one scope a client can get for itself: the admin API's, when an administrator
    // registered it with `--admin-of`. The token's audience is then the admin API.
    let admin = match params.get("scope") {
        None => false,
        Some(ADMIN_SCOPE) if client.admin_of.is_some() => true,
        Some(s) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("scope `{s}` cannot be granted to this client acting for itself"),
            ));
        }
    };
    let scope = if admin { ADMIN_SCOPE } else { "" };
    let ttl = client
        .access_token_ttl_secs
        .unwrap_or(state.config.tokens.access_token_ttl_secs);
    let access_token = tokens::access_token(
        &state.keys.current(),
        &AccessTokenInput {
            issuer: &state.issuer,
            subject: &client.id,
            client_id: &client.id,
            audience: admin.then_some(ADMIN_AUDIENCE),
            scope,
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
        scope: scope.to_owned(),
    })
}
