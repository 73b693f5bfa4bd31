//! A person's own data, from the account page: a download of everything Latchkey holds about
//! them (the export administrators get: GDPR articles 15 and 20), and a request to delete the
//! account (article 17). A request is confirmed with the current password (after the account
//! page's recent sign-in at the user's level); the account is erased after
//! `account.deletion_grace_days` unless the person cancels, or sooner by an administrator
//! (`latchkey user erase`). A system administrator cannot ask: another one must erase them,
//! so that a service is never left without administration by accident.

use super::{Requester, SignInError};
use crate::audit::{Action, Event};
use crate::mail::{self, Content};
use crate::state::AppState;
use crate::store::users::User;
use latchkey_core::names::UserId;

/// Everything Latchkey holds about `user`, as JSON, recorded as `user.exported` by themself.
pub async fn export(
    state: &AppState,
    user: &User,
    who: &Requester,
) -> Result<serde_json::Value, SignInError> {
    let id = UserId::new(user.id.as_str());
    let mut v = state
        .store
        .export_user(&id)
        .await?
        .ok_or_else(|| SignInError::internal("the account is gone"))?;
    let rights = state.store.admin_rights(&id).await?.unwrap_or_default();
    v["administration"] = serde_json::json!({"system": rights.system, "labs": rights.labs});
    let mut details = who.details();
    details["by"] = "self".into();
    state
        .store
        .audit(Event::new(
            &user.id,
            Action::UserExported,
            &user.id,
            details,
        ))
        .await?;
    Ok(v)
}

/// What a deletion request came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Deletion {
    /// Recorded; the account is erased at `on` (`None`: by an administrator).
    Requested { on: Option<i64> },
    /// Refused, with the reason (nothing changed).
    Refused(String),
}

/// When a request made at `at` is carried out (`None`: by an administrator).
pub fn erased_on(state: &AppState, at: i64) -> Option<i64> {
    let days = state.config.account.deletion_grace_days;
    (days > 0).then_some(at + days * 86_400)
}

/// Asks for `user`'s account to be deleted; `password` is the current one.
pub async fn request_deletion(
    state: &AppState,
    user: &User,
    password: &str,
    who: &Requester,
) -> Result<Deletion, SignInError> {
    let now = crate::store::now();
    let rights = state
        .store
        .admin_rights(&UserId::new(user.id.as_str()))
        .await?
        .unwrap_or_default();
    if rights.system {
        return Ok(Deletion::Refused(
            "A system administrator's account is deleted by another system administrator \
             (`latchkey user erase`), so that the service keeps one."
                .into(),
        ));
    }
    if let Some(why) =
        super::password_change::current_password_refusal(state, user, password, who, now).await?
    {
        return Ok(Deletion::Refused(why));
    }
    let on = erased_on(state, now);
    let notice = mail::compose(
        state,
        &user.email,
        Some(&user.id),
        &Content::DeletionRequested {
            when: on.map(super::dates::fmt_day).unwrap_or_default(),
        },
    );
    let mut details = who.details();
    details["grace_days"] = state.config.account.deletion_grace_days.into();
    let event =
        Event::new(&user.id, Action::UserDeletionRequested, &user.id, details).with_mail(notice);
    if !state
        .store
        .set_deletion_request(&user.id, Some(now), event)
        .await?
    {
        return Ok(Deletion::Refused(
            "Your account's deletion was asked for already.".into(),
        ));
    }
    mail::wake(state);
    tracing::info!(user = %user.id, ?on, "account deletion requested");
    Ok(Deletion::Requested { on })
}

/// Withdraws `user`'s deletion request. Whether there was one.
pub async fn cancel_deletion(
    state: &AppState,
    user: &User,
    who: &Requester,
) -> Result<bool, SignInError> {
    let event = Event::new(
        &user.id,
        Action::UserDeletionCancelled,
        &user.id,
        who.details(),
    );
    Ok(state
        .store
        .set_deletion_request(&user.id, None, event)
        .await?)
}

/// Erases the accounts whose grace period is over (run hourly by every node; erasing twice
/// is a no-op). Each is checked again inside its erasure's transaction: a request cancelled
/// meanwhile, or a person made a system administrator since, is not erased. How many were
/// erased.
pub async fn complete_due_deletions(state: &AppState) -> Result<usize, SignInError> {
    let days = state.config.account.deletion_grace_days;
    if days == 0 {
        return Ok(0);
    }
    let before = crate::store::now() - days * 86_400;
    let mut n = 0;
    for id in state.store.deletions_due(before).await? {
        if state
            .store
            .erase_user(&UserId::new(id.as_str()), "system")
            .await?
        {
            tracing::info!(user = %id, "account erased at its owner's request");
            n += 1;
        }
    }
    Ok(n)
}
