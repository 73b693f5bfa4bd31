//! The one lockout component for wrong passwords and wrong second-factor codes. Failures count
//! per user, across flows and nodes (in the store); from a threshold on, attempts of that kind
//! are refused unchecked for a while that doubles (the rule, pure, is
//! [`crate::protocol::throttle::Attempt::lock`]). Passkey sign-in is never locked, so a lock
//! cannot shut a passkey user out. A lock and its audit entry commit together.

use crate::audit::{Action, Event};
pub use crate::protocol::throttle::Attempt;
use crate::state::AppState;
use crate::store::StoreError;

/// A user's standing for one kind of attempt, read before checking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Failures are on record (a success clears them).
    pub failures: bool,
    /// Seconds until attempts are checked again, when locked now.
    pub locked_for: Option<i64>,
}

/// Reads the user's standing for `kind` at `now`.
pub async fn standing(
    state: &AppState,
    user_id: &str,
    kind: Attempt,
    now: i64,
) -> Result<Standing, StoreError> {
    let f = state.store.failures(user_id, kind).await?;
    Ok(Standing {
        failures: f.is_some(),
        locked_for: f.and_then(|(_, until)| (until > now).then_some(until - now)),
    })
}

/// Counts a failure; when it starts (or extends) a lock, audits it and returns its length.
pub async fn fail(
    state: &AppState,
    user_id: &str,
    kind: Attempt,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let action = match kind {
        Attempt::Password => Action::LoginLocked,
        Attempt::Code => Action::FactorLocked,
    };
    let user = user_id.to_owned();
    state
        .store
        .record_failure(user_id, kind, now, move |failures, secs| {
            Event::new(
                &user,
                action,
                &user,
                serde_json::json!({"failures": failures, "locked_for_secs": secs}),
            )
        })
        .await
}

/// Settles an attempt that checked out. The standing is read again: a lock may have started
/// while this attempt was being checked (parallel guesses, each past the first read). Then the
/// right answer is refused like a wrong one, so racing requests learn nothing once the
/// threshold is reached: `Err(secs)` is the lock's remaining length. Otherwise the count of
/// failures is cleared (only when there is one: no write on the common path).
pub async fn settle(
    state: &AppState,
    user_id: &str,
    kind: Attempt,
    now: i64,
) -> Result<Result<(), i64>, StoreError> {
    let after = standing(state, user_id, kind, now).await?;
    if let Some(secs) = after.locked_for {
        return Ok(Err(secs));
    }
    if after.failures {
        state.store.reset_failures(user_id, kind).await?;
    }
    Ok(Ok(()))
}
