//! OAuth clients and signing keys (system administrators): registering a client, and its
//! life cycle — editing its name and redirect URIs, disabling and enabling it, rotating its
//! secret with an overlap in which both secrets work, deleting it with its grants. The
//! built-in clients (the console, the account pages) cannot be changed. Each change evicts
//! the client from this node's cache at once; other nodes see it within the cache's 5 s.

use super::*;
use crate::store::clients::Client;

mod lifecycle;
pub use lifecycle::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    #[schema(value_type = String)]
    pub client_id: ClientId,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub public: bool,
    /// `client_secret_basic` (also `client_secret_post`), `private_key_jwt` or `none`.
    #[serde(default)]
    pub token_endpoint_auth_method: String,
    /// A `private_key_jwt` client's registered JWK Set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Where a `private_key_jwt` client serves its JWK Set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    pub min_acr: Option<String>,
    pub admin_of: Option<String>,
    /// A legacy client allowed to leave PKCE out (every other client must send it).
    #[serde(default)]
    pub pkce_optional: bool,
    /// Must push its authorization requests to `/par` (RFC 9126).
    #[serde(default)]
    pub require_par: bool,
    /// Must prove possession of a DPoP key for every token (RFC 9449 section 5.2).
    #[serde(default)]
    pub require_dpop: bool,
    /// Where it receives logout tokens (OpenID Connect Back-Channel Logout 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// The URI other clients name in `resource` (RFC 8707) to get access tokens for its
    /// service: their `aud`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
    /// The resources (other clients' `resource_uri`) it may get access tokens for.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The labs whose members may sign in to it (ids), or `["*"]`: every lab.
    #[serde(default)]
    pub labs: Vec<String>,
    /// The features its service checks: what may be granted in its labs.
    #[serde(default)]
    pub features: Vec<String>,
    pub created_at: i64,
    /// Built in (the admin console, the account pages): cannot be edited, disabled or deleted.
    pub builtin: bool,
    /// Disabled: it cannot authenticate and its tokens are inactive.
    pub disabled: bool,
    /// When it stops authenticating (Unix seconds); administration clients always have one.
    pub expires_at: Option<i64>,
    /// After a secret rotation: until when the old secret still works.
    pub old_secret_until: Option<i64>,
}

