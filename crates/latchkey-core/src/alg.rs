//! JOSE signature algorithms (RFC 7518, RFC 8037) that Latchkey signs with.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unsupported signing algorithm `{0}` (expected RS256, ES256 or EdDSA)")]
pub struct UnsupportedAlg(pub String);

impl FromStr for SigningAlg {
    type Err = UnsupportedAlg;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RS256" => Ok(SigningAlg::RS256),
            "ES256" => Ok(SigningAlg::ES256),
            "EdDSA" => Ok(SigningAlg::EdDSA),
            other => Err(UnsupportedAlg(other.to_owned())),
        }
    }
}
