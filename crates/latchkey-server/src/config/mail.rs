//! `[mail]`: how Latchkey sends e-mail (invitations, password resets, address confirmations
//! and security notices; `docs/email.md`). Without `smtp_host` (the zero-configuration
//! default) messages are written to a file outbox in the data directory instead, each with a
//! log line naming its file.

use super::ConfigError;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The sender of every message, as `Name <address>` or `address`.
    pub from: String,
    /// The SMTP server (submission) to send through. Unset: messages go to `outbox_dir`.
    pub smtp_host: Option<String>,
    /// Its port. Unset: 465 for `tls`, 587 for `starttls`, 25 for `none`.
    pub smtp_port: Option<u16>,
    /// `starttls` (the connection must upgrade; refused otherwise), `tls` (implicit TLS,
    /// port 465), or `none` (plain text: only to a loopback address).
    pub smtp_tls: SmtpTls,
    /// A PEM file of CA certificates to trust for the SMTP server, besides the public roots
    /// (a lab's own relay).
    pub smtp_ca_file: Option<PathBuf>,
    /// User name for SMTP authentication (PLAIN or LOGIN, only over TLS).
    pub smtp_username: Option<String>,
    /// Its password. Prefer `smtp_password_file` or `LATCHKEY_MAIL__SMTP_PASSWORD`.
    pub smtp_password: Option<Secret<String>>,
    /// A file holding the SMTP password.
    pub smtp_password_file: Option<PathBuf>,
    /// Where messages are written when no `smtp_host` is set. Default `<data_dir>/outbox`.
    pub outbox_dir: Option<PathBuf>,
    /// How long a message is retried (with backoff) before it is given up, in seconds.
    pub give_up_after_secs: i64,
    /// Minutes a password-reset link works.
    pub reset_link_minutes: i64,
    /// Hours a link confirming an e-mail address works.
    pub confirm_link_hours: i64,
    /// Password-reset e-mails one account may receive per hour (further requests are
    /// answered the same, and send nothing).
    pub resets_per_hour: i64,
    /// "Forgot your password?" requests one source address (IPv6: one /64) may make per
    /// `throttle.window_secs`; past it the page answers 429, whatever the address asked for.
    pub reset_requests_per_source: i64,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpTls {
    #[default]
    Starttls,
    Tls,
    None,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            from: "Latchkey <latchkey@localhost>".into(),
            smtp_host: None,
            smtp_port: None,
            smtp_tls: SmtpTls::Starttls,
            smtp_ca_file: None,
            smtp_username: None,
            smtp_password: None,
            smtp_password_file: None,
            outbox_dir: None,
            give_up_after_secs: 86_400,
            reset_link_minutes: 30,
            confirm_link_hours: 24,
            resets_per_hour: 3,
            reset_requests_per_source: 10,
        }
    }
}

impl MailConfig {
    /// The SMTP port in use.
    pub fn port(&self) -> u16 {
        self.smtp_port.unwrap_or(match self.smtp_tls {
            SmtpTls::Tls => 465,
            SmtpTls::Starttls => 587,
            SmtpTls::None => 25,
        })
    }

    /// The SMTP password, if one is configured.
    pub fn password(&self) -> Result<Option<Secret<String>>, ConfigError> {
        if let Some(p) = &self.smtp_password {
            return Ok(Some(p.clone()));
        }
        let Some(path) = &self.smtp_password_file else {
            return Ok(None);
        };
        let s = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("mail.smtp_password_file {}: {e}", path.display())))?;
        Ok(Some(Secret::new(
            s.trim_end_matches(['\n', '\r']).to_owned(),
        )))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError(format!(
                "mail.from `{}` is not an address: write `Latchkey <latchkey@lab.example>` or `latchkey@lab.example`",
                self.from
            )));
        }
        for (name, v) in [
            ("mail.give_up_after_secs", self.give_up_after_secs),
            ("mail.reset_link_minutes", self.reset_link_minutes),
            ("mail.confirm_link_hours", self.confirm_link_hours),
            ("mail.resets_per_hour", self.resets_per_hour),
            (
                "mail.reset_requests_per_source",
                self.reset_requests_per_source,
            ),
        ] {
            if v <= 0 {
                return Err(ConfigError(format!("{name} must be positive, got {v}")));
            }
        }
        if self.reset_link_minutes > 24 * 60 {
            return Err(ConfigError(
                "mail.reset_link_minutes must be at most 1440 (a day): a reset link is a password"
                    .into(),
            ));
        }
        let Some(host) = self.smtp_host.as_deref() else {
            if self.smtp_username.is_some() {
                return Err(ConfigError(
                    "mail.smtp_username is set but mail.smtp_host is not: name the SMTP server"
                        .into(),
                ));
            }
            return Ok(());
        };
        if host.is_empty() {
            return Err(ConfigError(
                "mail.smtp_host is empty: name the SMTP server or remove the key".into(),
            ));
        }
        if self.smtp_tls == SmtpTls::None && !is_loopback(host) {
            return Err(ConfigError(format!(
                "mail.smtp_tls = \"none\" sends mail (reset links) in plain text; it is allowed only to a loopback address, not `{host}`: use \"starttls\" or \"tls\""
            )));
        }
        if self.smtp_tls == SmtpTls::None && self.smtp_username.is_some() {
            return Err(ConfigError(
                "mail.smtp_username needs mail.smtp_tls = \"starttls\" or \"tls\": credentials are never sent in plain text".into(),
            ));
        }
        if self.smtp_username.is_some() != self.password()?.is_some() {
            return Err(ConfigError(
                "mail.smtp_username and a password (mail.smtp_password or mail.smtp_password_file) go together".into(),
            ));
        }
        if let Some(ca) = &self.smtp_ca_file
            && let Err(e) = std::fs::metadata(ca)
        {
            return Err(ConfigError(format!(
                "mail.smtp_ca_file {}: {e}",
                ca.display()
            )));
        }
        Ok(())
    }
}

/// Whether `host` is a loopback name or address.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_smtp_only_to_loopback_and_never_with_credentials() {
        let mut c = MailConfig {
            smtp_host: Some("smtp.lab.example".into()),
            smtp_tls: SmtpTls::None,
            ..MailConfig::default()
        };
        assert!(c.validate().unwrap_err().0.contains("loopback"));
        c.smtp_host = Some("127.0.0.1".into());
        assert!(c.validate().is_ok());
        c.smtp_username = Some("latchkey".into());
        c.smtp_password = Some(Secret::new("pw".into()));
        assert!(c.validate().unwrap_err().0.contains("never sent in plain"));
        c.smtp_tls = SmtpTls::Starttls;
        assert!(c.validate().is_ok());
        c.smtp_password = None;
        assert!(c.validate().unwrap_err().0.contains("go together"));
    }

    #[test]
    fn the_sender_must_be_an_address() {
        let c = MailConfig {
            from: "not an address".into(),
            ..MailConfig::default()
        };
        assert!(c.validate().unwrap_err().0.contains("mail.from"));
        assert_eq!(MailConfig::default().port(), 587);
    }
}
