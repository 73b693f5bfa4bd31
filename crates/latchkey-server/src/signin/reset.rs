//! Password reset by e-mail (OWASP ASVS 5 section 6.2; NIST SP 800-63B 6.1.2.3).
//!
//! "Forgot your password?" takes an address and always answers the same page at the same
//! speed: the lookup and the mail happen after the answer ([`request`] hands them to a task),
//! so neither the words nor the timing say whether the address has an account. Requests are
//! budgeted per source address; an account receives at most `mail.resets_per_hour` links.
//!
//! The link (`lk_ml_`, 256 bits, stored as its SHA-256) works once, for
//! `mail.reset_link_minutes`; a newer link replaces it. Opening it shows a form and spends
//! nothing (mail scanners open links); submitting a new password that passes the password
//! rules stores it, ends every session and application token of the account, clears its
//! wrong-code count and mails a notice, in one transaction. It does not sign anyone in: the
//! next sign-in asks for the second factor and applies the lab's policy as always.

use super::password::ACCOUNT_BUSY;
use super::{Requester, SignInError};
use crate::audit::{Action, Event};
use crate::mail::{self, Content};
use crate::password::{HashError, check_new_password};
use crate::secret::TokenHash;
use crate::state::AppState;
use crate::store::account_links::{Link, Purpose};
use crate::store::users::User;
use std::sync::Arc;

/// Source budget key of reset requests.
fn source_key(who: &Requester) -> String {
    format!("reset:{}", crate::protocol::throttle::source_of(who.ip))
}

/// Takes a reset request for `email`. `Some(retry_after)` when the source has made too many
/// (the same for every address); otherwise the link is sent, or not, after the answer.
pub async fn request(
    state: Arc<AppState>,
    email: String,
    who: Requester,
) -> Result<Option<i64>, SignInError> {
    let now = crate::store::now();
    let window = state.config.throttle.window_secs;
    let taken = state
        .store
        .throttle_take(
            vec![(
                source_key(&who),
                state.config.mail.reset_requests_per_source,
            )],
            now,
            window,
            |_| Vec::new(),
        )
        .await?;
    if let Err(full) = taken {
        return Ok(Some((full.window_start + window - now).max(1)));
    }
    tokio::spawn(async move {
        if let Err(e) = send_link(&state, &email, &who, None).await {
            tracing::error!(error = %e, "password reset: the link could not be queued");
        }
    });
    Ok(None)
}

/// Queues a reset link to the account `email` names, with its audit entry. `by`: the
/// administrator who asked for it (`None`: the person, from the sign-in page).
pub async fn send_link(
    state: &AppState,
    email: &str,
    who: &Requester,
    by: Option<&str>,
) -> Result<mail::links::Sent, SignInError> {
    let user = state.store.find_user_by_email(email).await?;
    let (target, reason) = match &user {
        Some(u) if !u.disabled => {
            let sent = mail::links::reset_link(state, u, who.details(), by)
                .await
                .map_err(|e| match e {
                    mail::links::LinkError::Store(e) => SignInError::Store(e),
                    e => SignInError::internal(e),
                })?;
            if sent == mail::links::Sent::Queued {
                return Ok(sent);
            }
            (u.id.clone(), "hourly allowance used")
        }
        Some(u) => (u.id.clone(), "account disabled"),
        None => ("unknown".to_owned(), "unknown email"),
    };
    // No link: the same work as one (a message rendered and sealed, an audit entry written),
    // so that the requests after this one cannot tell, by how long they wait, that none was
    // sent. The entry also shows an operator who asks for which addresses.
    let _ = mail::compose(
        state,
        email,
        None,
        &Content::PasswordReset {
            link: format!("{}/password/reset/lk_ml_{}", state.issuer, "x".repeat(43)),
            minutes: state.config.mail.reset_link_minutes,
        },
    );
    let mut details = who.details();
    details["sent"] = false.into();
    details["reason"] = reason.into();
    let actor = if target == "unknown" {
        "unknown"
    } else {
        target.as_str()
    };
    state
        .store
        .audit(Event::new(
            actor,
            Action::PasswordResetRequested,
            &target,
            details,
        ))
        .await?;
    Ok(mail::links::Sent::Not)
}

/// The account an open reset link is for, or `None`.
pub async fn open(state: &AppState, token: &str) -> Result<Option<(Link, User)>, SignInError> {
    let now = crate::store::now();
    let Some(link) = state.store.peek_link(TokenHash::of(token), now).await? else {
        return Ok(None);
    };
    if link.purpose != Purpose::PasswordReset {
        return Ok(None);
    }
    let Some(user) = state.store.get_user(&link.user_id).await? else {
        return Ok(None);
    };
    if user.disabled || user.email != link.email {
        return Ok(None);
    }
    Ok(Some((link, user)))
}

/// What submitting a new password came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Reset {
    /// Stored; `sessions_ended` sessions were signed out.
    Done {
        email: String,
        sessions_ended: usize,
    },
    /// The password was refused (the reason); the link still works.
    Refused(String),
    /// The link was used, replaced or expired.
    Invalid,
}

/// Sets the password of the account an open reset link names.
pub async fn reset(
    state: &AppState,
    token: &str,
    new: &str,
    repeated: &str,
    who: &Requester,
) -> Result<Reset, SignInError> {
    let Some((_, user)) = open(state, token).await? else {
        return Ok(Reset::Invalid);
    };
    if crate::password::normalize(new) != crate::password::normalize(repeated) {
        return Ok(Reset::Refused("The two passwords are not the same.".into()));
    }
    let local = user.email.split('@').next().unwrap_or_default();
    let mut context = vec![user.email.as_str(), local];
    if let Some(n) = user.name.as_deref() {
        context.extend(n.split_whitespace());
    }
    if let Err(why) = check_new_password(&state.config.password, new, &context) {
        return Ok(Reset::Refused(format!("Choose another password: {why}.")));
    }
    // One hash per account at a time: a link posted many times at once hashes once (the
    // link is spent only with the new hash).
    let account = super::device::account(state, &user.email);
    let hash = match state.hasher.hash_for(&account, new).await {
        Err(HashError::Busy) => return Ok(Reset::Refused(ACCOUNT_BUSY.into())),
        other => other.map_err(SignInError::internal)?,
    };
    let notice = mail::compose(
        state,
        &user.email,
        Some(&user.id),
        &Content::PasswordChanged {
            how: "with a reset link sent to this address".into(),
            from: who.ip.to_string(),
        },
    );
    let mut details = who.details();
    let now = crate::store::now();
    let reset = state
        .store
        .reset_password(TokenHash::of(token), &hash, now, move |id, ended| {
            details["sessions_ended"] = ended.into();
            Event::new(id, Action::PasswordReset, id, details).with_mail(notice)
        })
        .await?;
    let Some((id, sessions_ended)) = reset else {
        return Ok(Reset::Invalid);
    };
    mail::wake(state);
    tracing::info!(user = %id, sessions_ended, "password reset with a mailed link");
    Ok(Reset::Done {
        email: user.email,
        sessions_ended,
    })
}
