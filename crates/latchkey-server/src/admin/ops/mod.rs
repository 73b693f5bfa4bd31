//! Every administrative operation, once: authorisation first (server-side, from the caller's
//! rights), then validation (errors name the field), then the change (one transaction), then
//! an audit entry naming the actor, the action and the state before and after.
//!
//! The admin API (`http::api`), the admin console (`http::admin`) and the command line
//! (`latchkey …`) all call these. One file per concept.
//!
//! Ids arrive typed (`LabId`, `UserId`, `ClientId`), and so do the role and feature names an
//! operation is about (`RoleName`, `FeatureName`): each caller builds them once where it reads
//! them (a path segment, a form field, a flag). A malformed name is refused there, with
//! [`role_name`] or [`feature_name`] naming the field, before the operation's authorisation.

mod audit_log;
mod bootstrap;
mod clients;
mod invitations;
mod labs;
mod mail;
mod members;
mod policy;
mod roles;
mod security;
mod users;

pub use audit_log::*;
pub use bootstrap::*;
pub use clients::*;
pub use invitations::*;
pub use labs::*;
pub use mail::*;
pub use members::*;
pub use policy::*;
pub use roles::*;
pub use security::*;
pub use users::*;

use super::{Admin, AdminError, check_feature, check_role};
pub use super::{feature_name, role_name};
use crate::audit::{Action, Event};
use crate::protocol::strength::{Enrolled, Rules};
use crate::secret::{OpaqueToken, TokenKind};
use crate::state::AppState;
use crate::store::admin::{AuditQuery, AuditRecord, Joiner, Member, Role, UserInfo};
use crate::store::invitations::Invitation;
use crate::store::now;
use latchkey_core::Acr;
use latchkey_core::names::{ClientId, FeatureName, LabId, RoleName, UserId};
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

/// Refuses to grant a feature that no service of `lab` declares, once any of them declares
/// its features (`latchkey client create --feature`): administrators pick from that list, and
/// a typo or another lab's feature name is an error, not a silent grant.
async fn declared_in_lab<'a>(
    state: &AppState,
    lab: &LabId,
    field: &str,
    granted: impl IntoIterator<Item = &'a str>,
) -> R<()> {
    let known = state.store.declared_features(lab).await?;
    if known.is_empty() {
        return Ok(());
    }
    let unknown: Vec<&str> = granted
        .into_iter()
        .filter(|f| !known.contains(*f))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(AdminError::invalid(
        field,
        format!(
            "no service of this lab declares {}: choose from {}",
            unknown
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", "),
            known
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

async fn lab_exists(state: &AppState, lab: &LabId) -> R<crate::store::labs::Lab> {
    state
        .store
        .get_lab(lab)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no lab `{lab}`")))
}

async fn member_of(state: &AppState, lab: &LabId, user: &UserId) -> R<Member> {
    state
        .store
        .lab_members(lab)
        .await?
        .into_iter()
        .find(|m| m.user_id == *user)
        .ok_or_else(|| AdminError::NotFound("no such member of this lab".into()))
}
