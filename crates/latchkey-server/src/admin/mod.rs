//! Administration: who may administer what, and the operations the admin API and the admin
//! console share.
//!
//! Two kinds of administrator: **system administrators** (every lab, every user, clients,
//! keys, the whole audit log) and **lab administrators** (their own labs only). Both call the
//! admin API with access tokens Latchkey issued for the audience [`ADMIN_AUDIENCE`] — to the
//! admin console (client [`ADMIN_CLIENT_ID`], a user signs in) or to an automation client
//! (`client_credentials` with scope [`ADMIN_SCOPE`], for a client registered with
//! `--admin-of`). Tokens are verified with `latchkey-client`; rights, a console token's grant
//! and an automation client's registration are read from the database on every request, so
//! revoking any of them applies at once.
//!
//! **A person administers only with a strong, recent sign-in.** A console token's `acr` must
//! reach `[admin] min_acr` (`mfa` unless configured `phr`) and its `auth_time` must be within
//! `[admin] max_age_secs`; on top of that, an operation on a lab needs the level the
//! administrator's own lab and role policy ask of them in that lab (no enrolment grace), and
//! a system-wide operation, which reaches every lab, the strictest of those. A refusal is
//! [`AdminError::InsufficientAuthentication`]: the API answers it as RFC 9470's
//! `insufficient_user_authentication`, the console as a step-up. Automation clients and the
//! command line prove no person's sign-in and are not concerned.

pub mod ops;

use crate::protocol::OAuthError;
use crate::state::AppState;
use crate::store::StoreError;
use latchkey_client::VerifyError;
use latchkey_core::Acr;
use latchkey_core::names::{ClientId, FeatureName, LabId, RoleName, UserId};
use std::collections::{BTreeMap, BTreeSet};

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
    /// For a person (a console token): how they signed in and what their administration asks
    /// of it. `None` for automation clients and the command line.
    pub sign_in: Option<SignIn>,
}

/// What a person proved when they signed in, and the levels their administration needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    /// The token's `acr` and `auth_time`.
    pub acr: Acr,
    pub auth_time: i64,
    /// `[admin] min_acr`: what every administrator needs.
    pub floor: Acr,
    /// The labs the person belongs to whose lab or role policy asks more of them than
    /// `floor`, and that level (grace periods never defer it).
    pub lab_needs: BTreeMap<LabId, Acr>,
    /// `[admin] max_age_secs`, named in refusals (RFC 9470 `max_age`).
    pub max_age: i64,
}

impl SignIn {
    /// The level an operation on `lab` needs of this administrator.
    pub fn need_in(&self, lab: &LabId) -> Acr {
        self.lab_needs
            .get(lab)
            .map_or(self.floor, |a| (*a).max(self.floor))
    }

    /// The level a system-wide operation needs: it reaches every lab, so the strictest of the
    /// administrator's own policies.
    pub fn need_everywhere(&self) -> Acr {
        self.lab_needs.values().copied().fold(self.floor, Acr::max)
    }

    /// `need`, if this sign-in does not reach it (what a step-up would ask for).
    pub fn short_of(&self, need: Acr) -> Option<Acr> {
        (need > self.acr).then_some(need)
    }

    /// Refuses unless this sign-in reaches `need`.
    pub fn require(&self, need: Acr) -> Result<(), AdminError> {
        if self.short_of(need).is_none() {
            return Ok(());
        }
        Err(AdminError::InsufficientAuthentication {
            need,
            max_age: self.max_age,
            too_old: false,
            message: format!(
                "this needs a sign-in at `{need}` ({}); this one is at `{}`: sign in again with acr_values={need}",
                describe(need),
                self.acr
            ),
        })
    }
}

/// How a level is reached, in a few words for messages and pages.
pub fn describe(acr: Acr) -> &'static str {
    match acr {
        Acr::Pwd => "a password only",
        Acr::Mfa => "a password and a second factor",
        Acr::Phr => "a passkey",
    }
}

