//! The console's lab pages: overview (members, invitations, roles, MFA policy and its
//! adoption), one member, the lab's audit log, and every form they post.

use super::pages::{
    AuditPage, AuditRow, Bar, ConfirmPage, InvitedPage, LabPage, MemberPage, RoleChoice, when,
};
use super::{CSRF_PURPOSE, Console, console, error_page, html};
use crate::admin::AdminError;
use crate::admin::ops::{self, AuditFilter, NewInvitation, NewMember, PolicyView, RoleBody};
use crate::http::authorize::see_other;
use crate::http::{State, cookies, decode_pairs};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};

fn query(req: &HttpRequest, key: &str) -> Option<String> {
    decode_pairs(req.query_string().as_bytes())
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn with_notice(path: &str, notice: &str) -> HttpResponse {
    see_other(&format!(
        "{path}?notice={}",
        url::form_urlencoded::byte_serialize(notice.as_bytes()).collect::<String>()
    ))
}

macro_rules! signed_in {
    ($state:expr, $req:expr) => {
        match console(&$state, &$req).await {
            Ok(c) => c,
            Err(r) => return r,
        }
    };
}

macro_rules! or_page {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return error_page(&e),
        }
    };
}

/// `GET /admin/labs/{lab}`.
pub async fn page(state: State, req: HttpRequest, lab: web::Path<String>) -> HttpResponse {
    let c = signed_in!(state, req);
    let a = &c.admin;
    let lab_view = or_page!(ops::get_lab(&state, a, &lab).await);
    let members = or_page!(ops::list_members(&state, a, &lab).await);
    let invitations = or_page!(ops::list_invitations(&state, a, &lab).await);
    let roles = or_page!(ops::list_roles(&state, a, &lab).await);
    let policy = or_page!(ops::get_policy(&state, a, &lab).await);
    let adoption = or_page!(ops::adoption(&state, a, &lab).await);
    let (bars, chart_height) = chart(&adoption);
    let meeting_percent = (adoption.meeting * 100)
        .checked_div(adoption.members)
        .unwrap_or(100);
    html(&LabPage {
        system: c.admin.system,
        who: c.who,
        csrf: c.csrf,
        lab: lab_view,
        notice: query(&req, "notice"),
        members,
        invitations,
        roles,
        policy,
        adoption,
        bars,
        chart_height,
        meeting_percent,
    })
}

/// The adoption chart's bars: meeting the policy, not meeting it, then members by the
/// strongest level their factors reach.
fn chart(a: &ops::Adoption) -> (Vec<Bar>, usize) {
    let rows = [
        ("Meet the policy", a.meeting, "meets"),
        ("Do not meet it yet", a.members - a.meeting, "misses"),
        ("Password only", a.pwd, "level"),
        ("Second factor (mfa)", a.mfa, "level"),
        ("Passkey (phr)", a.phr, "level"),
    ];
    let max = a.members.max(1);
    let bars = rows
        .iter()
        .enumerate()
        .map(|(i, (label, count, class))| Bar {
            label: (*label).to_owned(),
            count: *count,
            width: count * 300 / max,
            y: i * 28,
            class,
        })
        .collect::<Vec<_>>();
    let h = bars.len() * 28;
    (bars, h)
}

/// `GET /admin/labs/{lab}/members/{user}`.
pub async fn member_page(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let c = signed_in!(state, req);
    let (lab, user) = path.into_inner();
    let lab_view = or_page!(ops::get_lab(&state, &c.admin, &lab).await);
    let member = or_page!(ops::get_member(&state, &c.admin, &lab, &user).await);
    let roles = or_page!(ops::list_roles(&state, &c.admin, &lab).await)
        .into_iter()
        .map(|r| RoleChoice {
            held: member.roles.contains(&r.name),
            name: r.name,
            features: r.features,
        })
        .collect();
    let overrides = member
        .overrides
        .iter()
        .map(|(f, allow)| (f.clone(), if *allow { "allowed" } else { "denied" }))
        .collect();
    html(&MemberPage {
        who: c.who,
        csrf: c.csrf,
        lab: lab_view,
        member,
        roles,
        overrides,
        notice: query(&req, "notice"),
    })
}

