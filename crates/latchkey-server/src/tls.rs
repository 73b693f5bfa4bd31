//! HTTPS served by Latchkey itself (`[tls]`): rustls with the ring provider, TLS 1.3 and 1.2
//! only, and a certificate that is read again every `tls.reload_secs` so that a renewed
//! certificate (certbot, cert-manager, a rotated Kubernetes secret) is served without a
//! restart. Each new connection asks [`Certificates`] for the current pair; connections
//! already open keep theirs. A changed pair that does not load (half-written, a key that does
//! not belong to the certificate) is logged as an error and the current one stays.
//!
//! Also the optional plain-HTTP listener (`tls.redirect_bind`) that only redirects to the
//! issuer.

use crate::config::TlsConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The largest certificate or key file read: a chain is a few kilobytes.
const MAX_FILE: u64 = 1 << 20;

/// The certificate served to new connections, and the files it came from.
#[derive(Debug)]
pub struct Certificates {
    cert_file: PathBuf,
    key_file: PathBuf,
    /// The issuer's host name, which the certificate should cover (a warning when not).
    host: String,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// SHA-256 of the two files as last read, loaded or not: a pair is loaded (or its
    /// failure logged) once per change, not on every check.
    seen: Mutex<[u8; 32]>,
    /// The last failure logged, so that the same failure is logged once.
    failure: Mutex<Option<String>>,
}

impl Certificates {
    /// Loads `tls.cert_file` and `tls.key_file`; none when HTTPS is not configured. A file
    /// that cannot be read or parsed, a key that does not belong to the certificate, or a
    /// certificate outside its validity period is an error naming the file and what to fix.
    pub fn load(config: &TlsConfig, issuer: &str) -> anyhow::Result<Option<Arc<Certificates>>> {
        let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
            return Ok(None);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let host = url::Url::parse(issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let (cert_pem, key_pem) = read_pair(cert_file, key_file)?;
        let key = certified_key(&provider, cert_file, &cert_pem, key_file, &key_pem, &host)?;
        Ok(Some(Arc::new(Certificates {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            host,
            provider,
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new(digest(&cert_pem, &key_pem)),
            failure: Mutex::new(None),
        })))
    }

    /// The rustls configuration of the HTTPS listener: TLS 1.3 and 1.2, no client
    /// certificates, the certificate from `self` at each handshake.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<rustls::ServerConfig> {
        let config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        Ok(config)
    }

    /// Reads both files again; loads the pair when either changed since the last check.
    /// `Ok(true)`: a new certificate is served from now on. An error leaves the current one.
    pub fn reload(&self) -> anyhow::Result<bool> {
        let (cert_pem, key_pem) = read_pair(&self.cert_file, &self.key_file)?;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let now = digest(&cert_pem, &key_pem);
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        let key = certified_key(
            &self.provider,
            &self.cert_file,
            &cert_pem,
            &self.key_file,
            &key_pem,
            &self.host,
        )?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
        Ok(true)
    }

    /// The DER of the certificate served now (the chain's first).
    pub fn served(&self) -> Vec<u8> {
        let key = self.current.read().unwrap_or_else(|p| p.into_inner());
        key.cert.first().map(|c| c.to_vec()).unwrap_or_default()
    }

    /// Checks the files every `every` for as long as the service runs. A failure is logged
    /// once, until it changes or the files load again.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let this = self.clone();
            let outcome = match tokio::task::spawn_blocking(move || this.reload()).await {
                Ok(r) => r.map_err(|e| format!("{e:#}")),
                Err(e) => Err(format!("the check did not finish: {e}")),
            };
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            match outcome {
                Ok(changed) => {
                    if changed {
                        tracing::info!(
                            cert_file = %self.cert_file.display(),
                            "TLS certificate reloaded: new connections get the new one"
                        );
                    }
                    *failure = None;
                }
                Err(e) if failure.as_deref() != Some(e.as_str()) => {
                    tracing::error!(
                        error = %e,
                        "TLS certificate not reloaded; still serving the previous one"
                    );
                    *failure = Some(e);
                }
                Err(_) => {}
            }
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn digest(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&(cert_pem.len() as u64).to_be_bytes());
    ctx.update(cert_pem);
    ctx.update(key_pem);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn read_pair(cert_file: &Path, key_file: &Path) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    Ok((
        read_small_file("tls.cert_file", cert_file)?,
        read_small_file("tls.key_file", key_file)?,
    ))
}

