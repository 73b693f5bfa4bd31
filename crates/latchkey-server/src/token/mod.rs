//! The token service: one function per operation of the token, revocation (RFC 7009),
//! introspection (RFC 7662) and UserInfo (OIDC Core section 5.3) endpoints. Each takes a typed
//! request, the authenticated client (see [`client_auth`]) and `now`, and returns a typed
//! outcome or an [`OAuthError`]; the handlers in `http/` parse and render. The pure checks live
//! in `protocol/` ([`crate::protocol::code`], [`crate::protocol::refresh`],
//! [`crate::protocol::id_token`]); signing in [`jwt`].
//!
//! One module per grant (RFC 6749 section 4): [`authorization_code`], [`refresh_token`],
//! [`client_credentials`], [`device_code`] (RFC 8628).

pub mod access;
pub mod authorization_code;
pub mod client_assertion;
pub mod client_auth;
pub mod client_credentials;
pub mod device_code;
pub mod dpop;
pub mod introspection;
pub mod jwt;
pub mod refresh_token;
pub mod revocation;
pub mod userinfo;

use crate::protocol::{OAuthError, resource};
use crate::state::AppState;
use crate::store::clients::{Client, ClientLabs};
use latchkey_core::ErrorCode;
use serde::Serialize;

/// A successful token response (RFC 6749 section 5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// A token request, by grant type.
#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode(authorization_code::CodeRequest),
    RefreshToken(refresh_token::RefreshRequest),
    ClientCredentials(client_credentials::ClientCredentialsRequest),
    DeviceCode(device_code::DeviceCodeRequest),
}

impl TokenRequest {
    /// The `grant_type` value (RFC 6749 sections 4.1.3, 4.4.2, 6; RFC 8628 section 3.4).
    pub fn grant_type(&self) -> &'static str {
        match self {
            TokenRequest::AuthorizationCode(_) => "authorization_code",
            TokenRequest::RefreshToken(_) => "refresh_token",
            TokenRequest::ClientCredentials(_) => "client_credentials",
            TokenRequest::DeviceCode(_) => crate::protocol::device_code::GRANT_TYPE,
        }
    }
}

/// Refuses a `grant_type` Latchkey does not implement (RFC 6749 section 5.2).
pub fn unsupported_grant_type(grant_type: &str) -> OAuthError {
    OAuthError::new(
        ErrorCode::UnsupportedGrantType,
        format!("grant_type `{grant_type}` is not supported"),
    )
}

/// Issues tokens for an authenticated client: checks the client may use the grant, then runs
/// the grant's exchange, binding the tokens to `dpop_jkt` when the request carried a DPoP
/// proof (RFC 9449). `origin` (`source`, `user_agent` of the request) goes into the audit
/// entry of a detected replay.
pub async fn issue(
    state: &AppState,
    client: &Client,
    request: &TokenRequest,
    now: i64,
    origin: &serde_json::Value,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let grant_type = request.grant_type();
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use the {grant_type} grant"),
        ));
    }
    // RFC 9449 section 5.2: a client registered for DPoP-bound tokens gets no other kind.
    if client.require_dpop && dpop_jkt.is_none() {
        return Err(dpop::invalid_proof(
            dpop::Endpoint::Token,
            "this client must send a DPoP proof (its tokens are DPoP-bound)",
        ));
    }
    let jkt = dpop_jkt;
    let mut issued = match request {
        TokenRequest::AuthorizationCode(r) => {
            authorization_code::exchange(state, client, r, now, origin, jkt).await
        }
        TokenRequest::RefreshToken(r) => {
            refresh_token::exchange(state, client, r, now, origin, jkt).await
        }
        TokenRequest::ClientCredentials(r) => {
            client_credentials::exchange(state, client, r, now, jkt).await
        }
        TokenRequest::DeviceCode(r) => device_code::exchange(state, client, r, now, jkt).await,
    }?;
    if jkt.is_some() {
        // RFC 9449 section 5: the token type of a DPoP-bound access token.
        issued.token_type = "DPoP";
    }
    Ok(issued)
}

/// The access-token lifetime for `client`: its own, or the server's default.
fn access_token_ttl(state: &AppState, client: &Client) -> i64 {
    client
        .access_token_ttl_secs
        .unwrap_or(state.config.tokens.access_token_ttl_secs)
}

/// Whom an access token is for, for the resource checks of [`Servers::audience`].
#[derive(Debug, Clone, Copy)]
enum Holder<'a> {
    /// A user's token for `lab` (`None`: a user in no lab).
    User { lab: Option<&'a str> },
    /// The client itself (`client_credentials`).
    Client,
}

/// The resource servers (RFC 8707) of the resources a client's registration lists, as they are
/// now: the labs each active one serves, by resource URI. Read before anything is spent (a
/// code, a device approval, a refresh token), so that the decision itself ([`Servers::audience`])
/// is pure and can run inside the store's transaction. Empty, without a read, for a client
/// that lists none.
#[derive(Debug, Clone, Default)]
struct Servers(std::collections::HashMap<String, ClientLabs>);

impl Servers {
    async fn of(state: &AppState, client: &Client, now: i64) -> Result<Servers, OAuthError> {
        let mut servers = std::collections::HashMap::new();
        if client.resources.is_empty() {
            return Ok(Servers(servers));
        }
        // One query for the owners; their registrations come from the client cache.
        for (uri, id) in state.store.clients_of_resources(&client.resources).await? {
            if let Some(s) = state.client(&id).await?.filter(|s| s.is_active(now)) {
                servers.insert(uri, s.labs.clone());
            }
        }
        Ok(Servers(servers))
    }

    /// The `aud` of the access token a request gets: `None` for the client itself, or the
    /// resource the request names (`requested`) or its authorization covers (`granted`), per
    /// [`resource::audience`] (`allowed`: the client's registration now), when an active
    /// client is registered with that `resource_uri` and serves the token's lab (for a
    /// client's own token: shares a lab with it). Every refusal is `invalid_target`.
    fn audience(
        &self,
        requested: &[String],
        granted: &[String],
        allowed: &[String],
        holder: Holder<'_>,
        client_labs: &ClientLabs,
    ) -> Result<Option<String>, OAuthError> {
        let requested = resource::parse_token_request(requested)?;
        let aud = match holder {
            Holder::User { .. } => resource::audience(&requested, granted, allowed)?,
            Holder::Client => match requested.first() {
                None => None,
                Some(r) => {
                    resource::check_allowed(&requested, allowed)?;
                    Some(r.clone())
                }
            },
        };
        let Some(aud) = aud else {
            return Ok(None);
        };
        let Some(labs) = self.0.get(&aud) else {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("no active service is registered for the resource `{aud}`"),
            ));
        };
        let serves = match holder {
            Holder::User { lab } => labs.serves(lab),
            Holder::Client => labs.shares_a_lab(client_labs),
        };
        if !serves {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("the service of the resource `{aud}` does not serve the lab of this token"),
            ));
        }
        Ok(Some(aud))
    }
}

/// The user's roles and effective features in the grant's lab, read at each token issuance
/// (a changed grant applies to the next token); `invalid_grant` once they left the lab.
async fn member_grants(
    state: &AppState,
    user_id: &str,
    lab: Option<&str>,
) -> Result<(Vec<String>, Vec<String>), OAuthError> {
    let Some(lab) = lab else {
        return Ok((vec![], vec![]));
    };
    let g = state.store.member_grants(user_id, lab).await?;
    if !g.member {
        return Err(OAuthError::invalid_grant(
            "the user is no longer a member of this grant's lab",
        ));
    }
    Ok((g.roles, g.features.into_iter().collect()))
}
