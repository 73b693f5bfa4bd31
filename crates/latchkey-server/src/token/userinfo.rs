//! Access-token checks for Latchkey's own resources, and the UserInfo response (OIDC Core
//! section 5.3, bearer tokens per RFC 6750): the token must verify, be unexpired, come from a
//! live grant of an enabled user, and carry `openid`.

use super::dpop;
use super::jwt::verify_access_token;
use crate::protocol::{OAuthError, scope};
use crate::state::AppState;
use latchkey_core::dpop::Proof;
use latchkey_core::{AccessTokenClaims, ErrorCode};
use serde::Serialize;

fn invalid_token(d: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, d)
}

/// Checks an access token the way every resource of Latchkey's own does: signature and expiry
/// offline, then that its grant is still live (revocation, code replay, logout).
pub async fn check_access_token(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<AccessTokenClaims, OAuthError> {
    let claims = verify_access_token(&state.keys.current(), &state.issuer, token, now)
        .map_err(|e| invalid_token(&e.to_string()))?;
    // A deleted, disabled or expired client's tokens are inactive at once.
    let client_active = state
        .client(&claims.client_id)
        .await?
        .is_some_and(|c| c.is_active(now));
    if !client_active {
        return Err(invalid_token("the client is deleted, disabled or expired"));
    }
    if let Some(gid) = &claims.gid {
        let live = state
            .store
            .get_grant(gid)
            .await?
            .is_some_and(|g| g.is_live(now));
        if !live {
            return Err(invalid_token("the token has been revoked"));
        }
        let enabled = state
            .store
            .get_user(&claims.sub)
            .await?
            .is_some_and(|u| !u.disabled);
        if !enabled {
            return Err(invalid_token("the user's account is disabled"));
        }
    }
    Ok(claims)
}

/// [`check_access_token`] for a token presented to a resource, with the DPoP proof that came
/// with it (RFC 9449 section 7): a bound token only with a proof by its key (recorded: one
/// use), an unbound one only as a bearer token.
pub async fn check_presented_token(
    state: &AppState,
    token: &str,
    proof: Option<&Proof>,
    now: i64,
) -> Result<AccessTokenClaims, OAuthError> {
    let claims = check_access_token(state, token, now).await?;
    let bound = claims.cnf.as_ref().map(|c| c.jkt.as_str());
    dpop::check_binding(bound, proof.map(|p| p.jkt.as_str()))?;
    if let Some(p) = proof {
        dpop::record(state, dpop::Endpoint::Resource, p).await?;
    }
    Ok(claims)
}

/// The claims UserInfo releases (section 5.3.2), by the token's scope.
#[derive(Debug, Serialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lab: Option<String>,
}

pub async fn userinfo(
    state: &AppState,
    token: &str,
    proof: Option<&Proof>,
    now: i64,
) -> Result<UserInfo, OAuthError> {
    let claims = check_presented_token(state, token, proof, now).await?;
    if claims.gid.is_none() {
        return Err(invalid_token("the token does not represent a user"));
    }
    // A token for a resource server (RFC 8707: its `aud` names that service) is for that
    // service only; UserInfo takes the tokens issued for the client itself.
    if claims.aud != claims.client_id {
        return Err(invalid_token(
            "the token is for another resource (its aud), not for UserInfo",
        ));
    }
    if !scope::contains(&claims.scope, "openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the token lacks the openid scope",
        ));
    }
    let user = state
        .store
        .get_user(&claims.sub)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid_token("the user's account is disabled"))?;
    let email = scope::contains(&claims.scope, "email");
    Ok(UserInfo {
        sub: user.id,
        email: email.then_some(user.email),
        email_verified: email.then_some(user.email_verified_at.is_some()),
        name: user
            .name
            .filter(|_| scope::contains(&claims.scope, "profile")),
        lab: claims.lab,
    })
}