/// Reads a regular file of at most [`MAX_FILE`] bytes. It is opened without blocking, so a
/// FIFO or a device put in its place is refused instead of hanging the reader.
fn read_small_file(what: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!("{what} {} is not a regular file", path.display());
    }
    if meta.len() > MAX_FILE {
        anyhow::bail!(
            "{what} {} is {} bytes; a certificate chain or key is at most {MAX_FILE}",
            path.display(),
            meta.len()
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE {
        anyhow::bail!("{what} {} grew past {MAX_FILE} bytes", path.display());
    }
    Ok(bytes)
}

fn certified_key(
    provider: &CryptoProvider,
    cert_file: &Path,
    cert_pem: &[u8],
    key_file: &Path,
    key_pem: &[u8],
    host: &str,
) -> anyhow::Result<CertifiedKey> {
    let cert_err = |e: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "tls.cert_file {}: the certificate cannot be used: {e}",
            cert_file.display()
        )
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow::anyhow!(
                "tls.cert_file {} is not a PEM certificate chain: {e}",
                cert_file.display()
            )
        })?;
    let Some(leaf) = chain.first() else {
        anyhow::bail!(
            "tls.cert_file {} holds no certificate (expected `-----BEGIN CERTIFICATE-----`)",
            cert_file.display()
        );
    };
    check_validity(leaf, host).map_err(|e| cert_err(&e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        anyhow::anyhow!(
            "tls.key_file {} holds no private key in PEM (PKCS#8, PKCS#1 or SEC1): {e}",
            key_file.display()
        )
    })?;
    let signing = provider.key_provider.load_private_key(key).map_err(|e| {
        anyhow::anyhow!(
            "tls.key_file {}: the private key cannot be used: {e}",
            key_file.display()
        )
    })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            anyhow::bail!(
                "tls.key_file {} does not fit tls.cert_file {}: the key belongs to another certificate",
                key_file.display(),
                cert_file.display()
            )
        }
        Err(e) => Err(cert_err(&e)),
    }
}

/// Refuses a certificate outside its validity period (serving it would break every client);
/// warns when it expires within 14 days or does not name the issuer's host.
fn check_validity(leaf: &CertificateDer<'_>, host: &str) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let validity = cert.validity();
    let now = crate::store::now();
    if validity.not_before.timestamp() > now {
        return Err(format!("it is not valid before {}", validity.not_before));
    }
    if validity.not_after.timestamp() <= now {
        return Err(format!("it expired on {}", validity.not_after));
    }
    if validity.not_after.timestamp() - now < 14 * 86_400 {
        tracing::warn!(not_after = %validity.not_after, "the TLS certificate expires within 14 days");
    }
    if !host.is_empty() && !names_host(&cert, host) {
        tracing::warn!(
            host,
            "the TLS certificate does not name the issuer's host: clients will refuse it"
        );
    }
    Ok(())
}

fn names_host(cert: &x509_parser::certificate::X509Certificate<'_>, host: &str) -> bool {
    use x509_parser::extensions::GeneralName;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    san.value.general_names.iter().any(|name| match name {
        GeneralName::DNSName(d) => {
            let d = d.to_ascii_lowercase();
            match d.strip_prefix("*.") {
                Some(suffix) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
                None => d == host,
            }
        }
        GeneralName::IPAddress(bytes) => {
            host.parse::<std::net::IpAddr>().is_ok_and(|ip| match ip {
                std::net::IpAddr::V4(v4) => v4.octets().as_slice() == *bytes,
                std::net::IpAddr::V6(v6) => v6.octets().as_slice() == *bytes,
            })
        }
        _ => false,
    })
}

/// The `tls.redirect_bind` listener: every request gets `308 Permanent Redirect` to the same
/// path and query on the issuer. The `Host` header is not used, so the redirect cannot be
/// pointed anywhere else.
pub fn serve_redirects(
    issuer: &str,
    bind: SocketAddr,
) -> anyhow::Result<(SocketAddr, actix_web::dev::ServerHandle)> {
    let issuer: Arc<str> = issuer.trim_end_matches('/').into();
    let server = actix_web::HttpServer::new(move || {
        let issuer = issuer.clone();
        actix_web::App::new().default_service(actix_web::web::to(
            move |req: actix_web::HttpRequest| {
                let issuer = issuer.clone();
                async move { redirect(&issuer, &req) }
            },
        ))
    })
    .workers(1)
    .shutdown_timeout(1)
    .bind(bind)
    .map_err(|e| anyhow::anyhow!("cannot listen on tls.redirect_bind {bind}: {e}"))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no redirect listening address"))?;
    let running = server.disable_signals().run();
    let handle = running.handle();
    tokio::spawn(running);
    Ok((addr, handle))
}

fn redirect(issuer: &str, req: &actix_web::HttpRequest) -> actix_web::HttpResponse {
    let target = match req.uri().path_and_query() {
        Some(pq) if pq.as_str().starts_with('/') => format!("{issuer}{pq}"),
        _ => format!("{issuer}/"),
    };
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, target))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .finish()
}
