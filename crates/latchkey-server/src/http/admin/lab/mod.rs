//! The console's lab pages: overview (members, invitations, roles, MFA policy and its
//! adoption), one member, and the lab's audit log. The forms they post are in [`actions`].

mod actions;

pub use actions::action;

use super::pages::{AuditPage, AuditRow, Bar, LabPage, MemberPage, RoleChoice, when};
use super::{console, html, refusal};
use crate::admin::AdminError;
use crate::admin::ops::{self, AuditFilter};
use crate::http::authorize::see_other;
use crate::http::{State, decode_pairs};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::names::{LabId, UserId};

fn query(req: &HttpRequest, key: &str) -> Option<String> {
    decode_pairs(req.query_string().as_bytes())
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

pub(super) fn with_notice(path: &str, notice: &str) -> HttpResponse {
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

/// The value, or the refusal's page (a step-up when a stronger sign-in clears it).
macro_rules! or_page {
    ($req:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return refusal(&$req, &e),
        }
    };
}

/// `GET /admin/labs/{lab}`.
pub async fn page(state: State, req: HttpRequest, lab: web::Path<LabId>) -> HttpResponse {
    let c = signed_in!(state, req);
    let a = &c.admin;
    let lab_view = or_page!(req, ops::get_lab(&state, a, &lab).await);
    let members = or_page!(req, ops::list_members(&state, a, &lab).await);
    let invitations = or_page!(req, ops::list_invitations(&state, a, &lab).await);
    let roles = or_page!(req, ops::list_roles(&state, a, &lab).await);
    let declared = or_page!(req, ops::lab_features(&state, a, &lab).await);
    let policy = or_page!(req, ops::get_policy(&state, a, &lab).await);
    let adoption = or_page!(req, ops::adoption(&state, a, &lab).await);
    let (bars, chart_height) = chart(&adoption);
    let meeting_percent = (adoption.meeting * 100)
        .checked_div(adoption.members)
        .unwrap_or(100);
    html(&LabPage {
        system: c.admin.system,
        head: c.head(&req),
        lab: lab_view,
        notice: query(&req, "notice"),
        members,
        invitations,
        roles,
        declared,
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
    path: web::Path<(LabId, UserId)>,
) -> HttpResponse {
    let c = signed_in!(state, req);
    let (lab, user) = path.into_inner();
    let lab_view = or_page!(req, ops::get_lab(&state, &c.admin, &lab).await);
    let member = or_page!(req, ops::get_member(&state, &c.admin, &lab, &user).await);
    let roles = or_page!(req, ops::list_roles(&state, &c.admin, &lab).await)
        .into_iter()
        .map(|r| RoleChoice {
            held: member.roles.contains(&r.name),
            name: r.name,
            features: r.features,
        })
        .collect();
    let declared = or_page!(req, ops::lab_features(&state, &c.admin, &lab).await);
    let overrides = member
        .overrides
        .iter()
        .map(|(f, allow)| (f.clone(), if *allow { "allowed" } else { "denied" }))
        .collect();
    html(&MemberPage {
        head: c.head(&req),
        lab: lab_view,
        member,
        roles,
        overrides,
        declared,
        notice: query(&req, "notice"),
    })
}

/// `GET /admin/labs/{lab}/audit?action=&actor=&since=&until=` (dates as YYYY-MM-DD).
pub async fn audit(state: State, req: HttpRequest, lab: web::Path<LabId>) -> HttpResponse {
    let c = signed_in!(state, req);
    let lab_view = or_page!(req, ops::get_lab(&state, &c.admin, &lab).await);
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
    let since_t = or_page!(req, date("since", &since));
    let until_t = or_page!(req, date("until", &until)).map(|t| t + 86_400);
    // The actor filter takes an email (people) or an id (clients, `cli`, `system`).
    let actor = if actor_q.contains('@') {
        match state.store.find_user_by_email(&actor_q).await {
            Ok(Some(u)) => Some(u.id),
            Ok(None) => Some(String::from("-")),
            Err(e) => return refusal(&req, &e.into()),
        }
    } else {
        Some(actor_q.clone()).filter(|s| !s.is_empty())
    };
    let entries = or_page!(
        req,
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
        head: c.head(&req),
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
