//! The one lockout component for wrong passwords and wrong second-factor codes. Failures count
//! per user, across flows and nodes (in the store); from a threshold on, attempts of that kind
//! are refused unchecked for a while that doubles (the rule is [`Attempt::lock`]). Passkey
//! sign-in is never locked, so a lock cannot shut a passkey user out.

use crate::audit::{Action, Event};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::factors::Attempt;

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
    let (failures, until) = state.store.record_failure(user_id, kind, now).await?;
    if until <= 0 {
        return Ok(None);
    }
    let action = match kind {
        Attempt::Password => Action::LoginLocked,
        Attempt::Code => Action::FactorLocked,
    };
    state
        .store
        .audit(Event::new(
            user_id,
            action,
            user_id,
            serde_json::json!({"failures": failures, "locked_for_secs": until - now}),
        ))
        .await?;
    Ok(Some(until - now))
}

/// Clears the count after a success (only when there is one: no write on the common path).
pub async fn succeed(
    state: &AppState,
    user_id: &str,
    kind: Attempt,
    before: Standing,
) -> Result<(), StoreError> {
    if before.failures {
        state.store.reset_failures(user_id, kind).await?;
    }
    Ok(())
}

/// What the user reads while locked for `secs` more seconds.
pub fn message(kind: Attempt, secs: i64) -> String {
    let wait = if secs < 90 {
        format!("{} seconds", secs.max(1))
    } else {
        format!("{} minutes", (secs + 59) / 60)
    };
    match kind {
        Attempt::Code => format!("Too many wrong codes. Wait {wait} before trying again."),
        Attempt::Password => format!(
            "Too many failed sign-ins. Wait {wait} before trying again. Or sign in with a passkey."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_message_rounds_up_to_minutes_from_90_seconds() {
        assert_eq!(
            message(Attempt::Code, 0),
            "Too many wrong codes. Wait 1 seconds before trying again."
        );
        assert_eq!(
            message(Attempt::Code, 89),
            "Too many wrong codes. Wait 89 seconds before trying again."
        );
        assert_eq!(
            message(Attempt::Code, 90),
            "Too many wrong codes. Wait 2 minutes before trying again."
        );
        assert_eq!(
            message(Attempt::Password, 900),
            "Too many failed sign-ins. Wait 15 minutes before trying again. Or sign in with a passkey."
        );
    }
}
