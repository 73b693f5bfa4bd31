//! DPoP (RFC 9449) at Latchkey's own endpoints: a proof at `/token` binds the tokens issued to
//! its key (`cnf.jkt`, `token_type` DPoP); at `/userinfo` and the admin API a bound token is
//! good only with a proof signed by that key. The proof checks are
//! [`latchkey_core::dpop::verify`]; here is what needs state: each proof is accepted once on
//! every node (the database records its key and `jti`), and, with `[dpop] require_nonce`,
//! it must carry a nonce Latchkey issued (section 8).
//!
//! Nonces need no storage: a nonce is a time slot and an HMAC of it under a key derived from
//! the key-encryption key, so every node issues and accepts the same ones. One is accepted
//! during its slot and the next ([`NONCE_SLOT_SECS`] each).

use crate::protocol::OAuthError;
pub use crate::protocol::dpop::{Endpoint, check_binding, invalid_proof};
use crate::state::AppState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::ErrorCode;
use latchkey_core::dpop::{self, Proof, Request, Window};

/// How long one nonce slot lasts, in seconds; a nonce is accepted for one to two slots.
pub const NONCE_SLOT_SECS: i64 = 120;
/// How far ahead of this server's clock a proof's `iat` may be, in seconds.
pub const LEEWAY_SECS: i64 = 10;

/// The JWS algorithms a proof may use, for discovery (`dpop_signing_alg_values_supported`) and
/// challenges.
pub fn algs() -> Vec<&'static str> {
    latchkey_core::jose::JwsAlg::ALL
        .map(latchkey_core::jose::JwsAlg::as_str)
        .to_vec()
}

fn nonce_key(state: &AppState) -> ring::hmac::Key {
    ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &state.kek.derive(b"latchkey dpop nonce v1"),
    )
}

fn nonce_for_slot(key: &ring::hmac::Key, slot: i64) -> String {
    let tag = ring::hmac::sign(key, &slot.to_be_bytes());
    let mut raw = slot.to_be_bytes().to_vec();
    raw.extend_from_slice(tag.as_ref());
    URL_SAFE_NO_PAD.encode(raw)
}

/// A fresh nonce, for the `DPoP-Nonce` header.
pub fn nonce(state: &AppState, now: i64) -> String {
    nonce_for_slot(&nonce_key(state), now.div_euclid(NONCE_SLOT_SECS))
}

fn nonce_ok(state: &AppState, nonce: &str, now: i64) -> bool {
    let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
        return false;
    };
    let Some(slot) = raw
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(i64::from_be_bytes)
    else {
        return false;
    };
    let current = now.div_euclid(NONCE_SLOT_SECS);
    if slot != current && slot != current - 1 {
        return false;
    }
    ring::hmac::verify(&nonce_key(state), &slot.to_be_bytes(), &raw[8..]).is_ok()
}

/// Checks a proof for `request`: the checks of RFC 9449 section 4.3, and the server's nonce
/// when `[dpop] require_nonce` asks for one. [`record`] it once whatever it comes with is
/// accepted.
pub fn verify(
    state: &AppState,
    at: Endpoint,
    proof: &str,
    request: &Request<'_>,
    now: i64,
) -> Result<Proof, OAuthError> {
    let p = dpop::verify(proof, request, now, window(state))
        .map_err(|e| invalid_proof(at, e.to_string()))?;
    if state.config.dpop.require_nonce
        && !p.nonce.as_deref().is_some_and(|n| nonce_ok(state, n, now))
    {
        let mut e = OAuthError::new(
            ErrorCode::UseDpopNonce,
            "the DPoP proof must carry the nonce in the DPoP-Nonce header",
        );
        e.dpop_nonce = Some(nonce(state, now).into());
        e.dpop_challenge = at == Endpoint::Resource;
        return Err(e);
    }
    Ok(p)
}

fn window(state: &AppState) -> Window {
    Window {
        max_age: state.config.dpop.proof_max_age_secs,
        leeway: LEEWAY_SECS,
    }
}

/// Records a verified proof: each is accepted once, on every node (section 11.1).
pub async fn record(state: &AppState, at: Endpoint, p: &Proof) -> Result<(), OAuthError> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(p.jkt.as_bytes());
    ctx.update(b"\0");
    ctx.update(p.jti.as_bytes());
    let hash = ctx.finish();
    let until = p.iat + window(state).max_age + 1;
    if !state.store.record_dpop_proof(hash.as_ref(), until).await? {
        return Err(invalid_proof(
            at,
            "the DPoP proof was used before (its jti is spent)",
        ));
    }
    Ok(())
}

/// [`verify`] and [`record`], for the token endpoint.
pub async fn check(
    state: &AppState,
    at: Endpoint,
    proof: &str,
    request: &Request<'_>,
    now: i64,
) -> Result<Proof, OAuthError> {
    let p = verify(state, at, proof, request, now)?;
    record(state, at, &p).await?;
    Ok(p)
}
