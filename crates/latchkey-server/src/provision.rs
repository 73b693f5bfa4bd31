//! Provisioning labs, users and clients: the rules both the CLI and (later) the admin API
//! apply before anything reaches the store.

use crate::config::Config;
use crate::password::{PasswordHasher, check_new_password};
use crate::protocol::redirect_uri::validate_for_registration;
use crate::secret::{OpaqueToken, TokenKind, random_b64};
use crate::store::client_keys::ClientKeys;
use crate::store::clients::{
    ADMIN_CLIENT_DEFAULT_LIFETIME, AdminOf, Client, ClientLabs, Lifecycle,
};
use crate::store::labs::Lab;
use crate::store::users::{NewUser, UserSummary};
use crate::store::{Store, StoreError, now};
use latchkey_core::SigningAlg;
use serde::Serialize;

/// A refusal that says what to fix: the input it concerns, typed, and a message in the
/// command line's words (`Display`, what `latchkey` prints).
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{message}")]
    Invalid { field: Field, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The input a [`ProvisionError::Invalid`] concerns, with its name on each surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Email,
    Lab,
    Password,
    GrantTypes,
    RedirectUris,
    PostLogoutRedirectUris,
    Public,
    AccessTokenTtl,
    AdminOf,
    /// The labs a client serves (`labs` in the API, `--lab` repeated on the command line).
    ClientLabs,
    Features,
    /// A `private_key_jwt` client's JWK Set (`jwks`, `--jwks-file`).
    Jwks,
    /// Where a `private_key_jwt` client serves its JWK Set (`jwks_uri`, `--jwks-uri`).
    JwksUri,
    /// Where a client receives logout tokens (`backchannel_logout_uri`,
    /// `--backchannel-logout-uri`).
    BackchannelLogoutUri,
    /// The URI other clients name to get tokens for a resource server (`resource_uri`,
    /// `--resource-uri`; RFC 8707).
    ResourceUri,
    /// The resources a client may get tokens for (`resources`, `--resource` repeated).
    Resources,
}

impl Field {
    /// Longest flag first, so that no flag is replaced inside a longer one.
    pub const ALL: [Field; 17] = [
        Field::PostLogoutRedirectUris,
        Field::BackchannelLogoutUri,
        Field::AccessTokenTtl,
        Field::ResourceUri,
        Field::RedirectUris,
        Field::GrantTypes,
        Field::Jwks,
        Field::JwksUri,
        Field::Resources,
        Field::Password,
        Field::AdminOf,
        Field::Public,
        Field::Email,
        Field::Features,
        Field::Name,
        Field::Lab,
        Field::ClientLabs,
    ];

    /// The field of the admin API's request body (`NewClientBody`, …).
    pub fn api_name(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Email => "email",
            Field::Lab => "lab",
            Field::Password => "password",
            Field::GrantTypes => "grant_types",
            Field::RedirectUris => "redirect_uris",
            Field::PostLogoutRedirectUris => "post_logout_redirect_uris",
            Field::Public => "public",
            Field::AccessTokenTtl => "access_token_ttl_secs",
            Field::AdminOf => "admin_of",
            Field::ClientLabs => "labs",
            Field::Features => "features",
            Field::Jwks => "jwks",
            Field::JwksUri => "jwks_uri",
            Field::BackchannelLogoutUri => "backchannel_logout_uri",
            Field::ResourceUri => "resource_uri",
            Field::Resources => "resources",
        }
    }

    /// The command line's flag.
    pub fn cli_flag(self) -> &'static str {
        match self {
            Field::Name => "--name",
            Field::Email => "--email",
            Field::Lab => "--lab",
            Field::Password => "--password",
            Field::GrantTypes => "--grant-type",
            Field::RedirectUris => "--redirect-uri",
            Field::PostLogoutRedirectUris => "--post-logout-redirect-uri",
            Field::Public => "--public",
            Field::AccessTokenTtl => "--access-token-ttl",
            Field::AdminOf => "--admin-of",
            Field::ClientLabs => "--lab",
            Field::Features => "--feature",
            Field::Jwks => "--jwks-file",
            Field::JwksUri => "--jwks-uri",
            Field::BackchannelLogoutUri => "--backchannel-logout-uri",
            Field::ResourceUri => "--resource-uri",
            Field::Resources => "--resource",
        }
    }

    /// `message` (about `field`) in the API's words: each command-line flag becomes its body
    /// field, `field`'s own first (`--lab` is `labs` for a client, `lab` for a user).
    pub fn api_message(field: Field, message: &str) -> String {
        let m = message.replace(field.cli_flag(), &format!("`{}`", field.api_name()));
        Field::ALL.iter().fold(m, |m, f| {
            m.replace(f.cli_flag(), &format!("`{}`", f.api_name()))
        })
    }
}

