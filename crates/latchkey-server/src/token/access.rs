//! Checking the access tokens presented to Latchkey's own resources (UserInfo, introspection;
//! bearer tokens per RFC 6750, DPoP-bound ones per RFC 9449 section 7): the signature and
//! expiry offline, then that the token's client is active, its grant live (not revoked by a
//! logout, a code replay, a refresh-token reuse or an administrator) and its user enabled.
//!
//! These are read paths a resource server may call on every request it serves, with the same
//! token again and again, so both halves are cached on each node:
//! - **Verified tokens**: the claims of a token whose signature checked out, keyed by the
//!   token's SHA-256, until the token expires or the key that signed it is removed (`keys
//!   revoke`). What a signature proved cannot change, so this cache has no other bound.
//! - **Live grants**: that a grant was live and its user enabled, and the user's claims for
//!   UserInfo, for at most `tokens.liveness_cache_secs` (default 2). A change made on this
//!   node (revocation, logout, code replay, refresh-token reuse, a disabled or erased user, a
//!   removed membership, a deleted client's grants, a new e-mail address) discards every entry
//!   the moment it commits (`Store::run_access_change`); a change made on another
//!   node, or by the `latchkey` CLI, applies here within that bound. 0 turns the cache off:
//!   every check reads the database.
//!
//! A client's state (disabled, deleted, expired) comes from the client cache, whose bound is
//! 5 seconds across nodes and nothing on the node that made the change.

use super::dpop;
use super::jwt::verify_access_token;
pub use crate::access_cache::Subject;
use crate::protocol::OAuthError;
use crate::state::AppState;
use latchkey_core::dpop::Proof;
use latchkey_core::{AccessTokenClaims, ErrorCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn invalid_token(d: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, d)
}

/// A token that passed every check, and its user when it is a user's token.
#[derive(Debug)]
pub struct Checked {
    pub claims: AccessTokenClaims,
    pub user: Option<Arc<Subject>>,
}

/// The claims of a token with a valid signature by a published key, our issuer, `typ`
/// `at+jwt` and unexpired: from the cache when this node verified the token before.
fn verified_claims(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<AccessTokenClaims, OAuthError> {
    let keys = state.keys.current();
    let key: [u8; 32] = {
        let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut k = [0u8; 32];
        k.copy_from_slice(d.as_ref());
        k
    };
    if let Some(v) = state.access.verified(&key) {
        // Expiry moves on; the key may have been removed since (`keys revoke`).
        if v.claims.exp <= now {
            return Err(invalid_token("the token has expired"));
        }
        if keys.public_key(&v.kid).is_some() {
            return Ok(v.claims.clone());
        }
    }
    let claims = verify_access_token(&keys, &state.issuer, token, now)
        .map_err(|e| invalid_token(&e.to_string()))?;
    // verify_access_token found the key by the header's kid, so the header has one.
    if let Some(kid) = kid_of(token) {
        state.access.keep_verified(
            key,
            crate::access_cache::Verified {
                claims: claims.clone(),
                kid,
            },
            now,
        );
    }
    Ok(claims)
}

/// The `kid` of a compact JWS's header (already verified by the caller).
fn kid_of(token: &str) -> Option<String> {
    use base64::Engine;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let h: crate::crypto::jwt::Header = serde_json::from_slice(&bytes).ok()?;
    h.kid
}

/// Checks an access token the way every resource of Latchkey's own does: signature and expiry
/// offline, then that its client is active and, for a user's token, that its grant is still
/// live (revocation, code replay, logout) and its user enabled.
pub async fn check_access_token(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<Checked, OAuthError> {
    let claims = verified_claims(state, token, now)?;
    // A deleted, disabled or expired client's tokens are inactive at once.
    let client_active = state
        .client(&claims.client_id)
        .await?
        .is_some_and(|c| c.is_active(now));
    if !client_active {
        return Err(invalid_token("the client is deleted, disabled or expired"));
    }
    let Some(gid) = &claims.gid else {
        return Ok(Checked { claims, user: None });
    };
    let ttl = Duration::from_secs(state.config.tokens.liveness_cache_secs);
    // Read before the database: a change committed while the queries run moves it, and what
    // they found is then not kept.
    let epoch = state.store.access_epoch();
    if !ttl.is_zero()
        && let Some(user) = state.access.live(gid, epoch, ttl, now)
        && user.id == claims.sub
    {
        return Ok(Checked {
            claims,
            user: Some(user),
        });
    }
    let at = Instant::now();
    let grant = state
        .store
        .get_grant(gid)
        .await?
        .filter(|g| g.is_live(now) && g.user_id == claims.sub)
        .ok_or_else(|| invalid_token("the token has been revoked"))?;
    let user = state
        .store
        .get_user(&claims.sub)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid_token("the user's account is disabled"))?;
    let user = Arc::new(Subject {
        id: user.id,
        email: user.email,
        email_verified: user.email_verified_at.is_some(),
        name: user.name,
    });
    if !ttl.is_zero() {
        state.access.keep_live(
            gid,
            crate::access_cache::Live {
                user: user.clone(),
                grant_expires_at: grant.expires_at,
                epoch,
                at,
            },
            ttl,
        );
    }
    Ok(Checked {
        claims,
        user: Some(user),
    })
}

/// [`check_access_token`] for a token presented to a resource, with the DPoP proof that came
/// with it (RFC 9449 section 7): a bound token only with a proof by its key (recorded: one
/// use), an unbound one only as a bearer token.
pub async fn check_presented_token(
    state: &AppState,
    token: &str,
    proof: Option<&Proof>,
    now: i64,
) -> Result<Checked, OAuthError> {
    let checked = check_access_token(state, token, now).await?;
    let bound = checked.claims.cnf.as_ref().map(|c| c.jkt.as_str());
    dpop::check_binding(bound, proof.map(|p| p.jkt.as_str()))?;
    if let Some(p) = proof {
        dpop::record(state, dpop::Endpoint::Resource, p).await?;
    }
    Ok(checked)
}
