//! `latchkey client update|disable|enable|delete|rotate-secret`: a client's life cycle, through
//! the same operations as `PATCH`, `DELETE` and `POST /api/v1/clients/{client}/…` (audited as
//! `cli`). Flags carry the API's field names (`--name`, `--redirect-uri`, `--overlap`;
//! `--jwks-file` reads the API's `jwks` from a file).

use crate::operator::{CLIENT_FLAGS, Operator, refused, refused_as};
use crate::{Output, print};
use clap::Subcommand;
use latchkey_core::names::ClientId;
use latchkey_server::Config;
use latchkey_server::admin::ops;

#[derive(Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once from the command line; boxing would only obscure the flags"
)]
pub enum LifecycleCommand {
    /// Change a client's name, redirect URIs, labs, features, keys, whether PKCE is optional,
    /// PAR or DPoP required, or its back-channel logout URI (a list given replaces the whole
    /// list).
    Update {
        /// The client id (`lk_…`).
        #[arg(long)]
        client: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// Allowed redirect URI; repeat for several. Replaces the current list.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Allowed post-logout redirect URI; repeat for several. Replaces the current list.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Remove every post-logout redirect URI.
        #[arg(long, conflicts_with = "post_logout_redirect_uris")]
        no_post_logout_redirect_uris: bool,
        /// A lab whose members may sign in to it (id or name), or `*` for every lab; repeat
        /// for several. Replaces the current labs; its grants for a lab left out end at once.
        #[arg(long = "lab")]
        labs: Vec<String>,
        /// A feature its service checks; repeat for several. Replaces the current list.
        #[arg(long = "feature")]
        features: Vec<String>,
        /// Declare no features.
        #[arg(long, conflicts_with = "features")]
        no_features: bool,
        /// A private_key_jwt client's new public keys: a JWK Set file (replaces its keys or
        /// its --jwks-uri).
        #[arg(long, value_name = "FILE", conflicts_with = "jwks_uri")]
        jwks_file: Option<std::path::PathBuf>,
        /// A private_key_jwt client's new jwks_uri (replaces its keys or its jwks_uri).
        #[arg(long, value_name = "URL")]
        jwks_uri: Option<String>,
        /// `true`: a legacy confidential client may leave PKCE out; `false`: require it again.
        #[arg(long, value_name = "BOOL")]
        pkce_optional: Option<bool>,
        /// `true`: refuse its authorization requests that were not pushed to /par (RFC 9126);
        /// `false`: accept them again.
        #[arg(long, value_name = "BOOL")]
        require_par: Option<bool>,
        /// `true`: refuse its token requests without a DPoP proof (RFC 9449); `false`:
        /// accept them again.
        #[arg(long, value_name = "BOOL")]
        require_dpop: Option<bool>,
        /// Where it receives logout tokens (OpenID Connect Back-Channel Logout): https (http
        /// only on loopback), on the scheme, host and port of one of its redirect URIs.
        #[arg(long, value_name = "URL")]
        backchannel_logout_uri: Option<String>,
        /// Stop back-channel logout to it.
        #[arg(long, conflicts_with = "backchannel_logout_uri")]
        no_backchannel_logout: bool,
        /// Its resource URI (RFC 8707): other clients name it in `resource` to get access
        /// tokens for its service, whose `aud` it is.
        #[arg(long, value_name = "URI")]
        resource_uri: Option<String>,
        /// It is no longer a resource server.
        #[arg(long, conflicts_with = "resource_uri")]
        no_resource_uri: bool,
        /// Replaces the resources it may get tokens for (other clients' --resource-uri);
        /// repeat for several.
        #[arg(long = "resource", value_name = "URI")]
        resources: Vec<String>,
        /// It may get tokens for no resource (only for itself).
        #[arg(long, conflicts_with = "resources")]
        no_resources: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Disable a client: it cannot authenticate and its tokens are inactive until enabled.
    Disable {
        /// The client id.
        #[arg(long)]
        client: String,
        #[command(flatten)]
        out: Output,
    },
    /// Enable a disabled client again.
    Enable {
        /// The client id.
        #[arg(long)]
        client: String,
        #[command(flatten)]
        out: Output,
    },
    /// Delete a client: its grants, refresh tokens and consents end at once.
    Delete {
        /// The client id.
        #[arg(long)]
        client: String,
        #[command(flatten)]
        out: Output,
    },
    /// Give a client a new secret (printed once); the old one keeps working for --overlap.
    RotateSecret {
        /// The client id.
        #[arg(long)]
        client: String,
        /// How long the old secret keeps working: 1h (default), 30m, 7d, up to 30d; 0 stops
        /// it at once (a leaked secret).
        #[arg(long)]
        overlap: Option<String>,
        #[command(flatten)]
        out: Output,
    },
}

/// A JWK Set file (`--jwks-file`) as JSON; whether it holds usable public keys is the
/// registration's check.
pub fn read_jwks(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--jwks-file {}: cannot read it: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "--jwks-file {}: not JSON ({e}); give a JWK Set: {{\"keys\": [...]}}",
            path.display()
        )
    })
}

