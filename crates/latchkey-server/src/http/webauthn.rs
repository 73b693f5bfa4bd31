//! WebAuthn ceremonies as JSON endpoints for `static/webauthn.js`: passwordless sign-in with
//! a passkey (discoverable credential, user verification required; also conditional-UI
//! autofill), a passkey or security key as the step-up factor, and registration from the
//! account pages.
//!
//! `POST /webauthn/{login,verify,register}/begin` (form with `csrf`) stores the challenge state
//! as a ceremony bound to this browser and returns `{ceremony, options}`;
//! `POST /webauthn/finish` (JSON `{ceremony, credential, name?}`) consumes the ceremony once
//! and answers `{next}` (where the page goes) or `{error}`. The finish endpoint takes JSON
//! only, which a cross-site form cannot send, and needs the unguessable ceremony id.

use super::State;
use super::authorize::{current_session, flow_gone};
use super::cookies;
use super::errors::PageError;
use super::login::{csrf_purpose, load_flow};
use crate::factors;
use crate::secret::{TokenHash, random_id};
use crate::state::AppState;
use crate::store::factors::Ceremony;
use crate::store::now;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, SecurityKeyAuthentication,
    SecurityKeyRegistration, WebauthnError,
};

/// The server half of a ceremony, stored between begin and finish.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Pending {
    /// Passwordless sign-in within a login flow.
    Login {
        flow: String,
        state: DiscoverableAuthentication,
    },
    /// Step-up with user verification (reaches `phr`).
    VerifyPasskey {
        flow: String,
        state: PasskeyAuthentication,
    },
    /// Step-up as a second factor after a password (reaches `mfa`, `phr` when verified).
    VerifySecurityKey {
        flow: String,
        state: SecurityKeyAuthentication,
    },
    RegisterPasskey {
        back: String,
        state: PasskeyRegistration,
    },
    RegisterSecurityKey {
        back: String,
        state: SecurityKeyRegistration,
    },
}

#[derive(Serialize)]
struct Begun<T: Serialize> {
    ceremony: String,
    options: T,
}

/// The relying party, or a readable refusal when passkeys are disabled.
fn rp(state: &AppState) -> Result<&webauthn_rs::Webauthn, PageError> {
    state.webauthn.as_ref().ok_or_else(|| {
        PageError::bad_request(
            "Passkeys are not available",
            "Passkeys and security keys are not available at this address. Ask your administrator to serve Latchkey under a domain name.",
        )
    })
}

fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "error": message }))
}

fn next(location: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "next": location }))
}

async fn store_ceremony(
    state: &AppState,
    browser: &str,
    user_id: Option<String>,
    pending: &Pending,
) -> Result<String, PageError> {
    let c = Ceremony {
        id: random_id(),
        browser_hash: TokenHash::of(browser).to_vec(),
        user_id,
        purpose: match pending {
            Pending::Login { .. } => "login",
            Pending::VerifyPasskey { .. } | Pending::VerifySecurityKey { .. } => "verify",
            Pending::RegisterPasskey { .. } | Pending::RegisterSecurityKey { .. } => "register",
        }
        .to_owned(),
        state: serde_json::to_string(pending).map_err(PageError::internal)?,
        expires_at: now() + state.config.authentication.webauthn_timeout_secs,
    };
    state.store.put_ceremony(&c).await?;
    Ok(c.id)
}

fn begun<T: Serialize>(ceremony: String, options: T) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Begun { ceremony, options })
}

/// `POST /webauthn/login/begin` (form `flow`, `csrf`, `mode` = `modal` | `conditional`).
pub async fn login_begin(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let (flow, browser) = load_flow(&state, &req, form.get("flow")).await?;
    super::require_csrf(&state, &browser, &csrf_purpose(&flow.id), &form)?;
    let (mut options, st) = rp(&state)?
        .start_discoverable_authentication()
        .map_err(PageError::internal)?;
    if form.get("mode") != Some("conditional") {
        options.mediation = None;
    }
    let id = store_ceremony(
        &state,
        &browser,
        None,
        &Pending::Login {
            flow: flow.id.clone(),
            state: st,
        },
    )
    .await?;
    Ok(begun(id, options))
}

