//! The checks an authorization code passes at the token endpoint (RFC 6749 section 4.1.3,
//! RFC 7636 section 4.6, RFC 9700 section 4.8.2), in the order they are made.
//!
//! [`check_binding`] comes first: only a request from the code's own client, with its
//! `redirect_uri` and PKCE verifier, may consume the code or, when it was used before, have
//! what it issued revoked (RFC 9700 section 4.5.2). Anyone else who learnt the code can neither
//! burn it nor revoke the victim's tokens. The store runs it inside the transaction that
//! consumes the code; [`check_fresh`] (expiry) follows once the code is consumed.

use super::{OAuthError, pkce};

/// What was recorded when the code was issued.
#[derive(Debug, Clone, Copy)]
pub struct IssuedCode<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: Option<&'a str>,
    /// The DPoP key the authorization request bound the code to (RFC 9449 section 10).
    pub dpop_jkt: Option<&'a str>,
    pub expires_at: i64,
}

/// What the client presents with the code.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    /// The key of the request's DPoP proof, when it has one.
    pub dpop_jkt: Option<&'a str>,
}

/// Why a code is refused; each is `invalid_grant` (RFC 6749 section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    /// No such code.
    Unknown,
    /// Used before: what it issued has been revoked (section 4.1.2).
    Replayed,
    /// Issued to another client: answered as `Unknown`.
    OtherClient,
    Expired,
    RedirectUriMismatch,
    VerifierMismatch,
    VerifierMissing,
    /// A verifier for a code issued without a challenge: a PKCE downgrade.
    UnexpectedVerifier,
    /// The code is bound to a DPoP key and the request has no proof by it (RFC 9449
    /// section 10).
    DpopKeyMismatch,
    /// The request's `resource` is not one the code's authorization covers, or it names none
    /// and the authorization covers several (RFC 8707): `invalid_target`, the code unspent.
    Target,
}

impl From<CodeRefusal> for OAuthError {
    fn from(r: CodeRefusal) -> OAuthError {
        if r == CodeRefusal::Target {
            return OAuthError::new(
                latchkey_core::ErrorCode::InvalidTarget,
                "the resource is not one of those this code's authorization covers",
            );
        }
        let e = OAuthError::invalid_grant(match r {
            // Another client's code is answered as an unknown one (RFC 6749 section 5.2):
            // telling it apart would confirm to whoever holds the code that it is valid.
            CodeRefusal::Unknown | CodeRefusal::OtherClient => {
                "the authorization code is not valid"
            }
            CodeRefusal::Replayed => {
                "the authorization code was already used; tokens issued for it are revoked"
            }
            CodeRefusal::Expired => "the authorization code has expired",
            CodeRefusal::RedirectUriMismatch => {
                "redirect_uri does not match the one in the authorization request"
            }
            CodeRefusal::VerifierMismatch => "code_verifier does not match the code_challenge",
            CodeRefusal::VerifierMissing => "code_verifier is missing",
            CodeRefusal::UnexpectedVerifier => {
                "code_verifier sent, but the authorization request had no code_challenge"
            }
            CodeRefusal::DpopKeyMismatch => {
                "the authorization code is bound to a DPoP key (dpop_jkt): send a DPoP proof signed by that key"
            }
            CodeRefusal::Target => "the resource is not one of this authorization's",
        });
        match r {
            // Logged only.
            CodeRefusal::OtherClient => e.with_debug("the code was issued to another client"),
            _ => e,
        }
    }
}

/// Checks a code and the request presenting it, in order: binding first, then expiry.
pub fn check(code: &IssuedCode<'_>, p: &Presented<'_>, now: i64) -> Result<(), CodeRefusal> {
    check_binding(code, p)?;
    check_fresh(code, now)
}

/// Whether the code has expired (RFC 6749 section 4.1.2).
pub fn check_fresh(code: &IssuedCode<'_>, now: i64) -> Result<(), CodeRefusal> {
    if code.expires_at <= now {
        return Err(CodeRefusal::Expired);
    }
    Ok(())
}

