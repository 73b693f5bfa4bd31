//! Authentication strength: the `acr` levels Latchkey issues (a total order) and the
//! authentication method references of RFC 8176 that prove them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An authentication context class, ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Acr {
    /// One factor: a password, or a passkey alone.
    Pwd,
    /// Two factors (NIST SP 800-63B AAL2).
    Mfa,
    /// Phishing-resistant (OpenID EAP `phr`).
    Phr,
}

impl Acr {
    pub const ALL: [Acr; 3] = [Acr::Pwd, Acr::Mfa, Acr::Phr];

    pub fn as_str(self) -> &'static str {
        match self {
            Acr::Pwd => "pwd",
            Acr::Mfa => "mfa",
            Acr::Phr => "phr",
        }
    }
}

impl fmt::Display for Acr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown acr value `{0}`")]
pub struct UnknownAcr(pub String);

impl FromStr for Acr {
    type Err = UnknownAcr;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pwd" => Ok(Acr::Pwd),
            "mfa" => Ok(Acr::Mfa),
            "phr" => Ok(Acr::Phr),
            other => Err(UnknownAcr(other.to_owned())),
        }
    }
}

/// Authentication method reference values (RFC 8176 section 2) that Latchkey emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Amr {
    /// Password-based authentication.
    Pwd,
    /// One-time password (TOTP).
    Otp,
    /// Proof of possession of a hardware-secured key.
    Hwk,
    /// Proof of possession of a software-secured key.
    Swk,
    /// User presence test / user verification by the authenticator.
    User,
    /// Personal identification number given to an authenticator.
    Pin,
    /// Multiple-factor authentication.
    Mfa,
}

impl Amr {
    pub fn as_str(self) -> &'static str {
        match self {
            Amr::Pwd => "pwd",
            Amr::Otp => "otp",
            Amr::Hwk => "hwk",
            Amr::Swk => "swk",
            Amr::User => "user",
            Amr::Pin => "pin",
            Amr::Mfa => "mfa",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_totally_ordered() {
        assert!(Acr::Pwd < Acr::Mfa && Acr::Mfa < Acr::Phr);
        for acr in Acr::ALL {
            assert_eq!(acr.as_str().parse::<Acr>().ok(), Some(acr));
        }
        assert!("urn:unknown".parse::<Acr>().is_err());
    }
}
