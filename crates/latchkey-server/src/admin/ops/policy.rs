//! A lab's MFA policy and how many members already meet it (adoption).

use super::*;

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

pub async fn get_policy(state: &AppState, admin: &Admin, lab: &LabId) -> R<PolicyView> {
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
    lab: &LabId,
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
    // What `get_policy` reads back: no grace without a minimum.
    let after = PolicyView {
        min_acr: min.map(|a| a.as_str().to_owned()),
        grace_days: min.and(body.grace_days),
        grace_logins: min.and(body.grace_logins),
    };
    let event = admin.event(
        Action::PolicyLab,
        lab.as_str(),
        json!({"lab": lab, "before": before, "after": after}),
    );
    state
        .store
        .set_lab_policy(lab, min, body.grace_days, body.grace_logins, &[event])
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

pub async fn adoption(state: &AppState, admin: &Admin, lab: &LabId) -> R<Adoption> {
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
        let best = state
            .enrolled(m.user_id.as_str())
            .await?
            .best(Rules::of(&state.config));
        let p = state
            .store
            .member_policy(m.user_id.as_str(), lab.as_str())
            .await?;
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
