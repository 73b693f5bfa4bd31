//! WebAuthn ceremonies (W3C WebAuthn Level 2): passwordless sign-in with a passkey
//! (discoverable credential, user verification required; also conditional-UI autofill), a
//! passkey or security key as the missing factor of a step-up, and registration from the
//! account pages or an enrolment during a sign-in.
//!
//! A ceremony has two halves. [`begin_login`], [`begin_verify`] and [`begin_register`] start
//! one with the relying party, store its server half as a ceremony bound to the browser and
//! answer [`Begun`] (the options for `navigator.credentials`). [`finish`] takes the ceremony
//! once, checks the browser, verifies the authenticator's answer and answers [`Finished`]
//! (where the page goes, and the session's new cookie token). Every refusal is a [`Refusal`];
//! the HTTP layer (`http/webauthn.rs`) renders each one.
//!
//! - [`ceremony`]: begin and finish, the server half stored between them and its binding to
//!   the browser;
//! - [`assertion`]: an assertion's outcome in a login flow (sign-in, step-up) and its
//!   signature counter;
//! - [`registration`]: storing a credential just registered.

pub mod assertion;
pub mod ceremony;
pub mod registration;

pub use assertion::{sign_in, step_up};
pub use ceremony::{Answer, begin_login, begin_register, begin_verify, finish};

use crate::secret::OpaqueToken;
use serde::Serialize;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

/// A ceremony begun: its id (the browser sends it back to [`finish`]) and the options for
/// the authenticator.
#[derive(Debug, Serialize)]
pub struct Begun {
    pub ceremony: String,
    pub options: Options,
}

/// The options of a ceremony, as `navigator.credentials.get` or `.create` takes them.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Options {
    /// An assertion (sign-in, step-up).
    Request(RequestChallengeResponse),
    /// A registration.
    Creation(CreationChallengeResponse),
}

/// A ceremony finished: where the page goes next, and the session's new cookie token when
/// the ceremony changed the session.
#[derive(Debug)]
pub struct Finished {
    pub next: String,
    pub token: Option<OpaqueToken>,
}

/// What kind of credential a registration creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Discoverable, user-verifying: signs in without a password, reaches `phr`.
    Passkey,
    /// A second factor after the password.
    SecurityKey,
}

impl Kind {
    /// The name stored with the credential and in audit details.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Passkey => "passkey",
            Kind::SecurityKey => "security_key",
        }
    }
}

/// Why a ceremony could not begin or was not accepted (the page shows a message for each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No relying party: Latchkey is served at an address that cannot be an RP id.
    Unavailable,
    /// A step-up began without the flow's session.
    SignInEnded,
    /// A step-up began for a user with no passkey or security key.
    NoCredentials,
    /// A registration without a session.
    NotSignedIn,
    /// A registration needs a recent sign-in at the user's level first.
    ConfirmFirst,
    /// The answer came without the browser cookie.
    CookiesNeeded,
    /// The ceremony expired or was already answered.
    Expired,
    /// The ceremony was begun in another browser.
    OtherBrowser,
    /// The authenticator's answer is not a credential of the expected shape.
    Malformed,
    /// A passwordless assertion without a usable user handle.
    Anonymous,
    /// A passwordless assertion with a credential Latchkey does not know (or not for the
    /// user handle it presented).
    UnknownCredential,
    /// The signature counter went backwards: probably a copied authenticator.
    CounterRegression,
    /// The assertion did not verify.
    NotVerified,
    /// The account is disabled or gone.
    AccountCannotSignIn,
    /// The browser's session ended during the ceremony.
    SessionEnded,
    /// The browser's session is now another user's than the ceremony's.
    SessionChanged,
    /// The credential is not registered to the signed-in user.
    NotYours,
    /// The registration did not verify.
    NotRegistered,
    /// The store refused the new credential (already registered); its message.
    Conflict(String),
}

/// An assertion's or registration's outcome: finished, or refused.
pub type Outcome = Result<Finished, Refusal>;
