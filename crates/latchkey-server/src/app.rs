//! Wiring: load configuration into shared state (store, keys, password hasher), then serve it.

use crate::config::Config;
use crate::crypto::Kek;
use crate::crypto::kek::KekSource;
use crate::keys::Keys;
use crate::password::PasswordHasher;
pub use crate::state::AppState;
use crate::state::ClientCache;
use crate::store::Store;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A loaded service, ready to serve.
pub struct App {
    state: Arc<AppState>,
    /// The HTTPS certificate (`[tls]`), loaded before anything else so that a bad one stops
    /// the start before the database or the keys are touched.
    certificates: Option<Arc<crate::tls::Certificates>>,
}

impl App {
    /// Opens the database (migrating it), loads or creates the KEK and the signing keys.
    pub async fn load(config: Config) -> anyhow::Result<App> {
        let certificates = crate::tls::Certificates::load(&config.tls, &config.issuer())?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create data directory {}: {e}",
                config.data_dir.display()
            )
        })?;
        let kek = Arc::new(load_kek(&config)?);
        if let Some(bk) = config.backup.key()?
            && bk.is_kek(&kek)
        {
            anyhow::bail!(
                "the backup key is the key-encryption key: backups must be encrypted under a key of their own (make one with `latchkey backup keygen`)"
            );
        }
        restrict_data_dir(&config.data_dir);
        let store = Store::open(&config).await?;
        let chained = store.chain_legacy_audit_rows().await?;
        if chained > 0 {
            tracing::info!(entries = chained, "audit log: earlier entries chained");
        }
        let keys = Keys::load_or_create(&store, &kek).await?;
        let hasher = PasswordHasher::new(&config.argon2)?;
        let csrf_key =
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &kek.derive(b"latchkey csrf v1"));
        let recovery_key = crate::factors::RecoveryKey::from_secret(
            &store
                .server_secret(crate::factors::RECOVERY_SECRET, &kek)
                .await?,
        );
        let throttle_key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &kek.derive(b"latchkey throttle v1"),
        );
        let issuer = config.issuer();
        let webauthn = crate::factors::relying_party(
            &issuer,
            config.authentication.webauthn_rp_id.as_deref(),
            config.authentication.webauthn_timeout_secs,
        )
        .map_err(|e| tracing::warn!("passkeys and security keys are disabled: {e}"))
        .ok();
        let auth = &config.authentication;
        let attestation = crate::attestation::Roots::load(
            auth.webauthn_bundled_roots,
            auth.webauthn_attestation_roots.as_deref(),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        let admin_verifier = crate::admin::verifier(&issuer, &keys)
            .await
            .map_err(|e| anyhow::anyhow!("admin API verifier: {e}"))?;
        let state = AppState {
            admin_verifier,
            webauthn,
            attestation,
            issuer,
            insecure_cookies: config.insecure_cookies(),
            config,
            store,
            keys,
            kek,
            hasher,
            metrics: crate::metrics::Metrics::new()?,
            csrf_key,
            recovery_key,
            throttle_key,
            spent: Default::default(),
            clients: ClientCache {
                map: RwLock::new(HashMap::new()),
            },
            lab_policies: RwLock::new(HashMap::new()),
            mail_wake: Default::default(),
            client_keys: crate::client_keys::ClientKeyCache::new()?,
            access: Default::default(),
        };
        Ok(App {
            state: Arc::new(state),
            certificates,
        })
    }

    /// The state the command line runs admin operations on: the database (migrated), the
    /// password hasher and the KEK, but no signing keys, no admin-token verifier, no
    /// passkey relying party and no background tasks, so that `latchkey user add` neither
    /// generates keys nor starts schedulers. Commands that touch signing keys use
    /// [`App::load`]. The KEK is the configured one, or the one in the data directory; when
    /// there is none yet (no server has started) a throwaway one stands in rather than
    /// writing a file a later `serve` would silently adopt.
    pub async fn for_command_line(config: Config) -> anyhow::Result<App> {
        let store = Store::open(&config).await?;
        let kek_file = config.data_dir.join("kek");
        let kek = if config.kek.is_some() || config.kek_file.is_some() {
            load_kek(&config)?
        } else if kek_file.exists() {
            Kek::load_or_create(&kek_file)?.0
        } else {
            let mut bytes = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| anyhow::anyhow!("no system randomness"))?;
            Kek::from_bytes(&bytes)?
        };
        let hasher = PasswordHasher::new(&config.argon2)?;
        let csrf_key =
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &kek.derive(b"latchkey csrf v1"));
        // The command line neither makes nor checks recovery codes, and its KEK may be a
        // stand-in (no server has started yet): it never reads or creates the stored secret.
        let recovery_key =
            crate::factors::RecoveryKey::from_secret(&crate::secret::random_bytes(32));
        let throttle_key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &kek.derive(b"latchkey throttle v1"),
        );
        let issuer = config.issuer();
        // Accepts no token: the command line's caller is `Admin::cli()`, not a bearer.
        let admin_verifier = latchkey_client::Verifier::from_jwks(
            latchkey_client::VerifierOptions::new(&issuer, crate::admin::ADMIN_AUDIENCE).any_lab(),
            br#"{"keys":[]}"#,
        )
        .map_err(|e| anyhow::anyhow!("admin API verifier: {e}"))?;
        let state = AppState {
            admin_verifier,
            webauthn: None,
            attestation: Default::default(),
            issuer,
            insecure_cookies: config.insecure_cookies(),
            config,
            store,
            keys: Keys::unloaded(),
            kek: Arc::new(kek),
            hasher,
            metrics: crate::metrics::Metrics::new()?,
            csrf_key,
            recovery_key,
            throttle_key,
            spent: Default::default(),
            clients: ClientCache {
                map: RwLock::new(HashMap::new()),
            },
            lab_policies: RwLock::new(HashMap::new()),
            mail_wake: Default::default(),
            client_keys: crate::client_keys::ClientKeyCache::new()?,
            access: Default::default(),
        };
        Ok(App {
            state: Arc::new(state),
            certificates: None,
        })
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Binds the configured address and starts serving in the background.
    pub fn start(self) -> anyhow::Result<Server> {
        let bind = self.state.config.bind;
        let listener = std::net::TcpListener::bind(bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
        self.start_on(listener)
    }

    /// Starts serving on an already bound listener (tests bind port 0 first to learn the
    /// port the issuer URL needs): HTTPS when `tls.cert_file` is set, plain HTTP otherwise.
    pub fn start_on(self, listener: std::net::TcpListener) -> anyhow::Result<Server> {
        let state = self.state.clone();
        let workers = state.config.workers();
        let certificates = self.certificates;
        let data = actix_web::web::Data::from(state.clone());
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .configure(crate::http::configure)
        })
        .workers(workers)
        .shutdown_timeout(5)
        .max_connection_rate(state.config.tls.max_handshakes)
        .tls_handshake_timeout(Duration::from_millis(state.config.tls.handshake_timeout_ms));
        let server = match &certificates {
            Some(c) => server.listen_rustls_0_23(listener, c.server_config()?),
            None => server.listen(listener),
        }
        .map_err(|e| anyhow::anyhow!("cannot serve on the listener: {e}"))?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no listening address"))?;
        let running = server.disable_signals().run();
        let handle = running.handle();
        let join = tokio::spawn(running);
        let mut listeners = Vec::new();
        let metrics_addr = match state.config.metrics.bind {
            Some(bind) => {
                let (addr, h) = serve_metrics(&state, bind)?;
                listeners.push(h);
                Some(addr)
            }
            None => None,
        };
        let redirect_addr = match state.config.tls.redirect_bind {
            Some(bind) => {
                let (addr, h) = crate::tls::serve_redirects(&state.issuer, bind)?;
                listeners.push(h);
                Some(addr)
            }
            None => None,
        };
        let mut tasks = vec![
            tokio::spawn(maintain(state.clone())),
            tokio::spawn(crate::alerts::run(state.clone())),
            tokio::spawn(crate::backup::schedule::run(state.clone())),
            tokio::spawn(crate::mail::sender::run(state.clone())),
            tokio::spawn(crate::backchannel::run(state.clone())),
        ];
        if let Some(c) = &certificates {
            let every = Duration::from_secs(state.config.tls.reload_secs);
            tasks.push(tokio::spawn(c.clone().watch(every)));
        }
        Ok(Server {
            addr,
            https: certificates.is_some(),
            metrics_addr,
            redirect_addr,
            listeners,
            handle,
            join,
            tasks,
            state,
        })
    }
}

