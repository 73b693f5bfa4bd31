//! The one typed configuration of the account service.
//!
//! Sources, later ones winning: built-in defaults, a TOML file (`--config`, `LATCHKEY_CONFIG`),
//! then `LATCHKEY_*` environment variables (nested keys joined by `__`, e.g.
//! `LATCHKEY_TOKENS__ACCESS_TOKEN_TTL_SECS=600`) and `DATABASE_URL`. Unknown keys are errors, so
//! a typo never silently falls back to a default. `LATCHKEY_CONFIG`, `LATCHKEY_LOG` and
//! `LATCHKEY_LOG_FORMAT` are the only `LATCHKEY_*` variables that are not configuration keys,
//! besides those Kubernetes adds for a Service named `latchkey` (ignored). `docs/configuration.md`
//! documents every key; a test checks that it does.

use crate::secret::Secret;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod account;
mod authentication;
mod backchannel;
mod backup;
mod device;
mod dpop;
mod mail;
mod monitoring;
mod par;
mod tls;
pub use account::AccountConfig;
pub use authentication::AuthenticationConfig;
pub use backchannel::BackchannelLogoutConfig;
pub use backup::BackupConfig;
pub use device::DeviceAuthorizationConfig;
pub use dpop::DpopConfig;
pub use mail::{MailConfig, SmtpTls};
pub use monitoring::{AlertsConfig, DetectionConfig, MetricsConfig};
pub use par::ParConfig;
pub use tls::TlsConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Public base URL of this service, the `iss` of every token. Defaults to
    /// `http://localhost:<port of bind>` (`https://` when `tls.cert_file` is set).
    pub issuer: Option<String>,
    /// Address and port to listen on.
    pub bind: SocketAddr,
    /// Directory for the embedded SQLite database and the generated key-encryption key.
    pub data_dir: PathBuf,
    /// `sqlite://path` or `postgres://…`. Defaults to `sqlite://<data_dir>/latchkey.db`.
    /// `DATABASE_URL` is read too.
    pub database_url: Option<String>,
    /// Number of HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Base64url-encoded 32-byte key-encryption key for private signing keys at rest.
    /// Prefer `kek_file` or the `LATCHKEY_KEK` environment variable.
    pub kek: Option<Secret<String>>,
    /// File holding the key-encryption key (base64url, 32 bytes). When neither `kek` nor
    /// `kek_file` is set, one is generated at `<data_dir>/kek` with mode 0600.
    pub kek_file: Option<PathBuf>,
    pub database: DatabaseConfig,
    pub tokens: TokenConfig,
    pub argon2: Argon2Config,
    pub password: PasswordConfig,
    pub keys: KeysConfig,
    pub authentication: AuthenticationConfig,
    pub audit: AuditConfig,
    pub admin: AdminConfig,
    pub tls: TlsConfig,
    pub proxy: ProxyConfig,
    pub throttle: ThrottleConfig,
    pub metrics: MetricsConfig,
    pub detection: DetectionConfig,
    pub alerts: AlertsConfig,
    pub backup: BackupConfig,
    pub mail: MailConfig,
    pub account: AccountConfig,
    pub par: ParConfig,
    pub device_authorization: DeviceAuthorizationConfig,
    pub dpop: DpopConfig,
    pub backchannel_logout: BackchannelLogoutConfig,
}

/// Which peers are reverse proxies, and which header of theirs names the client (see
/// `http::client_addr`). Empty: every header is ignored and the client is the TCP peer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Networks (CIDR, or one address) of the proxies in front of Latchkey.
    #[serde(deserialize_with = "networks")]
    pub trusted: Vec<ipnet::IpNet>,
    /// The one header the proxies append the client to. The other is ignored: a proxy
    /// passes a header it does not write through unchanged, from the client.
    pub header: ForwardedHeader,
}

