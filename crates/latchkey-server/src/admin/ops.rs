//! Every administrative operation, once: authorisation first (server-side, from the caller's
//! rights), then validation (errors name the field), then the change (one transaction), then
//! an audit entry naming the actor, the action and the state before and after.
//!
//! The admin API (`http::api`) and the admin console (`http::admin`) both call these.

use super::{Admin, AdminError, check_feature, check_role};
use crate::app::AppState;
use crate::protocol::strength::Enrolled;
use crate::secret::{OpaqueToken, TokenKind};
use crate::store::admin::{AuditQuery, AuditRecord, Member, Role, UserInfo};
use crate::store::invitations::Invitation;
use crate::store::now;
use latchkey_core::Acr;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

type R<T> = Result<T, AdminError>;

fn parse_acr(field: &str, v: &str) -> R<Acr> {
    v.parse().map_err(|_| {
        AdminError::invalid(field, format!("`{v}` is not a level: use pwd, mfa or phr"))
    })
}

fn acr_opt(field: &str, v: Option<&str>) -> R<Option<Acr>> {
    v.filter(|s| !s.is_empty())
        .map(|s| parse_acr(field, s))
        .transpose()
}

async fn audit(
    state: &AppState,
    admin: &Admin,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> R<()> {
    state
        .store
        .audit(admin.actor_id(), action, target, details)
        .await?;
    Ok(())
}

async fn lab_exists(state: &AppState, lab: &str) -> R<crate::store::labs::Lab> {
    state
        .store
        .get_lab(lab)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no lab `{lab}`")))
}

async fn member_of(state: &AppState, lab: &str, user: &str) -> R<Member> {
    state
        .store
        .lab_members(lab)
        .await?
        .into_iter()
        .find(|m| m.user_id == user)
        .ok_or_else(|| AdminError::NotFound("no such member of this lab".into()))
}

// ---------------------------------------------------------------------------------------
// Labs

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LabView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

impl From<crate::store::labs::Lab> for LabView {
    fn from(l: crate::store::labs::Lab) -> LabView {
        LabView {
            id: l.id,
            name: l.name,
            created_at: l.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLab {
    /// The lab's display name, unique.
    pub name: String,
}

/// The labs the caller administers (every lab for a system administrator).
pub async fn list_labs(state: &AppState, admin: &Admin) -> R<Vec<LabView>> {
    admin.require_any()?;
    Ok(state
        .store
        .list_labs()
        .await?
        .into_iter()
        .filter(|l| admin.may_lab(&l.id))
        .map(LabView::from)
        .collect())
}

pub async fn get_lab(state: &AppState, admin: &Admin, lab: &str) -> R<LabView> {
    admin.require_lab(lab)?;
    Ok(lab_exists(state, lab).await?.into())
}

pub async fn create_lab(state: &AppState, admin: &Admin, new: NewLab) -> R<LabView> {
    admin.require_system()?;
    let name = new.name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            "name",
            "give a name of 1 to 100 characters, without control characters",
        ));
    }
    let lab = state.store.create_lab(name).await?;
    audit(
        state,
        admin,
        "lab.create",
        &lab.id,
        json!({"after": {"name": lab.name}}),
    )
    .await?;
    Ok(lab.into())
}

// ---------------------------------------------------------------------------------------
// Members

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Factors {
    pub totp: bool,
    /// Passkeys and security keys.
    pub webauthn: usize,
    /// Of which discoverable passkeys (can sign in alone).
    pub passkeys: usize,
    pub recovery_codes: usize,
    /// The strongest level the member's factors can reach: pwd, mfa or phr.
    pub best_acr: String,
}

impl From<Enrolled> for Factors {
    fn from(e: Enrolled) -> Factors {
        Factors {
            best_acr: best_acr(&e).as_str().to_owned(),
            totp: e.totp,
            webauthn: e.webauthn,
            passkeys: e.passkeys,
            recovery_codes: e.recovery_codes,
        }
    }
}

/// The strongest level a set of factors can reach.
pub fn best_acr(e: &Enrolled) -> Acr {
    if e.passkeys > 0 {
        Acr::Phr
    } else if e.totp || e.webauthn > 0 {
        Acr::Mfa
    } else {
        Acr::Pwd
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub disabled: bool,
    /// Administers this lab.
    pub admin: bool,
    pub joined_at: i64,
    pub roles: Vec<String>,
    /// Per-member overrides: feature → true (allowed) or false (denied).
    pub overrides: std::collections::BTreeMap<String, bool>,
    /// What the member's tokens for this lab carry.
    pub features: Vec<String>,
    pub factors: Factors,
}

async fn member_view(state: &AppState, lab: &str, m: Member) -> R<MemberView> {
    let grants = state.store.member_grants(&m.user_id, lab).await?;
    let factors = state.store.enrolled(&m.user_id).await?.into();
    Ok(MemberView {
        roles: grants.roles,
        features: grants.features.into_iter().collect(),
        overrides: grants.overrides.into_iter().collect(),
        factors,
        user_id: m.user_id,
        email: m.email,
        name: m.name,
        disabled: m.disabled,
        admin: m.admin,
        joined_at: m.joined_at,
    })
}

pub async fn list_members(state: &AppState, admin: &Admin, lab: &str) -> R<Vec<MemberView>> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let mut out = vec![];
    for m in state.store.lab_members(lab).await? {
        out.push(member_view(state, lab, m).await?);
    }
    Ok(out)
}

pub async fn get_member(state: &AppState, admin: &Admin, lab: &str, user: &str) -> R<MemberView> {
    admin.require_lab(lab)?;
    let m = member_of(state, lab, user).await?;
    member_view(state, lab, m).await
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// An existing user's email adds them; a new one creates the account.
    pub email: String,
    pub name: Option<String>,
    /// For a new account. Without one, the person signs in only after a password is set
    /// (send an invitation instead to let them choose it).
    pub password: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

pub async fn add_member(
    state: &AppState,
    admin: &Admin,
    lab: &str,
    new: NewMember,
) -> R<MemberView> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let email = checked_email(&new.email)?;
    if let Some(n) = &new.name
        && (n.len() > 200 || n.chars().any(char::is_control))
    {
        return Err(AdminError::invalid(
            "name",
            "give a name of at most 200 characters, without control characters",
        ));
    }
    check_roles(&new.roles)?;
    // Everything is checked before anything is written.
    let defined = state.store.lab_roles(lab).await?;
    if let Some(r) = new
        .roles
        .iter()
        .find(|r| !defined.iter().any(|d| &d.name == *r))
    {
        return Err(AdminError::invalid(
            "roles",
            format!("no role `{r}` in this lab"),
        ));
    }
    let existing = state.store.find_user_by_email(&email).await?;
    // Lab administrators neither pull other people's existing accounts into their lab nor
    // create accounts with passwords they know: new people come through invitations, which
    // they accept themselves. System administrators may do both.
    if !admin.system {
        if existing.is_some() {
            return Err(AdminError::Conflict(
                "this email already has an account: a system administrator can add it to the lab"
                    .into(),
            ));
        }
        return Err(AdminError::invalid(
            "email",
            "no account has this email: send an invitation, so that the person chooses their own password",
        ));
    }
    let (user_id, created) = match existing {
        Some(u) => {
            if new.password.is_some() || new.name.is_some() {
                return Err(AdminError::invalid(
                    "password",
                    "this email already has an account: give only email and roles to add it",
                ));
            }
            if state.store.user_labs(&u.id).await?.iter().any(|l| l == lab) {
                return Err(AdminError::Conflict(
                    "this person is already a member of the lab".into(),
                ));
            }
            if !state.store.add_membership(&u.id, lab).await? {
                return Err(AdminError::NotFound(format!("no lab `{lab}`")));
            }
            (u.id, false)
        }
        None => {
            let hash = match new.password.as_deref() {
                Some(p) => {
                    let mut context = vec![email.as_str()];
                    context.extend(email.split('@'));
                    context.extend(new.name.as_deref());
                    if let Err(e) =
                        crate::password::check_new_password(&state.config.password, p, &context)
                    {
                        return Err(AdminError::invalid(
                            "password",
                            format!("password refused: {e}"),
                        ));
                    }
                    Some(
                        state
                            .hasher
                            .hash(p)
                            .await
                            .map_err(|e| AdminError::Internal(e.to_string()))?,
                    )
                }
                None => None,
            };
            let name = new.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
            (
                state.store.create_member(&email, name, hash, lab).await?,
                true,
            )
        }
    };
    if !new.roles.is_empty()
        && let Err(e) = state
            .store
            .set_member_roles(&user_id, lab, &new.roles)
            .await
    {
        // Undo the membership so that nothing is half-written.
        state.store.remove_membership(&user_id, lab).await?;
        return Err(match AdminError::from(e) {
            AdminError::NotFound(m) => AdminError::invalid("roles", m),
            e => e,
        });
    }
    audit(
        state,
        admin,
        if created { "user.create" } else { "member.add" },
        &user_id,
        json!({"lab": lab, "after": {"roles": new.roles}}),
    )
    .await?;
    get_member(state, admin, lab, &user_id).await
}

/// The normalised address, or `invalid` naming `email`.
fn checked_email(raw: &str) -> R<String> {
    let email = crate::store::users::normalize_email(raw);
    if valid_email(&email) {
        Ok(email)
    } else {
        Err(AdminError::invalid(
            "email",
            "give an email address like ada@example.org",
        ))
    }
}

fn check_roles(roles: &[String]) -> R<()> {
    roles.iter().try_for_each(|r| check_role("roles", r))
}

/// One role of a lab as the API shows it, if it exists.
async fn role_view(state: &AppState, lab: &str, name: &str) -> R<Option<RoleView>> {
    Ok(state
        .store
        .lab_roles(lab)
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .map(RoleView::from))
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}

pub async fn remove_member(state: &AppState, admin: &Admin, lab: &str, user: &str) -> R<()> {
    admin.require_lab(lab)?;
    let before = get_member(state, admin, lab, user).await?;
    state.store.remove_membership(user, lab).await?;
    audit(
        state,
        admin,
        "member.remove",
        user,
        json!({"lab": lab, "before": {"roles": before.roles, "admin": before.admin}}),
    )
    .await
}

pub async fn set_member_admin(
    state: &AppState,
    admin: &Admin,
    lab: &str,
    user: &str,
    on: bool,
) -> R<MemberView> {
    admin.require_lab(lab)?;
    let before = member_of(state, lab, user).await?;
    state.store.set_lab_admin(user, lab, on).await?;
    audit(
        state,
        admin,
        "member.admin",
        user,
        json!({"lab": lab, "before": before.admin, "after": on}),
    )
    .await?;
    get_member(state, admin, lab, user).await
}

pub async fn set_member_roles(
    state: &AppState,
    admin: &Admin,
    lab: &str,
    user: &str,
    roles: Vec<String>,
) -> R<MemberView> {
    admin.require_lab(lab)?;
    let before = get_member(state, admin, lab, user).await?;
    check_roles(&roles)?;
    state
        .store
        .set_member_roles(user, lab, &roles)
        .await
        .map_err(|e| match AdminError::from(e) {
            AdminError::NotFound(m) if m.starts_with("no role") => AdminError::invalid("roles", m),
            e => e,
        })?;
    audit(
        state,
        admin,
        "member.roles",
        user,
        json!({"lab": lab, "before": before.roles, "after": roles}),
    )
    .await?;
    get_member(state, admin, lab, user).await
}

/// `allow`: `Some(true)` allow, `Some(false)` deny, `None` clear the override.
pub async fn set_member_feature(
    state: &AppState,
    admin: &Admin,
    lab: &str,
    user: &str,
    feature: &str,
    allow: Option<bool>,
) -> R<MemberView> {
    admin.require_lab(lab)?;
    check_feature("feature", feature)?;
    let before = get_member(state, admin, lab, user).await?;
    state
        .store
        .set_member_feature(user, lab, feature, allow)
        .await?;
    audit(
        state,
        admin,
        "member.feature",
        user,
        json!({
            "lab": lab,
            "feature": feature,
            "before": before.overrides.get(feature),
            "after": allow,
        }),
    )
    .await?;
    get_member(state, admin, lab, user).await
}

// ---------------------------------------------------------------------------------------
// Invitations

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    pub email: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Days the link stays valid (1 to 30; 7 when absent).
    pub valid_days: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub lab: String,
    pub email: String,
    pub roles: Vec<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The link to send the person; only in the response that created the invitation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl From<Invitation> for InvitationView {
    fn from(i: Invitation) -> InvitationView {
        InvitationView {
            id: i.id,
            lab: i.lab,
            email: i.email,
            roles: i.roles,
            created_by: i.created_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
            link: None,
        }
    }
}

pub async fn list_invitations(
    state: &AppState,
    admin: &Admin,
    lab: &str,
) -> R<Vec<InvitationView>> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    Ok(state
        .store
        .lab_invitations(lab)
        .await?
        .into_iter()
        .map(InvitationView::from)
        .collect())
}

