//! Consent within a login flow (OIDC Core section 3.1.2.4): the user allows or denies a client
//! the requested scopes. Consent is remembered per user and client.

use super::{Next, SignInError, flow};
use crate::protocol::OAuthError;
use crate::protocol::authorize::Transition;
use crate::state::AppState;
use crate::store::flows::LoginFlow;
use crate::store::sessions::Session;
use crate::store::users::User;
use latchkey_core::ErrorCode;

/// The user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// Records an Allow and moves the flow on, or ends it with `access_denied`.
pub async fn decide(
    state: &AppState,
    flow: &LoginFlow,
    current: (Session, User),
    decision: Decision,
    now: i64,
) -> Result<Next, SignInError> {
    let r = &flow.request;
    match decision {
        Decision::Allow => {
            state
                .store
                .save_consent(
                    &current.1.id,
                    &r.client_id,
                    &r.scope,
                    &r.resources,
                    state.config.tokens.consent_since(now),
                )
                .await?;
            flow::advance(state, flow, Transition::Consented, Some(current), now).await
        }
        Decision::Deny => {
            state.store.finish_flow(&flow.id).await?;
            let e = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
            flow::answer_error(state, r, Some(&current.1.id), &e).await
        }
    }
}
