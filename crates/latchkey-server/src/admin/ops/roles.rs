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

pub async fn list_roles(state: &AppState, admin: &Admin, lab: &LabId) -> R<Vec<RoleView>> {
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
    lab: &LabId,
    name: &RoleName,
    body: RoleBody,
) -> R<RoleView> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let mut features = body.features;
    for f in &features {
        check_feature("features", f)?;
    }
    features.sort();
    features.dedup();
    let before = role_view(state, lab, name).await?;
    write_role(state, admin, lab, name, before, features, body.min_acr).await
}

pub async fn delete_role(state: &AppState, admin: &Admin, lab: &LabId, name: &RoleName) -> R<()> {
    admin.require_lab(lab)?;
    let before = role_view(state, lab, name)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no role `{name}` in this lab")))?;
    let event = admin.event(
        Action::RoleDelete,
        lab.as_str(),
        json!({"lab": lab, "role": name, "before": before}),
    );
    state
        .store
        .delete_role(lab, name.as_str(), &[event])
        .await?;
    Ok(())
}

/// One role of a lab as the API shows it, if it exists.
async fn role_view(state: &AppState, lab: &LabId, name: &RoleName) -> R<Option<RoleView>> {
    Ok(state
        .store
        .lab_roles(lab)
        .await?
        .into_iter()
        .find(|r| *name == *r.name)
        .map(RoleView::from))
}

/// Gives a role one more feature, or takes one away (`latchkey role feature add|remove`). Adding
/// to a name the lab has no role of creates the role, as `put_role` does; the role's minimum
/// level stays. Audited as `role.put`, like every other change of a role.
pub async fn set_role_feature(
    state: &AppState,
    admin: &Admin,
    lab: &LabId,
    name: &RoleName,
    feature: &FeatureName,
    add: bool,
) -> R<RoleView> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let before = role_view(state, lab, name).await?;
    let (mut features, min_acr) = match &before {
        Some(r) => (r.features.clone(), r.min_acr.clone()),
        None if add => (vec![], None),
        None => {
            return Err(AdminError::NotFound(format!(
                "no role `{name}` in this lab"
            )));
        }
    };
    if add {
        features.push(feature.as_str().to_owned());
    } else {
        features.retain(|f| *feature != *f.as_str());
    }
    features.sort();
    features.dedup();
    write_role(state, admin, lab, name, before, features, min_acr).await
}

/// Sets or clears the minimum level a role's holders sign in at (`latchkey policy set --role`),
/// creating the role when the lab has none of that name, as `put_role` does. Audited as
/// `role.put`: the API changes a role's minimum through the same route.
pub async fn set_role_min_acr(
    state: &AppState,
    admin: &Admin,
    lab: &LabId,
    name: &RoleName,
    min_acr: Option<&str>,
) -> R<RoleView> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    let min = acr_opt("min_acr", min_acr)?;
    let before = role_view(state, lab, name).await?;
    let features = before
        .as_ref()
        .map(|r| r.features.clone())
        .unwrap_or_default();
    let min_acr = min.map(|a| a.as_str().to_owned());
    write_role(state, admin, lab, name, before, features, min_acr).await
}

/// Stores a role's new features and minimum and audits the change as `put_role` does.
async fn write_role(
    state: &AppState,
    admin: &Admin,
    lab: &LabId,
    name: &RoleName,
    before: Option<RoleView>,
    features: Vec<String>,
    min_acr: Option<String>,
) -> R<RoleView> {
    let min = acr_opt("min_acr", min_acr.as_deref())?;
    let had = before
        .as_ref()
        .map(|r| r.features.as_slice())
        .unwrap_or(&[]);
    declared_in_lab(
        state,
        lab,
        "features",
        features
            .iter()
            .filter(|f| !had.contains(f))
            .map(String::as_str),
    )
    .await?;
    let after = RoleView {
        name: name.as_str().to_owned(),
        min_acr: min.map(|a| a.as_str().to_owned()),
        features,
    };
    let event = admin.event(
        Action::RolePut,
        lab.as_str(),
        json!({"lab": lab, "role": name, "before": before, "after": after}),
    );
    state
        .store
        .put_role(lab, name.as_str(), &after.features, min, &[event])
        .await?;
    Ok(after)
}

/// The features the services of a lab declare (`GET /labs/{lab}/features`): what may be
/// granted in it, sorted. Empty when none declares any: then any well-formed name may be.
pub async fn lab_features(state: &AppState, admin: &Admin, lab: &LabId) -> R<Vec<String>> {
    admin.require_lab(lab)?;
    lab_exists(state, lab).await?;
    Ok(state
        .store
        .declared_features(lab)
        .await?
        .into_iter()
        .collect())
}