fn invalid<T>(field: Field, message: impl Into<String>) -> Result<T, ProvisionError> {
    Err(ProvisionError::Invalid {
        field,
        message: message.into(),
    })
}

/// Labs are chosen by id or name wherever one is named (`--lab`, `labs`, `--admin-of`), and
/// `*` means every lab there: a new lab's name must not be mistaken for either.
pub async fn lab_name_is_reserved(store: &Store, name: &str) -> Result<bool, StoreError> {
    Ok(name == "*" || store.find_lab(name).await?.is_some_and(|l| l.id == name))
}

pub async fn create_lab(store: &Store, name: &str) -> Result<Lab, ProvisionError> {
    let name = name.trim();
    if name.is_empty()
        || name.len() > 100
        || name.chars().any(latchkey_core::names::is_unsafe_in_name)
    {
        return invalid(
            Field::Name,
            "--name must be 1 to 100 characters, without control or text-direction characters",
        );
    }
    if lab_name_is_reserved(store, name).await? {
        return invalid(
            Field::Name,
            "--name cannot be `*` or another lab's id (labs are chosen by id or name)",
        );
    }
    Ok(store.create_lab(name, |_| Vec::new()).await?)
}

pub async fn create_user(
    store: &Store,
    config: &Config,
    hasher: &PasswordHasher,
    lab: &str,
    email: &str,
    name: Option<&str>,
    password: &str,
) -> Result<UserSummary, ProvisionError> {
    let Ok(email) = latchkey_core::names::Email::parse(email) else {
        return invalid(
            Field::Email,
            format!("--email `{}` is not an email address", email.trim()),
        );
    };
    let email = email.as_str();
    let Some(lab) = store.find_lab(lab).await? else {
        return invalid(
            Field::Lab,
            format!(
                "no lab with id or name `{lab}`; create it with `latchkey lab create --name …`"
            ),
        );
    };
    let mut context = vec![email];
    context.extend(email.split('@'));
    if let Some(n) = name {
        context.push(n);
    }
    check_new_password(&config.password, password, &context)
        .or_else(|e| invalid(Field::Password, format!("password refused: {e}")))?;
    let hash = hasher
        .hash(password)
        .await
        .or_else(|e| invalid(Field::Password, e.to_string()))?;
    Ok(store
        .create_user(NewUser {
            email: email.to_owned(),
            name: name.map(str::to_owned),
            password_hash: hash,
            lab_id: lab.id,
        })
        .await?)
}

pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub public: bool,
    pub access_token_ttl_secs: Option<i64>,
    pub id_token_alg: SigningAlg,
    pub skip_consent: bool,
    pub min_acr: Option<latchkey_core::Acr>,
    /// Admin API access with client_credentials: `*` (everything) or a lab id.
    pub admin_of: Option<String>,
    /// A legacy confidential client that cannot send PKCE (public clients always must).
    pub pkce_optional: bool,
    /// Must push its authorization requests (RFC 9126).
    pub require_par: bool,
    /// Must bind its tokens to a DPoP key (RFC 9449).
    pub require_dpop: bool,
    /// Where it receives logout tokens (OpenID Connect Back-Channel Logout 1.0).
    pub backchannel_logout_uri: Option<String>,
    /// The URI other clients name in `resource` to get tokens for its service (RFC 8707):
    /// it is then a resource server, and those tokens' `aud`.
    pub resource_uri: Option<String>,
    /// The resources (other clients' `resource_uri`) it may get tokens for.
    pub resources: Vec<String>,
    /// Authenticates with `private_key_jwt` (RFC 7523) instead of a secret: its JWK Set
    /// (JSON), or the URL it serves it at. At most one; neither with `public`.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    /// When the client stops authenticating; `None`: never, except that a client with
    /// `admin_of` gets [`ADMIN_CLIENT_DEFAULT_LIFETIME`].
    pub expires_at: Option<i64>,
    /// The labs whose members may sign in to it (ids or names), or `["*"]` for every lab.
    /// Required with the authorization_code grant.
    pub labs: Vec<String>,
    /// The features its service checks (administrators pick from these in its labs).
    pub features: Vec<String>,
}

