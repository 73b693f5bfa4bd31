//! The user's side of the device authorization grant (RFC 8628 section 3.3): the user types
//! the code their device shows at `/device` ([`enter`]); that starts a login flow like an
//! authorization request of the device's client, so the lab's policy, the client's minimum and
//! the device's `acr_values` apply to the user who approves. The flow always ends on the
//! confirmation page (section 5.4: a user who did not start it must be able to refuse), and
//! instead of a redirect it approves the device ([`approve`]) or denies it ([`refuse`]).
//! The device's side is `token::device_code`.

use super::{BrowserAt, Next, Origin, SignInError, flow};
use crate::audit::{Action, Event};
use crate::protocol::authorize::{AuthRequest, DeviceRef, Prompt, ResponseMode};
use crate::protocol::device_code::{display, normalize};
use crate::protocol::strength::{Strength, requested_level};
use crate::protocol::throttle::source_of;
use crate::secret::{TokenHash, random_id};
use crate::state::AppState;
use crate::store::codes::AuthCode;
use crate::store::sessions::Session;
use crate::store::users::User;
use latchkey_core::ErrorCode;

/// What `/device` shows after the user answered (`/device/done?outcome=`).
pub mod outcome {
    pub const APPROVED: &str = "approved";
    pub const DENIED: &str = "denied";
    pub const UNMET: &str = "unmet";
    pub const EXPIRED: &str = "expired";
}

/// What entering a code led to.
#[derive(Debug)]
pub enum Entered {
    /// The code names a pending request: its sign-in flow goes on here.
    Flow(Next),
    /// No pending request has this code (mistyped, expired, or answered already).
    Unknown,
}

fn throttle_key(source: std::net::IpAddr) -> String {
    format!("uc:{}", source_of(source))
}

/// The user typed `typed` at `/device`. Wrong codes count against the address
/// (`throttle.user_codes_per_source` per window); past that budget nothing is looked up.
pub async fn enter(
    state: &AppState,
    typed: &str,
    session: Option<(Session, User)>,
    browser: BrowserAt<'_>,
    now: i64,
) -> Result<Entered, SignInError> {
    let cfg = &state.config.throttle;
    let key = throttle_key(browser.source);
    let live = state
        .store
        .throttle_counters(vec![key.clone()], now, cfg.window_secs)
        .await?;
    if let Some(c) = live.iter().find(|c| c.count >= cfg.user_codes_per_source) {
        state.metrics.throttled("user_codes");
        return Err(SignInError::TooManyUserCodes {
            retry_after: (c.window_start + cfg.window_secs - now).max(1),
        });
    }
    let code = normalize(typed);
    let pending = match &code {
        Some(code) => {
            state
                .store
                .pending_device(&TokenHash::of(code).to_vec(), now)
                .await?
        }
        None => None,
    };
    let client = match &pending {
        Some(p) => state.client(&p.client_id).await?,
        None => None,
    };
    let (Some(pending), Some(client), Some(code)) = (pending, client, code) else {
        // Counted, or already at the limit (a parallel wrong code got there first): either way
        // the next entry from this address is refused once the budget is spent.
        let _counted = state
            .store
            .throttle_take(
                vec![(key, cfg.user_codes_per_source)],
                now,
                cfg.window_secs,
                |_| Vec::new(),
            )
            .await?;
        return Ok(Entered::Unknown);
    };
    let acr_values: Vec<String> = pending
        .acr_values
        .split(' ')
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    let request = AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: String::new(),
        response_mode: ResponseMode::Query,
        scope: pending
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        state: None,
        nonce: None,
        code_challenge: None,
        // The confirmation page is always shown, whatever the client's consent settings.
        prompt: Prompt {
            consent: true,
            ..Prompt::default()
        },
        max_age: None,
        login_hint: None,
        requested_acr: requested_level(acr_values.iter().map(String::as_str)),
        acr_values,
        requested_at: now,
        proven: Vec::new(),
        deferred_enrolment: false,
        failed_codes: 0,
        lab_hint: pending.lab_hint,
        lab: None,
        device: Some(DeviceRef {
            id: pending.id,
            user_code: display(&code),
        }),
        dpop_jkt: None,
        resources: crate::protocol::resource::split(&pending.resources),
    };
    let next = flow::proceed(
        state,
        request,
        &client,
        session,
        Origin::New { browser },
        now,
    )
    .await?;
    Ok(Entered::Flow(next))
}

/// The flow for `device` reached everything it needs and the user confirmed: the device's
/// next poll gets tokens for this sign-in (`session`, `strength`, the flow's lab and scope).
pub async fn approve(
    state: &AppState,
    request: &AuthRequest,
    device: &DeviceRef,
    session: &Session,
    strength: &Strength,
    now: i64,
) -> Result<Next, SignInError> {
    let approval = AuthCode {
        grant_id: random_id(),
        client_id: request.client_id.clone(),
        user_id: session.user_id.clone(),
        session_id: session.id.clone(),
        redirect_uri: String::new(),
        scope: request.scope.join(" "),
        nonce: None,
        code_challenge: None,
        auth_time: strength.auth_time,
        acr: strength.acr.as_str().to_owned(),
        amr: strength.amr.iter().map(|a| a.as_str().to_owned()).collect(),
        lab_id: request.lab.clone(),
        dpop_jkt: None,
        resources: request.resources.clone(),
        expires_at: 0,
    };
    let event = Event::new(
        &session.user_id,
        Action::DeviceApproved,
        &session.user_id,
        serde_json::json!({
            "client": request.client_id,
            "scope": approval.scope,
            "lab": request.lab,
            "acr": approval.acr,
        }),
    );
    let approved = state
        .store
        .approve_device(&device.id, &approval, &event, now)
        .await?;
    Ok(done(if approved {
        outcome::APPROVED
    } else {
        outcome::EXPIRED
    }))
}

/// The flow for `device` ends without approval (`code`: the user denied, or no factor of
/// theirs reaches the level asked): the device's next poll is `access_denied`.
pub async fn refuse(
    state: &AppState,
    request: &AuthRequest,
    device: &DeviceRef,
    user_id: Option<&str>,
    code: ErrorCode,
    now: i64,
) -> Result<Next, SignInError> {
    let denied = state.store.deny_device(&device.id, now).await?;
    if denied && let Some(user) = user_id {
        state
            .store
            .audit(Event::new(
                user,
                Action::DeviceDenied,
                user,
                serde_json::json!({"client": request.client_id, "error": code.as_str()}),
            ))
            .await?;
    }
    Ok(done(match code {
        _ if !denied => outcome::EXPIRED,
        ErrorCode::UnmetAuthenticationRequirements | ErrorCode::InteractionRequired => {
            outcome::UNMET
        }
        _ => outcome::DENIED,
    }))
}

fn done(outcome: &str) -> Next {
    Next::Local(format!("/device/done?outcome={outcome}"))
}
