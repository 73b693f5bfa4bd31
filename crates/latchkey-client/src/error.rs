//! Why a token was refused, and the RFC 9470 step-up challenge.

use latchkey_core::Acr;

/// A refused token. The message is safe to send to the caller (RFC 6750 `error_description`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's signing key is unknown")]
    UnknownKey,
    #[error("the token's header algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token is not of the expected type ({expected})")]
    WrongType { expected: &'static str },
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's nonce does not match")]
    NonceMismatch,
    #[error("the token is for a lab this service does not serve")]
    WrongLab,
    /// A DPoP-bound token sent as a bearer token (RFC 9449 section 7.2).
    #[error("the token is bound to a DPoP key: send it as Authorization: DPoP with a DPoP proof")]
    DpopBound,
    /// A token sent with the DPoP scheme that is not bound to a key.
    #[error("the token is not bound to a DPoP key: send it as Authorization: Bearer")]
    NotDpopBound,
    #[error("a DPoP token needs one DPoP proof header")]
    DpopProofMissing,
    #[error("{0}")]
    DpopProof(latchkey_core::dpop::ProofError),
    #[error("the DPoP proof is signed by another key than the token is bound to")]
    DpopKeyMismatch,
    #[error("the DPoP proof was used before (its jti is spent)")]
    DpopReplayed,
    /// The token is signed, typed and addressed correctly but is not an OpenID Connect
    /// Back-Channel Logout token (section 2.6): no back-channel logout event, a `nonce`, or
    /// neither `sub` nor `sid`.
    #[error("the token is not a logout token: {0}")]
    NotALogoutToken(String),
    /// A single-use token (a logout token's `jti`) presented again while it is valid.
    #[error("the token was used before (its jti is spent)")]
    Replayed,
    /// Too many single-use tokens are remembered at once: new ones are refused until old
    /// ones expire (fail closed).
    #[error("too many tokens at once; try again shortly")]
    ReplayCacheFull,
}

impl VerifyError {
    /// Whether the error concerns a DPoP proof (answered `invalid_dpop_proof`, RFC 9449
    /// section 7.1) rather than the token (`invalid_token`).
    pub fn is_dpop_proof(&self) -> bool {
        matches!(
            self,
            VerifyError::DpopProofMissing
                | VerifyError::DpopProof(_)
                | VerifyError::DpopKeyMismatch
                | VerifyError::DpopReplayed
        )
    }
}

/// The user authenticated too weakly for this request: RFC 9470 section 3 says how to ask the
/// client to send the user back for a stronger authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this request needs a stronger authentication ({acr})")]
pub struct StepUpRequired {
    pub acr: Acr,
    /// Set when the authentication must also be recent (seconds).
    pub max_age: Option<u64>,
}

impl StepUpRequired {
    /// The `WWW-Authenticate` value of RFC 9470 section 3.
    pub fn www_authenticate(&self) -> String {
        let mut v = format!(
            "Bearer error=\"insufficient_user_authentication\", error_description=\"A stronger authentication is required\", acr_values=\"{}\"",
            self.acr
        );
        if let Some(m) = self.max_age {
            v.push_str(&format!(", max_age={m}"));
        }
        v
    }
}
