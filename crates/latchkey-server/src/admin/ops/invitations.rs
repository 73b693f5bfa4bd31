//! Invitations: a link that lets a person choose a password and join a lab with roles.

use super::*;

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
    #[schema(value_type = String)]
    pub lab: LabId,
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
            lab: LabId::new(i.lab),
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
    lab: &LabId,
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
    lab: &LabId,
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
        lab: lab.as_str().to_owned(),
        email,
        roles: new.roles,
        created_by: admin.actor_id().to_owned(),
        created_at: t,
        expires_at: t + days * 86_400,
        accepted_at: None,
    };
    state
        .store
        .create_invitation(
            &inv,
            token.hash(),
            &[admin.event(
                Action::InvitationCreate,
                &inv.id,
                json!({"lab": lab, "after": {"roles": inv.roles, "expires_at": inv.expires_at}}),
            )],
        )
        .await
        .map_err(|e| match AdminError::from(e) {
            AdminError::Conflict(m) => AdminError::invalid("email", m),
            e => e,
        })?;
    let mut view = InvitationView::from(inv);
    view.link = Some(format!("{}/invite/{}", state.issuer, token.expose()));
    Ok(view)
}

pub async fn delete_invitation(state: &AppState, admin: &Admin, lab: &LabId, id: &str) -> R<()> {
    admin.require_lab(lab)?;
    let inv = state
        .store
        .get_invitation(id)
        .await?
        .filter(|i| *lab == *i.lab && i.accepted_at.is_none())
        .ok_or_else(|| {
            AdminError::NotFound("no open invitation with this id in this lab".into())
        })?;
    state
        .store
        .delete_invitation(
            &inv.id,
            &[admin.event(Action::InvitationDelete, id, json!({"lab": lab}))],
        )
        .await?;
    Ok(())
}
