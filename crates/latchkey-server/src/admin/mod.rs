//! Administration: who may administer what, and the operations the admin API and the admin
//! console share.
//!
//! Two kinds of administrator: **system administrators** (every lab, every user, clients,
//! keys, the whole audit log) and **lab administrators** (their own labs only). Both call the
//! admin API with access tokens Latchkey issued for the audience [`ADMIN_AUDIENCE`] — to the
//! admin console (client [`ADMIN_CLIENT_ID`], a user signs in) or to an automation client
//! (`client_credentials` with scope [`ADMIN_SCOPE`], for a client registered with
//! `--admin-of`). Tokens are verified with `latchkey-client`; rights are read from the
//! database on every request, so revoking them applies at once.

pub mod ops;

use crate::state::AppState;
use crate::store::StoreError;
use latchkey_client::VerifyError;
use latchkey_core::names::{ClientId, FeatureName, LabId, RoleName, UserId};
use std::collections::BTreeSet;

pub use crate::store::clients::ADMIN_CLIENT_ID;
use crate::store::clients::AdminOf;
/// The scope an automation client asks for to call the admin API.
pub const ADMIN_SCOPE: &str = "latchkey:admin";
/// The `aud` of every token the admin API accepts.
pub const ADMIN_AUDIENCE: &str = "latchkey:admin";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person signed in to the console, or calling the API with the console's token.
    User(UserId),
    /// An automation client (`client_credentials` with the admin scope).
    Client(ClientId),
    /// The operator at the server's command line (`latchkey …`): a system administrator,
    /// recorded in the audit log as `cli`.
    Cli,
}

/// A verified caller and what they may administer.
#[derive(Debug, Clone)]
pub struct Admin {
    pub actor: Actor,
    pub system: bool,
    pub labs: BTreeSet<LabId>,
}

/// Why a request was refused or failed. Each kind maps to one HTTP status and a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// 401: no token, or one that does not verify.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: verified, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 422: a field's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("internal error")]
    Internal(String),
}

impl AdminError {
    pub fn invalid(field: &str, message: impl Into<String>) -> AdminError {
        AdminError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Unauthenticated(_) => "unauthenticated",
            AdminError::Forbidden(_) => "forbidden",
            AdminError::NotFound(_) => "not_found",
            AdminError::Invalid { .. } => "invalid",
            AdminError::Conflict(_) => "conflict",
            AdminError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> AdminError {
        match e {
            StoreError::NotFound(m) => AdminError::NotFound(m),
            // Only requests that list roles reach this: the list is the field at fault.
            e @ StoreError::NoSuchRole(_) => AdminError::invalid("roles", e.to_string()),
            StoreError::Conflict(m) => AdminError::Conflict(m),
            e => {
                tracing::error!("admin: {e}");
                AdminError::Internal(e.to_string())
            }
        }
    }
}

fn forbidden() -> AdminError {
    AdminError::Forbidden("you are not allowed to administer this".into())
}

impl Admin {
    /// The id written to the audit log as the actor.
    pub fn actor_id(&self) -> &str {
        match &self.actor {
            Actor::User(id) => id.as_str(),
            Actor::Client(id) => id.as_str(),
            Actor::Cli => "cli",
        }
    }

    /// An audit entry of this administrator doing `action` to `target`.
    pub fn event(
        &self,
        action: crate::audit::Action,
        target: &str,
        details: serde_json::Value,
    ) -> crate::audit::Event {
        crate::audit::Event::new(self.actor_id(), action, target, details)
    }