pub async fn create_invitation(
    state: &AppState,
    admin: &Admin,
    lab: &str,
    new: NewInvitation,
) -> R<InvitationView> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let email = checked_email(&new.email)?;
    check_roles(&new.roles)?;
    let days = new.valid_days.unwrap_or(7);
    if !(1..=30).contains(&days) {
        return Err(AdminError::invalid("valid_days", "give 1 to 30 days"));
    }
    let token = OpaqueToken::generate(TokenKind::Invitation);
    let t = now();
    let inv = Invitation {
        id: uuid::Uuid::now_v7().to_string(),
        lab: lab.to_owned(),
        email,
        roles: new.roles,
        created_by: admin.actor_id().to_owned(),
        created_at: t,
        expires_at: t + days * 86_400,
        accepted_at: None,
    };
    state
        .store
        .create_invitation(&inv, token.hash())
        .await
        .map_err(|e| match AdminError::from(e) {
            AdminError::NotFound(m) if m.starts_with("no role") => AdminError::invalid("roles", m),
            AdminError::Conflict(m) => AdminError::invalid("email", m),
            e => e,
        })?;
    audit(
        state,
        admin,
        "invitation.create",
        &inv.id,
        json!({"lab": lab, "after": {"roles": inv.roles, "expires_at": inv.expires_at}}),
    )
    .await?;
    let mut view = InvitationView::from(inv);
    view.link = Some(format!("{}/invite/{}", state.issuer, token.expose()));
    Ok(view)
}