/// What `latchkey client create` prints. The secret appears here once and is never stored.
#[derive(Debug, Serialize)]
pub struct CreatedClient {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: &'static str,
    pub id_token_signed_response_alg: SigningAlg,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_of: Option<String>,
}

/// Longest access-token lifetime a client may be given (`--access-token-ttl`).
pub const MAX_CLIENT_ACCESS_TOKEN_TTL: i64 = 86_400;

pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    crate::protocol::device_code::GRANT_TYPE,
];

/// Grant types as given (`device_code` is short for RFC 8628's URN), in their stored form.
pub fn grant_type_names(given: Vec<String>) -> Vec<String> {
    given
        .into_iter()
        .map(|g| match g.trim() {
            "device_code" => crate::protocol::device_code::GRANT_TYPE.to_owned(),
            other => other.to_owned(),
        })
        .collect()
}

/// A client's display name: 1 to 200 characters, no control characters.
pub fn check_client_name(name: &str) -> Result<(), ProvisionError> {
    if name.trim().is_empty()
        || name.len() > 200
        || name.chars().any(latchkey_core::names::is_unsafe_in_name)
    {
        return invalid(
            Field::Name,
            "--name must be 1 to 200 characters, without control or text-direction characters",
        );
    }
    Ok(())
}

/// Redirect URIs (or post-logout ones, by `field`) as registration accepts them.
pub fn check_client_uris(field: Field, uris: &[String]) -> Result<(), ProvisionError> {
    for uri in uris {
        validate_for_registration(uri).or_else(|m| invalid(field, m))?;
    }
    Ok(())
}

/// The labs a client serves, from ids or names (`*` alone: every lab). A client that signs
/// people in (`code`: the authorization_code grant) must name at least one.
pub async fn resolve_client_labs(
    store: &Store,
    given: &[String],
    code: bool,
) -> Result<ClientLabs, ProvisionError> {
    if given.iter().any(|l| l.trim() == "*") {
        if given.len() > 1 {
            return invalid(
                Field::ClientLabs,
                "`*` (every lab) cannot be combined with named labs",
            );
        }
        return Ok(ClientLabs::All);
    }
    if given.is_empty() && code {
        return invalid(
            Field::ClientLabs,
            "name the labs whose members may sign in to this client (lab ids or names), or `*` for every lab",
        );
    }
    let mut labs = std::collections::BTreeSet::new();
    for l in given {
        match store.find_lab(l.trim()).await? {
            Some(lab) => {
                labs.insert(latchkey_core::names::LabId::new(lab.id));
            }
            None => {
                return invalid(
                    Field::ClientLabs,
                    format!("no lab `{l}` (give a lab id or name, or `*` for every lab)"),
                );
            }
        }
    }
    Ok(ClientLabs::Only(labs))
}

/// Feature names a client declares: each well-formed (`orders:read`), sorted, without repeats.
pub fn check_features(given: &[String]) -> Result<Vec<String>, ProvisionError> {
    if given.len() > 200 {
        return invalid(Field::Features, "at most 200 features per client");
    }
    let mut out = std::collections::BTreeSet::new();
    for f in given {
        let name = latchkey_core::names::FeatureName::parse(f.trim())
            .or_else(|e| invalid(Field::Features, format!("`{f}`: {e}")))?;
        out.insert(name.as_str().to_owned());
    }
    Ok(out.into_iter().collect())
}

/// A client's `backchannel_logout_uri` (OpenID Connect Back-Channel Logout 1.0 section 2.2):
/// an absolute `https` URL (`http` only to a loopback address) without fragment, whose scheme,
/// host and port are those of one of the client's `redirect_uris`. The URL as stored.
pub fn check_backchannel_logout_uri(
    uri: &str,
    redirect_uris: &[String],
) -> Result<String, ProvisionError> {
    let uri = uri.trim();
    let url =
        crate::client_keys::check_outbound_uri("a backchannel_logout_uri", uri).or_else(|e| {
            invalid(
                Field::BackchannelLogoutUri,
                format!("--backchannel-logout-uri: {e}"),
            )
        })?;
    let same_origin = redirect_uris
        .iter()
        .filter_map(|r| url::Url::parse(r).ok())
        .any(|r| r.origin() == url.origin());
    if !same_origin {
        return invalid(
            Field::BackchannelLogoutUri,
            "--backchannel-logout-uri must have the scheme, host and port of one of the client's --redirect-uri",
        );
    }
    Ok(uri.to_owned())
}

