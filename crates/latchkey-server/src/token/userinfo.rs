//! The UserInfo response (OIDC Core section 5.3, bearer tokens per RFC 6750): the token must
//! pass [`super::access`]'s checks (verified, unexpired, a live grant of an enabled user), be
//! issued for the client itself, and carry `openid`.

use super::access::check_presented_token;
use crate::protocol::{OAuthError, scope};
use crate::state::AppState;
use latchkey_core::ErrorCode;
use latchkey_core::dpop::Proof;
use serde::Serialize;

fn invalid_token(d: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, d)
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
    let checked = check_presented_token(state, token, proof, now).await?;
    let claims = &checked.claims;
    let Some(user) = checked.user.as_deref() else {
        return Err(invalid_token("the token does not represent a user"));
    };
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
    let email = scope::contains(&claims.scope, "email");
    Ok(UserInfo {
        sub: user.id.clone(),
        email: email.then(|| user.email.clone()),
        email_verified: email.then_some(user.email_verified),
        name: user
            .name
            .clone()
            .filter(|_| scope::contains(&claims.scope, "profile")),
        lab: claims.lab.clone(),
    })
}
