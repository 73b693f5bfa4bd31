//! The console's pages: one askama template struct per page (`templates/admin/`).

use crate::admin::ops::{Adoption, InvitationView, LabView, MemberView, PolicyView, RoleView};
use askama::Template;
use latchkey_core::Acr;

/// Every console page's header: who is signed in, how strongly, and a step-up where a lab
/// they administer needs more than this sign-in.
pub struct Head {
    pub who: String,
    /// The CSRF token of every console form on the page.
    pub csrf: String,
    /// "a password and a second factor (mfa)"; `None` for a caller who is not a person.
    pub level: Option<String>,
    pub step_up: Option<StepUp>,
}

/// A link to sign in again at `need` and come back.
pub struct StepUp {
    pub href: String,
    /// "Confirm with a passkey"
    pub label: String,
    pub need: String,
}

impl StepUp {
    pub fn to(back: &str, need: Acr) -> StepUp {
        StepUp {
            href: super::login_url(
                back,
                super::Ask {
                    acr: Some(need),
                    max_age: None,
                },
            ),
            label: match need {
                Acr::Phr => "Confirm with a passkey",
                _ => "Confirm with a second factor",
            }
            .into(),
            need: need.as_str().into(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/index.html")]
pub struct IndexPage {
    pub head: Head,
    pub system: bool,
    pub labs: Vec<LabRow>,
}

/// A lab on the console's index, with the step-up its pages need, if any.
pub struct LabRow {
    pub lab: LabView,
    pub step_up: Option<StepUp>,
}

/// After signing in: administration needs a level the person's factors cannot reach yet.
#[derive(Template)]
#[template(path = "admin/enrol.html")]
pub struct EnrolPage {
    pub need: String,
    pub describe: &'static str,
    /// The account page's CSRF token, to start setting up an authenticator app from here
    /// (for `mfa`; a passkey is registered on the account page itself).
    pub account_csrf: Option<String>,
    /// Signing in to the console again.
    pub again: String,
}

/// One bar of the adoption chart (SVG drawn on the server: no script, no inline style).
pub struct Bar {
    pub label: String,
    pub count: usize,
    /// Width in the chart's 0..=300 coordinate space.
    pub width: usize,
    pub y: usize,
    pub class: &'static str,
}

#[derive(Template)]
#[template(path = "admin/lab.html")]
pub struct LabPage {
    pub head: Head,
    /// A system administrator (may add existing accounts to the lab).
    pub system: bool,
    pub lab: LabView,
    pub notice: Option<String>,
    pub members: Vec<MemberView>,
    pub invitations: Vec<InvitationView>,
    pub roles: Vec<RoleView>,
    /// The features the lab's services declare (what roles and grants pick from).
    pub declared: Vec<String>,
    pub policy: PolicyView,
    pub adoption: Adoption,
    pub bars: Vec<Bar>,
    pub chart_height: usize,
    /// The share of members meeting the policy, in whole percent.
    pub meeting_percent: usize,
}

#[derive(Template)]
#[template(path = "admin/member.html")]
pub struct MemberPage {
    pub head: Head,
    pub lab: LabView,
    pub member: MemberView,
    pub roles: Vec<RoleChoice>,
    /// (feature, "allowed" or "denied")
    pub overrides: Vec<(String, &'static str)>,
    /// The features the lab's services declare (the grant form's choices).
    pub declared: Vec<String>,
    pub notice: Option<String>,
}

/// A role on the member page, and whether the member holds it.
pub struct RoleChoice {
    pub name: String,
    pub features: Vec<String>,
    pub held: bool,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    pub head: Head,
    pub lab: LabView,
    pub entries: Vec<AuditRow>,
    pub action: String,
    pub actor: String,
    pub since: String,
    pub until: String,
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
pub struct ConfirmPage {
    pub head: Head,
    pub question: String,
    pub consequence: String,
    pub button: String,
    pub action: String,
    pub cancel: String,
    pub fields: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "admin/invited.html")]
pub struct InvitedPage {
    pub head: Head,
    pub lab: LabView,
    pub invitation: InvitationView,
    pub link: String,
    pub expires: String,
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (the account pages' format).
pub fn when(t: i64) -> String {
    crate::http::account::fmt_time(t)
}