impl From<crate::store::clients::Client> for ClientView {
    fn from(c: crate::store::clients::Client) -> ClientView {
        let now = now();
        ClientView {
            builtin: Client::is_builtin(&c.id),
            disabled: c.lifecycle.disabled_at.is_some(),
            expires_at: c.lifecycle.expires_at,
            old_secret_until: c
                .lifecycle
                .previous_secret
                .as_ref()
                .map(|p| p.until)
                .filter(|t| *t > now),
            public: c.is_public(),
            token_endpoint_auth_method: c.auth_method().to_owned(),
            jwks: c
                .keys
                .as_ref()
                .and_then(|k| k.jwks())
                .and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: c
                .keys
                .as_ref()
                .and_then(|k| k.jwks_uri())
                .map(str::to_owned),
            client_id: ClientId::new(c.id),
            name: c.name,
            redirect_uris: c.redirect_uris,
            grant_types: c.grant_types,
            min_acr: c.min_acr.map(|a| a.as_str().to_owned()),
            admin_of: c.admin_of.map(|a| a.as_stored().to_owned()),
            pkce_optional: c.pkce_optional,
            require_par: c.require_par,
            require_dpop: c.require_dpop,
            backchannel_logout_uri: c.backchannel_logout_uri,
            resource_uri: c.resource_uri,
            resources: c.resources,
            labs: match &c.labs {
                crate::store::clients::ClientLabs::All => vec!["*".to_owned()],
                l => l
                    .listed()
                    .into_iter()
                    .map(|l| l.as_str().to_owned())
                    .collect(),
            },
            features: c.features,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    pub name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// authorization_code, refresh_token, client_credentials,
    /// urn:ietf:params:oauth:grant-type:device_code (or `device_code`) (default: the first two).
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub public: bool,
    /// Authenticate with `private_key_jwt` (RFC 7523) instead of a secret: the client's
    /// public keys as a JWK Set (RFC 7517). No secret is made. Not with `public` or `jwks_uri`.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Authenticate with `private_key_jwt`, the keys fetched from this `https` URL (cached
    /// 5 minutes, fetched again when an assertion names an unknown key). Not with `jwks`.
    pub jwks_uri: Option<String>,
    pub min_acr: Option<String>,
    /// `*` or a lab id: the client may call this API with client_credentials.
    pub admin_of: Option<String>,
    #[serde(default)]
    pub skip_consent: bool,
    /// For a legacy confidential client that cannot send PKCE: let it leave `code_challenge`
    /// out (default false: PKCE is required, RFC 9700 section 2.1.1). Refused for public
    /// clients.
    #[serde(default)]
    pub pkce_optional: bool,
    /// Refuse `/authorize` requests that were not pushed to `/par` first (RFC 9126; default
    /// false, or `par.required` for every client).
    #[serde(default)]
    pub require_par: bool,
    /// Refuse token requests without a DPoP proof (RFC 9449 section 5.2,
    /// `dpop_bound_access_tokens`): every token it gets is sender-constrained.
    #[serde(default)]
    pub require_dpop: bool,
    /// Where it receives a logout token when a session it got tokens from ends (OpenID
    /// Connect Back-Channel Logout 1.0): an `https` URL (`http` only to a loopback address)
    /// on the scheme, host and port of one of its `redirect_uris`.
    pub backchannel_logout_uri: Option<String>,
    /// Makes it a resource server (RFC 8707): the URI other clients name in `resource` to get
    /// access tokens for its service, and those tokens' `aud` (its verifier's audience). An
    /// absolute `https` (or `http`) URI without fragment or query, registered by no other
    /// client.
    pub resource_uri: Option<String>,
    /// The resources it may get access tokens for: other clients' `resource_uri`. A token
    /// request naming any other `resource` is refused with `invalid_target`.
    #[serde(default)]
    pub resources: Vec<String>,
    /// How long until the client stops authenticating: `90d`, `12h`, `30m`, `3600s` (1 minute
    /// to 400 days). Clients with `admin_of` default to 90 days; others never expire.
    pub expires_in: Option<String>,
    /// The labs whose members may sign in to it: lab ids or names, or `["*"]` for every lab.
    /// Required with the authorization_code grant.
    #[serde(default)]
    pub labs: Vec<String>,
    /// The features its service checks (`orders:read`): administrators then pick from these
    /// when they grant features in its labs, and a feature no service of a lab declares
    /// cannot be granted there.
    #[serde(default)]
    pub features: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedClientView {
    pub client: ClientView,
    /// Shown only in this response (none for public and `private_key_jwt` clients).
    pub client_secret: Option<String>,
}

pub async fn list_clients(state: &AppState, admin: &Admin) -> R<Vec<ClientView>> {
    admin.require_system()?;
    Ok(state
        .store
        .list_clients()
        .await?
        .into_iter()
        .map(ClientView::from)
        .collect())
}

pub async fn get_client(state: &AppState, admin: &Admin, id: &ClientId) -> R<ClientView> {
    admin.require_system()?;
    Ok(client_record(state, id).await?.into())
}

/// One back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0): which ended
/// session's logout token went where, and how it went.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogoutDeliveryView {
    pub id: String,
    /// The ended session: the `sid` of the logout token and of the client's ID tokens.
    pub sid: String,
    pub user_id: String,
    /// The `backchannel_logout_uri` it was sent to, without credentials or query.
    pub url: String,
    /// `pending` (waiting for its next attempt), `delivered` (a 2xx answer) or `failed` (the
    /// last attempt failed).
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: Option<i64>,
    /// The last attempt's result: `HTTP <status>`, `timed out`, `could not connect`.
    pub last_result: Option<String>,
    pub delivered_at: Option<i64>,
}

/// A client's newest 50 back-channel logout deliveries, newest first
/// (`GET /clients/{client}/logout-deliveries`).
pub async fn client_logout_deliveries(
    state: &AppState,
    admin: &Admin,
    id: &ClientId,
) -> R<Vec<LogoutDeliveryView>> {
    admin.require_system()?;
    client_record(state, id).await?;
    Ok(state
        .store
        .recent_logouts(id.as_str(), 50)
        .await?
        .into_iter()
        .map(|d| LogoutDeliveryView {
            id: d.id,
            sid: d.session_id,
            user_id: d.user_id,
            url: crate::alerts::webhook::redacted(&d.url),
            status: d.status,
            attempts: d.attempts,
            created_at: d.created_at,
            next_attempt_at: d.next_attempt_at,
            last_result: d.last_result,
            delivered_at: d.delivered_at,
        })
        .collect())
}

/// A client's registration, in whatever state, or `not_found`.
async fn client_record(state: &AppState, id: &ClientId) -> R<Client> {
    state
        .store
        .client_record(id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no client `{id}`")))
}

pub async fn create_client(
    state: &AppState,
    admin: &Admin,
    body: NewClientBody,
) -> R<CreatedClientView> {
    create_client_with(state, admin, body, ClientOptions::default()).await
}

/// What the command line may also choose for a new client, beyond the API's body.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Access-token lifetime for this client (`None`: the configured default).
    pub access_token_ttl_secs: Option<i64>,
    pub id_token_alg: latchkey_core::SigningAlg,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            access_token_ttl_secs: None,
            id_token_alg: latchkey_core::SigningAlg::RS256,
        }
    }
}