/// A client's `resource_uri` (RFC 8707 section 2: an absolute URI without fragment or query;
/// here `https` or `http`), not registered by another client (`except`: the client being
/// edited). `issuer`: Latchkey itself, refused (`None`: checked by the caller). The URI as stored (exactly as given: clients
/// must name it byte for byte).
pub async fn check_resource_uri(
    store: &Store,
    uri: &str,
    issuer: Option<&str>,
    except: Option<&str>,
) -> Result<String, ProvisionError> {
    crate::protocol::resource::check_uri(uri, issuer)
        .or_else(|e| invalid(Field::ResourceUri, format!("--resource-uri `{uri}`: {e}")))?;
    if let Some(owner) = store.client_of_resource(uri).await?
        && Some(owner.as_str()) != except
    {
        return invalid(
            Field::ResourceUri,
            format!("--resource-uri `{uri}` is the resource URI of the client {owner} already"),
        );
    }
    Ok(uri.to_owned())
}

/// The resources a client may get tokens for: each the `resource_uri` of a registered client,
/// listed once.
pub async fn check_resources(
    store: &Store,
    resources: &[String],
) -> Result<Vec<String>, ProvisionError> {
    let mut out: Vec<String> = Vec::new();
    for r in resources {
        crate::protocol::resource::check_uri(r, None)
            .or_else(|e| invalid(Field::Resources, format!("--resource `{r}`: {e}")))?;
        if store.client_of_resource(r).await?.is_none() {
            return invalid(
                Field::Resources,
                format!(
                    "--resource `{r}` is not the resource URI of any registered client (register \
                     the service with --resource-uri first)"
                ),
            );
        }
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    if out.len() > 50 {
        return invalid(Field::Resources, "at most 50 --resource per client");
    }
    Ok(out)
}

/// A `private_key_jwt` client's keys as registration accepts them: a JWK Set with at least
/// one usable public key, or an `https` `jwks_uri` (`http` only on loopback); not both.
pub fn check_client_keys(
    jwks: Option<String>,
    jwks_uri: Option<String>,
) -> Result<Option<ClientKeys>, ProvisionError> {
    match (jwks, jwks_uri) {
        (Some(_), Some(_)) => invalid(Field::Jwks, "give --jwks-file or --jwks-uri, not both"),
        (Some(j), None) => {
            let set = crate::crypto::client_jwk::ClientJwks::parse(j.as_bytes())
                .or_else(|e| invalid(Field::Jwks, format!("--jwks-file: {e}")))?;
            tracing::debug!(keys = set.len(), "client JWK Set accepted");
            // Stored compact: the parse above proved it is JSON.
            let compact = serde_json::from_str::<serde_json::Value>(&j)
                .map(|v| v.to_string())
                .unwrap_or(j);
            Ok(Some(ClientKeys::Jwks(compact)))
        }
        (None, Some(u)) => {
            crate::client_keys::check_jwks_uri(u.trim())
                .or_else(|e| invalid(Field::JwksUri, format!("--jwks-uri: {e}")))?;
            Ok(Some(ClientKeys::JwksUri(u.trim().to_owned())))
        }
        (None, None) => Ok(None),
    }
}

/// [`create_client_recorded`] without audit entries (the command line records its own).
pub async fn create_client(store: &Store, c: NewClient) -> Result<CreatedClient, ProvisionError> {
    create_client_recorded(store, c, |_| Vec::new()).await
}

/// Checks and registers a client; `events` gives the audit entries committed with it.
pub async fn create_client_recorded(
    store: &Store,
    c: NewClient,
    events: impl FnOnce(&Client) -> Vec<crate::audit::Event>,
) -> Result<CreatedClient, ProvisionError> {
    check_client_name(&c.name)?;
    let mut c = c;
    c.grant_types = grant_type_names(c.grant_types);
    for g in &c.grant_types {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return invalid(
                Field::GrantTypes,
                format!(
                    "--grant-types: unknown grant type `{g}` (allowed: {})",
                    GRANT_TYPES.join(", ")
                ),
            );
        }
    }
    let code = c.grant_types.iter().any(|g| g == "authorization_code");
    // Clients people sign in to: they serve labs, and may hold refresh tokens.
    let signs_in = code
        || c.grant_types
            .iter()
            .any(|g| g == crate::protocol::device_code::GRANT_TYPE);
    if code && c.redirect_uris.is_empty() {
        return invalid(
            Field::RedirectUris,
            "the authorization_code grant needs at least one --redirect-uri",
        );
    }
    if c.public && c.grant_types.iter().any(|g| g == "client_credentials") {
        return invalid(
            Field::Public,
            "a --public client cannot use client_credentials (it has no secret)",
        );
    }
    if c.public && c.pkce_optional {
        return invalid(
            Field::Public,
            "a --public client always uses PKCE; only a confidential client may make it optional",
        );
    }
    if c.grant_types.iter().any(|g| g == "refresh_token") && !signs_in {
        return invalid(
            Field::GrantTypes,
            "refresh_token needs authorization_code or device_code as well",
        );
    }
    check_client_uris(Field::RedirectUris, &c.redirect_uris)?;
    check_client_uris(Field::PostLogoutRedirectUris, &c.post_logout_redirect_uris)?;
    if let Some(ttl) = c.access_token_ttl_secs
        && !(30..=86_400).contains(&ttl)
    {
        return invalid(
            Field::AccessTokenTtl,
            "--access-token-ttl must be between 30 and 86400 seconds",
        );
    }
    let mut admin_of = None;
    if let Some(scope) = c.admin_of.take() {
        if !c.grant_types.iter().any(|g| g == "client_credentials") {
            return invalid(
                Field::AdminOf,
                "--admin-of needs the client_credentials grant",
            );
        }
        admin_of = Some(if scope == "*" {
            AdminOf::AllLabs
        } else {
            match store.find_lab(&scope).await? {
                Some(lab) => AdminOf::Lab(latchkey_core::names::LabId::new(lab.id)),
                None => {
                    return invalid(
                        Field::AdminOf,
                        format!(
                            "--admin-of: no lab `{scope}` (give a lab id or name, or `*` for all)"
                        ),
                    );
                }
            }
        });
    }
    let labs = resolve_client_labs(store, &c.labs, signs_in).await?;
    let features = check_features(&c.features)?;
    let backchannel_logout_uri = c
        .backchannel_logout_uri
        .take()
        .map(|u| check_backchannel_logout_uri(&u, &c.redirect_uris))
        .transpose()?;
    let resources = check_resources(store, &c.resources).await?;
    // The caller checked it against the issuer (`check_resource_uri`); checked again here
    // for everything else.
    let resource_uri = match c.resource_uri.take() {
        Some(u) => Some(check_resource_uri(store, &u, None, None).await?),
        None => None,
    };
    let keys = check_client_keys(c.jwks.take(), c.jwks_uri.take())?;
    if c.public && keys.is_some() {
        return invalid(
            Field::Public,
            "a --public client has no keys: give --jwks-file or --jwks-uri only to a confidential client",
        );
    }
    let id = format!("lk_{}", random_b64(12));
    let secret =
        (!c.public && keys.is_none()).then(|| OpaqueToken::generate(TokenKind::ClientSecret));
    let client = Client {
        id: id.clone(),
        name: c.name.trim().to_owned(),
        secret_hash: secret.as_ref().map(|s| s.hash().to_vec()),
        redirect_uris: c.redirect_uris,
        post_logout_redirect_uris: c.post_logout_redirect_uris,
        grant_types: c.grant_types,
        access_token_ttl_secs: c.access_token_ttl_secs,
        id_token_alg: c.id_token_alg,
        skip_consent: c.skip_consent,
        created_at: now(),
        min_acr: c.min_acr,
        lifecycle: Lifecycle {
            expires_at: c.expires_at.or_else(|| {
                admin_of
                    .is_some()
                    .then(|| now() + ADMIN_CLIENT_DEFAULT_LIFETIME)
            }),
            ..Lifecycle::default()
        },
        admin_of,
        pkce_optional: c.pkce_optional,
        require_par: c.require_par,
        require_dpop: c.require_dpop,
        backchannel_logout_uri,
        resource_uri,
        resources,
        keys,
        labs,
        features,
    };
    let recorded = events(&client);
    let auth_method = client.auth_method();
    store.create_client(&client, &recorded).await?;
    Ok(CreatedClient {
        client_id: id,
        client_secret: secret.map(|s| s.expose().to_owned()),
        name: client.name,
        redirect_uris: client.redirect_uris,
        post_logout_redirect_uris: client.post_logout_redirect_uris,
        grant_types: client.grant_types,
        token_endpoint_auth_method: auth_method,
        id_token_signed_response_alg: client.id_token_alg,
        admin_of: client.admin_of.map(|a| a.as_stored().to_owned()),
    })
}
