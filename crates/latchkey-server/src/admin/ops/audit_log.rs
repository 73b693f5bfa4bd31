//! The audit log as administrators read it: the whole log, or one lab's view.

use super::*;

#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Actions starting with this (`login.`, `member.`, `policy.lab`).
    pub action: Option<String>,
    /// An actor's id (user id, client id, `cli` or `system`).
    pub actor: Option<String>,
    /// A target's id.
    pub target: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    /// At most this many entries, newest first (1 to 1000; 100 when absent).
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    pub seq: Option<i64>,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditRecord> for AuditEntryView {
    fn from(r: AuditRecord) -> AuditEntryView {
        AuditEntryView {
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            details: r.details,
        }
    }
}

fn audit_query(f: AuditFilter) -> R<AuditQuery> {
    if let Some(l) = f.limit
        && !(1..=1000).contains(&l)
    {
        return Err(AdminError::invalid("limit", "give 1 to 1000"));
    }
    Ok(AuditQuery {
        action_prefix: f.action.filter(|s| !s.is_empty()),
        actor: f.actor.filter(|s| !s.is_empty()),
        target: f.target.filter(|s| !s.is_empty()),
        since: f.since,
        until: f.until,
        lab: None,
        limit: f.limit.unwrap_or(100),
    })
}

/// The whole log (system administrators).
pub async fn audit_log(state: &AppState, admin: &Admin, f: AuditFilter) -> R<Vec<AuditEntryView>> {
    admin.require_system()?;
    let q = audit_query(f)?;
    Ok(state
        .store
        .query_audit(q)
        .await?
        .into_iter()
        .map(AuditEntryView::from)
        .collect())
}

/// A member's own security events, recorded with the member as both actor and target: their
/// sign-ins (and failed ones), factor changes, recovery codes, locks, sign-outs.
const OWN_EVENTS: &[&str] = &[
    "login.",
    "factor.",
    "session.",
    "recovery_codes.",
    "totp.",
    "webauthn.",
];

/// Whether an entry belongs to `lab`'s view (see [`lab_audit_log`]); `members` are the lab's
/// current members.
pub fn belongs_to_lab(
    e: &AuditRecord,
    lab: &LabId,
    members: &std::collections::BTreeSet<String>,
) -> bool {
    match e.details.get("lab") {
        // A change made in a lab names it: shown in that lab only.
        Some(l) => l.as_str() == Some(lab.as_str()),
        None => {
            *lab == *e.target.as_str()
                || (members.contains(&e.target)
                    && ((e.actor == e.target
                        && OWN_EVENTS.iter().any(|p| e.action.starts_with(p)))
                        || e.action.starts_with("user.")))
        }
    }
}

/// A lab's part of the log. An entry belongs to lab L when, and only when:
///
/// 1. its details name L (`"lab": L`): a change made in L (members, roles, policy,
///    invitations and their acceptance), whoever made it;
/// 2. its target is L itself (`lab.create`);
/// 3. it is a current member's own security event (actor and target are that member: sign-ins,
///    failed sign-ins, factors, recovery codes, locks, sign-outs), naming no lab;
/// 4. it is an account action on a current member (`user.*`: disabled, enabled, factors reset,
///    sessions ended, exported), naming no lab.
///
/// Nothing else: not what a member did elsewhere or to someone else (an entry a member wrote
/// as a system administrator about a person outside L fails 3 and 4, whose subject is the
/// target), and not an entry that names another lab. So the people an entry shows are L's
/// members (present, or past for changes made in L), the people L invited, and the
/// administrator who acted on L or on a member.
pub async fn lab_audit_log(
    state: &AppState,
    admin: &Admin,
    lab: &LabId,
    f: AuditFilter,
) -> R<Vec<AuditEntryView>> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let mut q = audit_query(f)?;
    q.lab = Some(lab.as_str().to_owned());
    let members: std::collections::BTreeSet<String> = state
        .store
        .lab_members(lab)
        .await?
        .into_iter()
        .map(|m| m.user_id.into_string())
        .collect();
    Ok(state
        .store
        .query_audit(q)
        .await?
        .into_iter()
        .filter(|e| belongs_to_lab(e, lab, &members))
        .map(AuditEntryView::from)
        .collect())
}