pub async fn delete_invitation(state: &AppState, admin: &Admin, lab: &str, id: &str) -> R<()> {
    admin.require_lab(lab)?;
    let inv = state
        .store
        .get_invitation(id)
        .await?
        .filter(|i| i.lab == lab && i.accepted_at.is_none())
        .ok_or_else(|| {
            AdminError::NotFound("no open invitation with this id in this lab".into())
        })?;
    state.store.delete_invitation(&inv.id).await?;
    audit(state, admin, "invitation.delete", id, json!({"lab": lab})).await
}

// ---------------------------------------------------------------------------------------
// Roles

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoleView {
    pub name: String,
    /// Weakest authentication the role's holders may use: pwd, mfa or phr (none: no minimum).
    pub min_acr: Option<String>,
    pub features: Vec<String>,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> RoleView {
        RoleView {
            name: r.name,
            min_acr: r.min_acr.map(|a| a.as_str().to_owned()),
            features: r.features,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    pub features: Vec<String>,
    pub min_acr: Option<String>,
}

pub async fn list_roles(state: &AppState, admin: &Admin, lab: &str) -> R<Vec<RoleView>> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    Ok(state
        .store
        .lab_roles(lab)
        .await?
        .into_iter()
        .map(RoleView::from)
        .collect())
}

pub async fn put_role(
    state: &AppState,
    admin: &Admin,
    lab: &str,
    name: &str,
    body: RoleBody,
) -> R<RoleView> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    check_role("name", name)?;
    let mut features = body.features;
    for f in &features {
        check_feature("features", f)?;
    }
    features.sort();
    features.dedup();
    let min = acr_opt("min_acr", body.min_acr.as_deref())?;
    let before = role_view(state, lab, name).await?;
    state.store.put_role(lab, name, &features, min).await?;
    let after = RoleView {
        name: name.to_owned(),
        min_acr: min.map(|a| a.as_str().to_owned()),
        features,
    };
    audit(
        state,
        admin,
        "role.put",
        lab,
        json!({"lab": lab, "role": name, "before": before, "after": after}),
    )
    .await?;
    Ok(after)
}

