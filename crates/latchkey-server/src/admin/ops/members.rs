//! A lab's members: add, remove, roles, lab administration, per-user feature grants.

use super::*;

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

impl Factors {
    /// What `e` holds, and the best level it reaches under this deployment's `rules`.
    pub fn of(e: Enrolled, rules: Rules) -> Factors {
        Factors {
            best_acr: e.best(rules).as_str().to_owned(),
            totp: e.totp,
            webauthn: e.webauthn,
            passkeys: e.passkeys,
            recovery_codes: e.recovery_codes,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    #[schema(value_type = String)]
    pub user_id: UserId,
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

async fn member_view(state: &AppState, lab: &LabId, m: Member) -> R<MemberView> {
    // Sign-in reads grants and factors by `&str` ids too: converted here, at the store's edge.
    let grants = state
        .store
        .member_grants(m.user_id.as_str(), lab.as_str())
        .await?;
    let factors = Factors::of(
        state.enrolled(m.user_id.as_str()).await?,
        Rules::of(&state.config),
    );
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

pub async fn list_members(state: &AppState, admin: &Admin, lab: &LabId) -> R<Vec<MemberView>> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let mut out = vec![];
    for m in state.store.lab_members(lab).await? {
        out.push(member_view(state, lab, m).await?);
    }
    Ok(out)
}

pub async fn get_member(
    state: &AppState,
    admin: &Admin,
    lab: &LabId,
    user: &UserId,
) -> R<MemberView> {
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
    lab: &LabId,
    new: NewMember,
) -> R<MemberView> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let email = checked_email(&new.email)?;
    let name = checked_name(new.name.as_deref())?;
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
    // Lab administrators neither pull other people's existing accounts into their lab nor
    // create accounts with passwords they know: new people come through invitations, which a
    // system-level channel delivers (see `create_invitation`). They get one answer whether or
    // not an account has this address, so the form cannot tell them who has an account; only
    // their own members (whom they can list anyway) are answered as such. System
    // administrators may do both, and see the truth.
    if !admin.system {
        if state
            .store
            .lab_members(lab)
            .await?
            .iter()
            .any(|m| m.email == email)
        {
            return Err(AdminError::Conflict(
                "this person is already a member of the lab".into(),
            ));
        }
        return Err(lab_admin_adds_by_invitation());
    }
    let existing = state.store.find_user_by_email(&email).await?;
    let (who, created) = match existing {
        Some(u) => {
            if new.password.is_some() || new.name.is_some() {
                return Err(AdminError::invalid(
                    "password",
                    "this email already has an account: give only email and roles to add it",
                ));
            }
            (Joiner::Existing(UserId::new(u.id)), false)
        }
        None => {
            let hash = match new.password.as_deref() {
                Some(p) => Some(new_password_hash(state, &email, name, p).await?),
                None => None,
            };
            (
                Joiner::New {
                    email,
                    name: name.map(str::to_owned),
                    password_hash: hash,
                },
                true,
            )
        }
    };
    // One transaction: the account, the membership, the roles and the audit entry commit
    // together or not at all.
    let (actor, lab_id, roles) = (admin.actor_id().to_owned(), lab.clone(), new.roles.clone());
    let user_id = state
        .store
        .add_member(lab, who, &new.roles, move |user_id| {
            vec![Event::new(
                actor,
                if created {
                    Action::UserCreate
                } else {
                    Action::MemberAdd
                },
                user_id.as_str(),
                json!({"lab": lab_id, "after": {"roles": roles}}),
            )]
        })
        .await?;
    get_member(state, admin, lab, &user_id).await
}

/// What a lab administrator hears when adding anyone who is not yet a member, whether or not
/// the address has an account.
fn lab_admin_adds_by_invitation() -> AdminError {
    AdminError::invalid(
        "email",
        "lab administrators add people by invitation: send one, and the person chooses their \
         own password (a system administrator can add an existing account directly)",
    )
}

/// A new account's name, trimmed (`None` when blank), or `invalid` naming `name`.
pub(super) fn checked_name(raw: Option<&str>) -> R<Option<&str>> {
    if let Some(n) = raw
        && (n.len() > 200 || n.chars().any(latchkey_core::names::is_unsafe_in_name))
    {
        return Err(AdminError::invalid(
            "name",
            "give a name of at most 200 characters, without control or text-direction characters",
        ));
    }
    Ok(raw.map(str::trim).filter(|n| !n.is_empty()))
}

/// The hash of a new account's password once the password policy accepts it (which refuses
/// one made of the account's own address or name), or `invalid` naming `password`.
pub(super) async fn new_password_hash(
    state: &AppState,
    email: &str,
    name: Option<&str>,
    password: &str,
) -> R<String> {
    let mut context = vec![email];
    context.extend(email.split('@'));
    context.extend(name);
    crate::password::check_new_password(&state.config.password, password, &context)
        .map_err(|e| AdminError::invalid("password", format!("password refused: {e}")))?;
    state
        .hasher
        .hash(password)
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))
}

