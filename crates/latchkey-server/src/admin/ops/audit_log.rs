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
        within: None,
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

/// A lab's part of the log: entries about the lab itself and entries whose actor or target
/// is one of its current members (their sign-ins, factor changes, and what was done to them).
pub async fn lab_audit_log(
    state: &AppState,
    admin: &Admin,
    lab: &LabId,
    f: AuditFilter,
) -> R<Vec<AuditEntryView>> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let mut q = audit_query(f)?;
    let mut within: Vec<String> = state
        .store
        .lab_members(lab)
        .await?
        .into_iter()
        .map(|m| m.user_id.into_string())
        .collect();
    within.push(lab.as_str().to_owned());
    within.extend(
        state
            .store
            .lab_invitations(lab)
            .await?
            .into_iter()
            .map(|i| i.id),
    );
    q.within = Some(within);
    // Entries about the lab, and members' own security events; not what a member did in
    // another lab or to the system (those carry another lab, or are system actions).
    const PERSONAL: &[&str] = &[
        "login.",
        "factor.",
        "session.",
        "recovery_codes.",
        "totp.",
        "webauthn.",
        "user.",
        "member.",
        "invitation.",
    ];
    Ok(state
        .store
        .query_audit(q)
        .await?
        .into_iter()
        .filter(|e| match e.details.get("lab").and_then(|l| l.as_str()) {
            Some(l) => *lab == *l,
            None => *lab == *e.target.as_str() || PERSONAL.iter().any(|p| e.action.starts_with(p)),
        })
        .map(AuditEntryView::from)
        .collect())
}
