//! The forms of the console's lab pages, `POST /admin/labs/{lab}/{action…}`: the path is
//! parsed into an [`Action`], a destructive one is confirmed on a server-rendered page first
//! (the same form posted again with `confirm=yes`), and each runs one admin operation.

use super::super::pages::{ConfirmPage, InvitedPage, when};
use super::super::{CSRF_PURPOSE, Console, console, error_page, html, refusal};
use super::with_notice;
use crate::admin::ops::{self, NewInvitation, NewMember, PolicyView, RoleBody};
use crate::admin::{Admin, AdminError};
use crate::http::{State, cookies, decode_pairs};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::names::{LabId, UserId};

/// What a lab page's form asks for, read from the path after `/admin/labs/{lab}/`. Member
/// actions carry the member's user id, deletions the id or name they delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action<'a> {
    AddMember,
    Invite,
    WithdrawInvitation(&'a str),
    PutRole,
    DeleteRole(&'a str),
    Policy,
    MemberRoles(&'a str),
    MemberFeature(&'a str),
    MemberAdmin(&'a str),
    RemoveMember(&'a str),
    ResetFactors(&'a str),
    ResetAttempts(&'a str),
    SendReset(&'a str),
    EndSessions(&'a str),
    Disable(&'a str),
    Enable(&'a str),
}

/// A confirmation page's wording: the question, what happens, the button.
struct Confirmation {
    question: String,
    consequence: &'static str,
    button: &'static str,
}

impl<'a> Action<'a> {
    fn parse(path: &'a str) -> Option<Action<'a>> {
        let parts: Vec<&'a str> = path.split('/').collect();
        Some(match parts.as_slice() {
            ["members"] => Action::AddMember,
            ["invitations"] => Action::Invite,
            ["invitations", id, "delete"] => Action::WithdrawInvitation(id),
            ["roles"] => Action::PutRole,
            ["roles", role, "delete"] => Action::DeleteRole(role),
            ["policy"] => Action::Policy,
            ["members", user, "roles"] => Action::MemberRoles(user),
            ["members", user, "feature"] => Action::MemberFeature(user),
            ["members", user, "admin"] => Action::MemberAdmin(user),
            ["members", user, "remove"] => Action::RemoveMember(user),
            ["members", user, "reset-factors"] => Action::ResetFactors(user),
            ["members", user, "reset-attempts"] => Action::ResetAttempts(user),
            ["members", user, "send-reset"] => Action::SendReset(user),
            ["members", user, "end-sessions"] => Action::EndSessions(user),
            ["members", user, "disable"] => Action::Disable(user),
            ["members", user, "enable"] => Action::Enable(user),
            _ => return None,
        })
    }

    /// What a destructive action asks before it runs; `None` when it runs at once.
    fn confirmation(self, form: &Form) -> Option<Confirmation> {
        let (question, consequence, button) = match self {
            Action::WithdrawInvitation(_) => (
                format!(
                    "Withdraw the invitation for {}?",
                    form.get("email").unwrap_or("this address")
                ),
                "Its link stops working at once.",
                "Withdraw invitation",
            ),
            Action::DeleteRole(role) => (
                format!("Delete the role {role}?"),
                "Everyone holding it loses its features at their next token.",
                "Delete role",
            ),
            Action::MemberAdmin(_) if form.get("admin") != Some("yes") => (
                "Stop this member administering the lab?".into(),
                "They keep their roles but can no longer use the console for this lab.",
                "Remove administration",
            ),
            Action::RemoveMember(_) => (
                "Remove this member from the lab?".into(),
                "Their roles and feature grants here go, their sessions end and the lab's \
                 refresh tokens are revoked at once.",
                "Remove member",
            ),
            Action::ResetFactors(_) => (
                "Reset this person's second factors?".into(),
                "Their authenticator app, passkeys, security keys and recovery codes are \
                 removed and their sessions end. They enrol again at their next sign-in.",
                "Reset factors",
            ),
            Action::EndSessions(_) => (
                "Sign this person out everywhere?".into(),
                "Their sessions end and their refresh tokens are revoked at once.",
                "End sessions",
            ),
            Action::Disable(_) => (
                "Disable this account?".into(),
                "They cannot sign in anywhere; their sessions and refresh tokens end at once.",
                "Disable account",
            ),
            _ => return None,
        };
        Some(Confirmation {
            question,
            consequence,
            button,
        })
    }

    /// The page an action on a member returns to (and a cancelled confirmation leads back
    /// to): the member's page; for the others, the lab's.
    fn member(self) -> Option<&'a str> {
        match self {
            Action::MemberRoles(u)
            | Action::MemberFeature(u)
            | Action::MemberAdmin(u)
            | Action::RemoveMember(u)
            | Action::ResetFactors(u)
            | Action::ResetAttempts(u)
            | Action::SendReset(u)
            | Action::EndSessions(u)
            | Action::Disable(u)
            | Action::Enable(u) => Some(u),
            _ => None,
        }
    }
}

/// A posted console form: single values, plus every value of repeated fields (checkboxes).
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
    fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }
    fn confirmed(&self) -> bool {
        self.get("confirm") == Some("yes")
    }
}

/// `POST /admin/labs/{lab}/{action…}`: every form of the lab pages.
pub async fn action(
    state: State,
    req: HttpRequest,
    path: web::Path<(LabId, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let c = match console(&state, &req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (lab, action) = path.into_inner();
    let form = Form(decode_pairs(&body));
    if !cookies::csrf_ok(
        &state,
        &c.browser,
        CSRF_PURPOSE,
        form.get("csrf").unwrap_or(""),
    ) {
        return error_page(&AdminError::invalid(
            "csrf",
            "this form has expired: reload the page and try again",
        ));
    }
    let Some(action) = Action::parse(&action) else {
        return error_page(&AdminError::NotFound("no such action".into()));
    };
    let lab_path = format!("/admin/labs/{lab}");
    let back = match action.member() {
        Some(user) => format!("{lab_path}/members/{user}"),
        None => lab_path.clone(),
    };
    if let Some(q) = action.confirmation(&form)
        && !form.confirmed()
    {
        return confirm(&c, &req, &form, q, back);
    }
    match run(&state, &c, &req, &lab, action, &form).await {
        Ok(Done::Notice { on_lab, notice }) => {
            with_notice(if on_lab { &lab_path } else { &back }, &notice)
        }
        Ok(Done::Page(page)) => page,
        Err(e) => refusal(&req, &e),
    }
}

/// What a finished action shows: a notice on the lab's page (`on_lab`) or on the page the
/// action came from, or a page of its own.
enum Done {
    Notice { on_lab: bool, notice: String },
    Page(HttpResponse),
}

fn notice(notice: impl Into<String>) -> Done {
    Done::Notice {
        on_lab: false,
        notice: notice.into(),
    }
}

fn notice_on_lab(notice: impl Into<String>) -> Done {
    Done::Notice {
        on_lab: true,
        notice: notice.into(),
    }
}

async fn run(
    state: &AppState,
    c: &Console,
    req: &HttpRequest,
    lab: &LabId,
    action: Action<'_>,
    form: &Form,
) -> Result<Done, AdminError> {
    let a = &c.admin;
    Ok(match action {
        Action::AddMember => add_member(state, a, lab, form).await?,
        Action::Invite => invite(state, c, req, lab, form).await?,
        Action::WithdrawInvitation(id) => {
            ops::delete_invitation(state, a, lab, id).await?;
            notice("Invitation withdrawn.")
        }
        Action::PutRole => put_role(state, a, lab, form).await?,
        Action::DeleteRole(role) => {
            let role = ops::role_name("name", role)?;
            ops::delete_role(state, a, lab, &role).await?;
            notice(format!("Role {role} deleted."))
        }
        Action::Policy => put_policy(state, a, lab, form).await?,
        Action::MemberRoles(user) => {
            ops::set_member_roles(state, a, lab, &UserId::from(user), form.all("roles")).await?;
            notice("Roles saved. They apply to the next token.")
        }
        Action::MemberFeature(user) => {
            let feature = ops::feature_name("feature", form.get("feature").unwrap_or("").trim())?;
            let allow = match form.get("effect") {
                Some("allow") => Some(true),
                Some("deny") => Some(false),
                _ => None,
            };
            ops::set_member_feature(state, a, lab, &UserId::from(user), &feature, allow).await?;
            notice(format!(
                "Feature {feature} saved. It applies to the next token."
            ))
        }
        Action::MemberAdmin(user) => {
            let on = form.get("admin") == Some("yes");
            ops::set_member_admin(state, a, lab, &UserId::from(user), on).await?;
            notice("Saved.")
        }
        Action::RemoveMember(user) => {
            ops::remove_member(state, a, lab, &UserId::from(user)).await?;
            notice_on_lab("Member removed.")
        }
        Action::ResetFactors(user) => {
            let n = ops::reset_factors(state, a, &UserId::from(user)).await?;
            notice(format!("{} factors removed.", n.count))
        }
        Action::ResetAttempts(user) => {
            ops::reset_attempts(state, a, &UserId::from(user)).await?;
            notice("Sign-in attempts reset: they can try their password and codes again at once.")
        }
        Action::SendReset(user) => {
            let sent = ops::send_password_reset(state, a, &UserId::from(user)).await?;
            notice(format!(
                "A password-reset link is on its way to {}. It works once, for {} minutes.",
                sent.email, sent.expires_in_minutes
            ))
        }
        Action::EndSessions(user) => {
            let n = ops::end_sessions(state, a, &UserId::from(user)).await?;
            notice(format!("{} sessions ended.", n.count))
        }
        Action::Disable(user) => {
            ops::set_disabled(state, a, &UserId::from(user), true).await?;
            notice("Account disabled.")
        }
        Action::Enable(user) => {
            ops::set_disabled(state, a, &UserId::from(user), false).await?;
            notice("Account enabled.")
        }
    })
}

async fn add_member(
    state: &AppState,
    a: &Admin,
    lab: &LabId,
    form: &Form,
) -> Result<Done, AdminError> {
    let new = NewMember {
        email: form.get("email").unwrap_or("").to_owned(),
        name: form.get("name").map(str::to_owned),
        password: None,
        roles: form.all("roles"),
    };
    let m = ops::add_member(state, a, lab, new).await?;
    Ok(notice(format!("{} is now a member.", m.email)))
}

/// Creates an invitation and shows its link, once.
async fn invite(
    state: &AppState,
    c: &Console,
    req: &HttpRequest,
    lab: &LabId,
    form: &Form,
) -> Result<Done, AdminError> {
    let new = NewInvitation {
        email: form.get("email").unwrap_or("").to_owned(),
        roles: form.all("roles"),
        valid_days: None,
    };
    let inv = ops::create_invitation(state, &c.admin, lab, new).await?;
    let lab_view = ops::get_lab(state, &c.admin, lab).await?;
    let link = inv.link.clone().unwrap_or_default();
    Ok(Done::Page(html(&InvitedPage {
        expires: when(inv.expires_at),
        head: c.head(req),
        lab: lab_view,
        invitation: inv,
        link,
    })))
}

async fn put_role(
    state: &AppState,
    a: &Admin,
    lab: &LabId,
    form: &Form,
) -> Result<Done, AdminError> {
    let name = form.get("name").unwrap_or("").trim().to_owned();
    let features = form
        .get("features")
        .unwrap_or("")
        .split([',', ' ', '\n', '\r'])
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let body = RoleBody {
        features,
        min_acr: form.get("min_acr").map(str::to_owned),
    };
    if name.is_empty() {
        return Err(AdminError::invalid("name", "give the role a name"));
    }
    let name = ops::role_name("name", &name)?;
    ops::put_role(state, a, lab, &name, body).await?;
    Ok(notice(format!("Role {name} saved.")))
}

async fn put_policy(
    state: &AppState,
    a: &Admin,
    lab: &LabId,
    form: &Form,
) -> Result<Done, AdminError> {
    let num = |k: &str| -> Result<Option<i64>, AdminError> {
        form.get(k)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| AdminError::invalid(k, format!("`{v}` is not a number")))
            })
            .transpose()
    };
    let body = PolicyView {
        min_acr: form
            .get("min_acr")
            .filter(|v| *v != "none")
            .map(str::to_owned),
        grace_days: num("grace_days")?,
        grace_logins: num("grace_logins")?,
    };
    ops::put_policy(state, a, lab, body).await?;
    Ok(notice(
        "MFA policy saved. It applies at members' next sign-in.",
    ))
}

/// Shows the confirmation page for a destructive action.
fn confirm(
    c: &Console,
    req: &HttpRequest,
    form: &Form,
    q: Confirmation,
    cancel: String,
) -> HttpResponse {
    html(&ConfirmPage {
        head: c.head(req),
        question: q.question,
        consequence: q.consequence.to_owned(),
        button: q.button.to_owned(),
        action: req.path().to_owned(),
        cancel,
        fields: form
            .0
            .iter()
            .filter(|(k, _)| k != "csrf" && k != "confirm")
            .cloned()
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn every_lab_form_path_parses_to_its_action_and_nothing_else_does() {
        assert_eq!(Action::parse("members"), Some(Action::AddMember));
        assert_eq!(
            Action::parse("members/u1/reset-factors"),
            Some(Action::ResetFactors("u1"))
        );
        assert_eq!(
            Action::parse("members/u1/reset-attempts"),
            Some(Action::ResetAttempts("u1"))
        );
        assert_eq!(
            Action::parse("members/u1/send-reset"),
            Some(Action::SendReset("u1"))
        );
        assert_eq!(
            Action::parse("invitations/i1/delete"),
            Some(Action::WithdrawInvitation("i1"))
        );
        for bad in [
            "",
            "members/u1",
            "members/u1/erase",
            "roles/r/rename",
            "policy/x",
        ] {
            assert_eq!(Action::parse(bad), None, "{bad}");
        }
    }
}
