//! `grant_type=refresh_token` (RFC 6749 section 6): rotate the refresh token and issue a new
//! access token. A reused refresh token revokes its whole family. The response carries no new
//! ID token (OIDC Core section 12.2 makes it optional): refresh stays cheap, and the user's
//! authentication has not changed.

use super::TokenResponse;
use crate::app::AppState;
use crate::audit::{Action, Event};
use crate::http::Params;
use crate::protocol::{OAuthError, scope};
use crate::secret::{OpaqueToken, TokenHash, TokenKind};
use crate::store::clients::Client;
use crate::store::grants::RefreshUse;
use crate::store::now;
use crate::tokens::{self, AccessTokenInput, UserContext};
use latchkey_core::ErrorCode;

pub async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    // Validate a narrower scope before rotating, so a refused request does not burn the token.
    let requested = match params.get("scope") {
        None => None,
        Some(s) => {
            let wanted = scope::parse(s)?;
            let granted = match state
                .store
                .grant_by_refresh_token(TokenHash::of(presented))
                .await?
            {
                Some((g, _)) if g.client_id == client.id => g.scope,
                _ => return Err(OAuthError::invalid_grant("the refresh token is not valid")),
            };
            let granted: Vec<&str> = granted.split(' ').filter(|s| !s.is_empty()).collect();
            if let Some(extra) = wanted.iter().find(|w| !granted.contains(&w.as_str())) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope `{extra}` was not granted originally"),
                ));
            }
            Some(wanted.join(" "))
        }
    };
    let next = OpaqueToken::generate(TokenKind::RefreshToken);
    let grant = match state
        .store
        .rotate_refresh_token(TokenHash::of(presented), next.hash(), &client.id)
        .await?
    {
        RefreshUse::Rotated(g, disabled) => {
            if disabled {
                // A disabled user's grants die with the attempt.
                state.store.revoke_grant(&g.id).await?;
                return Err(OAuthError::invalid_grant("the user's account is disabled"));
            }
            g
        }
        RefreshUse::Reused => {
            tracing::warn!(client = %client.id, "refresh token reused; its family is revoked");
            state
                .store
                .audit(Event::new(
                    &client.id,
                    Action::RefreshReuseDetected,
                    &client.id,
                    serde_json::json!({"revoked": "the token's whole family"}),
                ))
                .await?;
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; all tokens of this grant are revoked",
            ));
        }
        RefreshUse::Invalid => {
            return Err(OAuthError::invalid_grant("the refresh token is not valid"));
        }
    };
    // MFA policy changes apply at the next token request: a grant weaker than what the
    // client, the lab or the user's roles now demand ends, and the user signs in again.
    let acr: latchkey_core::Acr = grant.acr.parse().unwrap_or(latchkey_core::Acr::Pwd);
    let lab_floor = match (&grant.lab_id, acr) {
        (_, latchkey_core::Acr::Phr) | (None, _) => None,
        (Some(lab), _) => state.policy_floor(&grant.user_id, lab).await?,
    };
    if let Some(need) = client.min_acr.max(lab_floor)
        && acr < need
    {
        state.store.revoke_grant(&grant.id).await?;
        return Err(OAuthError::invalid_grant(format!(
            "a stronger sign-in (acr `{need}`) is now required; start a new authorization request"
        )));
    }
    // A narrower scope may be asked for (RFC 6749 section 6), never a wider one.
    let scope = requested.unwrap_or_else(|| grant.scope.clone());
    let t = now();
    let ttl = client
        .access_token_ttl_secs
        .unwrap_or(state.config.tokens.access_token_ttl_secs);
    let (roles, features) =
        super::authorization_code::member_grants(state, &grant.user_id, grant.lab_id.as_deref())
            .await?;
    let access_token = tokens::access_token(
        &state.keys.current(),
        &AccessTokenInput {
            issuer: &state.issuer,
            audience: None,
            subject: &grant.user_id,
            client_id: &client.id,
            scope: &scope,
            ttl,
            now: t,
            user: Some(UserContext {
                auth_time: grant.auth_time,
                acr: &grant.acr,
                amr: &grant.amr,
                sid: &grant.session_id,
                grant_id: &grant.id,
                lab: grant.lab_id.as_deref(),
                roles: &roles,
                features: &features,
            }),
        },
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: Some(next.expose().to_owned()),
        id_token: None,
        scope,
    })
}
