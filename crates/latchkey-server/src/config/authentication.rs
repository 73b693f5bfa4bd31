//! `[authentication]`: factors, their freshness, and what a WebAuthn credential must prove to
//! count as a hardware key (`docs/authentication-strength.md`).

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthenticationConfig {
    /// How recent an authentication must be to enrol or remove a factor, in seconds.
    pub reauth_window_secs: i64,
    /// WebAuthn relying-party id (a registrable domain). Defaults to the issuer's host.
    pub webauthn_rp_id: Option<String>,
    /// How long a WebAuthn challenge may be answered, in seconds.
    pub webauthn_timeout_secs: i64,
    /// TOTP time steps before the current one still accepted (clock drift, typing time).
    /// Codes from future steps are never accepted.
    pub totp_steps_back: u8,
    /// Consecutive wrong second-factor codes after which a user's codes are refused until an
    /// administrator resets their sign-in attempts (NIST SP 800-63B 5.2.2: at most 100).
    pub max_code_failures: i64,
    /// Ask authenticators for their attestation when a passkey or security key is registered
    /// (`attestation: "direct"`). Without it no key can be proven to be hardware (`amr` hwk).
    pub webauthn_request_attestation: bool,
    /// Trust the attestation roots bundled with Latchkey (`crates/latchkey-server/attestation/`).
    pub webauthn_bundled_roots: bool,
    /// A PEM file of further attestation root certificates to trust (a vendor's root, or
    /// roots taken from the FIDO Metadata Service).
    pub webauthn_attestation_roots: Option<PathBuf>,
    /// `phr` only from a passkey whose attestation chained to a trusted root and that is
    /// bound to one device; any other passkey then proves `mfa`.
    pub phr_requires_attestation: bool,
}

impl Default for AuthenticationConfig {
    fn default() -> Self {
        AuthenticationConfig {
            reauth_window_secs: 300,
            webauthn_rp_id: None,
            webauthn_timeout_secs: 300,
            totp_steps_back: 1,
            max_code_failures: 100,
            webauthn_request_attestation: true,
            webauthn_bundled_roots: true,
            webauthn_attestation_roots: None,
            phr_requires_attestation: false,
        }
    }
}

impl AuthenticationConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_code_failures > 100 {
            return Err(ConfigError(format!(
                "authentication.max_code_failures must be at most 100 (NIST SP 800-63B 5.2.2), got {}",
                self.max_code_failures
            )));
        }
        if self.totp_steps_back > 2 {
            return Err(ConfigError(format!(
                "authentication.totp_steps_back must be 0, 1 or 2 (each step is 30 s a guesser also gets), got {}",
                self.totp_steps_back
            )));
        }
        if self.phr_requires_attestation && !self.webauthn_request_attestation {
            return Err(ConfigError(
                "authentication.phr_requires_attestation needs authentication.webauthn_request_attestation = true: without attestation no passkey could reach phr".into(),
            ));
        }
        if self.phr_requires_attestation
            && !self.webauthn_bundled_roots
            && self.webauthn_attestation_roots.is_none()
        {
            return Err(ConfigError(
                "authentication.phr_requires_attestation needs attestation roots: keep authentication.webauthn_bundled_roots = true or set authentication.webauthn_attestation_roots".into(),
            ));
        }
        Ok(())
    }
}