/// Why a request was refused or failed. Each kind maps to one HTTP status and a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// 401: no token, or one that does not verify.
    #[error("{0}")]
    Unauthenticated(String),
    /// 401: a DPoP-bound token without a proof by its key, a proof that fails RFC 9449's
    /// checks, or one without the server's nonce: answered with the `DPoP` challenge the error
    /// carries (and its `DPoP-Nonce`), as the `unauthenticated` error.
    #[error("{}", .0.public_description())]
    DpopRefused(Box<OAuthError>),
    /// 401: a person's sign-in is weaker than `need`, or (`too_old`) older than `max_age`
    /// seconds: sign in again (RFC 9470 `insufficient_user_authentication`).
    #[error("{message}")]
    InsufficientAuthentication {
        need: Acr,
        max_age: i64,
        too_old: bool,
        message: String,
    },
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
            AdminError::Unauthenticated(_) | AdminError::DpopRefused(_) => "unauthenticated",
            AdminError::InsufficientAuthentication { .. } => "insufficient_user_authentication",
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
            sign_in: None,
        }
    }

    /// Refuses a person whose sign-in does not reach what `need` computes; clients and the
    /// command line pass.
    fn strong_enough(&self, need: impl FnOnce(&SignIn) -> Acr) -> Result<(), AdminError> {
        match &self.sign_in {
            Some(s) => s.require(need(s)),
            None => Ok(()),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.system || !self.labs.is_empty()
    }

    /// Any administrator (lists are then narrowed to what they administer).
    pub fn require_any(&self) -> Result<(), AdminError> {
        if !self.is_admin() {
            return Err(forbidden());
        }
        self.strong_enough(|s| s.floor)
    }

    /// A system-wide operation: system administrators, signed in at the strictest level any
    /// of their labs asks of them.
    pub fn require_system(&self) -> Result<(), AdminError> {
        if !self.system {
            return Err(AdminError::Forbidden(
                "only system administrators may do this".into(),
            ));
        }
        self.strong_enough(SignIn::need_everywhere)
    }

    pub fn may_lab(&self, lab: &LabId) -> bool {
        self.system || self.labs.contains(lab)
    }

    /// An operation on `lab`: its administrators (and system administrators), signed in at
    /// the level their own lab and role policy there asks (at least `[admin] min_acr`).
    pub fn require_lab(&self, lab: &LabId) -> Result<(), AdminError> {
        if !self.may_lab(lab) {
            return Err(forbidden());
        }
        self.strong_enough(|s| s.need_in(lab))
    }

    /// Actions on a user as a whole (disable, reset factors, end sessions, export, erase)
    /// touch every lab they belong to: a lab administrator must administer all of them, signed
    /// in at the strictest level those labs ask of them.
    pub fn require_user(&self, user_labs: &[LabId]) -> Result<(), AdminError> {
        if !(self.system || (!user_labs.is_empty() && user_labs.iter().all(|l| self.may_lab(l)))) {
            return Err(forbidden());
        }
        self.strong_enough(|s| {
            user_labs
                .iter()
                .map(|l| s.need_in(l))
                .fold(s.floor, Acr::max)
        })
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
    let mut opts = latchkey_client::VerifierOptions::new(issuer, ADMIN_AUDIENCE).any_lab();
    opts.min_refetch_interval = std::time::Duration::from_secs(1);
    latchkey_client::Verifier::with_source(opts, LocalKeys(keys.clone())).await
}

/// Verifies an access token for the admin API and loads the caller's rights. A DPoP-bound
/// token (RFC 9449 section 7) needs `proof_jkt`, the key of a verified proof for this request
/// (which the caller records once this succeeds); an unbound token must come without one.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    proof_jkt: Option<&str>,
) -> Result<Admin, AdminError> {
    let grants = state
        .admin_verifier()
        .verify_access_token(token)
        .await
        .map_err(|e: VerifyError| AdminError::Unauthenticated(format!("invalid token: {e}")))?;
    crate::protocol::dpop::check_binding(grants.dpop_jkt.as_deref(), proof_jkt)
        .map_err(|e| AdminError::DpopRefused(Box::new(e)))?;
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
            sign_in: None,
        });
    }
    if client.as_str() != ADMIN_CLIENT_ID {
        return Err(AdminError::Unauthenticated(
            "only tokens issued to the admin console or to admin clients are accepted".into(),
        ));
    }
    let user = UserId::new(grants.subject);
    // The signature proves the token was issued, not that it still stands: a console logout,
    // `end sessions` or a revocation ends its grant, and the token with it.
    let now = crate::store::now();
    let live = match grants.grant_id.as_deref() {
        Some(gid) => state.store.get_grant(gid).await?.is_some_and(|g| {
            g.is_live(now) && g.user_id == user.as_str() && g.client_id == ADMIN_CLIENT_ID
        }),
        None => false,
    };
    if !live {
        return Err(AdminError::Unauthenticated(
            "the token has been revoked: sign in again".into(),
        ));
    }
    let rights = state
        .store
        .admin_rights(&user)
        .await?
        .filter(|r| !r.disabled)
        .ok_or_else(|| AdminError::Unauthenticated("the account is disabled or gone".into()))?;
    let sign_in = person_sign_in(state, &user, grants.acr, grants.auth_time).await?;
    Ok(Admin {
        actor: Actor::User(user),
        system: rights.system,
        labs: rights.labs.into_iter().collect(),
        sign_in: Some(sign_in),
    })
}

