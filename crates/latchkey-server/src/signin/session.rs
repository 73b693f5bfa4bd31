//! The browser's session: finding it from its cookie token (it ends after
//! `tokens.session_ttl_secs`, or sooner when unused for `tokens.session_idle_timeout_secs`),
//! and establishing or renewing it when a factor is proven (the audit entry of the sign-in is written in the same
//! transaction as the session).

use super::SignInError;
use crate::audit::Event;
use crate::protocol::strength::{self, Method};
use crate::secret::{OpaqueToken, TokenHash, TokenKind, random_id};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::sessions::{SeenFrom, Session};
use crate::store::users::User;

/// A session's use is recorded at most this often: reading a session on every page costs no
/// write, and the idle timeout is exact to within this.
pub const TOUCH_EVERY_SECS: i64 = 60;

/// The live session a cookie token names and its (enabled) user. A session unused for
/// `tokens.session_idle_timeout_secs` is over (on top of its absolute `session_ttl_secs`); a
/// live one is marked as used when the last mark is older than [`TOUCH_EVERY_SECS`].
pub async fn current(
    state: &AppState,
    token: Option<TokenHash>,
) -> Result<Option<(Session, User)>, StoreError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let now = crate::store::now();
    let idle = state.config.tokens.session_idle_timeout_secs;
    let idle_since = (idle > 0).then(|| now - idle);
    let Some((session, last_seen_at)) = state.store.find_session(token, idle_since).await? else {
        return Ok(None);
    };
    let user = match state.store.get_user(&session.user_id).await? {
        Some(user) if !user.disabled => user,
        _ => return Ok(None),
    };
    if now - last_seen_at >= TOUCH_EVERY_SECS {
        state.store.touch_session(&session.id, now).await?;
    }
    Ok(Some((session, user)))
}

/// The time before which a session's last use means it is idle (`None`: no idle timeout).
/// A refresh checks its grant's session against it without marking the session as used: only
/// the browser's own requests do, so a relying party (or whoever holds its refresh token)
/// cannot keep an unattended browser signed in past the idle timeout.
pub fn idle_since(state: &AppState, now: i64) -> Option<i64> {
    let idle = state.config.tokens.session_idle_timeout_secs;
    (idle > 0).then(|| now - idle)
}

/// Records a factor the browser's user just proved: a first factor starts (or, for the same
/// user, renews) the session; a second factor needs the user's live session (`current`). The
/// cookie token changes every time (session fixation defence); the session keeps its id
/// (`sid`). `from`: where a new session starts from (listed on the account page). `event`
/// (the sign-in, if it is one) is audited with the session's write.
pub async fn establish(
    state: &AppState,
    current: Option<(Session, User)>,
    user: &User,
    method: Method,
    from: Option<&SeenFrom>,
    event: Option<&Event>,
    now: i64,
) -> Result<(Session, OpaqueToken), SignInError> {
    let first_factor = matches!(method, Method::Password | Method::Webauthn { .. });
    let token = OpaqueToken::generate(TokenKind::Session);
    let mut session = match current {
        Some((old, _)) if old.user_id == user.id => old,
        other => {
            if !first_factor {
                return Err(SignInError::SignInFirst);
            }
            if let Some((old, _)) = other {
                state.store.end_session(&old.id, None).await?;
            }
            Session {
                id: String::new(),
                user_id: user.id.clone(),
                auth_time: now,
                amr: vec![],
                acr: String::new(),
                created_at: now,
                expires_at: 0,
                factors: vec![],
            }
        }
    };
    strength::record(&mut session.factors, method, now);
    if let Some(s) = strength::strength(&session.factors, None, strength::Rules::of(&state.config))
    {
        session.acr = s.acr.as_str().to_owned();
        session.amr = s.amr.iter().map(|a| a.as_str().to_owned()).collect();
    }
    if first_factor {
        session.auth_time = now;
    }
    session.expires_at = now + state.config.tokens.session_ttl_secs;
    if session.id.is_empty() {
        session.id = random_id();
        state
            .store
            .create_session(token.hash(), &session, from, event)
            .await?;
    } else {
        state
            .store
            .renew_session(&session.id, token.hash(), &session, event)
            .await?;
    }
    state
        .metrics
        .login(crate::metrics::Login::Success, Some(&session.acr));
    Ok((session, token))
}

/// Signs the user out of this session (RP-initiated logout): ends it, revokes what was issued
/// from it (except `offline_access`), and audits it in the same transaction.
pub async fn sign_out(state: &AppState, session: &Session, user: &User) -> Result<(), StoreError> {
    let event = Event::new(
        &user.id,
        crate::audit::Action::SessionEnded,
        &user.id,
        serde_json::json!({"reason": "logout", "session": session.id}),
    );
    state.store.end_session(&session.id, Some(&event)).await?;
    tracing::info!(user = %user.id, session = %session.id, "signed out");
    Ok(())
}