/// Whether the request comes from the code's client, with the code's `redirect_uri` and the
/// verifier of its `code_challenge` (RFC 6749 section 4.1.3, RFC 7636 section 4.6), and a
/// proof by the DPoP key it is bound to (RFC 9449 section 10). Decided before the code is
/// consumed or a replay is acted on.
pub fn check_binding(code: &IssuedCode<'_>, p: &Presented<'_>) -> Result<(), CodeRefusal> {
    if code.client_id != p.client_id {
        return Err(CodeRefusal::OtherClient);
    }
    // Section 4.1.3: required, and identical, when the authorization request had one;
    // Latchkey always requires it there.
    if p.redirect_uri != Some(code.redirect_uri) {
        return Err(CodeRefusal::RedirectUriMismatch);
    }
    match (code.code_challenge, p.code_verifier) {
        (Some(challenge), Some(verifier)) if !pkce::verify_s256(verifier, challenge) => {
            return Err(CodeRefusal::VerifierMismatch);
        }
        (Some(_), None) => return Err(CodeRefusal::VerifierMissing),
        (None, Some(_)) => return Err(CodeRefusal::UnexpectedVerifier),
        _ => {}
    }
    match code.dpop_jkt {
        Some(bound) if p.dpop_jkt != Some(bound) => Err(CodeRefusal::DpopKeyMismatch),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code(challenge: Option<&str>) -> IssuedCode<'_> {
        IssuedCode {
            client_id: "app",
            redirect_uri: "https://app.example/cb",
            code_challenge: challenge,
            dpop_jkt: None,
            expires_at: 1_000,
        }
    }

    fn presented<'a>(redirect: Option<&'a str>, verifier: Option<&'a str>) -> Presented<'a> {
        Presented {
            client_id: "app",
            redirect_uri: redirect,
            code_verifier: verifier,
            dpop_jkt: None,
        }
    }

    const CB: Option<&str> = Some("https://app.example/cb");

    #[test]
    fn a_matching_request_passes() {
        assert_eq!(
            check(&code(Some(CHALLENGE)), &presented(CB, Some(VERIFIER)), 999),
            Ok(())
        );
        assert_eq!(check(&code(None), &presented(CB, None), 999), Ok(()));
    }

    #[test]
    fn rfc6749_4_1_3_code_is_bound_to_its_client() {
        let mut p = presented(CB, None);
        p.client_id = "other";
        assert_eq!(check(&code(None), &p, 999), Err(CodeRefusal::OtherClient));
    }

    #[test]
    fn rfc9700_4_5_2_binding_is_decided_without_the_clock() {
        let mut p = presented(CB, Some(VERIFIER));
        assert_eq!(check_binding(&code(Some(CHALLENGE)), &p), Ok(()));
        p.client_id = "other";
        assert_eq!(
            check_binding(&code(Some(CHALLENGE)), &p),
            Err(CodeRefusal::OtherClient)
        );
        // An expired code still passes the binding check: a replay of it by its own client
        // is still acted on.
        assert_eq!(check_fresh(&code(None), 1_000), Err(CodeRefusal::Expired));
    }

    #[test]
    fn rfc6749_4_1_2_code_expires() {
        assert_eq!(
            check(&code(None), &presented(CB, None), 1_000),
            Err(CodeRefusal::Expired)
        );
    }

    #[test]
    fn rfc6749_4_1_3_redirect_uri_must_match() {
        for bad in [
            None,
            Some("https://app.example/cb/"),
            Some("https://app.example"),
        ] {
            assert_eq!(
                check(&code(None), &presented(bad, None), 999),
                Err(CodeRefusal::RedirectUriMismatch),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rfc7636_4_6_wrong_or_missing_verifier_is_invalid_grant() {
        let wrong = "x".repeat(43);
        assert_eq!(
            check(&code(Some(CHALLENGE)), &presented(CB, Some(&wrong)), 999),
            Err(CodeRefusal::VerifierMismatch)
        );
        assert_eq!(
            check(&code(Some(CHALLENGE)), &presented(CB, None), 999),
            Err(CodeRefusal::VerifierMissing)
        );
    }

    #[test]
    fn rfc9700_4_8_2_verifier_without_challenge_is_a_downgrade() {
        assert_eq!(
            check(&code(None), &presented(CB, Some(VERIFIER)), 999),
            Err(CodeRefusal::UnexpectedVerifier)
        );
    }

    #[test]
    fn rfc9449_10_a_code_bound_to_a_dpop_key_needs_a_proof_by_that_key() {
        let mut c = code(Some(CHALLENGE));
        c.dpop_jkt = Some("key-a");
        let mut p = presented(CB, Some(VERIFIER));
        assert_eq!(check_binding(&c, &p), Err(CodeRefusal::DpopKeyMismatch));
        p.dpop_jkt = Some("key-b");
        assert_eq!(check_binding(&c, &p), Err(CodeRefusal::DpopKeyMismatch));
        p.dpop_jkt = Some("key-a");
        assert_eq!(check_binding(&c, &p), Ok(()));
        // An unbound code may be redeemed with a proof (the tokens are bound then).
        assert_eq!(check_binding(&code(Some(CHALLENGE)), &p), Ok(()));
    }

    #[test]
    fn rfc6749_5_2_another_clients_code_is_answered_as_an_unknown_one() {
        let other: OAuthError = CodeRefusal::OtherClient.into();
        let unknown: OAuthError = CodeRefusal::Unknown.into();
        assert_eq!(other.code, unknown.code);
        assert_eq!(other.description, unknown.description);
    }

    #[test]
    fn every_refusal_is_invalid_grant() {
        let e: OAuthError = CodeRefusal::Replayed.into();
        assert_eq!(e.code, latchkey_core::ErrorCode::InvalidGrant);
        assert_eq!(e.status(), 400);
    }
}
