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

/// The certificate served to new connections, and the files it came from.
#[derive(Debug)]
pub struct Certificates {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The bytes of the two files as last read, loaded or not: a pair is loaded (or its
    /// failure logged) once per change, not on every check.
    seen: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl Certificates {
    /// Loads `tls.cert_file` and `tls.key_file`; none when HTTPS is not configured. A file
    /// that cannot be read or parsed, or a key that does not belong to the certificate, is an
    /// error naming the file and what to fix.
    pub fn load(config: &TlsConfig) -> anyhow::Result<Option<Arc<Certificates>>> {
        let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else {
            return Ok(None);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (cert_pem, key_pem) = read_pair(cert_file, key_file)?;
        let key = certified_key(&provider, cert_file, &cert_pem, key_file, &key_pem)?;
        Ok(Some(Arc::new(Certificates {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            provider,
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new((cert_pem, key_pem)),
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
            if seen.0 == cert_pem && seen.1 == key_pem {
                return Ok(false);
            }
            *seen = (cert_pem.clone(), key_pem.clone());
        }
        let key = certified_key(
            &self.provider,
            &self.cert_file,
            &cert_pem,
            &self.key_file,
            &key_pem,
        )?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
        Ok(true)
    }

    /// The DER of the certificate served now (the chain's first).
    pub fn served(&self) -> Vec<u8> {
        let key = self.current.read().unwrap_or_else(|p| p.into_inner());
        key.cert.first().map(|c| c.to_vec()).unwrap_or_default()
    }

    /// Checks the files every `every` for as long as the service runs.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.reload()).await {
                Ok(Ok(true)) => tracing::info!(
                    cert_file = %self.cert_file.display(),
                    "TLS certificate reloaded: new connections get the new one"
                ),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::error!(
                    error = %format!("{e:#}"),
                    "TLS certificate not reloaded; still serving the previous one"
                ),
                Err(e) => tracing::error!(error = %e, "TLS certificate check failed"),
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

fn read_pair(cert_file: &Path, key_file: &Path) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let read = |what: &str, path: &Path| {
        std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {what} {}: {e}", path.display()))
    };
    Ok((
        read("tls.cert_file", cert_file)?,
        read("tls.key_file", key_file)?,
    ))
}

fn certified_key(
    provider: &CryptoProvider,
    cert_file: &Path,
    cert_pem: &[u8],
    key_file: &Path,
    key_pem: &[u8],
) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow::anyhow!(
                "tls.cert_file {} is not a PEM certificate chain: {e}",
                cert_file.display()
            )
        })?;
    if chain.is_empty() {
        anyhow::bail!(
            "tls.cert_file {} holds no certificate (expected `-----BEGIN CERTIFICATE-----`)",
            cert_file.display()
        );
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        anyhow::anyhow!(
            "tls.key_file {} holds no private key in PEM (PKCS#8, PKCS#1 or SEC1): {e}",
            key_file.display()
        )
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        anyhow::anyhow!(
            "tls.key_file {} does not fit tls.cert_file {}: {e}",
            key_file.display(),
            cert_file.display()
        )
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
