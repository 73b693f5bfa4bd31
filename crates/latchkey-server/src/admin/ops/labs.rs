//! Labs: list, read and create (creating one is for system administrators).

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LabView {
    #[schema(value_type = String)]
    pub id: LabId,
    pub name: String,
    pub created_at: i64,
}

impl From<crate::store::labs::Lab> for LabView {
    fn from(l: crate::store::labs::Lab) -> LabView {
        LabView {
            id: LabId::new(l.id),
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
        .map(LabView::from)
        .filter(|l| admin.may_lab(&l.id))
        .collect())
}

pub async fn get_lab(state: &AppState, admin: &Admin, lab: &LabId) -> R<LabView> {
    admin.require_lab(lab)?;
    Ok(lab_exists(state, lab).await?.into())
}

pub async fn create_lab(state: &AppState, admin: &Admin, new: NewLab) -> R<LabView> {
    admin.require_system()?;
    let name = new.name.trim();
    if name.is_empty()
        || name.len() > 100
        || name.chars().any(latchkey_core::names::is_unsafe_in_name)
    {
        return Err(AdminError::invalid(
            "name",
            "give a name of 1 to 100 characters, without control or text-direction characters",
        ));
    }
    if crate::provision::lab_name_is_reserved(&state.store, name).await? {
        return Err(AdminError::invalid(
            "name",
            "a lab's name cannot be `*` or another lab's id (labs are chosen by id or name)",
        ));
    }
    let lab = state
        .store
        .create_lab(name, |lab| {
            vec![admin.event(
                Action::LabCreate,
                &lab.id,
                json!({"after": {"name": lab.name}}),
            )]
        })
        .await?;
    Ok(lab.into())
}
