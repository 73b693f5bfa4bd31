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
use crate::protocol::OAuthError;
use crate::state::AppState;
use latchkey_core::dpop::Proof;
use latchkey_core::{AccessTokenClaims, ErrorCode};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

fn invalid_token(d: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, d)
}

/// Entries each cache keeps at most: past it, expired entries go, and if that frees nothing
/// the cache starts over (an attacker presenting many valid tokens only costs re-checks).
const MAX_ENTRIES: usize = 10_000;

/// The user an access token speaks for, as UserInfo releases it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// A token that passed every check, and its user when it is a user's token.
#[derive(Debug)]
pub struct Checked {
    pub claims: AccessTokenClaims,
    pub user: Option<Arc<Subject>>,
}

/// This node's caches of [`check_access_token`]'s two halves (see the module docs).
#[derive(Default)]
pub(crate) struct AccessCache {
    /// SHA-256 of a token → its verified claims and the kid of the key that signed it.
    verified: RwLock<HashMap<[u8; 32], Arc<Verified>>>,
    /// Grant id → what was found live.
    live: RwLock<HashMap<String, Live>>,
}

struct Verified {
    claims: AccessTokenClaims,
    kid: String,
}

struct Live {
    user: Arc<Subject>,
    /// The grant's own end (a live grant expires without any change being made).
    grant_expires_at: i64,
    /// [`crate::store::Store::access_epoch`] read before the database was.
    epoch: u64,
    at: Instant,
}

impl AccessCache {
    fn verified(&self, key: &[u8; 32]) -> Option<Arc<Verified>> {
        self.verified.read().ok()?.get(key).cloned()
    }

    fn keep_verified(&self, key: [u8; 32], v: Verified, now: i64) {
        if let Ok(mut m) = self.verified.write() {
            if m.len() >= MAX_ENTRIES {
                m.retain(|_, v| v.claims.exp > now);
                if m.len() >= MAX_ENTRIES {
                    m.clear();
                }
            }
            m.insert(key, Arc::new(v));
        }
    }

    fn live(&self, grant: &str, epoch: u64, ttl: Duration, now: i64) -> Option<Arc<Subject>> {
        let m = self.live.read().ok()?;
        let l = m.get(grant)?;
        (l.epoch == epoch && l.at.elapsed() < ttl && l.grant_expires_at > now)
            .then(|| l.user.clone())
    }

    fn keep_live(&self, grant: &str, live: Live, ttl: Duration) {
        if let Ok(mut m) = self.live.write() {
            if m.len() >= MAX_ENTRIES {
                m.retain(|_, l| l.at.elapsed() < ttl);
                if m.len() >= MAX_ENTRIES {
                    m.clear();
                }
            }
            m.insert(grant.to_owned(), live);
        }
    }
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
            Verified {
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
            Live {
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
