//! Accepting an invitation (`/invite/{token}`): the invited person opens the link, chooses a
//! password once, and the account, its membership and roles and the `invitation.accept` audit
//! entry are written in one transaction; the link stops working. A link that was only mailed
//! confirms the address; otherwise a confirmation link is mailed to it.

use crate::audit::{Action, Event};
use crate::password::HashError;
use crate::secret::TokenHash;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::invitations::Invitation;
use latchkey_core::names::LabId;

use super::SignInError;

/// An open, unexpired invitation and its lab's display name.
#[derive(Debug, Clone)]
pub struct Opened {
    pub invitation: Invitation,
    pub lab_name: String,
}

/// What accepting an invitation came to.
#[derive(Debug)]
pub enum Acceptance {
    /// The account exists now, a member of the lab.
    Accepted(Opened),
    /// The password was refused (`reason` says why); nothing was written.
    PasswordRefused { opened: Opened, reason: String },
    /// The link was used, withdrawn, replaced or has expired.
    Invalid,
    /// The address has an account already (`message` says what to do).
    AccountExists(String),
}

/// The open invitation a link's token names, or `None`.
pub async fn open(state: &AppState, token: &str) -> Result<Option<Opened>, StoreError> {
    let Some(invitation) = state
        .store
        .invitation_by_token(TokenHash::of(token))
        .await?
    else {
        return Ok(None);
    };
    let lab_name = state
        .store
        .get_lab(&LabId::new(invitation.lab.as_str()))
        .await?
        .map_or_else(|| invitation.lab.clone(), |l| l.name);
    Ok(Some(Opened {
        invitation,
        lab_name,
    }))
}

/// Accepts the invitation behind `token` with the chosen password and optional name.
pub async fn accept(
    state: &AppState,
    token: &str,
    name: Option<&str>,
    password: &str,
) -> Result<Acceptance, SignInError> {
    // A display name holds no control or text-direction characters, and at most 200.
    let cleaned: Option<String> = name.map(|n| {
        n.chars()
            .filter(|c| !latchkey_core::names::is_unsafe_in_name(*c))
            .take(200)
            .collect::<String>()
            .trim()
            .to_owned()
    });
    let name = cleaned.as_deref().filter(|n| !n.is_empty());
    let Some(opened) = open(state, token).await? else {
        return Ok(Acceptance::Invalid);
    };
    let inv = &opened.invitation;
    let mut context = vec![inv.email.as_str()];
    context.extend(inv.email.split('@'));
    context.extend(name);
    if let Err(e) = crate::password::check_new_password(&state.config.password, password, &context)
    {
        return Ok(Acceptance::PasswordRefused {
            opened,
            reason: e.to_string(),
        });
    }
    // An address that has an account by now (another invitation accepted first) is answered
    // before any hashing: the transaction would refuse it and leave the link open, so each
    // post of it would otherwise cost a hash for nothing. (The transaction still decides a
    // race.)
    if state.store.find_user_by_email(&inv.email).await?.is_some() {
        return Ok(Acceptance::AccountExists(
            crate::store::invitations::ACCOUNT_EXISTS.into(),
        ));
    }
    // One hash per address at a time: a link posted many times at once hashes once (the
    // invitation is spent only with the new hash).
    let account = super::device::account(state, &inv.email);
    let hash = match state.hasher.hash_for(&account, password).await {
        Err(HashError::Busy) => {
            return Ok(Acceptance::PasswordRefused {
                opened,
                reason: super::password::ACCOUNT_BUSY.into(),
            });
        }
        other => other.map_err(SignInError::internal)?,
    };
    let user_id = uuid::Uuid::now_v7().to_string();
    let event = Event::new(
        &user_id,
        Action::InvitationAccept,
        &inv.id,
        serde_json::json!({"lab": inv.lab, "user": user_id, "roles": inv.roles}),
    );
    match state
        .store
        .accept_invitation(inv, TokenHash::of(token), &user_id, name, hash, &[event])
        .await
    {
        Ok(verified) => {
            // A link an administrator was shown proves nothing about the mailbox: ask it.
            if !verified && let Some(user) = state.store.get_user(&user_id).await? {
                super::email::send_confirmation(state, &user, serde_json::json!({})).await?;
            }
            Ok(Acceptance::Accepted(opened))
        }
        Err(StoreError::NotFound(_)) => Ok(Acceptance::Invalid),
        Err(StoreError::Conflict(m)) => Ok(Acceptance::AccountExists(m)),
        Err(e) => Err(e.into()),
    }
}
