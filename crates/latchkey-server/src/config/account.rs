//! `[account]`: what people may do with their own account on the account page
//! (`docs/account.md`).

use super::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountConfig {
    /// Days between a person's request to delete their account and its erasure, during
    /// which they may cancel it. 0: requests wait for an administrator (`latchkey user
    /// erase`).
    pub deletion_grace_days: i64,
}

impl Default for AccountConfig {
    fn default() -> Self {
        AccountConfig {
            deletion_grace_days: 14,
        }
    }
}

impl AccountConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(0..=365).contains(&self.deletion_grace_days) {
            return Err(ConfigError(format!(
                "account.deletion_grace_days must be 0 to 365, got {}",
                self.deletion_grace_days
            )));
        }
        Ok(())
    }
}