pub async fn delete_role(state: &AppState, admin: &Admin, lab: &str, name: &str) -> R<()> {
    admin.require_lab(lab)?;
    let before = role_view(state, lab, name)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no role `{name}` in this lab")))?;
    state.store.delete_role(lab, name).await?;
    audit(
        state,
        admin,
        "role.delete",
        lab,
        json!({"lab": lab, "role": name, "before": before}),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// MFA policy

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyView {
    /// The lab's minimum level: pwd, mfa or phr; none for no policy.
    pub min_acr: Option<String>,
    /// Days members may still sign in without a suitable factor.
    pub grace_days: Option<i64>,
    /// Or: sign-ins on which they may defer enrolment.
    pub grace_logins: Option<i64>,
}

pub async fn get_policy(state: &AppState, admin: &Admin, lab: &str) -> R<PolicyView> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let p = state.store.lab_policy(lab).await?;
    Ok(PolicyView {
        min_acr: p.as_ref().map(|p| p.min_acr.as_str().to_owned()),
        grace_days: p.as_ref().and_then(|p| p.grace_days),
        grace_logins: p.as_ref().and_then(|p| p.grace_logins),
    })
}

pub async fn put_policy(
    state: &AppState,
    admin: &Admin,
    lab: &str,
    body: PolicyView,
) -> R<PolicyView> {
    admin.require_lab(lab)?;
    let before = get_policy(state, admin, lab).await?;
    let min = acr_opt("min_acr", body.min_acr.as_deref())?;
    if let Some(d) = body.grace_days
        && !(0..=365).contains(&d)
    {
        return Err(AdminError::invalid("grace_days", "give 0 to 365 days"));
    }
    if let Some(n) = body.grace_logins
        && !(0..=100).contains(&n)
    {
        return Err(AdminError::invalid(
            "grace_logins",
            "give 0 to 100 sign-ins",
        ));
    }
    if body.grace_days.is_some() && body.grace_logins.is_some() {
        return Err(AdminError::invalid(
            "grace_logins",
            "give a grace in days or in sign-ins, not both",
        ));
    }
    if min.is_none() && (body.grace_days.is_some() || body.grace_logins.is_some()) {
        return Err(AdminError::invalid(
            "min_acr",
            "a grace needs a minimum level",
        ));
    }
    state
        .store
        .set_lab_policy(lab, min, body.grace_days, body.grace_logins)
        .await?;
    let after = get_policy(state, admin, lab).await?;
    audit(
        state,
        admin,
        "policy.lab",
        lab,
        json!({"lab": lab, "before": before, "after": after}),
    )
    .await?;
    Ok(after)
}

/// How many members already meet the lab's MFA policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Adoption {
    pub members: usize,
    /// Members whose enrolled factors reach the level the policy asks of them.
    pub meeting: usize,
    /// Members by the strongest level their factors can reach.
    pub pwd: usize,
    pub mfa: usize,
    pub phr: usize,
    /// The lab's minimum (none: no lab-wide policy; roles may still ask more).
    pub min_acr: Option<String>,
}

