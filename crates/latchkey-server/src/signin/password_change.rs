//! Changing one's own password on the account page (OWASP ASVS 5 section 6.2): the account
//! page's guard has already asked for a recent sign-in at the user's level (a second factor
//! when they have one); the current password is asked again here, and wrong ones count like
//! wrong second-factor codes (the same lock, audited). The new password follows the password
//! rules (length, zxcvbn's lists of common and breached passwords, the user's own words),
//! compared after the same Unicode normalisation as hashing. The new hash is stored only if
//! the password checked is still the stored one and this browser's session is still live, so
//! two changes racing cannot both succeed.
//! Unless the user keeps them, every other browser is signed out and every application's
//! tokens not issued to this browser end, in the same transaction as the new hash.

use super::password::ACCOUNT_BUSY;
use super::{Requester, SignInError, throttle};
use crate::audit::{Action, Event};
use crate::password::{HashError, Verified, check_new_password, normalize};
use crate::state::AppState;
use crate::store::sessions::Session;
use crate::store::users::User;

/// What the lock message says was wrong too often (the count is the second factors').
const WRONG: &str = "passwords or codes";

/// What the user asked for.
#[derive(Debug)]
pub struct Change<'a> {
    /// The current password (ignored for an account that has none).
    pub current: &'a str,
    pub new: &'a str,
    /// The new password typed a second time.
    pub repeated: &'a str,
    /// Keep the other browsers signed in and the applications' tokens live.
    pub keep_others: bool,
}

/// The result of a change.
#[derive(Debug, PartialEq, Eq)]
pub enum Changed {
    /// Done: other browsers signed out and application grants ended.
    Done {
        sessions_ended: usize,
        grants_revoked: usize,
    },
    /// Refused, with the reason to show next to the form (nothing was changed).
    Refused(String),
}

/// Changes the signed-in user's password after checking the current one.
pub async fn change(
    state: &AppState,
    session: &Session,
    user: &User,
    req: Change<'_>,
    who: &Requester,
    now: i64,
) -> Result<Changed, SignInError> {
    if let Some(lock) = throttle::code_standing(state, &user.id, now).await? {
        return Ok(Changed::Refused(lock.message_for(WRONG)));
    }
    // The new password first: refusing it needs no secret, so it writes nothing.
    if normalize(req.new) != normalize(req.repeated) {
        return Ok(Changed::Refused(
            "The two new passwords are not the same.".into(),
        ));
    }
    let local = user.email.split('@').next().unwrap_or_default();
    let mut context = vec![user.email.as_str(), local];
    if let Some(n) = user.name.as_deref() {
        context.extend(n.split_whitespace());
    }
    if let Err(why) = check_new_password(&state.config.password, req.new, &context) {
        return Ok(Changed::Refused(why.to_string()));
    }
    // The key of the account's one password check or hash at a time, shared with the login.
    let account = super::device::account(state, &user.email);
    if let Some(stored) = user.password_hash.as_deref() {
        let verified = match state
            .hasher
            .verify_known(&account, req.current, stored)
            .await
        {
            Err(HashError::Busy) => return Ok(Changed::Refused(ACCOUNT_BUSY.into())),
            other => other.map_err(SignInError::internal)?,
        };
        if verified == Verified::No {
            let lock = throttle::code_fail(state, &user.id, who, now).await?;
            return Ok(Changed::Refused(lock.map_or_else(
                || "The current password is not correct.".to_owned(),
                |l| l.message_for(WRONG),
            )));
        }
        if let Err(lock) = throttle::code_settle(state, &user.id, now).await? {
            return Ok(Changed::Refused(lock.message_for(WRONG)));
        }
        // Only once the current password is proven: before, this would confirm a guess.
        if normalize(req.new) == normalize(req.current) {
            return Ok(Changed::Refused(
                "The new password is your current one; choose another.".into(),
            ));
        }
    }
    let hash = match state.hasher.hash_for(&account, req.new).await {
        Err(HashError::Busy) => return Ok(Changed::Refused(ACCOUNT_BUSY.into())),
        other => other.map_err(SignInError::internal)?,
    };
    let target = user.id.clone();
    let notice = crate::mail::compose(
        state,
        &user.email,
        Some(&user.id),
        &crate::mail::Content::PasswordChanged {
            how: "on the account page".into(),
            from: who.ip.to_string(),
        },
    );
    let mut details = who.details();
    details["kept_others"] = req.keep_others.into();
    let changed = state
        .store
        .change_password(
            &user.id,
            user.password_hash.as_deref(),
            &hash,
            &session.id,
            req.keep_others,
            move |s, g| {
                details["sessions_ended"] = s.into();
                details["grants_revoked"] = g.into();
                Event::new(&target, Action::PasswordChanged, &target, details).with_mail(notice)
            },
        )
        .await?;
    // Another change (or a sign-out) committed since the current password was checked.
    let Some((sessions_ended, grants_revoked)) = changed else {
        return Ok(Changed::Refused(
            "Your password or this sign-in changed meanwhile, so nothing was changed. Sign in \
             again and retry."
                .into(),
        ));
    };
    crate::mail::wake(state);
    tracing::info!(user = %user.id, sessions_ended, grants_revoked, "password changed");
    Ok(Changed::Done {
        sessions_ended,
        grants_revoked,
    })
}

/// Checks the current password typed to confirm a sensitive change (an address change, a
/// deletion request): `Some(reason)` when it is refused. Wrong ones count like wrong
/// second-factor codes (the same lock); an account without a password passes.
pub async fn current_password_refusal(
    state: &AppState,
    user: &User,
    password: &str,
    who: &Requester,
    now: i64,
) -> Result<Option<String>, SignInError> {
    if let Some(lock) = throttle::code_standing(state, &user.id, now).await? {
        return Ok(Some(lock.message_for(WRONG)));
    }
    let Some(stored) = user.password_hash.as_deref() else {
        return Ok(None);
    };
    // Keyed like the login's check, so that the two share the account's one check.
    let account = super::device::account(state, &user.email);
    let verified = match state.hasher.verify_known(&account, password, stored).await {
        Err(HashError::Busy) => return Ok(Some(ACCOUNT_BUSY.into())),
        other => other.map_err(SignInError::internal)?,
    };
    if verified == Verified::No {
        let lock = throttle::code_fail(state, &user.id, who, now).await?;
        return Ok(Some(lock.map_or_else(
            || "The current password is not correct.".to_owned(),
            |l| l.message_for(WRONG),
        )));
    }
    if let Err(lock) = throttle::code_settle(state, &user.id, now).await? {
        return Ok(Some(lock.message_for(WRONG)));
    }
    Ok(None)
}