/// Ends the grant behind a console token (the console's "Sign out"): the token stops working
/// at once in the API and the console, whatever the Latchkey session then does. A token that
/// no longer verifies has nothing left to end.
pub async fn sign_out(state: &AppState, token: &str) -> Result<(), AdminError> {
    let Ok(grants) = state.admin_verifier().verify_access_token(token).await else {
        return Ok(());
    };
    let (Some(gid), Some(ADMIN_CLIENT_ID)) = (grants.grant_id, grants.client_id.as_deref()) else {
        return Ok(());
    };
    let event = crate::audit::Event::new(
        &grants.subject,
        crate::audit::Action::GrantEnded,
        &grants.subject,
        serde_json::json!({"grant": gid, "client": ADMIN_CLIENT_ID, "reason": "signed out of the console"}),
    );
    state.store.revoke_grant(&gid, Some(&event)).await?;
    Ok(())
}

/// Checks a person's token against `[admin]` (the floor, the maximum age) and reads what
/// their own lab and role policies ask of them in each lab they belong to.
async fn person_sign_in(
    state: &AppState,
    user: &UserId,
    acr: Option<Acr>,
    auth_time: Option<i64>,
) -> Result<SignIn, AdminError> {
    let cfg = &state.config.admin;
    let now = crate::store::now();
    let acr = acr.unwrap_or(Acr::Pwd);
    // A token without `auth_time` proves no age: as old as can be.
    let auth_time = auth_time.unwrap_or(i64::MIN / 2);
    if now.saturating_sub(auth_time) > cfg.max_age_secs {
        return Err(AdminError::InsufficientAuthentication {
            need: acr.max(cfg.min_acr),
            max_age: cfg.max_age_secs,
            too_old: true,
            message: format!(
                "this sign-in is older than {} seconds (admin.max_age_secs): sign in again",
                cfg.max_age_secs
            ),
        });
    }
    // Read from the database, not the sign-in's five-second cache of which labs have a
    // policy: a stricter policy binds administrators at once (and a console request must not
    // leave a stale entry for sign-ins on this node).
    let mut lab_needs = BTreeMap::new();
    for lab in state.store.user_labs(user.as_str()).await? {
        let p = state.store.member_policy(user.as_str(), &lab).await?;
        if let Some(need) = p.lab.map(|l| l.min_acr).max(p.role_min)
            && need > cfg.min_acr
        {
            lab_needs.insert(LabId::new(lab), need);
        }
    }
    let sign_in = SignIn {
        acr,
        auth_time,
        floor: cfg.min_acr,
        lab_needs,
        max_age: cfg.max_age_secs,
    };
    sign_in.require(sign_in.floor)?;
    Ok(sign_in)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(acr: Acr, lab_needs: &[(&str, Acr)]) -> Admin {
        Admin {
            actor: Actor::User(UserId::new("u")),
            system: false,
            labs: BTreeSet::from([LabId::new("a"), LabId::new("b")]),
            sign_in: Some(SignIn {
                acr,
                auth_time: 0,
                floor: Acr::Mfa,
                lab_needs: lab_needs
                    .iter()
                    .map(|(l, a)| (LabId::new(*l), *a))
                    .collect(),
                max_age: 43_200,
            }),
        }
    }

    #[test]
    fn an_administrator_needs_the_floor_and_their_own_policy_in_the_lab_concerned() {
        let a = admin(Acr::Mfa, &[("a", Acr::Phr)]);
        assert!(a.require_lab(&LabId::new("b")).is_ok());
        let e = a.require_lab(&LabId::new("a")).unwrap_err();
        assert!(matches!(
            e,
            AdminError::InsufficientAuthentication {
                need: Acr::Phr,
                too_old: false,
                ..
            }
        ));
        assert_eq!(e.code(), "insufficient_user_authentication");
        // Listing what they administer needs only the floor; a lab they do not administer
        // is forbidden before any level is asked.
        assert!(a.require_any().is_ok());
        assert_eq!(
            a.require_lab(&LabId::new("c")).unwrap_err().code(),
            "forbidden"
        );
        // Acting on a person in both labs needs the stricter.
        assert!(a.require_user(&[LabId::new("a"), LabId::new("b")]).is_err());
        assert!(
            admin(Acr::Phr, &[("a", Acr::Phr)])
                .require_lab(&LabId::new("a"))
                .is_ok()
        );
    }

    #[test]
    fn system_wide_operations_need_the_strictest_of_the_administrators_policies() {
        let mut a = admin(Acr::Mfa, &[("a", Acr::Phr)]);
        a.system = true;
        assert!(
            a.require_lab(&LabId::new("z")).is_ok(),
            "a lab they are not in"
        );
        assert!(a.require_system().is_err());
        let mut a = admin(Acr::Mfa, &[]);
        a.system = true;
        assert!(a.require_system().is_ok());
        // The command line and automation clients prove no person's sign-in.
        assert!(Admin::cli().require_system().is_ok());
    }
}
