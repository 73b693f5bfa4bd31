//! `[par]`: pushed authorization requests (RFC 9126; `docs/endpoints.md`).

use super::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParConfig {
    /// Every client must push its authorization requests (RFC 9126 section 5); a client can
    /// also be required alone (`require_par`). Latchkey's own console and account page are
    /// exempt: their requests never leave the server.
    pub required: bool,
    /// How long a pushed request's `request_uri` may be brought to `/authorize`, in seconds.
    pub ttl_secs: i64,
}

impl Default for ParConfig {
    fn default() -> Self {
        ParConfig {
            required: false,
            ttl_secs: 60,
        }
    }
}

impl ParConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(10..=600).contains(&self.ttl_secs) {
            return Err(ConfigError(format!(
                "par.ttl_secs must be 10 to 600 (a request_uri is brought to /authorize at once), got {}",
                self.ttl_secs
            )));
        }
        Ok(())
    }
}
