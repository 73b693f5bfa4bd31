//! Token introspection (RFC 7662). A client may introspect the tokens issued to it; anything
//! else, like an unknown, expired or revoked token, is simply `{"active": false}`.

use super::State;
use super::token::{client_auth, form};
use super::userinfo::check_access_token;
use crate::protocol::OAuthError;
use crate::secret::{TokenHash, TokenKind};
use crate::store::now;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

pub async fn introspect(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let params = form(&req, &body)?;
    let client = client_auth::authenticate(&state, &req, &params).await?;
    if client.is_public() {
        return Err(OAuthError::new(
            latchkey_core::ErrorCode::UnauthorizedClient,
            "public clients cannot use introspection",
        ));
    }
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let inactive = || {
        HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({ "active": false }))
    };
    let body = if token.starts_with(TokenKind::RefreshToken.prefix()) {
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
        match found {
            Some((g, current))
                if current && enabled && g.is_live(now()) && g.client_id == client.id =>
            {
                json!({
                    "active": true,
                    "token_type": "refresh_token",
                    "client_id": g.client_id,
                    "sub": g.user_id,
                    "scope": g.scope,
                    "exp": g.expires_at,
                    "iat": g.created_at,
                    "iss": state.issuer,
                    "auth_time": g.auth_time,
                    "acr": g.acr,
                    "amr": g.amr,
                })
            }
            _ => return Ok(inactive()),
        }
    } else {
        match check_access_token(&state, token).await {
            Ok(c) if c.client_id == client.id || c.aud == client.id => {
                let mut v = serde_json::to_value(&c).unwrap_or_default();
                v["active"] = json!(true);
                v["token_type"] = json!("Bearer");
                v
            }
            _ => return Ok(inactive()),
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}
