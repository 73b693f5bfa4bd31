//! Signing in with an e-mail and password, the first factor of a login flow. A wrong password
//! issues nothing and is counted by [`throttle`](super::throttle); while locked, passwords are
//! not even checked (passkeys still work).

use super::{SignInError, SignedIn, flow, session, throttle};
use crate::audit::{Action, Event};
use crate::password::Verified;
use crate::protocol::authorize::Transition;
use crate::protocol::strength::Method;
use crate::signin::throttle::Attempt;
use crate::state::AppState;
use crate::store::flows::LoginFlow;
use crate::store::sessions::Session;
use crate::store::users::User;

/// The outcome of a password form.
#[derive(Debug)]
pub enum Outcome {
    /// Show the form again with this message (nothing was issued).
    Retry {
        message: String,
    },
    SignedIn(SignedIn),
}

fn retry(message: impl Into<String>) -> Result<Outcome, SignInError> {
    Ok(Outcome::Retry {
        message: message.into(),
    })
}

/// Checks `email` and `password` for the flow; on success starts (or renews) the browser's
/// session (`current`) and moves the flow on.
pub async fn submit(
    state: &AppState,
    flow: &LoginFlow,
    current: Option<(Session, User)>,
    email: &str,
    password: &str,
    now: i64,
) -> Result<Outcome, SignInError> {
    if email.is_empty() || password.is_empty() {
        return retry("Enter your email and password.");
    }
    let user = state.store.find_user_by_email(email).await?;
    let standing = match &user {
        Some(u) => Some(throttle::standing(state, &u.id, Attempt::Password, now).await?),
        None => None,
    };
    if let Some(secs) = standing.and_then(|s| s.locked_for) {
        // Not even checked: the lock is what stops guessing.
        return retry(Attempt::Password.message(secs));
    }
    let verified = state
        .hasher
        .verify(
            password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await
        .map_err(SignInError::internal)?;
    let user = match (user, verified) {
        (Some(u), Verified::Yes) if !u.disabled => u,
        (Some(u), Verified::YesRehash(h)) if !u.disabled => {
            state.store.set_password_hash(&u.id, &h).await?;
            u
        }
        (known, v) => return refused(state, flow, known, v, now).await,
    };
    if let Err(secs) = throttle::settle(state, &user.id, Attempt::Password, now).await? {
        return retry(Attempt::Password.message(secs));
    }
    let event = Event::new(
        &user.id,
        Action::LoginPassword,
        &user.id,
        serde_json::json!({}),
    );
    let (session, token) =
        session::establish(state, current, &user, Method::Password, Some(&event), now).await?;
    tracing::info!(user = %user.id, session = %session.id, "login succeeded");
    let next = flow::advance(
        state,
        flow,
        Transition::Authenticated,
        Some((session, user)),
        now,
    )
    .await?;
    Ok(Outcome::SignedIn(SignedIn { next, token }))
}

/// A refused password: counted when it was a known user's wrong password, and audited.
async fn refused(
    state: &AppState,
    flow: &LoginFlow,
    known: Option<User>,
    v: Verified,
    now: i64,
) -> Result<Outcome, SignInError> {
    tracing::info!(flow = %flow.id, "login failed: wrong email or password");
    // Who and why, for the audit log; an unknown email is not recorded (personal data of
    // someone who may not be a user).
    let (target, reason) = match &known {
        None => ("unknown".to_owned(), "unknown email"),
        Some(u) if u.disabled && !matches!(v, Verified::No) => (u.id.clone(), "account disabled"),
        Some(u) => (u.id.clone(), "wrong password"),
    };
    let mut message = "The email or password is not correct.".to_owned();
    if let Some(u) = &known
        && reason == "wrong password"
        && let Some(secs) = throttle::fail(state, &u.id, Attempt::Password, now).await?
    {
        message = Attempt::Password.message(secs);
    }
    state
        .store
        .audit(Event::new(
            &target,
            Action::LoginFailed,
            &target,
            serde_json::json!({"reason": reason, "client": flow.request.client_id}),
        ))
        .await?;
    retry(message)
}
