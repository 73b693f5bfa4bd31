//! Secrets as newtypes: they print as `***`, compare in constant time, and are stored only as
//! SHA-256 hashes. Every opaque credential Latchkey hands out carries a recognisable prefix
//! (`lk_ac_` authorization code, `lk_rt_` refresh token, `lk_cs_` client secret, `lk_ss_`
//! session, `lk_ml_` mailed link) so a leaked one is easy to spot in logs and by secret scanners.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::fmt;
use subtle::ConstantTimeEq;

/// A value that must never be printed.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Kinds of opaque credential, each with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    AuthorizationCode,
    RefreshToken,
    ClientSecret,
    Session,
    Browser,
    Invitation,
    /// A link mailed to a person: a password reset or an address confirmation.
    MailedLink,
    /// A device's code in the device authorization grant (RFC 8628).
    DeviceCode,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::AuthorizationCode => "lk_ac_",
            TokenKind::RefreshToken => "lk_rt_",
            TokenKind::ClientSecret => "lk_cs_",
            TokenKind::Session => "lk_ss_",
            TokenKind::Browser => "lk_br_",
            TokenKind::Invitation => "lk_in_",
            TokenKind::MailedLink => "lk_ml_",
            TokenKind::DeviceCode => "lk_dc_",
        }
    }
}

/// A freshly generated opaque credential (256 bits of entropy), shown once and stored hashed.
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken(String);

impl OpaqueToken {
    pub fn generate(kind: TokenKind) -> OpaqueToken {
        OpaqueToken(format!("{}{}", kind.prefix(), random_b64(32)))
    }
    pub fn from_presented(s: &str) -> OpaqueToken {
        OpaqueToken(s.to_owned())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// SHA-256 of a credential: what the database holds.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(s: &str) -> TokenHash {
        let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        TokenHash(out)
    }
    pub fn from_slice(b: &[u8]) -> Option<TokenHash> {
        <[u8; 32]>::try_from(b).ok().map(TokenHash)
    }
    /// Constant-time comparison.
    pub fn matches(&self, other: &[u8]) -> bool {
        self.0.as_slice().ct_eq(other).into()
    }
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(***)")
    }
}

/// Constant-time equality of two strings (length is not hidden).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// `n` random bytes from the operating system, base64url without padding.
pub fn random_b64(n: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(n))
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // SystemRandom only fails when the OS has no entropy source at all; there is no safe way
    // to continue issuing credentials then.
    #[expect(clippy::expect_used, reason = "no randomness means no safe operation")]
    SystemRandom::new()
        .fill(&mut buf)
        .expect("operating system random number generator failed");
    buf
}

/// A random, URL-safe identifier with 128 bits of entropy (session ids, flow ids, grant ids).
pub fn random_id() -> String {
    random_b64(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_prefix_and_never_print() {
        let t = OpaqueToken::generate(TokenKind::RefreshToken);
        assert!(t.expose().starts_with("lk_rt_"));
        assert_eq!(t.expose().len(), 6 + 43);
        assert_eq!(format!("{t:?}"), "***");
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "***");
    }

    #[test]
    fn hash_comparison() {
        let t = OpaqueToken::generate(TokenKind::ClientSecret);
        let h = t.hash();
        assert!(h.matches(&TokenHash::of(t.expose()).0));
        assert!(!h.matches(&TokenHash::of("other").0));
        assert!(!h.matches(&[1, 2, 3]));
    }
}