pub async fn adoption(state: &AppState, admin: &Admin, lab: &str) -> R<Adoption> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let mut a = Adoption {
        members: 0,
        meeting: 0,
        pwd: 0,
        mfa: 0,
        phr: 0,
        min_acr: None,
    };
    for m in state.store.lab_members(lab).await? {
        let best = best_acr(&state.store.enrolled(&m.user_id).await?);
        let p = state.store.member_policy(&m.user_id, lab).await?;
        if a.min_acr.is_none() {
            a.min_acr = p.lab.as_ref().map(|l| l.min_acr.as_str().to_owned());
        }
        let need = [p.lab.map(|l| l.min_acr), p.role_min]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(Acr::Pwd);
        a.members += 1;
        if best >= need {
            a.meeting += 1;
        }
        match best {
            Acr::Pwd => a.pwd += 1,
            Acr::Mfa => a.mfa += 1,
            Acr::Phr => a.phr += 1,
        }
    }
    Ok(a)
}

// ---------------------------------------------------------------------------------------
// Users as a whole

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub disabled: bool,
    pub system_admin: bool,
    pub has_password: bool,
    pub created_at: i64,
    pub labs: Vec<String>,
    pub factors: Factors,
}

async fn user_labs(state: &AppState, user: &str) -> R<(UserInfo, Vec<String>)> {
    let info = state
        .store
        .user_info(user)
        .await?
        .ok_or_else(|| AdminError::NotFound("no such user".into()))?;
    let labs = state.store.user_labs(user).await?;
    Ok((info, labs))
}

/// Loads a user and checks the caller may act on them as a whole. Lab administrators get
/// "not found" rather than "forbidden" for users outside their labs only when the user does
/// not exist at all; otherwise forbidden.
async fn authorised_user(
    state: &AppState,
    admin: &Admin,
    user: &str,
) -> R<(UserInfo, Vec<String>)> {
    admin.require_any()?;
    let (info, labs) = user_labs(state, user).await?;
    admin.require_user(&labs)?;
    if info.system_admin && !admin.system {
        return Err(AdminError::Forbidden(
            "only system administrators may act on a system administrator".into(),
        ));
    }
    Ok((info, labs))
}