/// `GET /admin/labs/{lab}/audit?action=&actor=&since=&until=` (dates as YYYY-MM-DD).
pub async fn audit(state: State, req: HttpRequest, lab: web::Path<String>) -> HttpResponse {
    let c = signed_in!(state, req);
    let lab_view = or_page!(ops::get_lab(&state, &c.admin, &lab).await);
    let action = query(&req, "action").unwrap_or_default();
    let actor_q = query(&req, "actor").unwrap_or_default();
    let since = query(&req, "since").unwrap_or_default();
    let until = query(&req, "until").unwrap_or_default();
    let date = |field: &str, v: &str| -> Result<Option<i64>, AdminError> {
        if v.is_empty() {
            return Ok(None);
        }
        parse_date(v).map(Some).ok_or_else(|| {
            AdminError::invalid(field, format!("`{v}` is not a date: use YYYY-MM-DD"))
        })
    };
    let since_t = or_page!(date("since", &since));
    let until_t = or_page!(date("until", &until)).map(|t| t + 86_400);
    // The actor filter takes an email (people) or an id (clients, `cli`, `system`).
    let actor = if actor_q.contains('@') {
        match state.store.find_user_by_email(&actor_q).await {
            Ok(Some(u)) => Some(u.id),
            Ok(None) => Some(String::from("-")),
            Err(e) => return error_page(&e.into()),
        }
    } else {
        Some(actor_q.clone()).filter(|s| !s.is_empty())
    };
    let entries = or_page!(
        ops::lab_audit_log(
            &state,
            &c.admin,
            &lab,
            AuditFilter {
                action: Some(action.clone()),
                actor,
                target: None,
                since: since_t,
                until: until_t,
                limit: Some(200),
            },
        )
        .await
    );
    let mut names = std::collections::HashMap::new();
    let mut rows = vec![];
    for e in entries {
        let actor = display_id(&state, &mut names, &e.actor).await;
        let target = display_id(&state, &mut names, &e.target).await;
        rows.push(AuditRow {
            at: when(e.at),
            actor,
            action: e.action,
            target,
            details: e.details.to_string(),
        });
    }
    html(&AuditPage {
        who: c.who,
        csrf: c.csrf,
        lab: lab_view,
        entries: rows,
        action,
        actor: actor_q,
        since,
        until,
    })
}

/// A user id shown as their email (ids of other things as they are).
async fn display_id(
    state: &AppState,
    cache: &mut std::collections::HashMap<String, String>,
    id: &str,
) -> String {
    if let Some(n) = cache.get(id) {
        return n.clone();
    }
    let n = match state.store.get_user(id).await {
        Ok(Some(u)) => u.email,
        _ => id.to_owned(),
    };
    cache.insert(id.to_owned(), n.clone());
    n
}

/// `YYYY-MM-DD` → Unix seconds at 00:00 UTC.
fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if it.next().is_some()
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || !(1970..=9999).contains(&y)
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
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

