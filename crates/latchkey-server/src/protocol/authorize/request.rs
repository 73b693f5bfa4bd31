//! A validated authorization request and its validation (RFC 6749 section 4.1.1, OIDC Core
//! section 3.1.2.1-3.1.2.2): parameters as they arrive, the checks that decide whether an
//! error goes to Latchkey's own page or back to the client (OIDC Core 3.1.2.6).

use super::super::strength::{ClaimsError, Method, essential_acr, requested_level};
use super::super::{OAuthError, pkce, redirect_uri, resource, scope};
use latchkey_core::{Acr, ErrorCode};
use serde::{Deserialize, Serialize};

/// The parameters as they arrive (query string or form body), not yet trusted.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub acr_values: Option<String>,
    pub claims: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    /// Latchkey's extension: the lab (id or name) the token should be for.
    pub lab: Option<String>,
    /// The thumbprint of the DPoP key the code is to be bound to (RFC 9449 section 10).
    pub dpop_jkt: Option<String>,
    /// The services the tokens are for (RFC 8707 `resource`, which may repeat).
    #[serde(skip)]
    pub resource: Vec<String>,
    /// Names of parameters that appeared more than once (RFC 6749 section 3.1 forbids it).
    #[serde(skip)]
    pub duplicates: Vec<String>,
    /// The parameters were pushed by the authenticated client (RFC 9126), not sent by the
    /// browser.
    #[serde(skip)]
    pub pushed: bool,
}

impl RawParams {
    /// Builds the parameters from decoded pairs, noting duplicates.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> RawParams {
        let mut p = RawParams::default();
        for (k, v) in pairs {
            if k == "resource" {
                // RFC 8707 section 2: the one parameter that may appear more than once.
                p.resource.push(v);
                continue;
            }
            let slot = match k.as_str() {
                "client_id" => &mut p.client_id,
                "redirect_uri" => &mut p.redirect_uri,
                "response_type" => &mut p.response_type,
                "response_mode" => &mut p.response_mode,
                "scope" => &mut p.scope,
                "state" => &mut p.state,
                "nonce" => &mut p.nonce,
                "code_challenge" => &mut p.code_challenge,
                "code_challenge_method" => &mut p.code_challenge_method,
                "prompt" => &mut p.prompt,
                "max_age" => &mut p.max_age,
                "login_hint" => &mut p.login_hint,
                "acr_values" => &mut p.acr_values,
                "claims" => &mut p.claims,
                "request" => &mut p.request,
                "request_uri" => &mut p.request_uri,
                "lab" => &mut p.lab,
                "dpop_jkt" => &mut p.dpop_jkt,
                // Unknown parameters are ignored (RFC 6749 section 3.1).
                _ => continue,
            };
            if slot.is_some() {
                p.duplicates.push(k);
            } else if !v.is_empty() {
                *slot = Some(v);
            }
        }
        p
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A validated authorization request: what the login flow stores and finally answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub acr_values: Vec<String>,
    /// When the request arrived.
    pub requested_at: i64,
    /// The factors the user proved within this flow, in order. Only these count for
    /// `prompt=login` / `max_age=0`, and they count for `max_age` however long the flow took:
    /// a factor proven earlier in the same (whole) second as the request does not.
    #[serde(default)]
    pub proven: Vec<Method>,
    /// The level `acr_values` and an essential `acr` claim ask for.
    #[serde(default)]
    pub requested_acr: Option<Acr>,
    /// The user chose to enrol later while their lab's grace period lasts.
    #[serde(default)]
    pub deferred_enrolment: bool,
    /// Wrong second-factor codes entered in this flow (it ends after a few).
    #[serde(default)]
    pub failed_codes: u32,
    /// The request's `lab` parameter (a lab id or name), a hint only: it is honoured when the
    /// user is a member of that lab and ignored otherwise.
    #[serde(default)]
    pub lab_hint: Option<String>,
    /// The lab this flow is for (its id), once decided by [`choose_lab`] or the picker. Never
    /// taken from the request itself.
    #[serde(default)]
    pub lab: Option<String>,
    /// The device authorization (RFC 8628) this flow answers, instead of a redirect URI: the
    /// flow ends by approving or denying it, and always asks the user to confirm.
    #[serde(default)]
    pub device: Option<DeviceRef>,
    /// The DPoP key (RFC 7638 thumbprint) the code is bound to (RFC 9449 section 10): only a
    /// token request with a proof by that key can redeem it.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    /// The services (RFC 8707 resource URIs) the grant's access tokens may be for, each one
    /// the client's registration lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

/// The device authorization a flow answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRef {
    /// Its id in the store.
    pub id: String,
    /// Its user code as shown (`WDJB-MJHT`), for the confirmation page.
    pub user_code: String,
}

