//! The authorization endpoint's logic (RFC 6749 section 4.1, OIDC Core section 3.1.2):
//! validate a request, then decide the next step of the login flow.
//!
//! ```mermaid
//! stateDiagram-v2
//!     [*] --> Validate
//!     Validate --> ErrorPage: unknown client / redirect_uri not registered
//!     Validate --> ErrorRedirect: any other invalid parameter
//!     Validate --> Login: no session, prompt=login, max_age exceeded
//!     Validate --> Consent: consent missing or prompt=consent
//!     Validate --> Issue: session and consent suffice
//!     Validate --> PickLab: signed in, several labs, no valid `lab` hint
//!     Login --> Login: wrong password (form again, nothing issued)
//!     Login --> PickLab: several labs, no valid `lab` hint
//!     Login --> Consent
//!     Login --> Issue
//!     PickLab --> StepUp: the chosen lab's policy needs another factor
//!     PickLab --> Consent
//!     PickLab --> Issue
//!     Consent --> Issue: Allow
//!     Consent --> ErrorRedirect: Deny (access_denied)
//!     Issue --> [*]: code to redirect_uri
//! ```
//!
//! With `prompt=none`, every transition that would show a page becomes an error redirect
//! instead (`login_required`, `consent_required`; `interaction_required` for the lab picker).
//!
//! The lab is decided once the user is signed in and before the MFA policy decision, because
//! policy is per lab ([`choose_lab`]): no lab for a user in none, their only lab, or, for a user
//! in several, the request's `lab` hint when they are a member of it, else the picker's choice.
//!
//! The module is split by concept: [`request`] validates the request, [`lab`] decides the
//! flow's lab, [`step`] decides the next step, and [`flow`] is the only way a stored flow's
//! request changes between steps (its transitions).

pub mod flow;
pub mod lab;
pub mod request;
pub mod step;

pub use flow::{FLOW_MAX_FAILED_CODES, Progress, Transition};
pub use lab::{LabChoice, LabRef, choose_lab};
pub use request::{
    AuthRequest, AuthorizeError, ClientView, DeviceRef, Prompt, RawParams, ResponseMode, validate,
};
pub use step::{Next, Standing, next_step, signed_in};

#[cfg(test)]
mod tests;