/// The `metrics.bind` listener: `/metrics` only, no token.
fn serve_metrics(
    state: &Arc<AppState>,
    bind: SocketAddr,
) -> anyhow::Result<(SocketAddr, actix_web::dev::ServerHandle)> {
    let data = actix_web::web::Data::from(state.clone());
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .configure(crate::http::configure_metrics)
    })
    .workers(1)
    .shutdown_timeout(1)
    .bind(bind)
    .map_err(|e| anyhow::anyhow!("cannot listen on metrics.bind {bind}: {e}"))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| anyhow::anyhow!("no metrics listening address"))?;
    let running = server.disable_signals().run();
    let handle = running.handle();
    tokio::spawn(running);
    Ok((addr, handle))
}

pub struct Server {
    pub addr: SocketAddr,
    /// True when `addr` serves HTTPS (`tls.cert_file`).
    pub https: bool,
    /// Where `/metrics` is served without a token (`metrics.bind`), if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// The plain-HTTP listener that redirects to the issuer (`tls.redirect_bind`), if any.
    pub redirect_addr: Option<SocketAddr>,
    pub state: Arc<AppState>,
    /// The metrics and redirect listeners, stopped with the main one.
    listeners: Vec<actix_web::dev::ServerHandle>,
    handle: actix_web::dev::ServerHandle,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Upkeep, alert delivery and certificate reloading: aborted when the server stops.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn stop(self) {
        self.stop_side().await;
        self.handle.stop(true).await;
        let _ = self.join.await;
    }

