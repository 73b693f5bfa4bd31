//! The sign-in service: one function per user-visible step of a login flow (OIDC Core section
//! 3.1.2.3-3.1.2.5), between the pure decisions of [`crate::protocol::authorize`] and the data
//! of [`crate::store`]. Handlers in `http/` parse a request, call one function here and render
//! its outcome ([`Next`] or a step's own outcome enum); they decide no policy and change no
//! flow state.
//!
//! A flow's state is its stored [`AuthRequest`](crate::protocol::authorize::AuthRequest),
//! changed only through [`flow::transition`] (the pure
//! [`Transition`](crate::protocol::authorize::Transition)s):
//!
//! ```mermaid
//! stateDiagram-v2
//!     [*] --> Decide: /authorize (flow::start) or /login/continue (flow::resume)
//!     Decide --> Login: not signed in (fresh enough)
//!     Decide --> PickLab: signed in, several labs, no valid hint
//!     Decide --> StepUp: a factor is missing for the level demanded
//!     Decide --> Enrol: no enrolled factor reaches the level, grace open
//!     Decide --> Consent: consent missing or prompt=consent
//!     Decide --> Issue: everything met (code::issue)
//!     Decide --> Refuse: prompt=none, or the level is unreachable
//!     Login --> Decide: password::submit / webauthn::sign_in (Authenticated)
//!     Login --> Login: wrong password (throttle counts it)
//!     PickLab --> Decide: lab::pick (LabDecided)
//!     StepUp --> Decide: second_factor::submit / webauthn::step_up (Authenticated)
//!     StepUp --> StepUp: wrong code (CodeRefused)
//!     StepUp --> [*]: fifth wrong code in the flow (flow ends)
//!     Enrol --> Decide: factor enrolled (account) or enrolment::defer (EnrolmentDeferred)
//!     Consent --> Decide: consent::decide Allow (Consented)
//!     Consent --> Refuse: Deny (access_denied)
//!     Issue --> [*]: code to redirect_uri
//!     Refuse --> [*]: error to redirect_uri
//! ```
//!
//! Password attempts spend budgets and wrong codes are counted per user by one component,
//! [`throttle`]; who sent them ([`Requester`]: address, user agent, known device) is what the
//! budgets and the audit entries of sign-in are keyed on.
//! Every change a step records (a session established, a factor enrolled, removed or renamed,
//! recovery codes generated) is audited inside the store transaction of that change; events
//! that change nothing (a failed sign-in, a refused replay) are appended on their own.

pub mod account;
pub mod code;
pub mod consent;
pub mod dates;
pub mod device;
pub mod device_authorization;
pub mod email;
pub mod enrolment;
pub mod flow;
pub mod invitation;
pub mod lab;
pub mod own_data;
pub mod password;
pub mod password_change;
pub mod pushed;
pub mod reset;
pub mod second_factor;
pub mod session;
pub mod throttle;
pub mod webauthn;

use crate::protocol::OAuthError;
use crate::protocol::authorize::ResponseMode;
use crate::secret::OpaqueToken;
use crate::store::StoreError;

pub use flow::{ACCOUNT_CLIENT_ID, BrowserAt, Origin};

/// Who sent a sign-in request (`http::client_addr::requester` builds it).
#[derive(Debug, Clone)]
pub struct Requester {
    /// The client's address (through trusted proxies only).
    pub ip: std::net::IpAddr,
    /// The `User-Agent`, without control characters, at most 256 characters.
    pub user_agent: String,
    /// The known-device cookie's value, if the browser sent one (checked per account).
    pub device: Option<String>,
}

impl Requester {
    /// Where a session this request starts comes from.
    pub fn seen_from(&self) -> crate::store::sessions::SeenFrom {
        crate::store::sessions::SeenFrom {
            source: self.ip.to_string(),
            user_agent: self.user_agent.clone(),
        }
    }

