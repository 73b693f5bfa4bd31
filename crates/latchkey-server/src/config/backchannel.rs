//! `[backchannel_logout]`: delivering logout tokens to relying parties (OpenID Connect
//! Back-Channel Logout 1.0; `docs/endpoints.md`).

use super::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackchannelLogoutConfig {
    /// How often each node looks for logout tokens to send, in milliseconds.
    pub interval_ms: u64,
    /// How long a client has to answer one delivery, in seconds.
    pub timeout_secs: u64,
    /// Attempts before a delivery is given up (it stays listed as failed).
    pub max_attempts: i64,
    /// The wait after the first failed attempt, in seconds; it doubles each time, up to an
    /// hour.
    pub retry_secs: i64,
}

impl Default for BackchannelLogoutConfig {
    fn default() -> Self {
        BackchannelLogoutConfig {
            interval_ms: 1000,
            timeout_secs: 5,
            max_attempts: 8,
            retry_secs: 10,
        }
    }
}

impl BackchannelLogoutConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(50..=60_000).contains(&self.interval_ms) {
            return Err(ConfigError(format!(
                "backchannel_logout.interval_ms must be 50 to 60000, got {}",
                self.interval_ms
            )));
        }
        if !(1..=60).contains(&self.timeout_secs) {
            return Err(ConfigError(format!(
                "backchannel_logout.timeout_secs must be 1 to 60, got {}",
                self.timeout_secs
            )));
        }
        if !(1..=50).contains(&self.max_attempts) {
            return Err(ConfigError(format!(
                "backchannel_logout.max_attempts must be 1 to 50, got {}",
                self.max_attempts
            )));
        }
        if !(1..=3600).contains(&self.retry_secs) {
            return Err(ConfigError(format!(
                "backchannel_logout.retry_secs must be 1 to 3600, got {}",
                self.retry_secs
            )));
        }
        Ok(())
    }
}
