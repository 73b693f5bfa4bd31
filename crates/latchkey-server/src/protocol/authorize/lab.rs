//! The lab of a flow: decided once the user is signed in and before the MFA policy decision,
//! because policy is per lab. No lab for a user in none, their only lab, or, for a user in
//! several, the request's `lab` hint when they are a member of it, else the picker's choice.

use super::AuthRequest;
use latchkey_core::ErrorCode;

/// A lab the signed-in user belongs to.
#[derive(Debug, Clone, Copy)]
pub struct LabRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// The user has signed in to this client in this lab before (a grant of the client names
    /// it). Only such a lab can be chosen by a hint without the user seeing the request.
    pub chosen_before: bool,
}

/// Which lab a flow is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabChoice {
    /// The user belongs to no lab: tokens carry no `lab`, and no lab policy applies.
    NoLab,
    /// This lab (its id).
    Lab(String),
    /// Several labs and no valid choice yet: show the lab picker.
    Pick,
    /// A choice is needed but `prompt=none` forbids asking: `interaction_required`.
    Refuse(ErrorCode),
}

/// Decides the lab of a flow from the user's memberships (`labs`): their only lab; the lab
/// already chosen in this flow, or else named by the `lab` hint (id or name), when they are a
/// member of it; else the picker. A hint for a lab the user is not in is ignored like no hint,
/// so the answer never tells a client which labs a user belongs to.
///
/// Under `prompt=none` the picker becomes `interaction_required` (OIDC Core 3.1.2.6: "the
/// Authorization Server requires End-User interaction of some form to proceed"), not
/// `account_selection_required`, which is about choosing between accounts, not a tenant.
/// A hint chooses a lab without asking only when the user sees this request anyway (they
/// signed in within this flow) or has already chosen that lab for this client. Otherwise a
/// client could send `lab=` for every lab in turn through a signed-in browser, with no page
/// ever shown, and learn from codes versus pages (or errors, under `prompt=none`) which labs
/// the user belongs to, collecting a token for each: such a hint only preselects the lab in
/// the picker, and under `prompt=none` a lab the user is in but never chose for this client
/// answers exactly as a lab they are not in.
pub fn choose_lab(req: &AuthRequest, labs: &[LabRef<'_>]) -> LabChoice {
    match labs {
        [] => return LabChoice::NoLab,
        [only] => return LabChoice::Lab(only.id.to_owned()),
        _ => {}
    }
    if let Some(chosen) = &req.lab
        && labs.iter().any(|l| l.id == chosen.as_str())
    {
        return LabChoice::Lab(chosen.clone());
    }
    if let Some(hint) = &req.lab_hint
        && let Some(l) = labs
            .iter()
            .filter(|l| l.chosen_before || req.authenticated())
            .find(|l| l.id == hint.as_str() || l.name == hint.as_str())
    {
        return LabChoice::Lab(l.id.to_owned());
    }
    if req.prompt.none {
        LabChoice::Refuse(ErrorCode::InteractionRequired)
    } else {
        LabChoice::Pick
    }
}
