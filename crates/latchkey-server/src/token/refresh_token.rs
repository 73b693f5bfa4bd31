//! `grant_type=refresh_token` (RFC 6749 section 6): rotate the refresh token and issue a new
//! access token. A reused refresh token revokes its whole family (RFC 9700 section 4.14.2),
//! with or without a `scope` parameter; only the token's own client can use it or trigger that
//! revocation, and every refused token gets the same `invalid_grant` answer.
//! The response carries no new ID token (OIDC Core section 12.2 makes it optional): refresh
//! stays cheap, and the user's authentication has not changed. Whether the grant is still
//! strong enough is [`crate::protocol::refresh`]'s decision.

use super::jwt::{self, AccessTokenInput, UserContext};
use super::{Holder, Servers, TokenResponse, access_token_ttl};
use crate::audit::{Action, Event};
use crate::protocol::{OAuthError, refresh, scope};
use crate::secret::{OpaqueToken, TokenHash, TokenKind};
use crate::state::AppState;
use crate::store::clients::Client;
use crate::store::grants::{Grant, RefreshUse, RotationCheck};
use latchkey_core::ErrorCode;

/// The parameters of section 6. `refresh_token` is optional here so that a missing one is
/// reported after the client's right to the grant is checked.
#[derive(Debug, Default)]
pub struct RefreshRequest {
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    /// The service the new access token is for (RFC 8707 section 2.2): one of the grant's.
    pub resource: Vec<String>,
}

