//! Invitations: a link that lets a person choose a password and join a lab with roles.
//!
//! The link is a bearer secret that creates an account for its e-mail address with a password
//! of the holder's choosing, so it must reach only the mailbox it names. A lab administrator
//! must not hold it (else they could accept their own invitation and own an account for any
//! address): their invitation is recorded, and its link is handed out only at system level —
//! to a system administrator or the operator (`latchkey invitation link`), who sends it to the
//! address. Only a system administrator's own invitation returns its link at once. Issuing a
//! link again replaces the previous one.
//!
//! Every invitation is mailed to its address (`mail`), in the transaction that records it.
//! Accepting a link that was only mailed confirms the address (`email_verified`); a link
//! shown to anyone, as a system administrator's is, does not.

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
    /// The link to send the person: only to a system administrator (or the operator), in the
    /// response that created the invitation or issued its link. A lab administrator's
    /// invitation is delivered by a system administrator (`latchkey invitation link`).
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
    // A lab administrator learns nothing about accounts outside their lab: the invitation is
    // recorded whether or not the address has an account (whoever delivers the link at system
    // level sees the truth; accepting it for an existing account is refused). Their own
    // members they know already.
    if !admin.system
        && state
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
    // The token of a lab administrator's invitation is never shown to them: only the
    // invited mailbox receives it.
    let lab_name = state
        .store
        .get_lab(lab)
        .await?
        .map_or_else(|| lab.as_str().to_owned(), |l| l.name);
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
            admin.system,
            &[admin
                .event(
                    Action::InvitationCreate,
                    &inv.id,
                    json!({"lab": lab, "after": {"roles": inv.roles, "expires_at": inv.expires_at}}),
                )
                .with_mail(crate::mail::compose(
                    state,
                    &inv.email,
                    None,
                    &crate::mail::Content::Invitation {
                        lab: lab_name,
                        link: link(state, &token),
                        days,
                    },
                ))],
        )
        .await
        .map_err(|e| match AdminError::from(e) {
            AdminError::Conflict(m) => AdminError::invalid("email", m),
            e => e,
        })?;
    let mut view = InvitationView::from(inv);
    if admin.system {
        view.link = Some(link(state, &token));
    }
    crate::mail::wake(state);
    Ok(view)
}

fn link(state: &AppState, token: &OpaqueToken) -> String {
    format!("{}/invite/{}", state.issuer, token.expose())
}

/// Issues the link of an open invitation (system administrators and the operator only), to be
/// sent to the invited address; any link issued before stops working. Refused when the address
/// has an account by now: add the account as a member instead.
pub async fn issue_invitation_link(
    state: &AppState,
    admin: &Admin,
    lab: &LabId,
    id: &str,
) -> R<InvitationView> {
    admin.require_system()?;
    let inv = open_invitation(state, lab, id).await?;
    if inv.expires_at <= now() {
        return Err(AdminError::invalid(
            "id",
            "this invitation has expired: withdraw it and invite again",
        ));
    }
    if state.store.find_user_by_email(&inv.email).await?.is_some() {
        return Err(AdminError::Conflict(
            "this email already has an account: add it as a member instead".into(),
        ));
    }
    let token = OpaqueToken::generate(TokenKind::Invitation);
    let replaced = state
        .store
        .reissue_invitation(
            &inv.id,
            token.hash(),
            &[admin.event(Action::InvitationLink, &inv.id, json!({"lab": lab}))],
        )
        .await?;
    if !replaced {
        return Err(AdminError::NotFound(
            "no open invitation with this id in this lab".into(),
        ));
    }
    let mut view = InvitationView::from(inv);
    view.link = Some(link(state, &token));
    Ok(view)
}

async fn open_invitation(state: &AppState, lab: &LabId, id: &str) -> R<Invitation> {
    state
        .store
        .get_invitation(id)
        .await?
        .filter(|i| *lab == *i.lab && i.accepted_at.is_none())
        .ok_or_else(|| AdminError::NotFound("no open invitation with this id in this lab".into()))
}

pub async fn delete_invitation(state: &AppState, admin: &Admin, lab: &LabId, id: &str) -> R<()> {
    admin.require_lab(lab)?;
    let inv = open_invitation(state, lab, id).await?;
    state
        .store
        .delete_invitation(
            &inv.id,
            &[admin.event(Action::InvitationDelete, id, json!({"lab": lab}))],
        )
        .await?;
    Ok(())
}