/// CIDR networks, or single addresses (a /32 or /128).
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    list.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{s}` is not a network (`10.0.0.0/8`) or an address (`127.0.0.1`)"
                    ))
                })
        })
        .collect()
}

/// A forwarding header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx, Caddy, Traefik, ingress-nginx, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    Forwarded,
}

/// Password-guessing budgets (`signin::throttle`): attempts count per fixed window in the
/// database, so every node shares them. A browser that signed in to an account before (its
/// "known device" cookie) has its own budget for that account and is never held back by
/// anyone else's guesses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Length of a budget's window, in seconds.
    pub window_secs: i64,
    /// Password attempts one source address (IPv6: one /64) may spend per window.
    pub per_source: i64,
    /// Attempts on one account from browsers not known to it, all sources together.
    pub per_account: i64,
    /// Attempts on one account from one source address, browsers not known to it.
    pub per_account_source: i64,
    /// Attempts from one known browser on the account it is known for.
    pub per_device: i64,
    /// Attempts from browsers not known to the account, all accounts and sources together.
    pub global: i64,
    /// How long a browser stays known to an account after signing in to it, in days.
    pub device_days: i64,
    /// Login flows (sign-in pages: each is stored until it expires) one source address may
    /// start per window.
    pub flows_per_source: i64,
    /// Wrong user codes (the device authorization grant, `/device`) one source address may
    /// enter per window.
    pub user_codes_per_source: i64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            window_secs: 900,
            per_source: 100,
            per_account: 30,
            per_account_source: 10,
            per_device: 10,
            global: 10_000,
            device_days: 365,
            flows_per_source: 1000,
            user_codes_per_source: 20,
        }
    }
}

/// How strongly, and how recently, administrators must have signed in: checked on every
/// console page and every admin API call made with a person's token (automation clients
/// authenticate as clients and are not concerned).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The weakest sign-in any administrator (system or lab) may administer with: `mfa` or
    /// `phr`. `pwd` is refused. Lab and role policy can ask more of a lab's administrators.
    pub min_acr: latchkey_core::Acr,
    /// A console left unused this long, in seconds, asks for a new sign-in (factors from the
    /// last `idle_timeout_secs`) instead of signing in again silently.
    pub idle_timeout_secs: i64,
    /// The longest an administrator's sign-in counts, in seconds from the token's
    /// `auth_time`, however active they are.
    pub max_age_secs: i64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            min_acr: latchkey_core::Acr::Mfa,
            idle_timeout_secs: 900,
            max_age_secs: 12 * 3600,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Prune audit entries older than this many days (hourly, leaving a signed checkpoint so
    /// the chain still verifies). Unset: keep every entry.
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// How long a signing key signs before its successor takes over, in seconds.
    pub rotation_interval_secs: i64,
    /// `Cache-Control: max-age` of the JWKS response: how long verifiers may cache keys.
    pub jwks_max_age_secs: i64,
    /// How long a new key is published before it signs; at least `jwks_max_age_secs`.
    pub staged_lead_secs: i64,
    /// Extra time a retired key stays published after the longest token it signed expires.
    pub retire_leeway_secs: i64,
    /// How often each node checks whether a rotation step is due, in seconds.
    pub check_interval_secs: u64,
    /// How often each node reloads the key set from the database, in seconds.
    pub reload_interval_secs: u64,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            rotation_interval_secs: 30 * 24 * 3600,
            jwks_max_age_secs: 300,
            staged_lead_secs: 600,
            retire_leeway_secs: 300,
            check_interval_secs: 60,
            reload_interval_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Largest number of pooled connections (PostgreSQL) or reader connections (SQLite).
    pub max_connections: usize,
    /// SQLite `synchronous` mode: `normal` survives a killed process, `full` survives power loss.
    pub sqlite_synchronous: SqliteSynchronous,
    /// How long an SQLite connection waits for a lock before failing, in milliseconds.
    pub sqlite_busy_timeout_ms: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    Normal,
    Full,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Lifetime of access tokens unless the client sets its own, in seconds.
    pub access_token_ttl_secs: i64,
    /// Lifetime of ID tokens, in seconds.
    pub id_token_ttl_secs: i64,
    /// Lifetime of a refresh-token family from the first login, in seconds.
    pub refresh_token_ttl_secs: i64,
    /// Lifetime of an authorization code, in seconds.
    pub authorization_code_ttl_secs: i64,
    /// Lifetime of a browser login session, in seconds.
    pub session_ttl_secs: i64,
    /// A browser session unused for this long is over, in seconds (within a minute: use is
    /// recorded at most once a minute); 0: no idle timeout, only `session_ttl_secs`.
    pub session_idle_timeout_secs: i64,
    /// How long a user may take to finish a login page, in seconds.
    pub login_flow_ttl_secs: i64,
    /// How long a user's consent to an application holds, in days; then the consent page asks
    /// again. Giving consent again renews it.
    pub consent_ttl_days: i64,
    /// How long a node trusts that an access token's grant is live and its user enabled
    /// (UserInfo, introspection), in seconds: a revocation made on another node, or by the
    /// CLI, applies to this node's answers within this bound (on the node that made it, at
    /// once). 0: every check reads the database. At most 60.
    pub liveness_cache_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    /// Argon2id memory cost in KiB (OWASP minimum: 19456 = 19 MiB).
    pub memory_kib: u32,
    /// Argon2id iterations.
    pub iterations: u32,
    /// Argon2id lanes.
    pub parallelism: u32,
    /// Shared hashing threads (hashes computed at once for anyone); 0 means one per CPU core.
    /// One more per four of them (at least one) checks only known browsers' passwords.
    /// Bounds memory use.
    pub max_concurrent: usize,
    /// Password checks from browsers not known to the account that may wait or run at once;
    /// more are answered `503` with `Retry-After` at once, so known browsers are served
    /// first under load. 0 means four per hashing thread.
    pub anonymous_queue: usize,
    /// How much lower (in nice steps, 0 to 19) the CPU priority of the shared hashing threads,
    /// which check anonymous passwords, is (Linux, per thread): under a flood of guesses they
    /// yield the CPU to requests and to known browsers' checks. 0 keeps the process's.
    pub anonymous_nice: u8,
    /// The nice value (-20 to 0) the threads kept for known browsers' checks ask for (Linux,
    /// per thread), so that a known browser's hash is not slowed by a flood of requests
    /// being refused. Below 0 needs `CAP_SYS_NICE` or a `RLIMIT_NICE` that allows it
    /// (systemd: `LimitNICE=`); without either the threads keep the process's priority.
    pub known_nice: i8,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Shortest accepted password in characters (NIST SP 800-63B-4: 15 for single-factor use).
    pub min_length: usize,
    /// Longest accepted password in characters (NIST: allow at least 64).
    pub max_length: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            issuer: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("latchkey-data"),
            database_url: None,
            workers: 0,
            kek: None,
            kek_file: None,
            database: DatabaseConfig::default(),
            tokens: TokenConfig::default(),
            tls: TlsConfig::default(),
            proxy: ProxyConfig::default(),
            throttle: ThrottleConfig::default(),
            metrics: MetricsConfig::default(),
            detection: DetectionConfig::default(),
            alerts: AlertsConfig::default(),
            backup: BackupConfig::default(),
            mail: MailConfig::default(),
            account: AccountConfig::default(),
            par: ParConfig::default(),
            dpop: DpopConfig::default(),
            backchannel_logout: BackchannelLogoutConfig::default(),
            device_authorization: DeviceAuthorizationConfig::default(),
            argon2: Argon2Config::default(),
            password: PasswordConfig::default(),
            keys: KeysConfig::default(),
            authentication: AuthenticationConfig::default(),
            audit: AuditConfig::default(),
            admin: AdminConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            max_connections: 8,
            sqlite_synchronous: SqliteSynchronous::Normal,
            sqlite_busy_timeout_ms: 5000,
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            access_token_ttl_secs: 300,
            id_token_ttl_secs: 300,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            authorization_code_ttl_secs: 60,
            session_ttl_secs: 12 * 3600,
            session_idle_timeout_secs: 8 * 3600,
            login_flow_ttl_secs: 1800,
            consent_ttl_days: 365,
            liveness_cache_secs: 2,
        }
    }
}

impl TokenConfig {
    /// The earliest time a consent given then still holds at `now`.
    pub fn consent_since(&self, now: i64) -> i64 {
        now.saturating_sub(self.consent_ttl_days.saturating_mul(86_400))
    }
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 0,
            anonymous_queue: 0,
            anonymous_nice: 19,
            known_nice: -10,
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            min_length: 15,
            max_length: 256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults, then the TOML file if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            // Opened here so that "permission denied" is said as such, not as "missing".
            if let Err(e) = std::fs::File::open(path) {
                return Err(ConfigError(match e.kind() {
                    std::io::ErrorKind::NotFound => {
                        format!("config file {} does not exist", path.display())
                    }
                    _ => format!("cannot read config file {}: {e}", path.display()),
                }));
            }
            figment = figment.merge(Toml::file(path));
        }
        let config: Config = with_env(figment)
            .extract()
            .map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let t = &self.tokens;
        for (name, v) in [
            ("tokens.access_token_ttl_secs", t.access_token_ttl_secs),
            ("tokens.id_token_ttl_secs", t.id_token_ttl_secs),
            ("tokens.refresh_token_ttl_secs", t.refresh_token_ttl_secs),
            (
                "tokens.authorization_code_ttl_secs",
                t.authorization_code_ttl_secs,
            ),
            ("tokens.session_ttl_secs", t.session_ttl_secs),
            ("tokens.login_flow_ttl_secs", t.login_flow_ttl_secs),
            ("throttle.window_secs", self.throttle.window_secs),
            ("throttle.per_source", self.throttle.per_source),
            ("throttle.per_account", self.throttle.per_account),
            (
                "throttle.per_account_source",
                self.throttle.per_account_source,
            ),
            ("throttle.per_device", self.throttle.per_device),
            ("throttle.global", self.throttle.global),
            ("throttle.device_days", self.throttle.device_days),
            ("throttle.flows_per_source", self.throttle.flows_per_source),
            (
                "throttle.user_codes_per_source",
                self.throttle.user_codes_per_source,
            ),
            (
                "authentication.max_code_failures",
                self.authentication.max_code_failures,
            ),
        ] {
            if v <= 0 {
                return Err(ConfigError(format!("{name} must be positive, got {v}")));
            }
        }
        monitoring::validate(&self.metrics, &self.detection, &self.alerts)?;
        self.backup.validate()?;
        self.mail.validate()?;
        self.account.validate()?;
        self.par.validate()?;
        self.dpop.validate()?;
        self.backchannel_logout.validate()?;
        self.device_authorization.validate()?;
        if self.argon2.anonymous_nice > 19 {
            return Err(ConfigError(format!(
                "argon2.anonymous_nice must be between 0 and 19, got {}",
                self.argon2.anonymous_nice
            )));
        }
        if !(-20..=0).contains(&self.argon2.known_nice) {
            return Err(ConfigError(format!(
                "argon2.known_nice must be between -20 and 0, got {}",
                self.argon2.known_nice
            )));
        }
        if self.throttle.window_secs > 86_400 {
            return Err(ConfigError(format!(
                "throttle.window_secs must be at most 86400 (a day), got {}",
                self.throttle.window_secs
            )));
        }
        self.authentication.validate()?;
        if t.consent_ttl_days < 1 {
            return Err(ConfigError(format!(
                "tokens.consent_ttl_days must be at least 1, got {}",
                t.consent_ttl_days
            )));
        }
        if t.liveness_cache_secs > 60 {
            return Err(ConfigError(format!(
                "tokens.liveness_cache_secs must be at most 60 (it bounds how long a revoked token is still answered as live on another node), got {}",
                t.liveness_cache_secs
            )));
        }
        if t.session_idle_timeout_secs < 0 {
            return Err(ConfigError(format!(
                "tokens.session_idle_timeout_secs must not be negative (0 turns it off), got {}",
                t.session_idle_timeout_secs
            )));
        }
        let k = &self.keys;
        // Every verifier must have a key before any node signs with it: the cache lifetime plus
        // the time other nodes may take to notice the key.
        if k.staged_lead_secs < k.jwks_max_age_secs + k.reload_interval_secs as i64 {
            return Err(ConfigError(format!(
                "keys.staged_lead_secs ({}) must be at least keys.jwks_max_age_secs + keys.reload_interval_secs ({}): verifiers must see a key before it signs",
                k.staged_lead_secs,
                k.jwks_max_age_secs + k.reload_interval_secs as i64
            )));
        }
        if k.jwks_max_age_secs < 1 {
            return Err(ConfigError(
                "keys.jwks_max_age_secs must be at least 1".into(),
            ));
        }
        if k.rotation_interval_secs <= k.staged_lead_secs
            || k.jwks_max_age_secs < 0
            || k.retire_leeway_secs < 0
        {
            return Err(ConfigError(
                "keys.rotation_interval_secs must exceed keys.staged_lead_secs, and durations must not be negative".into(),
            ));
        }
        if k.check_interval_secs == 0 || k.reload_interval_secs == 0 {
            return Err(ConfigError(
                "keys.check_interval_secs and keys.reload_interval_secs must be positive".into(),
            ));
        }
        if self.audit.retention_days == Some(0) {
            return Err(ConfigError(
                "audit.retention_days must be at least 1 (leave it unset to keep every entry)"
                    .into(),
            ));
        }
        self.admin.validate()?;
        self.tls.validate(&self.issuer())?;
        if self.password.min_length < 8 {
            return Err(ConfigError(
                "password.min_length must be at least 8 (NIST SP 800-63B)".into(),
            ));
        }
        if self.password.max_length < 64 || self.password.max_length < self.password.min_length {
            return Err(ConfigError(
                "password.max_length must be at least 64 and at least password.min_length".into(),
            ));
        }
        if let Some(issuer) = &self.issuer {
            let url = url::Url::parse(issuer)
                .map_err(|e| ConfigError(format!("issuer `{issuer}` is not a URL: {e}")))?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(ConfigError(
                    "issuer must not have a query or fragment (OIDC Discovery section 3)".into(),
                ));
            }
            if url.path() != "/" && !url.path().is_empty() {
                return Err(ConfigError(format!(
                    "issuer `{issuer}` must not have a path: serve Latchkey at the root of its host name"
                )));
            }
            if url.scheme() != "https" && !is_loopback_host(&url) {
                return Err(ConfigError(format!(
                    "issuer `{issuer}` must use https unless it is on localhost"
                )));
            }
        }
        Ok(())
    }

    /// The issuer identifier, without a trailing slash.
    pub fn issuer(&self) -> String {
        match &self.issuer {
            Some(i) => i.trim_end_matches('/').to_owned(),
            None if self.tls.enabled() => format!("https://localhost:{}", self.bind.port()),
            None => format!("http://localhost:{}", self.bind.port()),
        }
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("latchkey.db").display()),
        }
    }

    /// True when cookies must not carry `Secure`: plain HTTP on a loopback host (development).
    pub fn insecure_cookies(&self) -> bool {
        url::Url::parse(&self.issuer())
            .map(|u| u.scheme() == "http" && is_loopback_host(&u))
            .unwrap_or(false)
    }

    pub fn workers(&self) -> usize {
        if self.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            self.workers
        }
    }
}

impl AdminConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.min_acr == latchkey_core::Acr::Pwd {
            return Err(ConfigError(
                "admin.min_acr = \"pwd\" is refused: a password alone must not administer Latchkey; use \"mfa\" (a second factor) or \"phr\" (a passkey)".into(),
            ));
        }
        if self.idle_timeout_secs <= 0 || self.max_age_secs <= 0 {
            return Err(ConfigError(
                "admin.idle_timeout_secs and admin.max_age_secs must be positive".into(),
            ));
        }
        if self.idle_timeout_secs > self.max_age_secs {
            return Err(ConfigError(format!(
                "admin.idle_timeout_secs ({}) must not exceed admin.max_age_secs ({})",
                self.idle_timeout_secs, self.max_age_secs
            )));
        }
        Ok(())
    }
}

/// The environment overlay: `LATCHKEY_*` (nested keys joined by `__`) and `DATABASE_URL`.
fn with_env(figment: Figment) -> Figment {
    figment
        .merge(
            Env::prefixed("LATCHKEY_")
                .split("__")
                .ignore(&["config", "log", "log_format"])
                .filter(|k| !kubernetes_service_link(k.as_str())),
        )
        .merge(Env::raw().only(&["database_url"]))
}

/// The variables Kubernetes adds for a Service named `latchkey` or `latchkey-…`
/// (`LATCHKEY_SERVICE_HOST`, `LATCHKEY_PORT_80_TCP`, `LATCHKEY_DB_SERVICE_PORT`, …), seen
/// without the prefix: not settings. No configuration key has this shape (they are nested
/// with `__`, and no top-level one mentions a port or a service).
fn kubernetes_service_link(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    !key.contains('.')
        && (key == "port"
            || key.starts_with("port_")
            || key.starts_with("service_")
            || key.contains("_service_")
            || key.ends_with("_port")
            || key.contains("_port_"))
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests;
