//! Configuration of what tells operators about the service: `/metrics`, the intrusion
//! detectors and the webhooks their alerts are sent to (`docs/security-monitoring.md`).

use super::ConfigError;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where `/metrics` is served. Neither set: it is not served at all (404).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A bearer token that opens `GET /metrics` on the main listener
    /// (`Authorization: Bearer <token>`); at least 32 characters. Prefer the
    /// `LATCHKEY_METRICS__TOKEN` environment variable.
    pub token: Option<Secret<String>>,
    /// A separate address serving only `GET /metrics`, without a token (bind it to a
    /// network only the monitoring system reaches, e.g. `127.0.0.1:9464`).
    pub bind: Option<SocketAddr>,
}

/// The intrusion detectors: each node reads new sign-in entries of the audit log every
/// `interval_secs` and raises an alert when a pattern crosses its threshold within
/// `window_secs`. One alert per detector, subject and window, whichever node sees it first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// How often the audit log is read for new entries, in seconds.
    pub interval_secs: u64,
    /// The window the thresholds count in, in seconds.
    pub window_secs: i64,
    /// Password spraying: failed sign-ins from one source on at least this many accounts.
    pub spraying_accounts: i64,
    /// Credential stuffing: at least this many failed sign-ins in all…
    pub stuffing_failures: i64,
    /// …from at least this many sources…
    pub stuffing_sources: i64,
    /// …on at least this many accounts…
    pub stuffing_accounts: i64,
    /// …with at least this share (percent) of all password sign-ins failing.
    pub stuffing_failure_percent: i64,
    /// Brute force: failed sign-ins on one account, all sources together.
    pub brute_force_failures: i64,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            interval_secs: 10,
            window_secs: 900,
            spraying_accounts: 10,
            stuffing_failures: 100,
            stuffing_sources: 10,
            stuffing_accounts: 10,
            stuffing_failure_percent: 80,
            brute_force_failures: 20,
        }
    }
}

/// Where alerts are sent: each is POSTed as JSON to every URL, signed with HMAC-SHA256 of
/// the shared secret, and retried with doubling delays until it is accepted (2xx) or
/// `webhook_max_attempts` have failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// The receivers (`https://…`; `http://` only to a loopback address).
    pub webhook_urls: Vec<String>,
    /// The signing secret, at least 32 characters. Prefer `webhook_secret_file` or the
    /// `LATCHKEY_ALERTS__WEBHOOK_SECRET` environment variable.
    pub webhook_secret: Option<Secret<String>>,
    /// A file holding the signing secret.
    pub webhook_secret_file: Option<PathBuf>,
    /// Attempts per delivery before it is marked failed.
    pub webhook_max_attempts: i64,
    /// The delay before the first retry, in seconds; each further retry waits twice as
    /// long, at most an hour.
    pub webhook_retry_secs: i64,
    /// How long one attempt may take, in seconds.
    pub webhook_timeout_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            webhook_urls: Vec::new(),
            webhook_secret: None,
            webhook_secret_file: None,
            webhook_max_attempts: 8,
            webhook_retry_secs: 10,
            webhook_timeout_secs: 10,
        }
    }
}

/// Secrets shorter than this are refused: they sign and open what monitoring sees.
const MIN_SECRET: usize = 32;

impl AlertsConfig {
    /// The signing secret (`webhook_secret`, else the file's trimmed content).
    pub fn secret(&self) -> Result<Option<String>, ConfigError> {
        if let Some(s) = &self.webhook_secret {
            return Ok(Some(s.expose().clone()));
        }
        let Some(path) = &self.webhook_secret_file else {
            return Ok(None);
        };
        let s = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "alerts.webhook_secret_file {}: {e}",
                path.display()
            ))
        })?;
        Ok(Some(s.trim().to_owned()))
    }
}

pub(super) fn validate(
    metrics: &MetricsConfig,
    detection: &DetectionConfig,
    alerts: &AlertsConfig,
) -> Result<(), ConfigError> {
    if let Some(t) = &metrics.token
        && t.expose().len() < MIN_SECRET
    {
        return Err(ConfigError(format!(
            "metrics.token must be at least {MIN_SECRET} characters (e.g. `openssl rand -hex 32`)"
        )));
    }
    let d = detection;
    for (name, v) in [
        ("detection.window_secs", d.window_secs),
        ("detection.spraying_accounts", d.spraying_accounts),
        ("detection.stuffing_failures", d.stuffing_failures),
        ("detection.stuffing_sources", d.stuffing_sources),
        ("detection.stuffing_accounts", d.stuffing_accounts),
        ("detection.brute_force_failures", d.brute_force_failures),
        ("alerts.webhook_max_attempts", alerts.webhook_max_attempts),
        ("alerts.webhook_retry_secs", alerts.webhook_retry_secs),
    ] {
        if v <= 0 {
            return Err(ConfigError(format!("{name} must be positive, got {v}")));
        }
    }
    if d.interval_secs == 0 || alerts.webhook_timeout_secs == 0 {
        return Err(ConfigError(
            "detection.interval_secs and alerts.webhook_timeout_secs must be positive".into(),
        ));
    }
    if d.window_secs > 86_400 {
        return Err(ConfigError(format!(
            "detection.window_secs must be at most 86400 (a day), got {}",
            d.window_secs
        )));
    }
    if !(1..=100).contains(&d.stuffing_failure_percent) {
        return Err(ConfigError(format!(
            "detection.stuffing_failure_percent must be between 1 and 100, got {}",
            d.stuffing_failure_percent
        )));
    }
    for u in &alerts.webhook_urls {
        webhook_url(u)?;
    }
    if !alerts.webhook_urls.is_empty() {
        match alerts.secret()? {
            Some(s) if s.len() >= MIN_SECRET => {}
            Some(_) => {
                return Err(ConfigError(format!(
                    "alerts.webhook_secret must be at least {MIN_SECRET} characters (e.g. `openssl rand -hex 32`)"
                )));
            }
            None => {
                return Err(ConfigError(
                    "alerts.webhook_urls needs alerts.webhook_secret or alerts.webhook_secret_file: receivers check the signature".into(),
                ));
            }
        }
    }
    Ok(())
}

/// A receiver's URL: HTTPS, or HTTP to a loopback address (a receiver on the same host).
fn webhook_url(u: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError(format!("alerts.webhook_urls: `{u}` {why}"));
    let url = url::Url::parse(u).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => return Err(bad("has no host")),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(bad(
            "must use https (http only to a loopback address): alerts carry who is attacking whom",
        )),
    }
}
