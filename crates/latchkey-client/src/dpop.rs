//! DPoP-bound access tokens at a resource server (RFC 9449 section 7). A token whose `cnf.jkt`
//! binds it to a key is good only as `Authorization: DPoP <token>` with a `DPoP` proof header
//! signed by that key, made for this request (method and URI) and this token (`ath`), and
//! used once; an unbound token only as `Authorization: Bearer`.
//!
//! ```no_run
//! # async fn f(verifier: latchkey_client::Verifier) -> Result<(), latchkey_client::VerifyError> {
//! use latchkey_client::Presented;
//! let grants = verifier
//!     .verify_request(
//!         Presented::Dpop { token: "eyJ…", proof: Some("eyJ…") },
//!         "GET",
//!         "https://orders.lab.example/orders/42",
//!     )
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Each proof's `jti` is remembered in memory for as long as the proof is acceptable
//! ([`DpopOptions::max_age`]); several instances of one service each keep their own, so a
//! proof replayed to another instance within that window is not caught there (RFC 9449
//! section 11.1 accepts this; keep `max_age` short).

use crate::error::VerifyError;
use crate::grants::Grants;
use crate::replay::{Seen, fingerprint};
use crate::verifier::Verifier;
use std::time::Duration;

/// DPoP settings of a [`Verifier`].
#[derive(Debug, Clone)]
pub struct DpopOptions {
    /// How old a proof's `iat` may be.
    pub max_age: Duration,
    /// How far ahead of this service's clock a proof's `iat` may be.
    pub leeway: Duration,
    /// The service's public origin (`https://orders.lab.example`), which proofs' `htu` must
    /// name. `None`: the extractors take it from the request's `Host` header and whether the
    /// server listens with TLS (never from `X-Forwarded-*`, which anyone can send); set it
    /// behind a reverse proxy.
    pub public_origin: Option<String>,
    /// At most this many proofs remembered at once; past it, new proofs are refused until
    /// old ones age out (fail closed).
    pub replay_capacity: usize,
}

impl Default for DpopOptions {
    fn default() -> Self {
        DpopOptions {
            max_age: Duration::from_secs(60),
            leeway: Duration::from_secs(10),
            public_origin: None,
            replay_capacity: 200_000,
        }
    }
}

/// How a request presented its access token.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `Authorization: DPoP <token>`, with the request's one `DPoP` header (`None` when it has
    /// none, or several).
    Dpop {
        token: &'a str,
        proof: Option<&'a str>,
    },
}

impl<'a> Presented<'a> {
    /// From the `Authorization` header value and the request's `DPoP` header values.
    pub fn from_headers(
        authorization: &'a str,
        mut dpop: impl Iterator<Item = &'a str>,
    ) -> Option<Presented<'a>> {
        if let Some(t) = latchkey_core::bearer_token(authorization) {
            return Some(Presented::Bearer(t));
        }
        let token = latchkey_core::dpop::dpop_token(authorization)?;
        let proof = match (dpop.next(), dpop.next()) {
            (Some(p), None) => Some(p),
            _ => None,
        };
        Some(Presented::Dpop { token, proof })
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Verifier {
    /// Verifies an access token as a request presented it (`method`, and `uri` as the client
    /// addressed it; query and fragment are ignored): [`Verifier::verify_access_token`], then
    /// RFC 9449 section 7: a bound token needs the DPoP scheme and a valid, unused proof by
    /// its key; an unbound token needs the Bearer scheme.
    pub async fn verify_request(
        &self,
        presented: Presented<'_>,
        method: &str,
        uri: &str,
    ) -> Result<Grants, VerifyError> {
        let (token, proof) = match presented {
            Presented::Bearer(t) => (t, None),
            Presented::Dpop { token, proof } => {
                (token, Some(proof.ok_or(VerifyError::DpopProofMissing)?))
            }
        };
        let grants = self.verify_access_token(token).await?;
        let Some(proof) = proof else {
            return match grants.dpop_jkt {
                Some(_) => Err(VerifyError::DpopBound),
                None => Ok(grants),
            };
        };
        let Some(bound) = grants.dpop_jkt.as_deref() else {
            return Err(VerifyError::NotDpopBound);
        };
        let opts = &self.options().dpop;
        let now = now_unix();
        let window = latchkey_core::dpop::Window {
            max_age: opts.max_age.as_secs() as i64,
            leeway: opts.leeway.as_secs() as i64,
        };
        let request = latchkey_core::dpop::Request {
            method,
            uri,
            access_token: Some(token),
        };
        let p = latchkey_core::dpop::verify(proof, &request, now, window)
            .map_err(VerifyError::DpopProof)?;
        if p.jkt != bound {
            return Err(VerifyError::DpopKeyMismatch);
        }
        let key = fingerprint(&[p.jkt.as_bytes(), p.jti.as_bytes()]);
        let until = p.iat + window.max_age;
        match self
            .dpop_replay
            .insert(key, until, now, opts.replay_capacity)
        {
            Seen::First => Ok(grants),
            Seen::Replayed => Err(VerifyError::DpopReplayed),
            Seen::Full => Err(VerifyError::DpopProof(
                latchkey_core::dpop::ProofError::Malformed(
                    "too many DPoP proofs at once; try again shortly".into(),
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9449_7_1_presented_reads_the_scheme_and_one_proof() {
        assert!(matches!(
            Presented::from_headers("Bearer t", std::iter::empty()),
            Some(Presented::Bearer("t"))
        ));
        assert!(matches!(
            Presented::from_headers("DPoP t", ["p"].into_iter()),
            Some(Presented::Dpop {
                token: "t",
                proof: Some("p")
            })
        ));
        assert!(matches!(
            Presented::from_headers("DPoP t", ["p", "q"].into_iter()),
            Some(Presented::Dpop {
                token: "t",
                proof: None
            })
        ));
        assert!(Presented::from_headers("Basic x", std::iter::empty()).is_none());
    }
}
