//! The step-up of a login flow: a signed-in user proves **only the missing factor**, an
//! authenticator-app code (RFC 6238, each time step accepted once, section 5.2) or a recovery
//! code, whichever reach the level the request needs (passkeys and security keys are in
//! `signin/webauthn/`). Wrong codes end the flow after a few
//! ([`FLOW_MAX_FAILED_CODES`](crate::protocol::authorize::FLOW_MAX_FAILED_CODES)) and count
//! per user in [`throttle`](super::throttle).

use super::{Requester, SignInError, SignedIn, flow, session, throttle};
use crate::audit::{Action, Event};
use crate::factors;
use crate::protocol::authorize::Transition;
use crate::protocol::strength::{Method, Offer, Rules, offer};
use crate::protocol::throttle::CodeLock;
use crate::state::AppState;
use crate::store::flows::LoginFlow;
use crate::store::sessions::Session;
use crate::store::users::User;
use latchkey_core::Acr;

/// What the step-up page asks for: the level needed and the ways offered to reach it.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub need: Acr,
    pub offer: Offer,
}

/// The level this flow needs from this user now (with a deferred enrolment honoured) and the
/// enrolled factors that reach it.
pub async fn ask(state: &AppState, flow: &LoginFlow, user: &User) -> Result<Ask, SignInError> {
    let client = flow::client(state, &flow.request.client_id).await?;
    let (demands, enrolled, grace) =
        flow::demands_for(state, &flow.request, &client, &user.id).await?;
    let need = if flow.request.deferred_enrolment && grace.is_some() {
        demands.without_policy()
    } else {
        demands.level()
    };
    Ok(Ask {
        need,
        offer: offer(&enrolled, need, Rules::of(&state.config)),
    })
}

/// The kind of code the user entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    Totp,
    Recovery,
    /// A method the form does not offer.
    Other,
}

/// The outcome of a code form.
#[derive(Debug)]
pub enum Outcome {
    /// Show the page again with this message; `flow` is the flow as it stands now.
    Retry {
        flow: Box<LoginFlow>,
        message: String,
        /// Codes are locked: answered `429`, with `Retry-After` for a lock that ends.
        lock: Option<CodeLock>,
    },
    SignedIn(SignedIn),
}

/// Checks a code for the signed-in user (`current` is their live session) and moves the
/// flow on, or counts the failure.
pub async fn submit(
    state: &AppState,
    flow: LoginFlow,
    current: (Session, User),
    who: &Requester,
    kind: CodeKind,
    code: &str,
    now: i64,
) -> Result<Outcome, SignInError> {
    let user = current.1.clone();
    if let Some(lock) = throttle::code_standing(state, &user.id, now).await? {
        state.metrics.login(crate::metrics::Login::Throttled, None);
        state.metrics.throttled("code");
        return Ok(Outcome::Retry {
            flow: Box::new(flow),
            message: lock.message(),
            lock: Some(lock),
        });
    }
    let o = ask(state, &flow, &user).await?.offer;
    let checked = match kind {
        CodeKind::Totp if o.totp => check_totp(state, &user, code, now).await?,
        CodeKind::Recovery if o.recovery_code => check_recovery(state, &user, code).await?,
        _ => Err("Choose one of the ways offered on this page.".to_owned()),
    };
    let method = match checked {
        Ok(m) => m,
        Err(mut message) => {
            state.metrics.login(crate::metrics::Login::Failure, None);
            // Wrong codes count per user, whatever flow or node they come from.
            let lock = throttle::code_fail(state, &user.id, who, now).await?;
            if let Some(l) = &lock {
                message = l.message();
            }
            let request = flow::transition(state, &flow, Transition::CodeRefused).await?;
            tracing::info!(user = %user.id, flow = %flow.id, "second factor refused");
            return Ok(Outcome::Retry {
                flow: Box::new(LoginFlow { request, ..flow }),
                message,
                lock,
            });
        }
    };
    if let Err(lock) = throttle::code_settle(state, &user.id, now).await? {
        return Ok(Outcome::Retry {
            flow: Box::new(flow),
            message: lock.message(),
            lock: Some(lock),
        });
    }
    // A step-up renews the live session, whose id is known before the write.
    let event = (method == Method::Totp).then(|| {
        let mut details = who.details();
        details["method"] = method.label().into();
        details["session"] = current.0.id.clone().into();
        Event::new(&user.id, Action::LoginStepUp, &user.id, details)
    });
    let (session, token) = session::establish(
        state,
        Some(current),
        &user,
        method,
        None,
        event.as_ref(),
        now,
    )
    .await?;
    let next = flow::advance(
        state,
        &flow,
        Transition::Proven(method),
        Some((session, user)),
        now,
    )
    .await?;
    Ok(Outcome::SignedIn(SignedIn { next, token }))
}

/// Checks a TOTP code and accepts its time step at most once. `Err(message)`: refused.
async fn check_totp(
    state: &AppState,
    user: &User,
    code: &str,
    now: i64,
) -> Result<Result<Method, String>, SignInError> {
    let Some(row) = state
        .store
        .get_totp(&user.id)
        .await?
        .filter(|t| t.confirmed)
    else {
        return Ok(Err("No authenticator app is set up.".into()));
    };
    let secret = factors::open_totp(&state.kek, &user.id, &row.sealed_secret)
        .map_err(SignInError::internal)?;
    let Some(step) = factors::check_totp(
        &secret,
        code,
        now,
        state.config.authentication.totp_steps_back,
    ) else {
        return Ok(Err("That code is not correct.".into()));
    };
    if state
        .store
        .accept_totp_step(&user.id, step, false, None)
        .await?
    {
        return Ok(Ok(Method::Totp));
    }
    state
        .store
        .audit(Event::new(
            &user.id,
            Action::TotpReplayRefused,
            &user.id,
            serde_json::json!({}),
        ))
        .await?;
    Ok(Err(
        "That code was already used. Wait for your app to show the next code.".into(),
    ))
}

/// Uses a recovery code once. `Err(message)`: refused.
async fn check_recovery(
    state: &AppState,
    user: &User,
    code: &str,
) -> Result<Result<Method, String>, SignInError> {
    let target = user.id.clone();
    let used = state
        .store
        .use_recovery_code(
            &user.id,
            state.recovery_key.hash(&user.id, code),
            factors::legacy_recovery_code_hash(&user.id, code),
            move |left| {
                Event::new(
                    &target,
                    Action::LoginRecoveryCode,
                    &target,
                    serde_json::json!({"unused_left": left}),
                )
            },
        )
        .await?;
    if !used {
        return Ok(Err(
            "That recovery code is not valid or was already used.".to_owned()
        ));
    }
    Ok(Ok(Method::RecoveryCode))
}
