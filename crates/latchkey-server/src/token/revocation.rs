//! Token revocation (RFC 7009). Revoking a refresh token or an access token revokes the grant
//! behind it: every refresh token of the family, and every access token from it at Latchkey's
//! own endpoints. The revocation and its `token.revoked` entry are one transaction. Unknown
//! tokens are no error (section 2.2).

use super::jwt::ACCESS_TOKEN_TYP;
use crate::audit::{Action, Event};
use crate::crypto::jwt;
use crate::protocol::OAuthError;
use crate::secret::{TokenHash, TokenKind};
use crate::state::AppState;
use crate::store::clients::Client;
use latchkey_core::{AccessTokenClaims, ErrorCode};

/// The parameters of section 2.1 (`token_type_hint` is optional, and the token's prefix
/// says more than a hint could).
#[derive(Debug)]
pub struct RevocationRequest {
    pub token: String,
}

/// Revokes the grant behind `req.token` when it is `client`'s; `unauthorized_client` when it
/// is another client's.
pub async fn revoke(
    state: &AppState,
    client: &Client,
    req: &RevocationRequest,
) -> Result<(), OAuthError> {
    let token = req.token.as_str();
    let grant = if token.starts_with(TokenKind::RefreshToken.prefix()) {
        state
            .store
            .grant_by_refresh_token(TokenHash::of(token))
            .await?
            .map(|(g, _)| (g.id, g.client_id))
    } else {
        // Expired access tokens may be revoked too: only the signature matters here.
        let keys = state.keys.current();
        jwt::verify::<AccessTokenClaims>(token, |kid| keys.public_key(kid), ACCESS_TOKEN_TYP)
            .ok()
            .filter(|v| v.claims.iss == state.issuer)
            .and_then(|v| v.claims.gid.map(|g| (g, v.claims.client_id)))
    };
    let Some((gid, owner)) = grant else {
        return Ok(());
    };
    if owner != client.id {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the token was issued to another client",
        ));
    }
    let event = Event::new(
        &client.id,
        Action::TokenRevoked,
        &gid,
        serde_json::json!({"client": client.id}),
    );
    state.store.revoke_grant(&gid, Some(&event)).await?;
    tracing::info!(client = %client.id, grant = %gid, "grant revoked");
    Ok(())
}
