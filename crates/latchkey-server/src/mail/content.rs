//! What each message says: its subject, its paragraphs and the one link it asks the reader to
//! open, rendered by the `mail/message.txt` and `mail/message.html` templates. Security
//! notices say what changed, when and from where, and what to do if it was not the reader.

/// A message to compose.
#[derive(Debug, Clone)]
pub enum Content {
    /// An invitation into a lab: the link chooses a password.
    Invitation {
        lab: String,
        link: String,
        days: i64,
    },
    /// A password-reset link.
    PasswordReset { link: String, minutes: i64 },
    /// Confirms the account's address.
    ConfirmAddress { link: String, hours: i64 },
    /// Confirms a change of address, sent to the new address.
    ChangeToNew {
        old: String,
        link: String,
        hours: i64,
    },
    /// Confirms a change of address, sent to the old address.
    ChangeFromOld {
        new: String,
        link: String,
        hours: i64,
    },
    /// The address changed (to the old address, once both confirmed).
    AddressChanged { new: String },
    /// The password changed, `how` ("on the account page", "with a reset link"); `from`:
    /// the address of the request, when known (empty otherwise).
    PasswordChanged { how: String, from: String },
    /// A sign-in method was added.
    FactorAdded { what: String, from: String },
    /// A sign-in method was removed.
    FactorRemoved { what: String, from: String },
    /// Someone signed in from a browser not seen before on this account.
    NewDevice { browser: String, from: String },
    /// The person asked for their account to be deleted; `when`: the day it happens, or
    /// empty when an administrator completes it.
    DeletionRequested { when: String },
}

/// A message's words, before rendering.
pub struct Words {
    pub kind: &'static str,
    pub subject: String,
    pub paragraphs: Vec<String>,
    /// The link the reader is asked to open, and the words on its button.
    pub action: Option<(String, String)>,
    /// Closing words under the link (what to do if it was not them).
    pub closing: Option<String>,
}

/// ", from 192.0.2.7" when the address is known; " by an administrator" as given.
fn from_part(from: &str) -> String {
    if from.is_empty() {
        String::new()
    } else if from.starts_with("by ") {
        format!(" {from}")
    } else {
        format!(", from {from}")
    }
}

const NOT_YOU: &str = "If this was not you, sign in and change your password at once, remove \
                       any sign-in method you do not recognise, and tell your lab administrator.";

impl Content {
    /// The words of this message; `account` is the account page's address.
    pub fn words(&self, account: &str) -> Words {
        let notice = |kind, subject: &str, what: String| Words {
            kind,
            subject: subject.to_owned(),
            paragraphs: vec![what],
            action: Some(("Review your account".into(), account.to_owned())),
            closing: Some(NOT_YOU.into()),
        };
        match self {
            Content::Invitation { lab, link, days } => Words {
                kind: "invitation",
                subject: format!("You are invited to {lab}"),
                paragraphs: vec![
                    format!("You are invited to join {lab} and sign in to its services."),
                    format!("Open the link to choose your password. It works once, for {days} days."),
                ],
                action: Some(("Accept the invitation".into(), link.clone())),
                closing: Some("If you did not expect this invitation, ignore this message.".into()),
            },
            Content::PasswordReset { link, minutes } => Words {
                kind: "password_reset",
                subject: "Reset your password".into(),
                paragraphs: vec![
                    "Someone asked to reset the password of the account with this address."
                        .into(),
                    format!(
                        "Open the link to choose a new password. It works once, for {minutes} minutes. If your account has a second factor, you will still need it to sign in."
                    ),
                ],
                action: Some(("Choose a new password".into(), link.clone())),
                closing: Some(
                    "If you did not ask for this, ignore this message: your password stays as it is."
                        .into(),
                ),
            },
            Content::ConfirmAddress { link, hours } => Words {
                kind: "confirm_address",
                subject: "Confirm your e-mail address".into(),
                paragraphs: vec![format!(
                    "Open the link to confirm that this address is yours. It works once, for {hours} hours."
                )],
                action: Some(("Confirm the address".into(), link.clone())),
                closing: Some("If you do not have an account, ignore this message.".into()),
            },
            Content::ChangeToNew { old, link, hours } => Words {
                kind: "address_change_new",
                subject: "Confirm your new e-mail address".into(),
                paragraphs: vec![
                    format!("The account with the address {old} asked to use this address instead."),
                    format!(
                        "Open the link to confirm it. The change happens once this link and the one sent to {old} are both opened, within {hours} hours."
                    ),
                ],
                action: Some(("Confirm the new address".into(), link.clone())),
                closing: Some("If you did not ask for this, ignore this message.".into()),
            },
            Content::ChangeFromOld { new, link, hours } => Words {
                kind: "address_change_old",
                subject: "Confirm the change of your e-mail address".into(),
                paragraphs: vec![
                    format!("Your account asked to change its e-mail address to {new}."),
                    format!(
                        "Open the link to agree. The change happens once this link and the one sent to {new} are both opened, within {hours} hours."
                    ),
                ],
                action: Some(("Agree to the change".into(), link.clone())),
                closing: Some(format!(
                    "If you did not ask for this, do not open the link: nothing changes without it. {NOT_YOU}"
                )),
            },
            Content::AddressChanged { new } => notice(
                "address_changed",
                "Your e-mail address was changed",
                format!(
                    "Your account's e-mail address is now {new}. Messages about the account go there from now on."
                ),
            ),
            Content::PasswordChanged { how, from } => notice(
                "password_changed",
                "Your password was changed",
                format!("Your password was changed {how}{}.", from_part(from)),
            ),
            Content::FactorAdded { what, from } => notice(
                "factor_added",
                "A sign-in method was added to your account",
                format!("{what} was added to your account{}.", from_part(from)),
            ),
            Content::FactorRemoved { what, from } => notice(
                "factor_removed",
                "A sign-in method was removed from your account",
                format!("{what} was removed from your account{}.", from_part(from)),
            ),
            Content::NewDevice { browser, from } => notice(
                "new_device",
                "New sign-in to your account",
                format!(
                    "Your account was signed in to from a browser it had not used before: {browser}{}.",
                    from_part(from)
                ),
            ),
            Content::DeletionRequested { when } => Words {
                kind: "deletion_requested",
                subject: "Your account will be deleted".into(),
                paragraphs: vec![if when.is_empty() {
                    "You asked for your account to be deleted. An administrator completes the deletion; until then you can cancel it on your account page.".to_owned()
                } else {
                    format!(
                        "You asked for your account to be deleted. It will be deleted on {when}; until then you can cancel it on your account page."
                    )
                }],
                action: Some(("Open your account page".into(), account.to_owned())),
                closing: Some(format!("If this was not you, sign in and cancel the deletion at once. {NOT_YOU}")),
            },
        }
    }
}
