//! Token revocation (RFC 7009). Revoking a refresh token or an access token revokes the grant
//! behind it: every refresh token of the family, and every access token from it at Latchkey's
//! own endpoints. Unknown tokens get 200, as section 2.2 says.

use super::State;
use super::token::{client_auth, form};
use crate::audit::{Action, Event};
use crate::crypto::jwt;
use crate::protocol::OAuthError;
use crate::secret::{TokenHash, TokenKind};
use crate::tokens::ACCESS_TOKEN_TYP;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{AccessTokenClaims, ErrorCode};

pub async fn revoke(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = form(&req, &body)?;
    let client = client_auth::authenticate(&state, &req, &params).await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
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
    if let Some((gid, owner)) = grant {
        if owner != client.id {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the token was issued to another client",
            ));
        }
        state.store.revoke_grant(&gid).await?;
        state
            .store
            .audit(Event::new(
                &client.id,
                Action::TokenRevoked,
                &gid,
                serde_json::json!({"client": client.id}),
            ))
            .await?;
        tracing::info!(client = %client.id, grant = %gid, "grant revoked");
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}
