//! The account's e-mail address: confirming it, and changing it.
//!
//! Tokens say `email_verified: true` only once a link mailed to the address was opened:
//! accepting an invitation that was only mailed (never shown to an administrator), a
//! confirmation link (sent after any other invitation, and on request from the account page),
//! or the confirmation of a change.
//!
//! A change is asked for on the account page (a recent sign-in at the user's level, and the
//! current password). One link goes to the new address and one to the old; the address
//! changes only once both are opened, within `mail.confirm_link_hours`, so neither a thief of
//! the session nor a typo moves the account to a mailbox its owner does not hold. Whether the
//! new address belongs to another account is not said until both links are opened.

use super::{Requester, SignInError};
use crate::audit::{Action, Event};
use crate::mail::{self, Content};
use crate::secret::{OpaqueToken, TokenHash, TokenKind};
use crate::state::AppState;
use crate::store::account_links::{ChangeStep, NewLink, Purpose};
use crate::store::users::User;

fn link(state: &AppState, token: &OpaqueToken) -> String {
    mail::links::confirm_url(state, token)
}

/// Mails a link that confirms `user`'s current address.
pub async fn send_confirmation(
    state: &AppState,
    user: &User,
    details: serde_json::Value,
) -> Result<(), SignInError> {
    mail::links::confirmation_link(state, user, details)
        .await
        .map_err(|e| match e {
            mail::links::LinkError::Store(e) => SignInError::Store(e),
            e => SignInError::internal(e),
        })
}

/// What opening a confirmation link came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The address is confirmed.
    Address(String),
    /// One side of a change is confirmed; the link sent to the other address is awaited.
    Waiting { other: &'static str },
    /// Both sides confirmed: the address changed.
    Changed { new: String },
    /// Another account has the new address by now: nothing changed.
    Taken,
    /// The link was used, replaced or expired.
    Invalid,
}

/// Uses a confirmation link (either kind).
pub async fn confirm(
    state: &AppState,
    token: &str,
    who: &Requester,
) -> Result<Confirmed, SignInError> {
    let now = crate::store::now();
    let hash = TokenHash::of(token);
    let Some(link) = state.store.peek_link(hash.clone(), now).await? else {
        return Ok(Confirmed::Invalid);
    };
    let details = who.details();
    match link.purpose {
        Purpose::ConfirmAddress => {
            let done = state
                .store
                .confirm_address(hash, now, move |user, email| {
                    let mut d = details;
                    d["email"] = email.into();
                    Event::new(user, Action::EmailConfirmed, user, d)
                })
                .await?;
            Ok(done.map_or(Confirmed::Invalid, Confirmed::Address))
        }
        Purpose::ChangeNew | Purpose::ChangeOld => {
            let Some(user) = state.store.get_user(&link.user_id).await? else {
                return Ok(Confirmed::Invalid);
            };
            let notice = mail::compose(
                state,
                &user.email,
                Some(&user.id),
                &Content::AddressChanged {
                    new: link.email.clone(),
                },
            );
            let other = if link.purpose == Purpose::ChangeOld {
                "new"
            } else {
                "old"
            };
            let d2 = details.clone();
            let step = state
                .store
                .confirm_change(
                    hash,
                    now,
                    move |user, side| {
                        let mut d = details;
                        d["side"] = side.into();
                        Event::new(user, Action::EmailChangeConfirmed, user, d)
                    },
                    move |user, old, new| {
                        let mut d = d2;
                        d["before"] = old.into();
                        d["after"] = new.into();
                        Event::new(user, Action::EmailChanged, user, d).with_mail(notice)
                    },
                )
                .await?;
            Ok(match step {
                None => Confirmed::Invalid,
                Some(ChangeStep::Waiting) => Confirmed::Waiting { other },
                Some(ChangeStep::Taken) => Confirmed::Taken,
                Some(ChangeStep::Changed { new, .. }) => {
                    mail::wake(state);
                    tracing::info!(user = %user.id, "e-mail address changed");
                    Confirmed::Changed { new }
                }
            })
        }
        Purpose::PasswordReset => Ok(Confirmed::Invalid),
    }
}

/// Address changes (and confirmation links) an account may ask for per hour.
pub const PER_HOUR: i64 = 5;

/// What asking for a change came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ChangeRequested {
    /// Both links are on their way.
    Sent,
    /// Refused, with the reason to show (nothing was sent).
    Refused(String),
}

/// Asks to change the signed-in `user`'s address to `new` (the account page's guard has
/// asked for a recent sign-in at the user's level); `password` is the current one.
pub async fn request_change(
    state: &AppState,
    user: &User,
    new: &str,
    password: &str,
    who: &Requester,
) -> Result<ChangeRequested, SignInError> {
    let now = crate::store::now();
    let Ok(new) = latchkey_core::names::Email::parse(new) else {
        return Ok(ChangeRequested::Refused(
            "That is not an e-mail address.".into(),
        ));
    };
    let new = crate::store::users::normalize_email(new.as_str());
    if new == user.email {
        return Ok(ChangeRequested::Refused(
            "That is your address already.".into(),
        ));
    }
    // Each request mails two addresses, one of them any address at all: a few an hour.
    if state
        .store
        .links_since(&user.id, Purpose::ChangeNew, now - 3600)
        .await?
        >= PER_HOUR
    {
        return Ok(ChangeRequested::Refused(format!(
            "You asked for {PER_HOUR} address changes in the last hour; use the newest links, or try again later."
        )));
    }
    if let Some(why) =
        super::password_change::current_password_refusal(state, user, password, who, now).await?
    {
        return Ok(ChangeRequested::Refused(why));
    }
    let hours = state.config.mail.confirm_link_hours;
    let change_id = uuid::Uuid::now_v7().to_string();
    let (to_new, to_old) = (
        OpaqueToken::generate(TokenKind::MailedLink),
        OpaqueToken::generate(TokenKind::MailedLink),
    );
    let mail_new = mail::compose(
        state,
        &new,
        Some(&user.id),
        &Content::ChangeToNew {
            old: user.email.clone(),
            link: link(state, &to_new),
            hours,
        },
    );
    let mail_old = mail::compose(
        state,
        &user.email,
        Some(&user.id),
        &Content::ChangeFromOld {
            new: new.clone(),
            link: link(state, &to_old),
            hours,
        },
    );
    if mail_new.is_none() || mail_old.is_none() {
        return Err(SignInError::internal("the change messages did not render"));
    }
    let mut details = who.details();
    details["new"] = new.clone().into();
    let links = [(to_new, Purpose::ChangeNew), (to_old, Purpose::ChangeOld)]
        .into_iter()
        .map(|(t, purpose)| NewLink {
            token: t.hash(),
            user_id: user.id.clone(),
            purpose,
            email: new.clone(),
            change_id: Some(change_id.clone()),
            created_at: now,
            expires_at: now + hours * 3600,
        })
        .collect();
    state
        .store
        .create_links(
            links,
            vec![
                Event::new(&user.id, Action::EmailChangeRequested, &user.id, details)
                    .with_mail(mail_new)
                    .with_mail(mail_old),
            ],
            None,
        )
        .await?;
    mail::wake(state);
    Ok(ChangeRequested::Sent)
}