/// Shows the confirmation page for a destructive action (the same form, posted again with
/// `confirm=yes`).
fn confirm(
    c: &Console,
    req: &HttpRequest,
    form: &Form,
    question: String,
    consequence: &str,
    button: &str,
    cancel: String,
) -> HttpResponse {
    html(&ConfirmPage {
        who: c.who.clone(),
        csrf: c.csrf.clone(),
        question,
        consequence: consequence.to_owned(),
        button: button.to_owned(),
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

/// `POST /admin/labs/{lab}/{action…}`: every form of the lab pages.
pub async fn action(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let c = signed_in!(state, req);
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
    let a = &c.admin;
    let lab_path = format!("/admin/labs/{lab}");
    let parts: Vec<&str> = action.split('/').collect();
    let member_path = |user: &str| format!("/admin/labs/{lab}/members/{user}");
    match parts.as_slice() {
        ["members"] => {
            let new = NewMember {
                email: form.get("email").unwrap_or("").to_owned(),
                name: form.get("name").map(str::to_owned),
                password: None,
                roles: form.all("roles"),
            };
            let m = or_page!(ops::add_member(&state, a, &lab, new).await);
            with_notice(&lab_path, &format!("{} is now a member.", m.email))
        }
        ["invitations"] => {
            let new = NewInvitation {
                email: form.get("email").unwrap_or("").to_owned(),
                roles: form.all("roles"),
                valid_days: None,
            };
            let inv = or_page!(ops::create_invitation(&state, a, &lab, new).await);
            let lab_view = or_page!(ops::get_lab(&state, a, &lab).await);
            let link = inv.link.clone().unwrap_or_default();
            html(&InvitedPage {
                expires: when(inv.expires_at),
                who: c.who.clone(),
                csrf: c.csrf.clone(),
                lab: lab_view,
                invitation: inv,
                link,
            })
        }
        ["invitations", id, "delete"] => {
            if !form.confirmed() {
                return confirm(
                    &c,
                    &req,
                    &form,
                    format!(
                        "Withdraw the invitation for {}?",
                        form.get("email").unwrap_or("this address")
                    ),
                    "Its link stops working at once.",
                    "Withdraw invitation",
                    lab_path,
                );
            }
            or_page!(ops::delete_invitation(&state, a, &lab, id).await);
            with_notice(&lab_path, "Invitation withdrawn.")
        }
        ["roles"] => {
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
                return error_page(&AdminError::invalid("name", "give the role a name"));
            }
            or_page!(ops::put_role(&state, a, &lab, &name, body).await);
            with_notice(&lab_path, &format!("Role {name} saved."))
        }
        ["roles", role, "delete"] => {
            if !form.confirmed() {
                return confirm(
                    &c,
                    &req,
                    &form,
                    format!("Delete the role {role}?"),
                    "Everyone holding it loses its features at their next token.",
                    "Delete role",
                    lab_path,
                );
            }
            or_page!(ops::delete_role(&state, a, &lab, role).await);
            with_notice(&lab_path, &format!("Role {role} deleted."))
        }
        ["policy"] => {
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
                grace_days: or_page!(num("grace_days")),
                grace_logins: or_page!(num("grace_logins")),
            };
            or_page!(ops::put_policy(&state, a, &lab, body).await);
            with_notice(
                &lab_path,
                "MFA policy saved. It applies at members' next sign-in.",
            )
        }
        ["members", user, "roles"] => {
            or_page!(ops::set_member_roles(&state, a, &lab, user, form.all("roles")).await);
            with_notice(
                &member_path(user),
                "Roles saved. They apply to the next token.",
            )
        }
        ["members", user, "feature"] => {
            let feature = form.get("feature").unwrap_or("").trim().to_owned();
            let allow = match form.get("effect") {
                Some("allow") => Some(true),
                Some("deny") => Some(false),
                _ => None,
            };
            or_page!(ops::set_member_feature(&state, a, &lab, user, &feature, allow).await);
            with_notice(
                &member_path(user),
                &format!("Feature {feature} saved. It applies to the next token."),
            )
        }
        ["members", user, "admin"] => {
            let on = form.get("admin") == Some("yes");
            if !on && !form.confirmed() {
                return confirm(
                    &c,
                    &req,
                    &form,
                    "Stop this member administering the lab?".into(),
                    "They keep their roles but can no longer use the console for this lab.",
                    "Remove administration",
                    member_path(user),
                );
            }
            or_page!(ops::set_member_admin(&state, a, &lab, user, on).await);
            with_notice(&member_path(user), "Saved.")
        }
        ["members", user, "remove"] => {
            if !form.confirmed() {
                return confirm(
                    &c,
                    &req,
                    &form,
                    "Remove this member from the lab?".into(),
                    "Their roles and feature grants here go, their sessions end and the lab's \
                     refresh tokens are revoked at once.",
                    "Remove member",
                    member_path(user),
                );
            }
            or_page!(ops::remove_member(&state, a, &lab, user).await);
            with_notice(&lab_path, "Member removed.")
        }
        ["members", user, "reset-factors"] => {
            if !form.confirmed() {
                return confirm(
                    &c,
                    &req,
                    &form,
                    "Reset this person's second factors?".into(),
                    "Their authenticator app, passkeys, security keys and recovery codes are \
                     removed and their sessions end. They enrol again at their next sign-in.",
                    "Reset factors",
                    member_path(user),
                );
            }
            let n = or_page!(ops::reset_factors(&state, a, user).await);
            with_notice(&member_path(user), &format!("{} factors removed.", n.count))
        }
        ["members", user, "end-sessions"] => {
            if !form.confirmed() {
                return confirm(
                    &c,
                    &req,
                    &form,
                    "Sign this person out everywhere?".into(),
                    "Their sessions end and their refresh tokens are revoked at once.",
                    "End sessions",
                    member_path(user),
                );
            }
            let n = or_page!(ops::end_sessions(&state, a, user).await);
            with_notice(&member_path(user), &format!("{} sessions ended.", n.count))
        }
        ["members", user, "disable"] => {
            if !form.confirmed() {
                return confirm(
                    &c,
                    &req,
                    &form,
                    "Disable this account?".into(),
                    "They cannot sign in anywhere; their sessions and refresh tokens end at once.",
                    "Disable account",
                    member_path(user),
                );
            }
            or_page!(ops::set_disabled(&state, a, user, true).await);
            with_notice(&member_path(user), "Account disabled.")
        }
        ["members", user, "enable"] => {
            or_page!(ops::set_disabled(&state, a, user, false).await);
            with_notice(&member_path(user), "Account enabled.")
        }
        _ => error_page(&AdminError::NotFound("no such action".into())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_date_is_midnight_utc() {
        assert_eq!(super::parse_date("1970-01-01"), Some(0));
        assert_eq!(super::parse_date("2026-11-28"), Some(1_795_824_000));
        assert_eq!(super::parse_date("2026-13-01"), None);
        assert_eq!(super::parse_date("yesterday"), None);
    }
}
