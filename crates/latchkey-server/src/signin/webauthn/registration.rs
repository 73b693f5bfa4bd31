//! A passkey or security key just registered (W3C WebAuthn Level 2 section 7.1), from the
//! account pages or an enrolment during a sign-in: stored for the user the ceremony began
//! for, if that is still the browser's user ([`account::register_webauthn`] records it).

use super::{Kind, Refusal};
use crate::secret::OpaqueToken;
use crate::signin::{SignInError, account};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::sessions::Session;
use crate::store::users::User;
use webauthn_rs::prelude::{Credential, WebauthnError};

/// Stores the credential a registration ceremony produced (`result`) for the signed-in user
/// (`current`), who must be the one the ceremony began for (`ceremony_user`). Returns the
/// session's new cookie token when the credential counts for this session (the user's
/// first factor).
pub async fn register(
    state: &AppState,
    current: Option<(Session, User)>,
    ceremony_user: Option<&str>,
    kind: Kind,
    name: Option<&str>,
    result: Result<Credential, WebauthnError>,
    now: i64,
) -> Result<Result<Option<OpaqueToken>, Refusal>, SignInError> {
    let Some(current) = current else {
        return Ok(Err(Refusal::NotSignedIn));
    };
    if ceremony_user != Some(current.1.id.as_str()) {
        return Ok(Err(Refusal::SessionChanged));
    }
    let cred = match result {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(user = %current.1.id, error = %e, "WebAuthn registration refused");
            return Ok(Err(Refusal::NotRegistered));
        }
    };
    match account::register_webauthn(state, current, kind.as_str(), name, &cred, now).await {
        Ok(token) => Ok(Ok(token)),
        Err(SignInError::Store(StoreError::Conflict(m))) => Ok(Err(Refusal::Conflict(m))),
        Err(e) => Err(e),
    }
}
