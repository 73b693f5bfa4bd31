//! `[dpop]`: sender-constrained tokens (RFC 9449; `docs/endpoints.md`).

use super::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpopConfig {
    /// Ask for a server-issued nonce in every DPoP proof (section 8): a proof without one, or
    /// with one older than two nonce periods, gets `use_dpop_nonce` and a fresh `DPoP-Nonce`.
    /// Nonces are derived from the key-encryption key, so every node accepts every node's.
    pub require_nonce: bool,
    /// How old a proof's `iat` may be, in seconds (section 11.1); its `jti` is remembered
    /// (in the database, for every node) that long.
    pub proof_max_age_secs: i64,
}

impl Default for DpopConfig {
    fn default() -> Self {
        DpopConfig {
            require_nonce: false,
            proof_max_age_secs: 60,
        }
    }
}

impl DpopConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(5..=600).contains(&self.proof_max_age_secs) {
            return Err(ConfigError(format!(
                "dpop.proof_max_age_secs must be 5 to 600 (a proof is made for one request), got {}",
                self.proof_max_age_secs
            )));
        }
        Ok(())
    }
}
