//! Reading DPoP (RFC 9449) from a request: the one `DPoP` header, and the `Authorization`
//! scheme a token comes with. The checks are [`crate::token::dpop`]'s.

use super::State;
use crate::protocol::OAuthError;
use crate::token::dpop::{self, Endpoint};
use actix_web::HttpRequest;
use latchkey_core::dpop::{HEADER, Proof, Request};

/// The request's one `DPoP` header: `Ok(None)` without one; more than one is refused
/// (section 4.3, item 1).
pub fn header(req: &HttpRequest, at: Endpoint) -> Result<Option<&str>, OAuthError> {
    let mut values = req.headers().get_all(HEADER);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(dpop::invalid_proof(at, "send one DPoP header, not several"));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| dpop::invalid_proof(at, "the DPoP header is not a compact JWS"))
}

/// An access token as a request presents it in `Authorization`.
pub enum Presented {
    Bearer(String),
    /// `Authorization: DPoP <token>` (section 7.1).
    Dpop(String),
}

impl Presented {
    pub fn from_request(req: &HttpRequest) -> Option<Presented> {
        let h = req.headers().get("authorization")?.to_str().ok()?;
        if let Some(t) = latchkey_core::bearer_token(h) {
            return Some(Presented::Bearer(t.to_owned()));
        }
        latchkey_core::dpop::dpop_token(h).map(|t| Presented::Dpop(t.to_owned()))
    }

    pub fn token(&self) -> &str {
        match self {
            Presented::Bearer(t) | Presented::Dpop(t) => t,
        }
    }
}

/// For a token presented with the DPoP scheme at one of Latchkey's own resources (`path`
/// under the issuer), verifies the request's proof; `None` for a bearer token. It is recorded
/// (one use) once the token is verified and found bound to its key
/// ([`crate::token::access::check_access_token`]).
pub fn resource_proof(
    state: &State,
    req: &HttpRequest,
    presented: &Presented,
    path: &str,
) -> Result<Option<Proof>, OAuthError> {
    let Presented::Dpop(token) = presented else {
        return Ok(None);
    };
    let proof = header(req, Endpoint::Resource)?.ok_or_else(|| {
        dpop::invalid_proof(Endpoint::Resource, "a DPoP token needs a DPoP proof header")
    })?;
    let uri = format!("{}{path}", state.issuer);
    let request = Request {
        method: req.method().as_str(),
        uri: &uri,
        access_token: Some(token),
    };
    dpop::verify(
        state,
        Endpoint::Resource,
        proof,
        &request,
        crate::store::now(),
    )
    .map(Some)
}

/// The verified and recorded proof of a request to one of Latchkey's endpoints that take a
/// proof from the client itself (`/token`, `/par`; `path` under the issuer), or `None` without
/// one. Refusals are the token endpoint's kind (400).
pub async fn endpoint_proof(
    state: &State,
    req: &HttpRequest,
    path: &str,
    now: i64,
) -> Result<Option<Proof>, OAuthError> {
    let Some(proof) = header(req, Endpoint::Token)? else {
        return Ok(None);
    };
    let uri = format!("{}{path}", state.issuer);
    let request = Request {
        method: req.method().as_str(),
        uri: &uri,
        access_token: None,
    };
    dpop::check(state, Endpoint::Token, proof, &request, now)
        .await
        .map(Some)
}

/// The `DPoP-Nonce` header for the client's next proof (section 8.2), when a proof came with
/// the request and nonces are required.
pub fn next_nonce(
    state: &State,
    proof: Option<&Proof>,
    now: i64,
) -> Option<(&'static str, String)> {
    (proof.is_some() && state.config.dpop.require_nonce)
        .then(|| (latchkey_core::dpop::NONCE_HEADER, dpop::nonce(state, now)))
}
