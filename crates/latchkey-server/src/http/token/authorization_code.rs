//! `grant_type=authorization_code` (RFC 6749 section 4.1.3, RFC 7636 section 4.5, OIDC Core
//! section 3.1.3): exchange a single-use code for tokens.

use super::TokenResponse;
use crate::app::AppState;
use crate::audit::{Action, Event};
use crate::http::Params;
use crate::protocol::{OAuthError, pkce, scope};
use crate::secret::{OpaqueToken, TokenHash, TokenKind};
use crate::store::clients::Client;
use crate::store::codes::CodeUse;
use crate::store::grants::Grant;
use crate::store::now;
use crate::tokens::{self, AccessTokenInput, UserContext};
use latchkey_core::IdTokenClaims;

pub async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let code = match state.store.consume_code(TokenHash::of(code)).await? {
        CodeUse::First(c) => c,
        CodeUse::Replayed => {
            tracing::warn!(client = %client.id, "authorization code replayed; its grant is revoked");
            state
                .store
                .audit(Event::new(
                    &client.id,
                    Action::CodeReplayed,
                    &client.id,
                    serde_json::json!({"revoked": "the code's grant"}),
                ))
                .await?;
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; tokens issued for it are revoked",
            ));
        }
        CodeUse::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the authorization code is not valid",
            ));
        }
    };
    let t = now();
    if code.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if code.expires_at <= t {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if params.get("redirect_uri") != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the one in the authorization request",
        ));
    }
    match (code.code_challenge.as_deref(), params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            if !pkce::verify_s256(verifier, challenge) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant("code_verifier is missing"));
        }
        // RFC 9700 4.8.2: a verifier for a code issued without a challenge is a downgrade.
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ));
        }
        (None, None) => {}
    }
    let user = state
        .store
        .get_user(&code.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| OAuthError::invalid_grant("the user's account is disabled"))?;
    // Read before the grant is stored: a code issued just before the user left its lab must
    // not start a grant for that lab (`member_grants` refuses non-members).
    let (roles, features) = member_grants(state, &user.id, code.lab_id.as_deref()).await?;

    let grant = Grant {
        id: code.grant_id.clone(),
        client_id: client.id.clone(),
        user_id: user.id.clone(),
        session_id: code.session_id.clone(),
        scope: code.scope.clone(),
        auth_time: code.auth_time,
        acr: code.acr.clone(),
        amr: code.amr.clone(),
        lab_id: code.lab_id.clone(),
        created_at: t,
        expires_at: t + state.config.tokens.refresh_token_ttl_secs,
        revoked_at: None,
    };
    let refresh = client
        .allows_grant("refresh_token")
        .then(|| OpaqueToken::generate(TokenKind::RefreshToken));
    let stored = state
        .store
        .create_grant(&grant, refresh.as_ref().map(OpaqueToken::hash))
        .await?;
    if !stored {
        return Err(OAuthError::invalid_grant(
            "the login session behind this code has ended, or the code was replayed",
        ));
    }

    let keys = state.keys.current();
    let ttl = client
        .access_token_ttl_secs
        .unwrap_or(state.config.tokens.access_token_ttl_secs);
    let user_ctx = UserContext {
        auth_time: grant.auth_time,
        acr: &grant.acr,
        amr: &grant.amr,
        sid: &grant.session_id,
        grant_id: &grant.id,
        lab: grant.lab_id.as_deref(),
        roles: &roles,
        features: &features,
    };
    let access_token = tokens::access_token(
        &keys,
        &AccessTokenInput {
            issuer: &state.issuer,
            audience: None,
            subject: &user.id,
            client_id: &client.id,
            scope: &grant.scope,
            ttl,
            now: t,
            user: Some(user_ctx),
        },
    )?;
    let id_token = if scope::contains(&grant.scope, "openid") {
        let claims = IdTokenClaims {
            iss: state.issuer.clone(),
            sub: user.id.clone(),
            aud: client.id.clone(),
            exp: t + state.config.tokens.id_token_ttl_secs,
            iat: t,
            auth_time: grant.auth_time,
            nonce: code.nonce.clone(),
            acr: grant.acr.clone(),
            amr: grant.amr.clone(),
            azp: client.id.clone(),
            sid: grant.session_id.clone(),
            at_hash: Some(tokens::at_hash(client.id_token_alg, &access_token)),
            lab: grant.lab_id.clone(),
            roles: roles.clone(),
            features: features.clone(),
            email: scope::contains(&grant.scope, "email").then(|| user.email.clone()),
            email_verified: scope::contains(&grant.scope, "email").then_some(false),
            name: if scope::contains(&grant.scope, "profile") {
                user.name.clone()
            } else {
                None
            },
        };
        Some(tokens::id_token(&keys, client.id_token_alg, &claims)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: refresh.map(|r| r.expose().to_owned()),
        id_token,
        scope: grant.scope,
    })
}

/// The user's roles and effective features in the grant's lab, read at each token issuance
/// (a changed grant applies to the next token); `invalid_grant` once they left the lab.
pub async fn member_grants(
    state: &AppState,
    user_id: &str,
    lab: Option<&str>,
) -> Result<(Vec<String>, Vec<String>), OAuthError> {
    let Some(lab) = lab else {
        return Ok((vec![], vec![]));
    };
    let g = state.store.member_grants(user_id, lab).await?;
    if !g.member {
        return Err(OAuthError::invalid_grant(
            "the user is no longer a member of this grant's lab",
        ));
    }
    Ok((g.roles, g.features.into_iter().collect()))
}
