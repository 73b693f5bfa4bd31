//! Configuration of HTTPS (`tls::`): the certificate Latchkey serves itself, the optional
//! plain-HTTP listener that only redirects, and `Strict-Transport-Security`
//! (`docs/https.md`).

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// HTTPS on `bind`. Neither file set: `bind` serves plain HTTP (development on localhost, or
/// behind a reverse proxy that terminates TLS).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, the server's certificate first.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// How often, in seconds, both files are read again. A changed pair that is valid is
    /// served to every new connection from then on; an invalid one is logged as an error and
    /// the current certificate stays.
    pub reload_secs: u64,
    /// A plain-HTTP address that answers every request with a `308` redirect to the same path
    /// on the issuer (e.g. `0.0.0.0:80`). Needs an `https` issuer.
    pub redirect_bind: Option<SocketAddr>,
    /// `max-age` of the `Strict-Transport-Security` header sent on every HTTPS response
    /// (and on responses to a trusted proxy that says the client used HTTPS), in seconds.
    /// 0 sends no header.
    pub hsts_max_age_secs: u64,
    /// Adds `includeSubDomains` to `Strict-Transport-Security`: only when every host name
    /// under the issuer's serves HTTPS.
    pub hsts_include_subdomains: bool,
    /// How long a client may take to complete the TLS handshake, in milliseconds; a
    /// connection that says nothing is closed then.
    pub handshake_timeout_ms: u64,
    /// TLS handshakes each worker runs at once; while that many are in progress, new
    /// connections wait in the kernel's queue.
    pub max_handshakes: usize,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: None,
            key_file: None,
            reload_secs: 10,
            redirect_bind: None,
            hsts_max_age_secs: 31_536_000,
            hsts_include_subdomains: false,
            handshake_timeout_ms: 2000,
            max_handshakes: 2048,
        }
    }
}

impl TlsConfig {
    /// True when `bind` serves HTTPS.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }

    /// The `Strict-Transport-Security` value, or none when `hsts_max_age_secs` is 0.
    pub fn hsts_header(&self) -> Option<String> {
        (self.hsts_max_age_secs > 0).then(|| {
            let mut v = format!("max-age={}", self.hsts_max_age_secs);
            if self.hsts_include_subdomains {
                v.push_str("; includeSubDomains");
            }
            v
        })
    }

    pub(super) fn validate(&self, issuer: &str) -> Result<(), ConfigError> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(ConfigError(
                "tls.cert_file and tls.key_file go together: set both to serve HTTPS, or neither"
                    .into(),
            ));
        }
        if self.reload_secs == 0 {
            return Err(ConfigError("tls.reload_secs must be at least 1".into()));
        }
        if !(100..=60_000).contains(&self.handshake_timeout_ms) || self.max_handshakes == 0 {
            return Err(ConfigError(
                "tls.handshake_timeout_ms must be 100 to 60000 and tls.max_handshakes at least 1"
                    .into(),
            ));
        }
        let https = issuer.starts_with("https://");
        if self.enabled() && !https {
            return Err(ConfigError(format!(
                "issuer `{issuer}` must use https when tls.cert_file is set: tokens name the address clients reach"
            )));
        }
        if self.redirect_bind.is_some() && !https {
            return Err(ConfigError(format!(
                "tls.redirect_bind redirects to the issuer, which must then use https (it is `{issuer}`)"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn with_tls(issuer: Option<&str>, tweak: impl FnOnce(&mut super::TlsConfig)) -> Config {
        let mut c = Config {
            issuer: issuer.map(str::to_owned),
            ..Config::default()
        };
        c.tls.cert_file = Some("cert.pem".into());
        c.tls.key_file = Some("key.pem".into());
        tweak(&mut c.tls);
        c
    }

    fn refusal(c: &Config) -> String {
        c.validate().expect_err("must be refused").to_string()
    }

    #[test]
    fn tls_makes_the_default_issuer_https() {
        let c = with_tls(None, |_| {});
        c.validate().unwrap();
        assert_eq!(c.issuer(), "https://localhost:8080");
        assert!(!c.insecure_cookies(), "cookies are Secure over HTTPS");
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let c = with_tls(None, |t| t.key_file = None);
        assert!(refusal(&c).contains("tls.cert_file and tls.key_file go together"));
        let c = with_tls(None, |t| t.cert_file = None);
        assert!(refusal(&c).contains("go together"));
    }

    #[test]
    fn tls_with_a_plain_http_issuer_is_refused() {
        let c = with_tls(Some("http://localhost:8080"), |_| {});
        assert!(refusal(&c).contains("must use https when tls.cert_file is set"));
    }

    #[test]
    fn a_redirect_listener_needs_an_https_issuer() {
        let mut c = Config::default();
        c.tls.redirect_bind = Some("127.0.0.1:8081".parse().unwrap());
        assert!(refusal(&c).contains("tls.redirect_bind"));
        // Behind a TLS-terminating proxy, with an https issuer, it is allowed.
        c.issuer = Some("https://id.lab.example".into());
        c.validate().unwrap();
    }

    #[test]
    fn hsts_header_follows_the_configuration() {
        let mut t = super::TlsConfig::default();
        assert_eq!(t.hsts_header().as_deref(), Some("max-age=31536000"));
        t.hsts_include_subdomains = true;
        t.hsts_max_age_secs = 600;
        assert_eq!(
            t.hsts_header().as_deref(),
            Some("max-age=600; includeSubDomains")
        );
        t.hsts_max_age_secs = 0;
        assert_eq!(t.hsts_header(), None);
        t.reload_secs = 0;
        let c = Config {
            tls: t,
            ..Config::default()
        };
        assert!(refusal(&c).contains("tls.reload_secs"));
    }
}