pub async fn list_users(state: &AppState, admin: &Admin) -> R<Vec<UserInfo>> {
    admin.require_system()?;
    Ok(state.store.list_users().await?)
}

pub async fn get_user(state: &AppState, admin: &Admin, user: &str) -> R<UserView> {
    let (info, labs) = authorised_user(state, admin, user).await?;
    let factors = state.store.enrolled(user).await?.into();
    Ok(UserView {
        id: info.id,
        email: info.email,
        name: info.name,
        disabled: info.disabled,
        system_admin: info.system_admin,
        has_password: info.has_password,
        created_at: info.created_at,
        labs,
        factors,
    })
}

pub async fn set_disabled(
    state: &AppState,
    admin: &Admin,
    user: &str,
    disabled: bool,
) -> R<UserView> {
    let (info, _) = authorised_user(state, admin, user).await?;
    if matches!(&admin.actor, super::Actor::User(me) if me == user) && disabled {
        return Err(AdminError::Conflict(
            "you cannot disable your own account".into(),
        ));
    }
    state.store.set_user_disabled(user, disabled).await?;
    audit(
        state,
        admin,
        if disabled {
            "user.disable"
        } else {
            "user.enable"
        },
        user,
        json!({"before": {"disabled": info.disabled}, "after": {"disabled": disabled}}),
    )
    .await?;
    get_user(state, admin, user).await
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Count {
    pub count: usize,
}

pub async fn reset_factors(state: &AppState, admin: &Admin, user: &str) -> R<Count> {
    let (_, _) = authorised_user(state, admin, user).await?;
    let before: Factors = state.store.enrolled(user).await?.into();
    let n = state.store.reset_factors(user).await?;
    audit(
        state,
        admin,
        "user.reset_factors",
        user,
        json!({"before": before, "after": Factors { best_acr: "pwd".into(), ..Factors::default() }}),
    )
    .await?;
    Ok(Count { count: n })
}

pub async fn end_sessions(state: &AppState, admin: &Admin, user: &str) -> R<Count> {
    authorised_user(state, admin, user).await?;
    let n = state.store.end_user_sessions(user).await?;
    audit(
        state,
        admin,
        "user.end_sessions",
        user,
        json!({"sessions": n}),
    )
    .await?;
    Ok(Count { count: n })
}

pub async fn set_system_admin(
    state: &AppState,
    admin: &Admin,
    user: &str,
    on: bool,
) -> R<UserView> {
    admin.require_system()?;
    let (info, _) = user_labs(state, user).await?;
    if matches!(&admin.actor, super::Actor::User(me) if me == user) && !on {
        return Err(AdminError::Conflict(
            "you cannot remove your own system administration".into(),
        ));
    }
    state.store.set_system_admin(user, on).await?;
    audit(
        state,
        admin,
        "user.system_admin",
        user,
        json!({"before": info.system_admin, "after": on}),
    )
    .await?;
    get_user(state, admin, user).await
}

/// Everything Latchkey holds about a person (GDPR articles 15 and 20), plus what they
/// administer.
pub async fn export_user(state: &AppState, admin: &Admin, user: &str) -> R<serde_json::Value> {
    let (info, _) = authorised_user(state, admin, user).await?;
    let mut v = state
        .store
        .export_user(user)
        .await?
        .ok_or_else(|| AdminError::NotFound("no such user".into()))?;
    let rights = state.store.admin_rights(user).await?.unwrap_or_default();
    v["administration"] = json!({"system": info.system_admin, "labs": rights.labs});
    audit(state, admin, "user.exported", user, json!({})).await?;
    Ok(v)
}

/// Erases a person's personal data (GDPR article 17); the audit log stays verifiable and
/// names them only by their id from now on.
pub async fn erase_user(state: &AppState, admin: &Admin, user: &str) -> R<()> {
    authorised_user(state, admin, user).await?;
    if matches!(&admin.actor, super::Actor::User(me) if me == user) {
        return Err(AdminError::Conflict(
            "you cannot erase your own account here".into(),
        ));
    }
    if !state.store.erase_user(user, admin.actor_id()).await? {
        return Err(AdminError::NotFound("no such user".into()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Clients and keys (system administrators)

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub public: bool,
    pub min_acr: Option<String>,
    pub admin_of: Option<String>,
    pub created_at: i64,
}

impl From<crate::store::clients::Client> for ClientView {
    fn from(c: crate::store::clients::Client) -> ClientView {
        ClientView {
            public: c.is_public(),
            client_id: c.id,
            name: c.name,
            redirect_uris: c.redirect_uris,
            grant_types: c.grant_types,
            min_acr: c.min_acr.map(|a| a.as_str().to_owned()),
            admin_of: c.admin_of,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    pub name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// authorization_code, refresh_token, client_credentials (default: the first two).
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub public: bool,
    pub min_acr: Option<String>,
    /// `*` or a lab id: the client may call this API with client_credentials.
    pub admin_of: Option<String>,
    #[serde(default)]
    pub skip_consent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedClientView {
    pub client: ClientView,
    /// Shown only in this response.
    pub client_secret: Option<String>,
}

pub async fn list_clients(state: &AppState, admin: &Admin) -> R<Vec<ClientView>> {
    admin.require_system()?;
    Ok(state
        .store
        .list_clients()
        .await?
        .into_iter()
        .map(ClientView::from)
        .collect())
}

pub async fn get_client(state: &AppState, admin: &Admin, id: &str) -> R<ClientView> {
    admin.require_system()?;
    Ok(state
        .store
        .get_client(id)
        .await?
        .ok_or_else(|| AdminError::NotFound("no such client".into()))?
        .into())
}

pub async fn create_client(
    state: &AppState,
    admin: &Admin,
    body: NewClientBody,
) -> R<CreatedClientView> {
    admin.require_system()?;
    let min_acr = acr_opt("min_acr", body.min_acr.as_deref())?;
    let created = crate::provision::create_client(
        &state.store,
        crate::provision::NewClient {
            name: body.name,
            redirect_uris: body.redirect_uris,
            post_logout_redirect_uris: body.post_logout_redirect_uris,
            grant_types: body
                .grant_types
                .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]),
            public: body.public,
            access_token_ttl_secs: None,
            id_token_alg: latchkey_core::SigningAlg::RS256,
            skip_consent: body.skip_consent,
            min_acr,
            admin_of: body.admin_of,
        },
    )
    .await
    .map_err(|e| match e {
        crate::provision::ProvisionError::Invalid(m) => {
            let field = m
                .trim_start_matches("--")
                .split([' ', ':'])
                .next()
                .unwrap_or("body")
                .replace('-', "_");
            AdminError::invalid(&field, m)
        }
        crate::provision::ProvisionError::Store(e) => e.into(),
    })?;
    let client = get_client(state, admin, &created.client_id).await?;
    audit(
        state,
        admin,
        "client.create",
        &client.client_id,
        json!({"after": client}),
    )
    .await?;
    Ok(CreatedClientView {
        client,
        client_secret: created.client_secret,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    /// staged, active or retiring.
    pub state: String,
    pub created_at: i64,
    pub activate_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

pub async fn list_keys(state: &AppState, admin: &Admin) -> R<Vec<KeyView>> {
    admin.require_system()?;
    Ok(state
        .store
        .list_keys()
        .await?
        .into_iter()
        .map(|r| KeyView {
            kid: r.kid,
            alg: r.alg,
            state: r.state,
            created_at: r.created_at,
            activate_at: r.activate_at,
            activated_at: r.activated_at,
            retired_at: r.retired_at,
        })
        .collect())
}

pub async fn rotate_keys(state: &AppState, admin: &Admin) -> R<Vec<KeyView>> {
    admin.require_system()?;
    state
        .keys
        .rotate(
            &state.config,
            &state.store,
            &state.kek,
            true,
            admin.actor_id(),
        )
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))?;
    list_keys(state, admin).await
}

pub async fn revoke_key(state: &AppState, admin: &Admin, kid: &str) -> R<Vec<KeyView>> {
    admin.require_system()?;
    state
        .keys
        .revoke(&state.store, &state.kek, kid, admin.actor_id())
        .await
        .map_err(|e| match e {
            crate::keys::KeysError::Store(e) => AdminError::from(e),
            e => AdminError::Internal(e.to_string()),
        })?;
    list_keys(state, admin).await
}

// ---------------------------------------------------------------------------------------
// Audit

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
    lab: &str,
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
        .map(|m| m.user_id)
        .collect();
    within.push(lab.to_owned());
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
            Some(l) => l == lab,
            None => e.target == lab || PERSONAL.iter().any(|p| e.action.starts_with(p)),
        })
        .map(AuditEntryView::from)
        .collect())
}
