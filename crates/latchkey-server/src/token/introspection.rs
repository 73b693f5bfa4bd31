//! Token introspection (RFC 7662). A confidential client may introspect the tokens issued to
//! it (or, for access tokens, addressed to it); anything else, like an unknown, expired or
//! revoked token, is simply inactive (section 2.2).

use super::access::check_access_token;
use crate::protocol::OAuthError;
use crate::secret::{TokenHash, TokenKind};
use crate::state::AppState;
use crate::store::clients::Client;
use crate::store::grants::Grant;
use latchkey_core::{AccessTokenClaims, ErrorCode};

/// What introspection found.
#[derive(Debug)]
pub enum Introspection {
    Inactive,
    /// A current refresh token of a live grant of an enabled user.
    RefreshToken(Box<Grant>),
    /// A valid access token.
    AccessToken(Box<AccessTokenClaims>),
}

/// The parameters of section 2.1. `token` is optional here so that a missing one is
/// reported after the client's right to introspect is checked.
#[derive(Debug, Default)]
pub struct IntrospectionRequest {
    pub token: Option<String>,
}

pub async fn introspect(
    state: &AppState,
    client: &Client,
    req: &IntrospectionRequest,
    now: i64,
) -> Result<Introspection, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use introspection",
        ));
    }
    let token = req
        .token
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    if token.starts_with(TokenKind::RefreshToken.prefix()) {
        let found = state
            .store
            .grant_by_refresh_token(TokenHash::of(token))
            .await?;
        let enabled = match &found {
            Some((g, _)) => state
                .store
                .get_user(&g.user_id)
                .await?
                .is_some_and(|u| !u.disabled),
            None => false,
        };
        return Ok(match found {
            Some((g, current))
                if current && enabled && g.is_live(now) && g.client_id == client.id =>
            {
                Introspection::RefreshToken(Box::new(g))
            }
            _ => Introspection::Inactive,
        });
    }
    let Ok(super::access::Checked { claims: c, .. }) = check_access_token(state, token, now).await
    else {
        return Ok(Introspection::Inactive);
    };
    // The client it was issued to, and the service it is for: the client with that id, or
    // the resource server whose resource URI it names (RFC 8707), when it serves the user's
    // lab, or for a client's own token shares a lab with that client (a resource URI moved to
    // another lab's service does not open older tokens to it).
    let for_this_resource = client.resource_uri.as_deref() == Some(c.aud.as_str())
        && match &c.gid {
            Some(_) => client.labs.serves(c.lab.as_deref()),
            None => state
                .client(&c.client_id)
                .await?
                .is_some_and(|holder| holder.labs.shares_a_lab(&client.labs)),
        };
    Ok(
        if c.client_id == client.id || c.aud == client.id || for_this_resource {
            Introspection::AccessToken(Box::new(c))
        } else {
            Introspection::Inactive
        },
    )
}