/// `POST /webauthn/verify/begin` (form `flow`, `csrf`, `need` = `mfa` | `phr`): a challenge
/// for the signed-in user's own credentials.
pub async fn verify_begin(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let (flow, browser) = load_flow(&state, &req, form.get("flow")).await?;
    super::require_csrf(&state, &browser, &csrf_purpose(&flow.id), &form)?;
    let Some((session, _)) = current_session(&state, &req).await? else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "Your sign-in has ended. Return to the application and start again.",
        ));
    };
    let rows = state.store.list_webauthn(&session.user_id).await?;
    if rows.is_empty() {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "You have no passkey or security key.",
        ));
    }
    let creds: Vec<Credential> = rows
        .iter()
        .map(factors::credential)
        .collect::<Result<_, _>>()
        .map_err(PageError::internal)?;
    let flow_id = flow.id.clone();
    let (value, pending) = if form.get("need") == Some("phr") {
        let keys: Vec<_> = creds.into_iter().map(Into::into).collect();
        let (o, st) = rp(&state)?
            .start_passkey_authentication(&keys)
            .map_err(PageError::internal)?;
        (
            serde_json::to_value(o).map_err(PageError::internal)?,
            Pending::VerifyPasskey {
                flow: flow_id,
                state: st,
            },
        )
    } else {
        let keys: Vec<_> = creds.into_iter().map(Into::into).collect();
        let (o, st) = rp(&state)?
            .start_securitykey_authentication(&keys)
            .map_err(PageError::internal)?;
        (
            serde_json::to_value(o).map_err(PageError::internal)?,
            Pending::VerifySecurityKey {
                flow: flow_id,
                state: st,
            },
        )
    };
    let id = store_ceremony(&state, &browser, Some(session.user_id), &pending).await?;
    Ok(begun(id, value))
}

/// `POST /webauthn/register/begin` (form `csrf`, `kind` = `passkey` | `security_key`, and
/// `flow` when enrolling during a sign-in). Needs a recent authentication.
pub async fn register_begin(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let form = super::page_form(&body)?;
    let browser = cookies::existing_browser_id(&state, &req).ok_or_else(flow_gone)?;
    super::require_csrf(&state, &browser, super::account::CSRF_PURPOSE, &form)?;
    let Some((session, user)) = current_session(&state, &req).await? else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "You are not signed in.",
        ));
    };
    if crate::signin::account::change_requirement(&state, &session, &user.id, now())
        .await?
        .is_some()
    {
        return Ok(json_error(
            StatusCode::FORBIDDEN,
            "Please confirm it is you before adding a passkey: reload the page and sign in again.",
        ));
    }
    let back = match form.get("flow") {
        Some(f) => format!(
            "/login/continue?flow={}",
            url::form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
        ),
        None => "/account".to_owned(),
    };
    let existing = state.store.list_webauthn(&user.id).await?;
    let exclude: Vec<_> = existing
        .iter()
        .filter_map(|r| factors::credential(r).ok())
        .map(|c| c.cred_id)
        .collect();
    let handle = factors::user_handle(&user.id).map_err(PageError::internal)?;
    let display = user.name.clone().unwrap_or_else(|| user.email.clone());
    let (value, pending) = if form.get("kind") == Some("security_key") {
        let (o, st) = rp(&state)?
            .start_securitykey_registration(
                handle,
                &user.email,
                &display,
                Some(exclude),
                None,
                None,
            )
            .map_err(PageError::internal)?;
        (
            serde_json::to_value(o).map_err(PageError::internal)?,
            Pending::RegisterSecurityKey { back, state: st },
        )
    } else {
        let (mut o, st) = rp(&state)?
            .start_passkey_registration(handle, &user.email, &display, Some(exclude))
            .map_err(PageError::internal)?;
        // A passkey must be discoverable so that it can sign in without a username
        // (`residentKey` supersedes the legacy `requireResidentKey` in WebAuthn Level 2).
        if let Some(sel) = o.public_key.authenticator_selection.as_mut() {
            sel.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Required);
        }
        (
            serde_json::to_value(o).map_err(PageError::internal)?,
            Pending::RegisterPasskey { back, state: st },
        )
    };
    let id = store_ceremony(&state, &browser, Some(user.id), &pending).await?;
    Ok(begun(id, value))
}