/// `create_client` with the options only the command line offers (`latchkey client create
/// --access-token-ttl --id-token-alg`): the same checks, the same `client.create` entry.
pub async fn create_client_with(
    state: &AppState,
    admin: &Admin,
    body: NewClientBody,
    options: ClientOptions,
) -> R<CreatedClientView> {
    admin.require_system()?;
    let min_acr = acr_opt("min_acr", body.min_acr.as_deref())?;
    if let Some(u) = &body.resource_uri {
        crate::provision::check_resource_uri(&state.store, u, Some(&state.issuer), None)
            .await
            .map_err(provision_error)?;
    }
    let expires_at = body
        .expires_in
        .as_deref()
        .map(|d| duration("expires_in", d, 60, MAX_CLIENT_LIFETIME))
        .transpose()?
        .map(|d| now() + d);
    let created = crate::provision::create_client_recorded(
        &state.store,
        crate::provision::NewClient {
            name: body.name,
            redirect_uris: body.redirect_uris,
            post_logout_redirect_uris: body.post_logout_redirect_uris,
            grant_types: body
                .grant_types
                .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]),
            public: body.public,
            access_token_ttl_secs: options.access_token_ttl_secs,
            id_token_alg: options.id_token_alg,
            skip_consent: body.skip_consent,
            min_acr,
            admin_of: body.admin_of,
            pkce_optional: body.pkce_optional,
            require_par: body.require_par,
            require_dpop: body.require_dpop,
            backchannel_logout_uri: body.backchannel_logout_uri,
            resource_uri: body.resource_uri,
            resources: body.resources,
            jwks: body.jwks.map(|j| j.to_string()),
            jwks_uri: body.jwks_uri,
            expires_at,
            labs: body.labs,
            features: body.features,
        },
        |c| {
            vec![admin.event(
                Action::ClientCreate,
                &c.id,
                json!({"after": ClientView::from(c.clone())}),
            )]
        },
    )
    .await
    .map_err(provision_error)?;
    let client = get_client(state, admin, &ClientId::new(created.client_id)).await?;
    Ok(CreatedClientView {
        client,
        client_secret: created.client_secret,
    })
}

/// A provisioning rule's refusal in the API's words.
fn provision_error(e: crate::provision::ProvisionError) -> AdminError {
    match e {
        crate::provision::ProvisionError::Invalid { field, message } => AdminError::invalid(
            field.api_name(),
            crate::provision::Field::api_message(field, &message),
        ),
        crate::provision::ProvisionError::Store(e) => e.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    /// staged, active or retiring.
    pub state: String,
    pub created_at: i64,
    pub activate_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

pub async fn list_keys(state: &AppState, admin: &Admin) -> R<Vec<KeyView>> {
    admin.require_system()?;
    Ok(state
        .store
        .list_keys()
        .await?
        .into_iter()
        .map(|r| KeyView {
            kid: r.kid,
            alg: r.alg,
            state: r.state,
            created_at: r.created_at,
            activate_at: r.activate_at,
            activated_at: r.activated_at,
            retired_at: r.retired_at,
        })
        .collect())
}

pub async fn rotate_keys(state: &AppState, admin: &Admin) -> R<Vec<KeyView>> {
    admin.require_system()?;
    state
        .keys
        .rotate(
            &state.config,
            &state.store,
            &state.kek,
            true,
            admin.actor_id(),
        )
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    list_keys(state, admin).await
}

pub async fn revoke_key(state: &AppState, admin: &Admin, kid: &str) -> R<Vec<KeyView>> {
    admin.require_system()?;
    state
        .keys
        .revoke(&state.store, &state.kek, kid, admin.actor_id())
        .await
        .map_err(|e| match e {
            crate::keys::KeysError::Store(e) => AdminError::from(e),
            e => AdminError::Internal(e.to_string()),
        })?;
    list_keys(state, admin).await
}

/// A client's MFA policy (`PUT /api/v1/clients/{client}/policy`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPolicyBody {
    /// `pwd`, `mfa` or `phr`; null (or left out) removes the client's minimum.
    pub min_acr: Option<String>,
}

/// Sets or clears the weakest authentication a client accepts (`latchkey policy set
/// --client`, `PUT /api/v1/clients/{client}/policy`). A change applies within the client cache's lifetime on every node.
pub async fn set_client_min_acr(
    state: &AppState,
    admin: &Admin,
    client: &ClientId,
    min_acr: Option<&str>,
) -> R<ClientView> {
    admin.require_system()?;
    let min = acr_opt("min_acr", min_acr)?;
    if Client::is_builtin(client.as_str()) {
        return Err(AdminError::Conflict(format!(
            "`{client}` is built in: its minimum is `admin.min_acr` in the configuration"
        )));
    }
    let before = client_record(state, client).await?;
    let event = admin.event(
        Action::PolicyClient,
        client.as_str(),
        json!({
            "before": {"min_acr": before.min_acr.map(|a| a.as_str())},
            "after": {"min_acr": min.map(|a| a.as_str())},
        }),
    );
    if !state
        .store
        .set_client_min_acr(client, min, &[event])
        .await?
    {
        return Err(AdminError::NotFound(format!("no client `{client}`")));
    }
    forget(state, client);
    get_client(state, admin, client).await
}