/// The normalised address, or `invalid` naming `email`.
pub(super) fn checked_email(raw: &str) -> R<String> {
    latchkey_core::names::Email::parse(raw)
        .map(String::from)
        .map_err(|_| AdminError::invalid("email", "give an email address like ada@example.org"))
}

pub(super) fn check_roles(roles: &[String]) -> R<()> {
    roles.iter().try_for_each(|r| check_role("roles", r))
}

pub async fn remove_member(state: &AppState, admin: &Admin, lab: &LabId, user: &UserId) -> R<()> {
    admin.require_lab(lab)?;
    let before = get_member(state, admin, lab, user).await?;
    // Removal ends the person's sessions everywhere: on a system administrator, that is an
    // action on them as a whole, which is for system administrators only.
    if !admin.system
        && state
            .store
            .admin_rights(user)
            .await?
            .is_some_and(|r| r.system)
    {
        return Err(AdminError::Forbidden(
            "only system administrators may act on a system administrator".into(),
        ));
    }
    let event = admin.event(
        Action::MemberRemove,
        user.as_str(),
        json!({"lab": lab, "before": {"roles": before.roles, "admin": before.admin}}),
    );
    state.store.remove_membership(user, lab, &[event]).await?;
    Ok(())
}

pub async fn set_member_admin(
    state: &AppState,
    admin: &Admin,
    lab: &LabId,
    user: &UserId,
    on: bool,
) -> R<MemberView> {
    admin.require_lab(lab)?;
    let before = member_of(state, lab, user).await?;
    let event = admin.event(
        Action::MemberAdmin,
        user.as_str(),
        json!({"lab": lab, "before": before.admin, "after": on}),
    );
    state.store.set_lab_admin(user, lab, on, &[event]).await?;
    get_member(state, admin, lab, user).await
}

pub async fn set_member_roles(
    state: &AppState,
    admin: &Admin,
    lab: &LabId,
    user: &UserId,
    roles: Vec<String>,
) -> R<MemberView> {
    admin.require_lab(lab)?;
    let before = get_member(state, admin, lab, user).await?;
    check_roles(&roles)?;
    let event = admin.event(
        Action::MemberRoles,
        user.as_str(),
        json!({"lab": lab, "before": before.roles, "after": roles}),
    );
    state
        .store
        .set_member_roles(user, lab, &roles, &[event])
        .await?;
    get_member(state, admin, lab, user).await
}

/// `allow`: `Some(true)` allow, `Some(false)` deny, `None` clear the override.
pub async fn set_member_feature(
    state: &AppState,
    admin: &Admin,
    lab: &LabId,
    user: &UserId,
    feature: &FeatureName,
    allow: Option<bool>,
) -> R<MemberView> {
    admin.require_lab(lab)?;
    let before = get_member(state, admin, lab, user).await?;
    if allow == Some(true) {
        declared_in_lab(state, lab, "feature", [feature.as_str()]).await?;
    }
    let event = admin.event(
        Action::MemberFeature,
        user.as_str(),
        json!({
            "lab": lab,
            "feature": feature,
            "before": before.overrides.get(feature.as_str()),
            "after": allow,
        }),
    );
    state
        .store
        .set_member_feature(user, lab, feature.as_str(), allow, &[event])
        .await?;
    get_member(state, admin, lab, user).await
}
