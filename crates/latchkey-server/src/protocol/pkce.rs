//! Proof Key for Code Exchange (RFC 7636). Only `S256` is accepted: `plain` offers no
//! protection once the authorization request leaks, and OAuth 2.1 drops it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Checks the syntax of a `code_challenge` (RFC 7636 section 4.2: 43 base64url characters
/// for S256).
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The S256 challenge of a verifier (for Latchkey's own console, a client of itself).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD
        .encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// Checks a `code_verifier` against the stored S256 challenge (RFC 7636 section 4.6).
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    // Section 4.1: 43 to 128 unreserved characters.
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    crate::secret::ct_eq(&URL_SAFE_NO_PAD.encode(digest.as_ref()), challenge)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 7636 appendix B.
    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_challenge(challenge));
        assert!(verify_s256(verifier, challenge));
        assert!(!verify_s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
    }

    proptest! {
        #[test]
        fn rfc7636_4_1_malformed_verifiers_never_match(v in ".{0,200}") {
            let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
            prop_assert!(!verify_s256(&v, challenge) || v == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        }
    }
}
