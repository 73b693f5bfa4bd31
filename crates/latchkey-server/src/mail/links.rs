//! Links mailed to a person that act as a password for one thing: the password-reset link
//! (used by the sign-in page's "forgot password" and by administrators), and the link that
//! confirms an account's address. Using them is `signin::reset`'s and `signin::email`'s.

use super::Content;
use crate::audit::{Action, Event};
use crate::secret::{OpaqueToken, TokenKind};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::account_links::{Cap, NewLink, Purpose};
use crate::store::users::User;

/// Why no link could be queued.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the message did not render")]
    Render,
}

/// Reset links an administrator may still send in an hour when anonymous requests used up
/// `mail.resets_per_hour`.
pub const ADMIN_HEADROOM: i64 = 5;

/// Whether a link was queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    Queued,
    /// No account, a disabled or erased one, or its hourly allowance is used.
    Not,
}

/// Queues a reset link to `user`'s address.
pub async fn reset_link(
    state: &AppState,
    user: &User,
    mut details: serde_json::Value,
    by: Option<&str>,
) -> Result<Sent, LinkError> {
    let now = crate::store::now();
    let m = &state.config.mail;
    let recent = state
        .store
        .links_since(&user.id, Purpose::PasswordReset, now - 3600)
        .await?;
    // Anyone can ask for an account's links from the sign-in page and use its allowance up;
    // an administrator's request has headroom above it.
    let allowance = m.resets_per_hour + if by.is_some() { ADMIN_HEADROOM } else { 0 };
    if recent >= allowance {
        tracing::info!(user = %user.id, "password reset: hourly allowance used, no link sent");
        return Ok(Sent::Not);
    }
    let token = OpaqueToken::generate(TokenKind::MailedLink);
    let link = format!("{}/password/reset/{}", state.issuer, token.expose());
    let content = Content::PasswordReset {
        link,
        minutes: m.reset_link_minutes,
    };
    let Some(mail) = super::compose(state, &user.email, Some(&user.id), &content) else {
        return Err(LinkError::Render);
    };
    if let Some(by) = by {
        details["by"] = by.into();
    }
    let actor = by.unwrap_or(&user.id).to_owned();
    let queued = state
        .store
        .create_links(
            vec![NewLink {
                token: token.hash(),
                user_id: user.id.clone(),
                purpose: Purpose::PasswordReset,
                email: user.email.clone(),
                change_id: None,
                created_at: now,
                expires_at: now + m.reset_link_minutes * 60,
            }],
            vec![
                Event::new(actor, Action::PasswordResetRequested, &user.id, details)
                    .with_mail(Some(mail)),
            ],
            Some(Cap {
                purpose: Purpose::PasswordReset,
                since: now - 3600,
                max: allowance,
            }),
        )
        .await?;
    if !queued {
        return Ok(Sent::Not);
    }
    super::wake(state);
    Ok(Sent::Queued)
}

/// The address of a confirmation link.
pub fn confirm_url(state: &AppState, token: &OpaqueToken) -> String {
    format!("{}/email/confirm/{}", state.issuer, token.expose())
}

/// Mails a link that confirms `user`'s current address.
pub async fn confirmation_link(
    state: &AppState,
    user: &User,
    details: serde_json::Value,
) -> Result<(), LinkError> {
    let now = crate::store::now();
    let hours = state.config.mail.confirm_link_hours;
    let token = OpaqueToken::generate(TokenKind::MailedLink);
    let content = Content::ConfirmAddress {
        link: confirm_url(state, &token),
        hours,
    };
    let mail =
        super::compose(state, &user.email, Some(&user.id), &content).ok_or(LinkError::Render)?;
    state
        .store
        .create_links(
            vec![NewLink {
                token: token.hash(),
                user_id: user.id.clone(),
                purpose: Purpose::ConfirmAddress,
                email: user.email.clone(),
                change_id: None,
                created_at: now,
                expires_at: now + hours * 3600,
            }],
            vec![
                Event::new(&user.id, Action::EmailConfirmRequested, &user.id, details)
                    .with_mail(Some(mail)),
            ],
            None,
        )
        .await?;
    super::wake(state);
    Ok(())
}
