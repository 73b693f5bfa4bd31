//! Finishing WebAuthn ceremonies in a login flow (W3C WebAuthn Level 2 section 7.2): a passkey
//! as the first factor (passwordless), a passkey or security key as the missing factor of a
//! step-up. An assertion whose signature counter did not move forward (section 6.1.1, a
//! cloned authenticator) is refused and audited. The ceremonies themselves (challenges,
//! browser binding) are in [`ceremony`](super::ceremony).

use super::Refusal;
use crate::audit::{Action, Event};
use crate::factors;
use crate::protocol::authorize::Transition;
use crate::protocol::strength::Method;
use crate::signin::{Next, SignInError, SignedIn, flow, session};
use crate::state::AppState;
use crate::store::factors::WebauthnRow;
use crate::store::sessions::{SeenFrom, Session};
use crate::store::users::User;
use webauthn_rs::prelude::{AuthenticationResult, Credential, WebauthnError};

/// An assertion's outcome: signed in (go to `next`), or refused.
pub type Asserted = Result<SignedIn, Refusal>;

/// Stores an assertion's counter and backup state; refuses (and audits) a counter that did
/// not move forward.
async fn record_assertion(
    state: &AppState,
    row: &WebauthnRow,
    cred: &mut Credential,
    result: Result<AuthenticationResult, WebauthnError>,
) -> Result<Result<Method, Refusal>, SignInError> {
    let regression = async || -> Result<Refusal, SignInError> {
        tracing::warn!(user = %row.user_id, credential = %row.id, "WebAuthn counter went backwards");
        state
            .store
            .audit(Event::new(
                &row.user_id,
                Action::WebauthnCounterRegression,
                &row.user_id,
                serde_json::json!({"credential": row.id, "stored_count": row.sign_count}),
            ))
            .await?;
        Ok(Refusal::CounterRegression)
    };
    let res = match result {
        Ok(r) => r,
        Err(WebauthnError::CredentialPossibleCompromise) => return Ok(Err(regression().await?)),
        Err(e) => {
            tracing::info!(user = %row.user_id, error = %e, "WebAuthn assertion refused");
            return Ok(Err(Refusal::NotVerified));
        }
    };
    if res.counter() > cred.counter {
        cred.counter = res.counter();
    }
    cred.backup_state = res.backup_state();
    cred.backup_eligible |= res.backup_eligible();
    // The ceremony compared the counter with the one stored when it began; the stored one
    // may have moved since (another assertion): it must still be behind this one.
    let recorded = state
        .store
        .record_webauthn_use(
            &row.id,
            serde_json::to_string(cred).map_err(SignInError::internal)?,
            i64::from(cred.counter),
            cred.backup_state,
        )
        .await?;
    if !recorded {
        return Ok(Err(regression().await?));
    }
    Ok(Ok(Method::Webauthn {
        uv: res.user_verified(),
        synced: cred.backup_eligible,
        hw: state
            .attestation
            .is_hardware(row.attestation_root.as_deref(), cred.backup_eligible),
    }))
}

/// Notes in the flow that a factor was proven in it (for `prompt=login` / `max_age`); the
/// browser continues it at `/login/continue` (a JSON answer cannot redirect the page).
async fn authenticated(
    state: &AppState,
    flow_id: &str,
    browser: &str,
    method: Method,
) -> Result<Next, SignInError> {
    let f = flow::load(state, Some(flow_id), Some(browser)).await?;
    flow::transition(state, &f, Transition::Proven(method)).await?;
    Ok(Next::Local(format!("/login/continue?flow={flow_id}")))
}

/// Passwordless sign-in with the discoverable credential `row` (already matched to the user
/// handle it presented) in flow `flow_id`.
#[expect(
    clippy::too_many_arguments,
    reason = "one ceremony's inputs, each typed"
)]
pub async fn sign_in(
    state: &AppState,
    flow_id: &str,
    browser: &str,
    current: Option<(Session, User)>,
    row: &WebauthnRow,
    cred: &mut Credential,
    result: Result<AuthenticationResult, WebauthnError>,
    origin: &serde_json::Value,
    now: i64,
) -> Result<Asserted, SignInError> {
    let method = match record_assertion(state, row, cred, result).await? {
        Ok(m) => m,
        Err(r) => return Ok(Err(r)),
    };
    let Some(user) = state
        .store
        .get_user(&row.user_id)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(Err(Refusal::AccountCannotSignIn));
    };
    let mut details = origin.clone();
    details["credential"] = row.id.clone().into();
    let event = Event::new(&user.id, Action::LoginPasskey, &user.id, details);
    let seen = SeenFrom {
        source: origin["source"].as_str().unwrap_or_default().to_owned(),
        user_agent: origin["user_agent"].as_str().unwrap_or_default().to_owned(),
    };
    let (session, token) = session::establish(
        state,
        current,
        &user,
        method,
        Some(&seen),
        Some(&event),
        now,
    )
    .await?;
    let next = authenticated(state, flow_id, browser, method).await?;
    tracing::info!(user = %user.id, session = %session.id, "login succeeded with a passkey");
    Ok(Ok(SignedIn { next, token }))
}

/// The missing factor of a step-up, proven with one of the signed-in user's credentials
/// (`credential_id`: the one the assertion names; `ceremony_user`: whom the ceremony began
/// for).
#[expect(
    clippy::too_many_arguments,
    reason = "one ceremony's inputs, each typed"
)]
pub async fn step_up(
    state: &AppState,
    flow_id: &str,
    browser: &str,
    current: Option<(Session, User)>,
    ceremony_user: Option<&str>,
    credential_id: &[u8],
    result: Result<AuthenticationResult, WebauthnError>,
    origin: &serde_json::Value,
    now: i64,
) -> Result<Asserted, SignInError> {
    let Some(current) = current else {
        return Ok(Err(Refusal::SessionEnded));
    };
    let user = current.1.clone();
    if ceremony_user != Some(user.id.as_str()) {
        return Ok(Err(Refusal::SessionChanged));
    }
    let Some(row) = state
        .store
        .find_webauthn(&factors::cred_id_b64(credential_id))
        .await?
        .filter(|r| r.user_id == user.id)
    else {
        return Ok(Err(Refusal::NotYours));
    };
    let mut cred = factors::credential(&row).map_err(SignInError::internal)?;
    let method = match record_assertion(state, &row, &mut cred, result).await? {
        Ok(m) => m,
        Err(r) => return Ok(Err(r)),
    };
    // A step-up renews the live session, whose id is known before the write.
    let mut details = origin.clone();
    details["method"] = method.label().into();
    details["credential"] = row.id.clone().into();
    details["session"] = current.0.id.clone().into();
    let event = Event::new(&user.id, Action::LoginStepUp, &user.id, details);
    let (_, token) =
        session::establish(state, Some(current), &user, method, None, Some(&event), now).await?;
    let next = authenticated(state, flow_id, browser, method).await?;
    Ok(Ok(SignedIn { next, token }))
}
