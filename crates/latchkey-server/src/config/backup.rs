//! `[backup]`: the key backups are encrypted under, and scheduled backups in `serve`
//! (`docs/backups.md`).

use super::ConfigError;
use crate::crypto::backup_key::BackupKey;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Where `serve` writes scheduled backups (one file per interval, each verified after
    /// writing). Unset: no scheduled backups.
    pub dir: Option<PathBuf>,
    /// Seconds between scheduled backups (at least 60). On several nodes sharing a database,
    /// one of them makes each.
    pub interval_secs: u64,
    /// Scheduled backups kept in `dir`; older ones are deleted after a new one verified.
    pub keep: usize,
    /// The backup key: 32 bytes, base64url (`latchkey backup keygen`). Prefer `key_file` or
    /// the `LATCHKEY_BACKUP__KEY` environment variable. Must not be the key-encryption key.
    pub key: Option<Secret<String>>,
    /// A file holding the backup key.
    pub key_file: Option<PathBuf>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            dir: None,
            interval_secs: 86_400,
            keep: 7,
            key: None,
            key_file: None,
        }
    }
}

impl BackupConfig {
    /// The configured backup key, if any.
    pub fn key(&self) -> Result<Option<BackupKey>, ConfigError> {
        let bad = |from: &str| {
            ConfigError(format!(
                "{from}: the backup key must be 32 bytes, base64url-encoded (make one with `latchkey backup keygen`)"
            ))
        };
        if let Some(k) = &self.key {
            return BackupKey::from_b64(k.expose())
                .map(Some)
                .ok_or_else(|| bad("backup.key"));
        }
        let Some(path) = &self.key_file else {
            return Ok(None);
        };
        let s = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("backup.key_file {}: {e}", path.display())))?;
        BackupKey::from_b64(&s)
            .map(Some)
            .ok_or_else(|| bad(&format!("backup.key_file {}", path.display())))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.interval_secs < 60 {
            return Err(ConfigError(format!(
                "backup.interval_secs must be at least 60, got {}",
                self.interval_secs
            )));
        }
        if self.keep == 0 {
            return Err(ConfigError(
                "backup.keep must be at least 1 (the newest verified backup)".into(),
            ));
        }
        let key = self.key()?;
        if self.dir.is_some() && key.is_none() {
            return Err(ConfigError(
                "backup.dir needs a backup key: set backup.key_file or LATCHKEY_BACKUP__KEY (make one with `latchkey backup keygen`)".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_backups_need_a_key_and_sane_numbers() {
        let mut c = BackupConfig {
            dir: Some("/var/backups/latchkey".into()),
            ..BackupConfig::default()
        };
        assert!(c.validate().unwrap_err().0.contains("needs a backup key"));
        c.key = Some(Secret::new("too short".into()));
        assert!(c.validate().unwrap_err().0.contains("32 bytes"));
        c.key = Some(Secret::new(BackupKey::generate().to_b64()));
        assert!(c.validate().is_ok());
        c.interval_secs = 59;
        assert!(c.validate().unwrap_err().0.contains("at least 60"));
        c.interval_secs = 3600;
        c.keep = 0;
        assert!(c.validate().unwrap_err().0.contains("backup.keep"));
    }
}
