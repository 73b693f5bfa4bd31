//! Signing in with an e-mail and password, the first factor of a login flow. Every attempt
//! spends password budgets ([`throttle`](super::throttle)) before the password is checked;
//! with a budget spent, passwords are not even checked (passkeys still work). A wrong password
//! issues nothing; a right one gives its attempt back and makes the browser a known device of
//! the account.

use super::{Requester, SignInError, SignedIn, device, flow, session, throttle};
use crate::audit::{Action, Event};
use crate::metrics::Login;
use crate::password::Verified;
use crate::protocol::authorize::Transition;
use crate::protocol::strength::Method;
use crate::protocol::throttle::throttled_message;
use crate::state::AppState;
use crate::store::flows::LoginFlow;
use crate::store::sessions::Session;
use crate::store::users::User;

/// The outcome of a password form.
#[derive(Debug)]
pub enum Outcome {
    /// Show the form again with this message (nothing was issued).
    Retry { message: String },
    /// A budget is spent: nothing was checked; the form again, answered `429` with
    /// `Retry-After: retry_after`.
    Throttled { message: String, retry_after: i64 },
    /// Too many password checks are waiting ([`BUSY`]), or the account's one check at a time
    /// is running for another request of a browser it knows ([`ACCOUNT_BUSY`]): nothing was
    /// checked; the form again, answered `503` with `Retry-After: retry_after`.
    Busy { message: String, retry_after: i64 },
    /// Signed in; `device` is the known-device cookie's new value.
    SignedIn { signed_in: SignedIn, device: String },
}

/// What a shed attempt is told.
pub const BUSY: &str = "Many people are signing in right now. Try again in a moment.";

/// What a browser the account knows is told while the account's previous password check
/// still runs (a double submit, another tab, the account page): one check per account at a
/// time ([`crate::password::PasswordHasher::reserve_known`]).
pub const ACCOUNT_BUSY: &str =
    "Your password is being checked for another request. Try again in a moment.";

fn retry(message: impl Into<String>) -> Result<Outcome, SignInError> {
    Ok(Outcome::Retry {
        message: message.into(),
    })
}

/// Checks `email` and `password` for the flow, sent by `who`; on success starts (or renews)
/// the browser's session (`current`) and moves the flow on.
pub async fn submit(
    state: &AppState,
    flow: &LoginFlow,
    current: Option<(Session, User)>,
    who: &Requester,
    email: &str,
    password: &str,
    now: i64,
) -> Result<Outcome, SignInError> {
    if email.is_empty() || password.is_empty() {
        return retry("Enter your email and password.");
    }
    // The same budgets and the same answers for an e-mail that is no account.
    let mut pass = match throttle::password_gate(state, who, email, now).await? {
        throttle::Gate::Open(pass) => pass,
        throttle::Gate::Closed { retry_after } => {
            state.metrics.login(Login::Throttled, None);
            state.metrics.throttled("password");
            return Ok(Outcome::Throttled {
                message: throttled_message(retry_after),
                retry_after,
            });
        }
        gate @ (throttle::Gate::Busy | throttle::Gate::AccountBusy) => {
            state.metrics.login(Login::Shed, None);
            state.metrics.throttled("shed");
            let message = match gate {
                throttle::Gate::AccountBusy => ACCOUNT_BUSY,
                _ => BUSY,
            };
            return Ok(Outcome::Busy {
                message: message.into(),
                retry_after: 1,
            });
        }
    };
    let user = pass.user.take();
    let slot = pass
        .slot
        .take()
        .ok_or_else(|| SignInError::internal("a counted attempt without its hashing slot"))?;
    let verified = state
        .hasher
        .verify_in(
            slot,
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
        (known, v) => return refused(state, flow, who, known, v, &pass.account).await,
    };
    let account = pass.account.clone();
    pass.settle(state).await?;
    let mut details = who.details();
    details["client"] = flow.request.client_id.clone().into();
    // A browser not known to the account (no valid device cookie for it) on an account that
    // signed in before: its owner hears of it, in the transaction of the session.
    let known = who
        .device
        .as_deref()
        .is_some_and(|c| device::check(state, c, &account).is_some());
    let notice = if !known && state.store.ever_signed_in(&user.id).await? {
        crate::mail::compose(
            state,
            &user.email,
            Some(&user.id),
            &crate::mail::Content::NewDevice {
                browser: device::browser_label(&who.user_agent),
                from: who.ip.to_string(),
            },
        )
    } else {
        None
    };
    let new_device = notice.is_some();
    let event = Event::new(&user.id, Action::LoginPassword, &user.id, details).with_mail(notice);
    let (session, token) = session::establish(
        state,
        current,
        &user,
        Method::Password,
        Some(&who.seen_from()),
        Some(&event),
        now,
    )
    .await?;
    tracing::info!(user = %user.id, session = %session.id, "login succeeded");
    if new_device {
        crate::mail::wake(state);
    }
    let next = flow::advance(
        state,
        flow,
        Transition::Proven(Method::Password),
        Some((session, user)),
        now,
    )
    .await?;
    Ok(Outcome::SignedIn {
        signed_in: SignedIn { next, token },
        device: device::cookie_value(state, &account, who.device.as_deref()),
    })
}

/// A refused password: audited with who sent it (it already spent its budgets).
async fn refused(
    state: &AppState,
    flow: &LoginFlow,
    who: &Requester,
    known: Option<User>,
    v: Verified,
    account: &str,
) -> Result<Outcome, SignInError> {
    state.metrics.login(Login::Failure, None);
    tracing::info!(flow = %flow.id, source = %who.ip, "login failed: wrong email or password");
    // Who and why, for the audit log; an unknown email is not recorded (personal data of
    // someone who may not be a user).
    let (target, reason) = match &known {
        None => ("unknown".to_owned(), "unknown email"),
        Some(u) if u.disabled && !matches!(v, Verified::No) => (u.id.clone(), "account disabled"),
        Some(u) => (u.id.clone(), "wrong password"),
    };
    let mut details = who.details();
    details["reason"] = reason.into();
    details["client"] = flow.request.client_id.clone().into();
    // A pseudonym of the e-mail tried (known or not), so the detectors can count distinct
    // accounts: not the e-mail, and not linkable without the server's key.
    details["account"] = account.get(..16).unwrap_or(account).into();
    state
        .store
        .audit(Event::new(&target, Action::LoginFailed, &target, details))
        .await?;
    retry("The email or password is not correct.")
}