    /// The operator at the command line: whoever can run `latchkey` against the database
    /// already holds every right.
    pub fn cli() -> Admin {
        Admin {
            actor: Actor::Cli,
            system: true,
            labs: BTreeSet::new(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.system || !self.labs.is_empty()
    }

    /// Any administrator (lists are then narrowed to what they administer).
    pub fn require_any(&self) -> Result<(), AdminError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    pub fn require_system(&self) -> Result<(), AdminError> {
        if self.system {
            Ok(())
        } else {
            Err(AdminError::Forbidden(
                "only system administrators may do this".into(),
            ))
        }
    }

    pub fn may_lab(&self, lab: &LabId) -> bool {
        self.system || self.labs.contains(lab)
    }

    pub fn require_lab(&self, lab: &LabId) -> Result<(), AdminError> {
        if self.may_lab(lab) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    /// Actions on a user as a whole (disable, reset factors, end sessions, export, erase)
    /// touch every lab they belong to: a lab administrator must administer all of them.
    pub fn require_user(&self, user_labs: &[LabId]) -> Result<(), AdminError> {
        if self.system || (!user_labs.is_empty() && user_labs.iter().all(|l| self.may_lab(l))) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }
}

/// `latchkey-client`'s key source for this node's own keys: the same set `/jwks.json`
/// publishes, re-read whenever the verifier meets an unknown `kid` (after a rotation).
struct LocalKeys(crate::keys::Keys);

impl latchkey_client::KeySource for LocalKeys {
    fn fetch(&self) -> latchkey_client::FetchFuture<'_> {
        let json = serde_json::json!({ "keys": self.0.current().published() }).to_string();
        Box::pin(async move {
            Ok(latchkey_client::Jwks {
                keys: latchkey_client::JwkSet::from_json(json.as_bytes())?,
                max_age: Some(std::time::Duration::from_secs(5)),
            })
        })
    }
}

/// The admin API's token verifier.
pub async fn verifier(
    issuer: &str,
    keys: &crate::keys::Keys,
) -> Result<latchkey_client::Verifier, latchkey_client::FetchError> {
    let mut opts = latchkey_client::VerifierOptions::new(issuer, ADMIN_AUDIENCE);
    opts.min_refetch_interval = std::time::Duration::from_secs(1);
    latchkey_client::Verifier::with_source(opts, LocalKeys(keys.clone())).await
}

/// Verifies a bearer token for the admin API and loads the caller's rights.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Admin, AdminError> {
    let grants = state
        .admin_verifier()
        .verify_access_token(token)
        .await
        .map_err(|e: VerifyError| AdminError::Unauthenticated(format!("invalid token: {e}")))?;
    let client = ClientId::new(grants.client_id.clone().unwrap_or_default());
    if grants.subject == client.as_str() {
        // A client acting for itself: it must have asked for the admin scope.
        if !grants.has_scope(ADMIN_SCOPE) {
            return Err(AdminError::Unauthenticated(
                "the token lacks the latchkey:admin scope".into(),
            ));
        }
        let c = state
            .store
            .get_client(&client)
            .await?
            .ok_or_else(|| AdminError::Unauthenticated("the client no longer exists".into()))?;
        let (system, labs) = match c.admin_of.as_ref() {
            Some(AdminOf::AllLabs) => (true, BTreeSet::new()),
            Some(AdminOf::Lab(lab)) => (false, BTreeSet::from([lab.clone()])),
            None => (false, BTreeSet::new()),
        };
        return Ok(Admin {
            actor: Actor::Client(client),
            system,
            labs,
        });
    }
    if client.as_str() != ADMIN_CLIENT_ID {
        return Err(AdminError::Unauthenticated(
            "only tokens issued to the admin console or to admin clients are accepted".into(),
        ));
    }
    let user = UserId::new(grants.subject);
    let rights = state
        .store
        .admin_rights(&user)
        .await?
        .filter(|r| !r.disabled)
        .ok_or_else(|| AdminError::Unauthenticated("the account is disabled or gone".into()))?;
    Ok(Admin {
        actor: Actor::User(user),
        system: rights.system,
        labs: rights.labs.into_iter().collect(),
    })
}

/// Validates a feature name (`orders:read`): the rule of `latchkey_core::names::FeatureName`.
pub fn check_feature(field: &str, f: &str) -> Result<(), AdminError> {
    feature_name(field, f).map(drop)
}

/// Validates a role name: the rule of `latchkey_core::names::RoleName`.
pub fn check_role(field: &str, r: &str) -> Result<(), AdminError> {
    role_name(field, r).map(drop)
}

/// A role name typed at an edge (a path segment, a form field, a flag), or `invalid` naming
/// `field`.
pub fn role_name(field: &str, r: &str) -> Result<RoleName, AdminError> {
    RoleName::parse(r).map_err(|e| AdminError::invalid(field, e.to_string()))
}

/// A feature name typed at an edge, or `invalid` naming `field`.
pub fn feature_name(field: &str, f: &str) -> Result<FeatureName, AdminError> {
    FeatureName::parse(f).map_err(|e| AdminError::invalid(field, e.to_string()))
}