/// What the endpoint knows about the client named by `client_id`.
#[derive(Debug, Clone)]
pub struct ClientView<'a> {
    pub redirect_uris: &'a [String],
    pub public: bool,
    /// A legacy confidential client registered to leave PKCE out; every other client must
    /// send a `code_challenge` (RFC 9700 section 2.1.1).
    pub pkce_optional: bool,
    pub allows_authorization_code: bool,
    /// Its authorization requests must be pushed (RFC 9126): the client's `require_par` or
    /// `par.required`.
    pub require_par: bool,
    /// The resources (RFC 8707) it may get tokens for.
    pub resources: &'a [String],
}

/// Where an error goes: Latchkey's own page when the client or redirect URI cannot be trusted,
/// else back to the client (OIDC Core 3.1.2.6, RFC 6749 4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    Page(OAuthError),
    Redirect {
        redirect_uri: String,
        response_mode: ResponseMode,
        state: Option<String>,
        error: OAuthError,
    },
}

const MAX_PARAM_LEN: usize = 2048;

/// Validates a request. `client` is `None` when `client_id` names no registered client.
pub fn validate(
    p: RawParams,
    client: Option<ClientView<'_>>,
    now: i64,
) -> Result<AuthRequest, AuthorizeError> {
    let page = |d: &str| AuthorizeError::Page(OAuthError::invalid_request(d));
    for d in &p.duplicates {
        if d == "client_id" || d == "redirect_uri" {
            return Err(page(&format!("the parameter `{d}` appears more than once")));
        }
    }
    if p.client_id.is_none() {
        return Err(page("the request has no client_id"));
    }
    let Some(client) = client else {
        return Err(AuthorizeError::Page(OAuthError::new(
            ErrorCode::InvalidClient,
            "the client_id is not registered with this server",
        )));
    };
    let Some(redirect) = p.redirect_uri.clone() else {
        return Err(page(
            "the request has no redirect_uri (OpenID Connect requires one)",
        ));
    };
    if !redirect_uri::is_registered(client.redirect_uris, &redirect) {
        return Err(page(
            "the redirect_uri is not registered for this client (it must match exactly)",
        ));
    }
    // From here on the redirect URI is trusted, so errors go back to the client.
    let state = p.state.clone();
    let (response_mode, mode_error) = match p.response_mode.as_deref() {
        None | Some("query") => (ResponseMode::Query, None),
        Some("form_post") => (ResponseMode::FormPost, None),
        Some(other) => (
            ResponseMode::Query,
            Some(format!(
                "response_mode `{other}` is not supported (query, form_post)"
            )),
        ),
    };
    let fail = |code: ErrorCode, d: String| AuthorizeError::Redirect {
        redirect_uri: redirect.clone(),
        response_mode,
        state: state.clone(),
        error: OAuthError::new(code, d),
    };
    if let Some(d) = mode_error {
        return Err(fail(ErrorCode::InvalidRequest, d));
    }
    if client.require_par && !p.pushed {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "this client must push its authorization requests to the pushed authorization request endpoint (RFC 9126)".into(),
        ));
    }
    if let Some(d) = p.duplicates.first() {
        return Err(fail(
            ErrorCode::InvalidRequest,
            format!("the parameter `{d}` appears more than once"),
        ));
    }
    for (name, v) in [
        ("state", &p.state),
        ("nonce", &p.nonce),
        ("login_hint", &p.login_hint),
        ("scope", &p.scope),
        ("acr_values", &p.acr_values),
        ("claims", &p.claims),
        ("lab", &p.lab),
    ] {
        if v.as_ref().is_some_and(|v| v.len() > MAX_PARAM_LEN) {
            return Err(fail(
                ErrorCode::InvalidRequest,
                format!("`{name}` is longer than {MAX_PARAM_LEN} bytes"),
            ));
        }
        // What is kept (the nonce in the code, the scope in the grant) must be storable in
        // either database, and move between them: PostgreSQL text cannot hold NUL.
        if v.as_ref().is_some_and(|v| v.contains('\0')) {
            return Err(fail(
                ErrorCode::InvalidRequest,
                format!("`{name}` holds a NUL character"),
            ));
        }
    }
    if p.request.is_some() {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "request objects are not supported".into(),
        ));
    }
    if p.request_uri.is_some() {
        return Err(fail(
            ErrorCode::RequestUriNotSupported,
            "request_uri is supported only as the answer of the pushed authorization request endpoint (RFC 9126), and cannot be pushed".into(),
        ));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "the request has no response_type".into(),
            ));
        }
        Some(other) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                format!("response_type `{other}` is not supported; use `code`"),
            ));
        }
    }
    if !client.allows_authorization_code {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant".into(),
        ));
    }
    let scope =
        scope::parse(p.scope.as_deref().unwrap_or("")).map_err(|e| fail(e.code, e.description))?;
    let code_challenge = match (
        p.code_challenge.as_deref(),
        p.code_challenge_method.as_deref(),
    ) {
        (None, None) if client.public || !client.pkce_optional => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "PKCE is required: send code_challenge with code_challenge_method=S256".into(),
            ));
        }
        (None, None) => None,
        (None, Some(_)) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method without code_challenge".into(),
            ));
        }
        (Some(_), Some("plain")) | (Some(_), None) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256; `plain` is not supported".into(),
            ));
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                format!("code_challenge_method `{m}` is not supported; use S256"),
            ));
        }
        (Some(c), Some(_)) => {
            if !pkce::valid_challenge(c) {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "code_challenge must be 43 base64url characters (RFC 7636 section 4.2)".into(),
                ));
            }
            Some(c.to_owned())
        }
    };
    // A thumbprint is a base64url SHA-256 hash, the same form as a code challenge.
    if p.dpop_jkt
        .as_deref()
        .is_some_and(|j| !pkce::valid_challenge(j))
    {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "dpop_jkt must be a JWK SHA-256 thumbprint: 43 base64url characters (RFC 9449 section 10)".into(),
        ));
    }
    let mut prompt = Prompt::default();
    for v in p
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match v {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            other => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    format!("prompt value `{other}` is not supported (none, login, consent)"),
                ));
            }
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values".into(),
        ));
    }
    let max_age = match p.max_age.as_deref() {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "max_age must be a non-negative number of seconds".into(),
                ));
            }
        },
    };
    let essential = match p.claims.as_deref().map(essential_acr).transpose() {
        Ok(level) => level.flatten(),
        Err(ClaimsError::Malformed(d)) => return Err(fail(ErrorCode::InvalidRequest, d)),
        Err(ClaimsError::UnknownEssentialAcr(values)) => {
            return Err(fail(
                ErrorCode::UnmetAuthenticationRequirements,
                format!(
                    "none of the essential acr values ({}) is supported: this provider knows {}",
                    values.join(", "),
                    Acr::ALL.map(Acr::as_str).join(", ")
                ),
            ));
        }
    };
    // RFC 8707 section 2: an invalid resource, or one this client may not get tokens for.
    let resources = resource::parse(&p.resource).map_err(|e| fail(e.code, e.description))?;
    resource::check_allowed(&resources, client.resources)
        .map_err(|e| fail(e.code, e.description))?;
    let acr_values: Vec<String> = p
        .acr_values
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(AuthRequest {
        client_id: p.client_id.unwrap_or_default(),
        redirect_uri: redirect,
        response_mode,
        scope,
        state: p.state,
        nonce: p.nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint: p.login_hint,
        requested_acr: requested_level(acr_values.iter().map(String::as_str)).max(essential),
        acr_values,
        requested_at: now,
        proven: Vec::new(),
        deferred_enrolment: false,
        failed_codes: 0,
        lab_hint: p.lab,
        lab: None,
        device: None,
        dpop_jkt: p.dpop_jkt,
        resources,
    })
}
