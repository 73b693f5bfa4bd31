//! DPoP (RFC 9449) decisions that need no state: how a refusal is answered where the proof
//! was presented, and whether a presented access token and proof belong together. The proof
//! checks themselves are [`latchkey_core::dpop::verify`]; recording and nonces are
//! `crate::token::dpop`'s.

use super::OAuthError;
use latchkey_core::ErrorCode;

/// Where a proof was presented: the answers differ (section 7.1: a resource's refusal is a 401
/// with a `DPoP` challenge; the token endpoint's a 400 with a JSON body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    Resource,
}

/// An invalid proof: `invalid_dpop_proof` (section 5 and 7.1).
pub fn invalid_proof(at: Endpoint, description: impl Into<String>) -> OAuthError {
    let mut e = OAuthError::new(ErrorCode::InvalidDpopProof, description);
    e.dpop_challenge = at == Endpoint::Resource;
    e
}

/// The key a presented access token must be bound to, checked against the token's `cnf`
/// (section 7.1 and 7.2): a bound token is good only with a proof by its key, and a token
/// presented with the DPoP scheme must be bound.
pub fn check_binding(token_jkt: Option<&str>, proof_jkt: Option<&str>) -> Result<(), OAuthError> {
    match (token_jkt, proof_jkt) {
        (None, None) => Ok(()),
        (Some(t), Some(p)) if t == p => Ok(()),
        (Some(_), Some(_)) => Err(invalid_proof(
            Endpoint::Resource,
            "the DPoP proof is signed by another key than the token is bound to",
        )),
        (Some(_), None) => {
            let mut e = OAuthError::new(
                ErrorCode::InvalidToken,
                "the token is bound to a DPoP key: send it as Authorization: DPoP with a DPoP proof",
            );
            e.dpop_challenge = true;
            Err(e)
        }
        (None, Some(_)) => {
            let mut e = OAuthError::new(
                ErrorCode::InvalidToken,
                "the token is not bound to a DPoP key: send it as Authorization: Bearer",
            );
            e.dpop_challenge = true;
            Err(e)
        }
    }
}
