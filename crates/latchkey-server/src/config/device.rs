//! `[device_authorization]`: the device authorization grant (RFC 8628; `docs/endpoints.md`).

use super::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceAuthorizationConfig {
    /// How long a device's request waits for the user, in seconds (`expires_in`).
    pub ttl_secs: i64,
    /// The least time between two polls of the token endpoint, in seconds (`interval`); a
    /// device polling sooner is told `slow_down` and must wait 5 seconds longer from then on.
    pub interval_secs: i64,
}

impl Default for DeviceAuthorizationConfig {
    fn default() -> Self {
        DeviceAuthorizationConfig {
            ttl_secs: 600,
            interval_secs: 5,
        }
    }
}

impl DeviceAuthorizationConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(60..=1800).contains(&self.ttl_secs) {
            return Err(ConfigError(format!(
                "device_authorization.ttl_secs must be 60 to 1800 (the user types the code within minutes; user codes are short, so they may not live long), got {}",
                self.ttl_secs
            )));
        }
        if !(1..=60).contains(&self.interval_secs) {
            return Err(ConfigError(format!(
                "device_authorization.interval_secs must be 1 to 60, got {}",
                self.interval_secs
            )));
        }
        Ok(())
    }
}
