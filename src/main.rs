//! `latchkey`: the command line of the Latchkey identity provider. `latchkey serve` runs the
//! account service; the other commands provision labs, users and clients in the same database
//! (safe while the server runs).

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use latchkey_core::{Acr, SigningAlg};
use latchkey_server::admin::ops;
use latchkey_server::store::Store;
use latchkey_server::{App, Config};
use operator::{Operator, refused};
use std::io::Read;

mod admin_cli;
mod audit;
mod backup_cli;
mod clients_cli;
mod grants_cli;
mod health;
mod invitation_cli;
mod operator;
mod personal;
mod policy;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Single sign-on for lab services: an OpenID Connect provider"
)]
struct Cli {
    /// TOML configuration file (also LATCHKEY_CONFIG). Environment variables LATCHKEY_* override it.
    #[arg(long, global = true, env = "LATCHKEY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once from the command line; boxing would only obscure the flags"
)]
enum Command {
    /// Run the account service (zero configuration: SQLite in ./latchkey-data, http://localhost:8080).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Ask the running service on this configuration's `bind` whether it is ready (GET
    /// /ready): exit 0 when it is, 1 when not or unreachable. For container health checks.
    Health {
        /// Probe this URL instead (e.g. http://10.0.0.5:8080/ready).
        #[arg(long)]
        url: Option<String>,
        /// Only check that the process answers (GET /health), not that it is ready.
        #[arg(long)]
        live: bool,
    },
    /// Manage labs (tenants).
    #[command(subcommand)]
    Lab(LabCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth clients (relying services).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Inspect and rotate signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// MFA policy: minimum authentication levels per lab, role and client.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The tamper-evident audit log: verify its hash chain, export it, prune old entries.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Roles: the features a role gives its holders.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Administrators: system administrators and lab administrators.
    #[command(subcommand)]
    Admin(admin_cli::AdminCommand),
    /// Backups: make a backup key, write, verify and restore encrypted snapshots, list the
    /// scheduled ones.
    #[command(subcommand)]
    Backup(backup_cli::BackupCommand),
    /// Invitations: list a lab's, invite someone, issue the link of a lab administrator's
    /// invitation to send to the invited address.
    #[command(subcommand)]
    Invitation(invitation_cli::InvitationCommand),
}

#[derive(Subcommand)]
enum RoleCommand {
    /// Add or remove a feature of a role.
    #[command(subcommand)]
    Feature(grants_cli::RoleFeatureCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List published keys (staged, active, retiring) with their timestamps.
    List {
        #[command(flatten)]
        out: Output,
    },
    /// Stage a successor for every algorithm now; it starts signing after keys.staged_lead_secs.
    Rotate {
        #[command(flatten)]
        out: Output,
    },
    /// Emergency: unpublish a key at once. If it was signing, its staged successor (or a new key) signs immediately.
    Revoke {
        /// The key id (`kid`) to revoke, as `latchkey keys list` shows it. Key ids are
        /// base64url and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        kid: String,
        #[command(flatten)]
        out: Output,
    },
    /// Re-encrypt every private key under a new key-encryption key, then switch the configuration to it.
    Rewrap {
        /// File with the new key-encryption key (32 bytes, base64url).
        #[arg(long)]
        new_kek_file: PathBuf,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(serde::Serialize)]
struct KeyListing {
    kid: String,
    alg: String,
    state: String,
    created_at: i64,
    activate_at: Option<i64>,
    activated_at: Option<i64>,
    retired_at: Option<i64>,
}

fn listing(rows: Vec<latchkey_server::store::keys::KeyRow>) -> Vec<KeyListing> {
    rows.into_iter()
        .map(|r| KeyListing {
            kid: r.kid,
            alg: r.alg,
            state: r.state,
            created_at: r.created_at,
            activate_at: r.activate_at,
            activated_at: r.activated_at,
            retired_at: r.retired_at,
        })
        .collect()
}

fn listing_text(keys: &[KeyListing]) -> String {
    let mut s = format!("{:<45} {:<6} {:<9} {}", "KID", "ALG", "STATE", "SIGNS FROM");
    for k in keys {
        let from = k
            .activated_at
            .or(k.activate_at)
            .map_or("-".to_owned(), |t| t.to_string());
        s.push_str(&format!(
            "\n{:<45} {:<6} {:<9} {}",
            k.kid, k.alg, k.state, from
        ));
    }
    s
}

#[derive(Subcommand)]
enum LabCommand {
    /// Create a lab.
    Create {
        /// Display name, unique.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Disable a user: sign-in is refused, and their sessions and refresh tokens end at once.
    Disable {
        /// The user's email address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        out: Output,
    },
    /// Re-enable a disabled user.
    Enable {
        /// The user's email address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        out: Output,
    },
    /// Clear a user's sign-in attempts: their account's password budgets (every source and
    /// browser) and their count of wrong second-factor codes, so they can try again (running
    /// nodes stop refusing from memory within 10 seconds).
    ResetAttempts {
        /// The user's email address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        out: Output,
    },
    /// E-mail a user a password-reset link (single use, `mail.reset_link_minutes`) instead of
    /// setting a password for them. A running `latchkey serve` sends it within seconds.
    ResetPassword {
        /// The user's email address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        out: Output,
    },
    /// Change a user's e-mail address (for someone who lost the old mailbox): the old address
    /// is told, and a confirmation link goes to the new one.
    SetEmail {
        /// The user's current email address.
        #[arg(long)]
        email: String,
        /// The new address.
        #[arg(long)]
        new_email: String,
        #[command(flatten)]
        out: Output,
    },
    /// Manage a user's roles in a lab.
    #[command(subcommand)]
    Role(policy::RoleCommand),
    /// Allow or deny one feature to one member of a lab.
    #[command(subcommand)]
    Feature(grants_cli::MemberFeatureCommand),
    /// Add an existing user to one more lab (they choose the lab at sign-in).
    Add(policy::AddMember),
    /// Remove a user from a lab: their roles and grants there end, the refresh tokens issued
    /// for that lab are revoked and all their sessions end, at once.
    Remove(policy::RemoveMember),
    /// Print everything Latchkey holds about a user as JSON (account, memberships, roles,
    /// factor and session metadata, grants, consents, their audit entries; never secrets).
    Export(personal::ExportUser),
    /// Erase a user's personal data: factors, sessions, grants, memberships and roles are
    /// deleted, email and name removed; audit entries keep only the opaque user id.
    Erase(personal::EraseUser),
    /// Create a user in a lab, reading the password from standard input.
    Create {
        /// Lab id or name.
        #[arg(long)]
        lab: String,
        /// Email address, used to sign in.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (one line). Required: passwords never go on the command line.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client and print its client_id (and, for confidential clients, the secret, shown once).
    Create {
        /// Display name shown on the consent page.
        #[arg(long)]
        name: String,
        /// Allowed redirect URI, matched exactly. Repeat for several.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Allowed post-logout redirect URI, matched exactly. Repeat for several.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Comma-separated grant types: authorization_code, refresh_token, client_credentials,
        /// device_code (RFC 8628, for devices without a keyboard).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "authorization_code,refresh_token"
        )]
        grant_types: Vec<String>,
        /// A public client (browser or native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Authenticate with private_key_jwt (RFC 7523) instead of a secret: the client's
        /// public keys, a JWK Set file. No secret is made.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["public", "jwks_uri"])]
        jwks_file: Option<std::path::PathBuf>,
        /// Authenticate with private_key_jwt, the public keys fetched from this https URL.
        #[arg(long, value_name = "URL", conflicts_with = "public")]
        jwks_uri: Option<String>,
        /// Access-token lifetime in seconds for this client (default from config).
        #[arg(long)]
        access_token_ttl: Option<i64>,
        /// ID-token signing algorithm: RS256 (default), ES256 or EdDSA.
        #[arg(long, default_value = "RS256")]
        id_token_alg: SigningAlg,
        /// First-party client: users are not asked for consent.
        #[arg(long)]
        skip_consent: bool,
        /// A legacy confidential client that cannot send PKCE: let it leave code_challenge
        /// out (PKCE is required of every other client).
        #[arg(long)]
        pkce_optional: bool,
        /// The client must push its authorization requests to /par (RFC 9126); /authorize
        /// refuses any other.
        #[arg(long)]
        require_par: bool,
        /// The client must prove possession of a DPoP key at /token (RFC 9449): its tokens
        /// are always sender-constrained.
        #[arg(long)]
        require_dpop: bool,
        /// Where the client receives a logout token when a session it got tokens from ends
        /// (OpenID Connect Back-Channel Logout): https (http only on loopback), on the
        /// scheme, host and port of one of its --redirect-uri.
        #[arg(long, value_name = "URL")]
        backchannel_logout_uri: Option<String>,
        /// Make the client a resource server (RFC 8707): the URI other clients name in
        /// `resource` to get access tokens for its service, and those tokens' `aud`.
        #[arg(long, value_name = "URI")]
        resource_uri: Option<String>,
        /// A resource (another client's --resource-uri) this client may get access tokens
        /// for; repeat for several.
        #[arg(long = "resource", value_name = "URI")]
        resources: Vec<String>,
        /// Weakest authentication this client accepts: pwd, mfa or phr.
        #[arg(long)]
        min_acr: Option<Acr>,
        /// Let the client call the admin API (client_credentials, scope `latchkey:admin`):
        /// `*` for everything, or one lab (id or name).
        #[arg(long)]
        admin_of: Option<String>,
        /// The client stops authenticating after this long: 90d, 12h, 30m (1 minute to 400
        /// days). Clients with --admin-of default to 90d; others never expire.
        #[arg(long)]
        expires_in: Option<String>,
        /// A lab whose members may sign in to it (id or name); repeat for several, or `*` for
        /// every lab. Required with the authorization_code and device_code grants.
        #[arg(long = "lab")]
        labs: Vec<String>,
        /// A feature its service checks (`orders:read`); repeat for several. Administrators
        /// then pick from these when they grant features in its labs.
        #[arg(long = "feature")]
        features: Vec<String>,
        #[command(flatten)]
        out: Output,
    },
    #[command(flatten)]
    Lifecycle(clients_cli::LifecycleCommand),
}

#[derive(Args)]
pub(crate) struct Output {
    /// Print the result as JSON (for scripts).
    #[arg(long)]
    pub(crate) json: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    // LATCHKEY_LOG_FORMAT=json: one JSON object a line (time, level, target, fields), for log
    // collectors; anything else: lines for people.
    if std::env::var("LATCHKEY_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().flatten_event(true).init();
    } else {
        logs.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // A blocking task still running (a file read, a hash) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            let app = App::load(config).await?;
            let server = app.start()?;
            let state = server.state.clone();
            let redirect = server
                .redirect_addr
                .map(|a| format!("; redirecting http://{a} to it"))
                .unwrap_or_default();
            eprintln!(
                "latchkey ready in {} ms: listening on {}://{}{redirect} (issuer {}, database {})",
                started.elapsed().as_millis(),
                if server.https { "https" } else { "http" },
                server.addr,
                state.issuer,
                state.store.backend()
            );
            let handle = server.handle();
            tokio::spawn(async move {
                shutdown_signal().await;
                eprintln!("latchkey shutting down");
                handle.stop(true).await;
            });
            server.wait().await
        }
        Command::Policy(cmd) => policy::policy_command(&config, cmd).await,
        Command::Client(ClientCommand::Lifecycle(cmd)) => {
            clients_cli::lifecycle(&config, cmd).await
        }
        Command::Audit(cmd) => audit::audit_command(&config, cmd).await,
        Command::Backup(cmd) => backup_cli::backup_command(&config, cmd).await,
        Command::Admin(cmd) => admin_cli::admin_command(&config, cmd).await,
        Command::Invitation(cmd) => invitation_cli::invitation_command(&config, cmd).await,
        Command::Role(RoleCommand::Feature(cmd)) => grants_cli::role_feature(&config, cmd).await,
        Command::User(UserCommand::Feature(cmd)) => grants_cli::member_feature(&config, cmd).await,
        Command::User(UserCommand::Add(m)) => policy::add_member(&config, m).await,
        Command::User(UserCommand::Remove(m)) => policy::remove_member(&config, m).await,
        Command::User(UserCommand::Export(a)) => personal::export(&config, a).await,
        Command::User(UserCommand::Erase(a)) => personal::erase(&config, a).await,
        Command::User(UserCommand::Role(cmd)) => policy::role_command(&config, cmd).await,
        Command::Health { url, live } => health::check(&config, url, live).await,
        Command::Migrate => {
            let store = Store::open(&config).await?;
            eprintln!("database is up to date ({})", store.backend());
            Ok(())
        }
        Command::Lab(LabCommand::Create { name, out }) => {
            let op = Operator::open(&config).await?;
            let lab = ops::create_lab(&op.state, &op.admin, ops::NewLab { name })
                .await
                .map_err(refused)?;
            print(
                &out,
                &lab,
                &format!("created lab {} ({})", lab.name, lab.id),
            )
        }
        Command::User(UserCommand::Disable { email, out }) => {
            set_disabled(&config, &email, true, &out).await
        }
        Command::User(UserCommand::Enable { email, out }) => {
            set_disabled(&config, &email, false, &out).await
        }
        Command::User(UserCommand::ResetAttempts { email, out }) => {
            let op = Operator::open(&config).await?;
            let user = op.user(&email).await?;
            let n = ops::reset_attempts(&op.state, &op.admin, &user.id)
                .await
                .map_err(refused)?;
            print(
                &out,
                &serde_json::json!({"id": user.id, "email": email, "cleared": n.count}),
                &format!(
                    "{email}: sign-in attempts reset ({} counters cleared)",
                    n.count
                ),
            )
        }
        Command::User(UserCommand::ResetPassword { email, out }) => {
            operator::require_real_kek(&config)?;
            let op = Operator::open(&config).await?;
            let user = op.user(&email).await?;
            let sent = ops::send_password_reset(&op.state, &op.admin, &user.id)
                .await
                .map_err(refused)?;
            print(
                &out,
                &serde_json::json!({"id": user.id, "email": sent.email, "expires_in_minutes": sent.expires_in_minutes}),
                &format!(
                    "{}: a password-reset link is queued (it works once, for {} minutes); a running `latchkey serve` sends it",
                    sent.email, sent.expires_in_minutes
                ),
            )
        }
        Command::User(UserCommand::SetEmail {
            email,
            new_email,
            out,
        }) => {
            operator::require_real_kek(&config)?;
            let op = Operator::open(&config).await?;
            let user = op.user(&email).await?;
            let set = ops::set_email(&op.state, &op.admin, &user.id, &new_email)
                .await
                .map_err(refused)?;
            print(
                &out,
                &set,
                &format!(
                    "{} is now {}: a confirmation link is queued for the new address, and the old one is told",
                    set.previous, set.email
                ),
            )
        }
        Command::User(UserCommand::Create {
            lab,
            email,
            name,
            password_stdin: _,
            out,
        }) => {
            let password = password_from_stdin()?;
            let op = Operator::open(&config).await?;
            let lab = op.lab_id(&lab).await?;
            // `add_member` would add an existing account to the lab; this command only creates.
            if op.state.store.find_user_by_email(&email).await?.is_some() {
                anyhow::bail!(
                    "a user with email `{email}` already exists; `latchkey user add --lab … --email …` adds them to another lab"
                );
            }
            let member = ops::add_member(
                &op.state,
                &op.admin,
                &lab,
                ops::NewMember {
                    email,
                    name,
                    password: Some(password),
                    roles: vec![],
                },
            )
            .await
            .map_err(refused)?;
            print(
                &out,
                &serde_json::json!({"id": member.user_id, "email": member.email, "name": member.name, "lab": lab}),
                &format!("created user {} ({})", member.email, member.user_id),
            )
        }
        Command::Client(ClientCommand::Create {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            public,
            jwks_file,
            jwks_uri,
            access_token_ttl,
            id_token_alg,
            skip_consent,
            pkce_optional,
            require_par,
            require_dpop,
            backchannel_logout_uri,
            resource_uri,
            resources,
            min_acr,
            admin_of,
            expires_in,
            labs,
            features,
            out,
        }) => {
            let op = Operator::open(&config).await?;
            let created = ops::create_client_with(
                &op.state,
                &op.admin,
                ops::NewClientBody {
                    name,
                    redirect_uris,
                    post_logout_redirect_uris: post_logout_redirect_uris.clone(),
                    grant_types: Some(grant_types),
                    public,
                    jwks: jwks_file
                        .as_deref()
                        .map(clients_cli::read_jwks)
                        .transpose()?,
                    jwks_uri,
                    min_acr: min_acr.map(|a| a.as_str().to_owned()),
                    admin_of,
                    skip_consent,
                    pkce_optional,
                    require_par,
                    require_dpop,
                    backchannel_logout_uri,
                    resource_uri,
                    resources,
                    expires_in,
                    labs,
                    features,
                },
                ops::ClientOptions {
                    access_token_ttl_secs: access_token_ttl,
                    id_token_alg,
                },
            )
            .await
            .map_err(operator::refused_as(operator::CLIENT_FLAGS))?;
            let c = &created.client;
            let mut text = format!("client_id: {}", c.client_id);
            if let Some(s) = &created.client_secret {
                text.push_str(&format!(
                    "\nclient_secret: {s}\n(the secret is shown only now; store it safely)"
                ));
            }
            let mut json = serde_json::json!({
                "client_id": c.client_id,
                "name": c.name,
                "redirect_uris": c.redirect_uris,
                "post_logout_redirect_uris": post_logout_redirect_uris,
                "grant_types": c.grant_types,
                "token_endpoint_auth_method": c.token_endpoint_auth_method,
                "id_token_signed_response_alg": id_token_alg,
                "labs": c.labs,
                "features": c.features,
            });
            if let Some(s) = &created.client_secret {
                json["client_secret"] = s.as_str().into();
            }
            if let Some(a) = &c.admin_of {
                json["admin_of"] = a.as_str().into();
            }
            if let Some(u) = &c.backchannel_logout_uri {
                json["backchannel_logout_uri"] = u.as_str().into();
            }
            if let Some(u) = &c.resource_uri {
                json["resource_uri"] = u.as_str().into();
                text.push_str(&format!("\nresource server of {u} (its tokens' aud)"));
            }
            if !c.resources.is_empty() {
                json["resources"] = c.resources.clone().into();
                text.push_str(&format!("\nmay get tokens for: {}", c.resources.join(" ")));
            }
            if c.token_endpoint_auth_method == "private_key_jwt" {
                text.push_str("\nauthenticates with private_key_jwt (no secret)");
                if let Some(u) = &c.jwks_uri {
                    json["jwks_uri"] = u.as_str().into();
                }
            }
            if let Some(t) = c.expires_at {
                json["expires_at"] = t.into();
                text.push_str(&format!(
                    "\nexpires_at: {t} (Unix time; rotate or re-register before then)"
                ));
            }
            print(&out, &json, &text)
        }
        Command::Keys(cmd) => keys_command(config, cmd).await,
    }
}

async fn set_disabled(
    config: &Config,
    email: &str,
    disabled: bool,
    out: &Output,
) -> anyhow::Result<()> {
    let op = Operator::open(config).await?;
    let user = op.user(email).await?;
    let after = ops::set_disabled(&op.state, &op.admin, &user.id, disabled)
        .await
        .map_err(refused)?;
    let what = if disabled {
        "disabled (sessions ended, refresh tokens revoked)"
    } else {
        "enabled"
    };
    print(
        out,
        &serde_json::json!({"id": after.id, "email": after.email, "disabled": after.disabled}),
        &format!("{} {what}", after.email),
    )
}

async fn keys_command(mut config: Config, cmd: KeysCommand) -> anyhow::Result<()> {
    // Key commands serve nothing: an expired TLS certificate must not stop a key rotation.
    config.issuer = Some(config.issuer());
    config.tls.cert_file = None;
    config.tls.key_file = None;
    let app = App::load(config).await?;
    let state = app.state();
    match cmd {
        KeysCommand::List { out } => {
            let keys = listing(state.store.list_keys().await?);
            print(&out, &keys, &listing_text(&keys))
        }
        KeysCommand::Rotate { out } => {
            let applied = state
                .keys
                .rotate(&state.config, &state.store, &state.kek, true, "cli")
                .await?;
            let keys = listing(state.store.list_keys().await?);
            let text = if applied.actions.is_empty() {
                format!("successors are already staged\n{}", listing_text(&keys))
            } else {
                format!(
                    "staged {} new key(s); they start signing in {} s (keys.staged_lead_secs)\n{}",
                    applied.actions.len(),
                    state.config.keys.staged_lead_secs,
                    listing_text(&keys)
                )
            };
            print(&out, &keys, &text)
        }
        KeysCommand::Revoke { kid, out } => {
            let successor = state
                .keys
                .revoke(&state.store, &state.kek, &kid, "cli")
                .await?;
            let text = match &successor {
                Some(s) => format!("revoked {kid}; {s} signs in its place"),
                None => format!("revoked {kid}"),
            };
            print(
                &out,
                &serde_json::json!({"revoked": kid, "successor": successor}),
                &text,
            )
        }
        KeysCommand::Rewrap { new_kek_file, out } => {
            let raw = std::fs::read_to_string(&new_kek_file)
                .with_context(|| format!("reading {}", new_kek_file.display()))?;
            let new = latchkey_server::crypto::Kek::from_b64(&raw)
                .with_context(|| format!("{}", new_kek_file.display()))?;
            let n = state
                .store
                .rewrap_keys(
                    state.kek.clone(),
                    std::sync::Arc::new(new),
                    latchkey_server::store::now(),
                )
                .await?;
            print(
                &out,
                &serde_json::json!({"rewrapped": n}),
                &format!(
                    "re-encrypted {n} private key(s); now point kek_file (or LATCHKEY_KEK) at {} on every node",
                    new_kek_file.display()
                ),
            )
        }
    }
}

/// The password of `--password-stdin`: one line of standard input, without its line end.
pub(crate) fn password_from_stdin() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from standard input")?;
    let password = password.strip_suffix('\n').unwrap_or(&password);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_owned())
}

pub(crate) fn print<T: serde::Serialize>(
    out: &Output,
    value: &T,
    text: &str,
) -> anyhow::Result<()> {
    if out.json {
        stdout_line(&serde_json::to_string_pretty(value)?)
    } else {
        stdout_line(text)
    }
}

/// Writes one line to standard output. A reader that went away (`latchkey … | head -1`) is
/// not an error: the command has done its work, and `println!` would panic.
pub(crate) fn stdout_line(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