pub async fn exchange(
    state: &AppState,
    client: &Client,
    req: &RefreshRequest,
    now: i64,
    origin: &serde_json::Value,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let presented = req
        .refresh_token
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    // A narrower scope is checked before rotating, so a refused scope does not burn the
    // token, but only for a token that rotation would accept: every other token (unknown,
    // another client's, used, ended) takes the one path below, where reuse is detected and
    // the answer is the same whatever the token was.
    if let Some(s) = req.scope.as_deref()
        && let Some((g, true)) = state
            .store
            .grant_by_refresh_token(TokenHash::of(presented))
            .await?
        && g.client_id == client.id
        && g.is_live(now)
    {
        refresh::narrowed_scope(&scope::parse(s)?, &g.scope)?;
    }
    // The resource (RFC 8707) is decided inside the rotation, after the token's client and
    // DPoP key are checked and before it is spent: a refused resource leaves it usable.
    let servers = Servers::of(state, client, now).await?;
    let check: RotationCheck = {
        let servers = servers.clone();
        let requested = req.resource.clone();
        let (allowed, labs) = (client.resources.clone(), client.labs.clone());
        std::sync::Arc::new(move |lab: Option<&str>, resources: &str| {
            let granted = crate::protocol::resource::split(resources);
            let holder = Holder::User { lab };
            servers
                .audience(&requested, &granted, &allowed, holder, &labs)
                .map(|_| ())
        })
    };
    let next = OpaqueToken::generate(TokenKind::RefreshToken);
    let mut details = origin.clone();
    details["revoked"] = "the token's whole family".into();
    let on_reuse = Event::new(
        &client.id,
        Action::RefreshReuseDetected,
        &client.id,
        details,
    );
    let (grant, reads) = match state
        .store
        .rotate_refresh_token(
            (TokenHash::of(presented), next.hash()),
            &client.id,
            dpop_jkt,
            // RFC 9449 section 5: a public client's refresh tokens are bound to its DPoP key
            // (a confidential client's are sender-constrained by its credentials already).
            client.is_public(),
            &on_reuse,
            check,
            crate::signin::session::idle_since(state, now),
        )
        .await?
    {
        RefreshUse::Rotated(g, reads) => {
            if reads.disabled {
                // A disabled user's grants die with the attempt.
                let ended = grant_ended(&g, &client.id, "the user's account is disabled");
                state.store.revoke_grant(&g.id, Some(&ended)).await?;
                return Err(OAuthError::invalid_grant("the user's account is disabled"));
            }
            (g, reads)
        }
        RefreshUse::Reused => {
            tracing::warn!(client = %client.id, "refresh token reused; its family is revoked");
            return Err(not_valid());
        }
        RefreshUse::Invalid => return Err(not_valid()),
        RefreshUse::Rejected(e) => return Err(*e),
        RefreshUse::WrongKey => {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "the refresh token is bound to a DPoP key: send a DPoP proof signed with it",
            ));
        }
    };
    // A client serves only its labs: a grant for another lab (the client's labs changed on
    // another node within its cache's lifetime) ends here.
    if !client.labs.serves(grant.lab_id.as_deref()) {
        let reason = "the client does not serve the grant's lab";
        let ended = grant_ended(&grant, &client.id, reason);
        state.store.revoke_grant(&grant.id, Some(&ended)).await?;
        return Err(OAuthError::invalid_grant(reason));
    }
    // Without offline_access, a grant lives only as long as the sign-in session it came from
    // (OIDC Core section 11): logout, the session's lifetime and its idle timeout end it.
    // (The rotation read whether the session is live; a grant with offline_access is.)
    if !reads.session_live {
        let reason = "the sign-in session has ended (no offline_access)";
        let ended = grant_ended(&grant, &client.id, reason);
        state.store.revoke_grant(&grant.id, Some(&ended)).await?;
        return Err(OAuthError::invalid_grant(reason));
    }
    let acr = refresh::stored_acr(&grant.acr);
    let lab_floor = match grant.lab_id.as_deref() {
        Some(lab) if refresh::needs_lab_floor(acr, Some(lab)) => {
            state.policy_floor(&grant.user_id, lab).await?
        }
        _ => None,
    };
    if let Err(need) = refresh::strong_enough(acr, client.min_acr, lab_floor) {
        let reason = format!("the sign-in no longer meets acr `{need}`");
        let ended = grant_ended(&grant, &client.id, &reason);
        state.store.revoke_grant(&grant.id, Some(&ended)).await?;
        return Err(refresh::too_weak(need));
    }
    let scope = match req.scope.as_deref() {
        Some(s) => refresh::narrowed_scope(&scope::parse(s)?, &grant.scope)?,
        None => grant.scope.clone(),
    };
    let ttl = access_token_ttl(state, client);
    let (roles, features) = match reads.member {
        None => (vec![], vec![]),
        Some(m) if !m.member => {
            // The token is spent already: the grant ends too, like every refusal after the
            // rotation, so no successor that was never delivered keeps it alive.
            let reason = "the user is no longer a member of this grant's lab";
            let ended = grant_ended(&grant, &client.id, reason);
            state.store.revoke_grant(&grant.id, Some(&ended)).await?;
            return Err(OAuthError::invalid_grant(reason));
        }
        Some(m) => (m.roles, m.features.into_iter().collect()),
    };
    let holder = Holder::User {
        lab: grant.lab_id.as_deref(),
    };
    let audience = servers.audience(
        &req.resource,
        &grant.resources,
        &client.resources,
        holder,
        &client.labs,
    )?;
    let access_token = jwt::access_token(
        &state.keys.current(),
        &AccessTokenInput {
            issuer: &state.issuer,
            audience: audience.as_deref(),
            subject: &grant.user_id,
            client_id: &client.id,
            scope: &scope,
            ttl,
            now,
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
            cnf_jkt: dpop_jkt,
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

/// The one answer for a token that cannot be refreshed (unknown, another client's, used,
/// revoked or expired): it reveals nothing about which (RFC 6749 section 5.2).
fn not_valid() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is not valid")
}

/// The audit entry of a grant ended at refresh; it commits with the revocation.
fn grant_ended(grant: &Grant, client_id: &str, reason: &str) -> Event {
    Event::new(
        client_id,
        Action::GrantEnded,
        &grant.user_id,
        serde_json::json!({"grant": grant.id, "client": client_id, "reason": reason}),
    )
}