#[derive(Deserialize)]
pub struct Finish {
    ceremony: String,
    credential: serde_json::Value,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /webauthn/finish`.
pub async fn finish(
    state: State,
    req: HttpRequest,
    body: web::Json<Finish>,
) -> Result<HttpResponse, PageError> {
    let body = body.into_inner();
    let Some(browser) = cookies::existing_browser_id(&state, &req) else {
        return Ok(json_error(StatusCode::BAD_REQUEST, "Cookies are needed."));
    };
    let Some(c) = state.store.take_ceremony(&body.ceremony).await? else {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "This request has expired. Try again.",
        ));
    };
    if !TokenHash::of(&browser).matches(&c.browser_hash) {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            "This request was started in another browser.",
        ));
    }
    let pending: Pending = serde_json::from_str(&c.state).map_err(PageError::internal)?;
    match pending {
        Pending::Login { flow, state: st } => {
            let Ok(pkc) = serde_json::from_value::<PublicKeyCredential>(body.credential) else {
                return Ok(json_error(StatusCode::BAD_REQUEST, "Malformed credential."));
            };
            let Ok((handle, cred_id)) = rp(&state)?.identify_discoverable_authentication(&pkc)
            else {
                return Ok(json_error(
                    StatusCode::BAD_REQUEST,
                    "This passkey did not say whose it is.",
                ));
            };
            let Some(row) = state
                .store
                .find_webauthn(&factors::cred_id_b64(cred_id))
                .await?
                .filter(|r| factors::user_handle(&r.user_id).ok() == Some(handle))
            else {
                return Ok(json_error(
                    StatusCode::UNAUTHORIZED,
                    "This passkey is not registered with Latchkey (it may have been removed).",
                ));
            };
            let mut cred = factors::credential(&row).map_err(PageError::internal)?;
            let result = rp(&state)?.finish_discoverable_authentication_v2(&pkc, st, &cred);
            let current = current_session(&state, &req).await?;
            let outcome = crate::signin::webauthn::sign_in(
                &state,
                &flow,
                &browser,
                current,
                &row,
                &mut cred,
                result,
                now(),
            )
            .await?;
            asserted(&state, outcome)
        }
        Pending::VerifyPasskey { flow, state: st } => {
            let Ok(pkc) = serde_json::from_value::<PublicKeyCredential>(body.credential) else {
                return Ok(json_error(StatusCode::BAD_REQUEST, "Malformed credential."));
            };
            let result = rp(&state)?.finish_passkey_authentication(&pkc, &st);
            step_up(&state, &req, &flow, &browser, c.user_id, &pkc, result).await
        }
        Pending::VerifySecurityKey { flow, state: st } => {
            let Ok(pkc) = serde_json::from_value::<PublicKeyCredential>(body.credential) else {
                return Ok(json_error(StatusCode::BAD_REQUEST, "Malformed credential."));
            };
            let result = rp(&state)?.finish_securitykey_authentication(&pkc, &st);
            step_up(&state, &req, &flow, &browser, c.user_id, &pkc, result).await
        }
        Pending::RegisterPasskey { back, state: st } => {
            let Ok(reg) = serde_json::from_value::<RegisterPublicKeyCredential>(body.credential)
            else {
                return Ok(json_error(StatusCode::BAD_REQUEST, "Malformed credential."));
            };
            let result = rp(&state)?
                .finish_passkey_registration(&reg, &st)
                .map(Credential::from);
            registered(&state, &req, c.user_id, "passkey", body.name, back, result).await
        }
        Pending::RegisterSecurityKey { back, state: st } => {
            let Ok(reg) = serde_json::from_value::<RegisterPublicKeyCredential>(body.credential)
            else {
                return Ok(json_error(StatusCode::BAD_REQUEST, "Malformed credential."));
            };
            let result = rp(&state)?
                .finish_securitykey_registration(&reg, &st)
                .map(Credential::from);
            registered(
                &state,
                &req,
                c.user_id,
                "security_key",
                body.name,
                back,
                result,
            )
            .await
        }
    }
}

/// The missing factor of a step-up, proven with a passkey or security key.
async fn step_up(
    state: &AppState,
    req: &HttpRequest,
    flow: &str,
    browser: &str,
    ceremony_user: Option<String>,
    pkc: &PublicKeyCredential,
    result: Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
) -> Result<HttpResponse, PageError> {
    let current = current_session(state, req).await?;
    let outcome = crate::signin::webauthn::step_up(
        state,
        flow,
        browser,
        current,
        ceremony_user.as_deref(),
        pkc.get_credential_id(),
        result,
        now(),
    )
    .await?;
    asserted(state, outcome)
}

/// Renders an assertion's outcome as the JSON `webauthn.js` expects.
fn asserted(
    state: &AppState,
    outcome: crate::signin::webauthn::Asserted,
) -> Result<HttpResponse, PageError> {
    use crate::signin::webauthn::Refusal;
    let s = match outcome {
        Ok(s) => s,
        Err(r) => {
            let (status, message) = match r {
                Refusal::CounterRegression => (
                    StatusCode::UNAUTHORIZED,
                    "This passkey or security key reported a signature counter that went backwards, which suggests it was copied. It was not accepted; contact your administrator.",
                ),
                Refusal::NotVerified => (
                    StatusCode::UNAUTHORIZED,
                    "The passkey or security key could not be verified.",
                ),
                Refusal::AccountCannotSignIn => {
                    (StatusCode::UNAUTHORIZED, "This account cannot sign in.")
                }
                Refusal::SessionEnded => (StatusCode::UNAUTHORIZED, "Your sign-in has ended."),
                Refusal::SessionChanged => (StatusCode::UNAUTHORIZED, "Your sign-in changed."),
                Refusal::NotYours => (
                    StatusCode::UNAUTHORIZED,
                    "This passkey or security key is not registered to your account.",
                ),
            };
            return Ok(json_error(status, message));
        }
    };
    let location = match s.next {
        crate::signin::Next::Local(l) => l,
        crate::signin::Next::Page { path, flow, .. } => format!("{path}?flow={flow}"),
        crate::signin::Next::Client(_) => {
            return Err(PageError::internal(
                "a ceremony answered the client directly",
            ));
        }
    };
    let mut resp = next(location);
    resp.add_cookie(&cookies::session_cookie(state, &s.token))
        .map_err(PageError::internal)?;
    Ok(resp)
}

/// A registration's outcome, from the account pages or an enrolment during a sign-in.
async fn registered(
    state: &AppState,
    req: &HttpRequest,
    user_id: Option<String>,
    kind: &str,
    name: Option<String>,
    back: String,
    result: Result<Credential, WebauthnError>,
) -> Result<HttpResponse, PageError> {
    let Some(current) = current_session(state, req).await? else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "You are not signed in.",
        ));
    };
    if user_id.as_deref() != Some(current.1.id.as_str()) {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "Your sign-in changed.",
        ));
    }
    let cred = match result {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(user = %current.1.id, error = %e, "WebAuthn registration refused");
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "The passkey or security key could not be registered.",
            ));
        }
    };
    let token = match crate::signin::account::register_webauthn(
        state,
        current,
        kind,
        name.as_deref(),
        &cred,
        now(),
    )
    .await
    {
        Ok(t) => t,
        Err(crate::signin::SignInError::Store(crate::store::StoreError::Conflict(m))) => {
            return Ok(json_error(StatusCode::CONFLICT, &m));
        }
        Err(e) => return Err(e.into()),
    };
    let mut resp = next(back);
    if let Some(t) = token {
        resp.add_cookie(&cookies::session_cookie(state, &t))
            .map_err(PageError::internal)?;
    }
    Ok(resp)
}
