//! `grant_type=client_credentials` (RFC 6749 section 4.4): a confidential client gets an access
//! token for itself. Stateless: a signed JWT, no database write (the hot path of service-to-
//! service calls).

use super::jwt::{self, AccessTokenInput};
use super::{Holder, TokenResponse, access_token_ttl};
use crate::admin::{ADMIN_AUDIENCE, ADMIN_SCOPE};
use crate::protocol::OAuthError;
use crate::state::AppState;
use crate::store::clients::Client;
use latchkey_core::ErrorCode;

/// The parameters of section 4.4.2.
#[derive(Debug, Default)]
pub struct ClientCredentialsRequest {
    pub scope: Option<String>,
    /// The services the token is for (RFC 8707): one, or none for the client itself.
    pub resource: Vec<String>,
}

pub async fn exchange(
    state: &AppState,
    client: &Client,
    req: &ClientCredentialsRequest,
    now: i64,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    // The one scope a client can get for itself: the admin API's, when an administrator
    // registered it with `--admin-of`. The token's audience is then the admin API.
    let admin = match req.scope.as_deref() {
        None => false,
        Some(ADMIN_SCOPE) if client.admin_of.is_some() => true,
        Some(s) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("scope `{s}` cannot be granted to this client acting for itself"),
            ));
        }
    };
    // RFC 8707: a token for a resource server, rather than for the client itself. The admin
    // API's tokens have their own audience.
    let resource = if admin && !req.resource.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "a token with the admin scope is for the admin API; request resources without it",
        ));
    } else if req.resource.is_empty() {
        // The hot path stays free of database reads.
        None
    } else {
        super::Servers::of(state, client, now).await?.audience(
            &req.resource,
            &[],
            &client.resources,
            Holder::Client,
            &client.labs,
        )?
    };
    let scope = if admin { ADMIN_SCOPE } else { "" };
    let ttl = access_token_ttl(state, client);
    let access_token = jwt::access_token(
        &state.keys.current(),
        &AccessTokenInput {
            issuer: &state.issuer,
            subject: &client.id,
            client_id: &client.id,
            audience: admin.then_some(ADMIN_AUDIENCE).or(resource.as_deref()),
            scope,
            ttl,
            now,
            user: None,
            cnf_jkt: dpop_jkt,
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
