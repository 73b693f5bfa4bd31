//! A lab's roles: the features each gives and the minimum level its holders sign in at.

use super::*;

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
    let after = RoleView {
        name: name.to_owned(),
        min_acr: min.map(|a| a.as_str().to_owned()),
        features,
    };
    let event = admin.event(
        Action::RolePut,
        lab,
        json!({"lab": lab, "role": name, "before": before, "after": after}),
    );
    state
        .store
        .put_role(lab, name, &after.features, min, &[event])
        .await?;
    Ok(after)
}

pub async fn delete_role(state: &AppState, admin: &Admin, lab: &str, name: &str) -> R<()> {
    admin.require_lab(lab)?;
    let before = role_view(state, lab, name)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no role `{name}` in this lab")))?;
    let event = admin.event(
        Action::RoleDelete,
        lab,
        json!({"lab": lab, "role": name, "before": before}),
    );
    state.store.delete_role(lab, name, &[event]).await?;
    Ok(())
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
