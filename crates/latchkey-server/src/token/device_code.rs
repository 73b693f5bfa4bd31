//! The device authorization grant (RFC 8628) for instruments without a keyboard: the device
//! asks at the device authorization endpoint ([`authorize`]) and shows its user a short code;
//! the user types it at `/device` on a phone or computer, signs in as the lab's policy asks and
//! confirms (`signin::device_authorization`); meanwhile the device polls the token endpoint
//! with `grant_type=urn:ietf:params:oauth:grant-type:device_code` ([`exchange`]) and gets
//! `authorization_pending` / `slow_down` until the user answered, then its tokens, once.

use super::TokenResponse;
use crate::protocol::device_code::{self, USER_CODE_LEN, display, user_code_from};
use crate::protocol::{OAuthError, resource, scope};
use crate::secret::{OpaqueToken, TokenHash, TokenKind, random_bytes, random_id};
use crate::state::AppState;
use crate::store::clients::Client;
use crate::store::device_authorizations::{DevicePoll, NewDeviceAuthorization};
use latchkey_core::ErrorCode;
use serde::Serialize;

/// The device authorization request's parameters (RFC 8628 section 3.1), with the `acr_values`
/// and `lab` an authorization request takes too.
#[derive(Debug, Default)]
pub struct DeviceRequest {
    pub scope: Option<String>,
    pub acr_values: Option<String>,
    pub lab: Option<String>,
    /// The services the tokens may be for (RFC 8707).
    pub resource: Vec<String>,
}

/// The device authorization response (RFC 8628 section 3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// The token request's parameters (RFC 8628 section 3.4).
#[derive(Debug, Default)]
pub struct DeviceCodeRequest {
    pub device_code: Option<String>,
    /// The service the access token is for (RFC 8707).
    pub resource: Vec<String>,
}

const MAX_PARAM_LEN: usize = 2048;

/// Stores a new device authorization for the authenticated `client` and answers its codes.
pub async fn authorize(
    state: &AppState,
    client: &Client,
    req: &DeviceRequest,
    now: i64,
) -> Result<DeviceAuthorizationResponse, OAuthError> {
    if !client.allows_grant(device_code::GRANT_TYPE) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the device authorization grant",
        ));
    }
    for (name, v) in [
        ("scope", &req.scope),
        ("acr_values", &req.acr_values),
        ("lab", &req.lab),
    ] {
        if v.as_ref().is_some_and(|v| v.len() > MAX_PARAM_LEN) {
            return Err(OAuthError::invalid_request(format!(
                "`{name}` is longer than {MAX_PARAM_LEN} bytes"
            )));
        }
        if v.as_ref().is_some_and(|v| v.contains('\0')) {
            return Err(OAuthError::invalid_request(format!(
                "`{name}` holds a NUL character"
            )));
        }
    }
    let scope = scope::parse(req.scope.as_deref().unwrap_or(""))?;
    // RFC 8707: the resources the grant may cover, each one the client's registration lists.
    let resources = resource::parse(&req.resource)?;
    resource::check_allowed(&resources, &client.resources)?;
    let acr_values: Vec<&str> = req
        .acr_values
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
        .collect();
    let cfg = &state.config.device_authorization;
    // A user code may collide with a live one (20^8 codes): draw again.
    for _ in 0..4 {
        let device_code = OpaqueToken::generate(TokenKind::DeviceCode);
        let user_code = new_user_code();
        let row = NewDeviceAuthorization {
            id: random_id(),
            device_code_hash: device_code.hash().to_vec(),
            user_code_hash: TokenHash::of(&user_code).to_vec(),
            client_id: client.id.clone(),
            scope: scope::join(&scope),
            acr_values: acr_values.join(" "),
            lab_hint: req.lab.clone().filter(|l| !l.is_empty()),
            resources: resource::join(&resources),
            interval: cfg.interval_secs,
            created_at: now,
            expires_at: now + cfg.ttl_secs,
        };
        if state.store.create_device_authorization(&row).await? {
            let shown = display(&user_code);
            let verification_uri = format!("{}/device", state.issuer);
            return Ok(DeviceAuthorizationResponse {
                device_code: device_code.expose().to_owned(),
                verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
                verification_uri,
                user_code: shown,
                expires_in: cfg.ttl_secs,
                interval: cfg.interval_secs,
            });
        }
    }
    Err(OAuthError::server_error("no free user code after 4 draws"))
}

fn new_user_code() -> String {
    loop {
        // 8 letters need 8 bytes below 240; 16 bytes nearly always hold them.
        if let Some(code) = user_code_from(&random_bytes(2 * USER_CODE_LEN)) {
            return code;
        }
    }
}

/// A poll of the token endpoint: the device's tokens once its user approved.
pub async fn exchange(
    state: &AppState,
    client: &Client,
    req: &DeviceCodeRequest,
    now: i64,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let presented = req
        .device_code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("device_code is missing"))?;
    // RFC 8707: the service the access token is for is decided before the approval is taken,
    // so a refused `resource` leaves it for the next poll.
    let servers = super::Servers::of(state, client, now).await?;
    let requested = req.resource.clone();
    let (allowed, labs) = (client.resources.clone(), client.labs.clone());
    let decided = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let slot = decided.clone();
    let check = move |a: &crate::store::codes::AuthCode| {
        let holder = super::Holder::User {
            lab: a.lab_id.as_deref(),
        };
        let aud = servers.audience(&requested, &a.resources, &allowed, holder, &labs)?;
        if let Ok(mut s) = slot.lock() {
            *s = aud;
        }
        Ok(())
    };
    let hash = TokenHash::of(presented).to_vec();
    match state
        .store
        .poll_device(&hash, &client.id, now, check)
        .await?
    {
        DevicePoll::Unknown => Err(OAuthError::invalid_grant(
            "the device_code is unknown, or was issued to another client",
        )),
        DevicePoll::Refused(code) => Err(OAuthError::new(code, refusal(code))),
        DevicePoll::Rejected(e) => Err(*e),
        DevicePoll::Approved(approval) => {
            let audience = decided.lock().ok().and_then(|mut d| d.take());
            super::authorization_code::start_grant(
                state, client, &approval, audience, now, dpop_jkt,
            )
            .await
        }
    }
}

fn refusal(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::AuthorizationPending => {
            "the user has not answered yet; poll again after the interval"
        }
        ErrorCode::SlowDown => "polled too soon: wait the interval, now 5 seconds longer",
        ErrorCode::AccessDenied => {
            "the user denied the request, or could not sign in as this client requires"
        }
        ErrorCode::ExpiredToken => "the device_code expired: start a new device authorization",
        _ => "the device_code was used already",
    }
}
