//! The console's pages: one askama template struct per page (`templates/admin/`).

use crate::admin::ops::{Adoption, InvitationView, LabView, MemberView, PolicyView, RoleView};
use askama::Template;

#[derive(Template)]
#[template(path = "admin/index.html")]
pub struct IndexPage {
    pub who: String,
    pub csrf: String,
    pub system: bool,
    pub labs: Vec<LabView>,
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
    pub who: String,
    pub csrf: String,
    /// A system administrator (may add existing accounts to the lab).
    pub system: bool,
    pub lab: LabView,
    pub notice: Option<String>,
    pub members: Vec<MemberView>,
    pub invitations: Vec<InvitationView>,
    pub roles: Vec<RoleView>,
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
    pub who: String,
    pub csrf: String,
    pub lab: LabView,
    pub member: MemberView,
    pub roles: Vec<RoleChoice>,
    /// (feature, "allowed" or "denied")
    pub overrides: Vec<(String, &'static str)>,
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
    pub who: String,
    pub csrf: String,
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
    pub who: String,
    pub csrf: String,
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
    pub who: String,
    pub csrf: String,
    pub lab: LabView,
    pub invitation: InvitationView,
    pub link: String,
    pub expires: String,
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (the account pages' format).
pub fn when(t: i64) -> String {
    crate::http::account::fmt_time(t)
}