    /// Waits until the server stops (after `stop` from another task, or a fatal error).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let r = (&mut self.join).await;
        self.stop_side().await;
        r??;
        Ok(())
    }

    async fn stop_side(&self) {
        for t in &self.tasks {
            t.abort();
        }
        for l in &self.listeners {
            l.stop(true).await;
        }
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.handle.clone()
    }
}

/// Background upkeep on every node: reload the key set (so a rotation or revocation made by
/// any node applies here within `keys.reload_interval_secs`), run due rotation steps, and
/// hourly delete rows that can no longer be used (`store::retention`) and, with
/// `audit.retention_days`, audit entries past their retention (`Store::prune_audit`).
async fn maintain(state: Arc<AppState>) {
    let k = &state.config.keys;
    let mut reload = tokio::time::interval(Duration::from_secs(k.reload_interval_secs));
    let mut check = tokio::time::interval(Duration::from_secs(k.check_interval_secs));
    let mut purge = tokio::time::interval(Duration::from_secs(3600));
    purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = reload.tick() => {
                if let Err(e) = state.keys.reload(&state.store, &state.kek).await {
                    tracing::error!(error = %e, "reloading signing keys failed; keeping the current set");
                }
            }
            _ = purge.tick() => {
                match state.store.purge_expired(crate::store::now()).await {
                    Ok(p) => tracing::debug!(?p, "purged expired codes, grants, sessions and flows"),
                    Err(e) => tracing::error!(error = %e, "purging expired rows failed; will retry"),
                }
                match crate::signin::own_data::complete_due_deletions(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(accounts = n, "erased accounts whose owners asked for it"),
                    Err(e) => tracing::error!(error = %e, "erasing accounts due for deletion failed; will retry"),
                }
                if let Some(days) = state.config.audit.retention_days {
                    let before = crate::store::now() - i64::from(days) * 86_400;
                    let key = crate::audit::chain::checkpoint_key(&state.kek);
                    match state.store.prune_audit(before, key, "system").await {
                        Ok(Some(cp)) => tracing::info!(through_seq = cp.seq, entries = cp.pruned, "pruned old audit entries (audit.retention_days)"),
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "pruning old audit entries failed; will retry"),
                    }
                }
            }
            _ = check.tick() => {
                if let Err(e) = state.keys.rotate(&state.config, &state.store, &state.kek, false, "scheduler").await {
                    tracing::error!(error = %e, "scheduled key rotation failed; will retry");
                }
            }
        }
    }
}

/// The data directory holds the database (password hashes, personal data): owner only.
fn restrict_data_dir(dir: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not restrict the data directory to its owner");
        }
    }
}

/// The KEK the configuration names (`kek`, `kek_file`, else `<data_dir>/kek`, created when
/// missing).
pub fn load_kek(config: &Config) -> anyhow::Result<Kek> {
    if let Some(k) = &config.kek {
        return Kek::from_b64(k.expose()).map_err(|e| anyhow::anyhow!("LATCHKEY_KEK: {e}"));
    }
    if let Some(path) = &config.kek_file {
        let s = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("kek_file {}: {e}", path.display()))?;
        return Kek::from_b64(&s).map_err(|e| anyhow::anyhow!("kek_file {}: {e}", path.display()));
    }
    let path = config.data_dir.join("kek");
    let (kek, source) = Kek::load_or_create(&path)?;
    if source == KekSource::Generated {
        tracing::warn!(
            path = %path.display(),
            "generated a new key-encryption key for private signing keys; production \
             deployments should supply their own (LATCHKEY_KEK or kek_file) and keep it \
             apart from the database and its backups"
        );
    } else {
        tracing::warn!(
            path = %path.display(),
            "using the key-encryption key generated in the data directory; supply \
             LATCHKEY_KEK or kek_file in production"
        );
    }
    Ok(kek)
}