pub async fn lifecycle(config: &Config, cmd: LifecycleCommand) -> anyhow::Result<()> {
    let op = Operator::open(config).await?;
    let (s, a) = (&op.state, &op.admin);
    match cmd {
        LifecycleCommand::Update {
            client,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            no_post_logout_redirect_uris,
            labs,
            features,
            no_features,
            jwks_file,
            jwks_uri,
            pkce_optional,
            require_par,
            require_dpop,
            backchannel_logout_uri,
            no_backchannel_logout,
            resource_uri,
            no_resource_uri,
            resources,
            no_resources,
            out,
        } => {
            let body = ops::ClientUpdateBody {
                name,
                redirect_uris: (!redirect_uris.is_empty()).then_some(redirect_uris),
                post_logout_redirect_uris: (!post_logout_redirect_uris.is_empty()
                    || no_post_logout_redirect_uris)
                    .then_some(post_logout_redirect_uris),
                labs: (!labs.is_empty()).then_some(labs),
                features: (!features.is_empty() || no_features).then_some(features),
                jwks: jwks_file.as_deref().map(read_jwks).transpose()?,
                jwks_uri,
                pkce_optional,
                require_par,
                require_dpop,
                backchannel_logout_uri: if no_backchannel_logout {
                    Some(String::new())
                } else {
                    backchannel_logout_uri
                },
                resource_uri: if no_resource_uri {
                    Some(String::new())
                } else {
                    resource_uri
                },
                resources: if no_resources {
                    Some(Vec::new())
                } else {
                    (!resources.is_empty()).then_some(resources)
                },
            };
            if body.name.is_none()
                && body.redirect_uris.is_none()
                && body.post_logout_redirect_uris.is_none()
                && body.labs.is_none()
                && body.features.is_none()
                && body.jwks.is_none()
                && body.jwks_uri.is_none()
                && body.pkce_optional.is_none()
                && body.require_par.is_none()
                && body.require_dpop.is_none()
                && body.backchannel_logout_uri.is_none()
                && body.resource_uri.is_none()
                && body.resources.is_none()
            {
                anyhow::bail!(
                    "nothing to change: give --name, --redirect-uri, --post-logout-redirect-uri, --lab, --feature, --jwks-file, --jwks-uri, --pkce-optional, --require-par, --require-dpop, --backchannel-logout-uri, --no-backchannel-logout, --resource-uri, --no-resource-uri, --resource or --no-resources"
                );
            }
            let c = ops::update_client(s, a, &ClientId::new(client), body)
                .await
                .map_err(refused_as(CLIENT_FLAGS))?;
            print(
                &out,
                &c,
                &format!("updated client {} ({})", c.client_id, c.name),
            )
        }
        LifecycleCommand::Disable { client, out } => {
            let c = ops::set_client_disabled(s, a, &ClientId::new(client), true)
                .await
                .map_err(refused)?;
            print(
                &out,
                &c,
                &format!(
                    "disabled client {}: it cannot authenticate and its tokens are inactive",
                    c.client_id
                ),
            )
        }
        LifecycleCommand::Enable { client, out } => {
            let c = ops::set_client_disabled(s, a, &ClientId::new(client), false)
                .await
                .map_err(refused)?;
            print(&out, &c, &format!("enabled client {}", c.client_id))
        }
        LifecycleCommand::Delete { client, out } => {
            let d = ops::delete_client(s, a, &ClientId::new(client))
                .await
                .map_err(refused)?;
            print(
                &out,
                &d,
                &format!(
                    "deleted client {} ({} grant(s) and {} consent(s) ended)",
                    d.client_id, d.grants, d.consents
                ),
            )
        }
        LifecycleCommand::RotateSecret {
            client,
            overlap,
            out,
        } => {
            let r = ops::rotate_client_secret(
                s,
                a,
                &ClientId::new(client),
                ops::RotateSecretBody { overlap },
            )
            .await
            .map_err(refused)?;
            let until = match r.old_secret_until {
                Some(t) => format!("the old secret works until {t} (Unix time), then stops"),
                None => "the old secret stopped working".to_owned(),
            };
            print(
                &out,
                &r,
                &format!(
                    "client_id: {}\nclient_secret: {}\n(the secret is shown only now; store it safely)\n{until}",
                    r.client.client_id, r.client_secret
                ),
            )
        }
    }
}