    /// `{"source", "user_agent"}`, for audit entries of sign-in.
    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({"source": self.ip.to_string(), "user_agent": self.user_agent})
    }
}

/// Where the browser goes after a step.
#[derive(Debug)]
pub enum Next {
    /// One of the flow's pages (`/login`, `/consent`, ...), for flow `flow`; `new`: the flow
    /// was just created, bound to the browser id the caller passed.
    Page {
        path: &'static str,
        flow: String,
        new: bool,
    },
    /// A local address (the account pages, `/login/continue`).
    Local(String),
    /// An answer for the client at its verified redirect URI: a code or an error.
    Client(ClientAnswer),
    /// Signed in (the session stands), but not a member of any lab the client (its name)
    /// serves: Latchkey's own refusal page, nothing for the client. `flow`: the stored flow,
    /// which shows the page again at `/login/continue` (until it expires).
    NotAMember {
        client: String,
        flow: Option<String>,
    },
}

/// Parameters for the client's redirect URI, sent by query or form_post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAnswer {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub params: Vec<(String, String)>,
}

impl ClientAnswer {
    /// An error for the client, with `state` and RFC 9207 `iss`. Every error that goes to a
    /// redirect URI is built here; its `error_description` is restricted to RFC 6749's
    /// character set (section 4.1.2.1) by [`OAuthError::public_description`].
    pub fn error(
        issuer: &str,
        redirect_uri: &str,
        mode: ResponseMode,
        state: Option<&str>,
        e: &OAuthError,
    ) -> ClientAnswer {
        let mut params = vec![
            ("error".to_owned(), e.code.as_str().to_owned()),
            ("error_description".to_owned(), e.public_description()),
        ];
        if let Some(s) = state {
            params.push(("state".into(), s.to_owned()));
        }
        params.push(("iss".into(), issuer.to_owned()));
        ClientAnswer {
            redirect_uri: redirect_uri.to_owned(),
            mode,
            params,
        }
    }
}

/// A step that proved a factor: where to go next, and the session's new cookie token.
#[derive(Debug)]
pub struct SignedIn {
    pub next: Next,
    pub token: OpaqueToken,
}

/// Why a step cannot go on; rendered as a page by `http::errors`.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The authorization request is invalid and may not be sent back to the client.
    #[error("invalid request: {0:?}")]
    InvalidRequest(OAuthError),
    /// The flow expired or was already used.
    #[error("the flow is gone")]
    FlowGone,
    /// The browser sent no browser cookie.
    #[error("no browser cookie")]
    CookiesNeeded,
    /// The flow belongs to another browser.
    #[error("the flow belongs to another browser")]
    OtherBrowser,
    /// A second factor without the first.
    #[error("a second factor without a session")]
    SignInFirst,
    /// The flow ended after too many wrong codes.
    #[error("too many wrong codes in the flow")]
    TooManyCodes,
    /// This address started too many sign-ins lately (`throttle.flows_per_source`).
    #[error("too many sign-ins started from this address")]
    TooManyFlows { retry_after: i64 },
    /// This address entered too many wrong device user codes lately
    /// (`throttle.user_codes_per_source`).
    #[error("too many wrong user codes from this address")]
    TooManyUserCodes { retry_after: i64 },
    /// A lab the user is not a member of (a tampered form).
    #[error("not one of the user's labs")]
    LabNotAvailable,
    /// Signed in, but not a member of any lab the client (its name) serves.
    #[error("not a member of a lab the client serves")]
    NotAMember { client: String },
    /// An authenticator app is already set up (remove it first).
    #[error("an authenticator app is already set up")]
    TotpAlreadySetUp,
    /// A credential name was empty.
    #[error("name missing")]
    NameMissing,
    /// The account pages' own sign-in cannot reach what they need.
    #[error("sign-in not possible: {0}")]
    NotPossible(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl SignInError {
    pub fn internal(e: impl std::fmt::Display) -> SignInError {
        SignInError::Internal(e.to_string())
    }
}
