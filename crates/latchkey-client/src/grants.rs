//! What a verified token allows: lab, roles, features, scopes and authentication strength,
//! with `allows("invoices:approve")`. A [`FeatureMap`] lets a service derive features from
//! roles or scopes in its own vocabulary.

use crate::error::StepUpRequired;
use crate::verifier::Claims;
use latchkey_core::Acr;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// The user, or for client_credentials tokens the client itself.
    pub subject: String,
    pub client_id: Option<String>,
    pub lab: Option<String>,
    pub roles: Vec<String>,
    pub features: BTreeSet<String>,
    pub scopes: Vec<String>,
    /// `None` when the token carries no (or an unknown) `acr`, e.g. client_credentials.
    pub acr: Option<Acr>,
    pub amr: Vec<String>,
    pub auth_time: Option<i64>,
    pub session_id: Option<String>,
    /// The grant the token belongs to (its `gid`): an issuer that can read its grants checks
    /// it is still live, as Latchkey's admin API does. `None` for client_credentials tokens.
    pub grant_id: Option<String>,
    /// The DPoP key (RFC 7638 thumbprint) the token is bound to: it is good only with a proof
    /// signed by that key ([`crate::Verifier::verify_request`] checks it).
    pub dpop_jkt: Option<String>,
}

impl Grants {
    pub(crate) fn from_claims(c: Claims) -> Grants {
        Grants {
            scopes: c
                .scope
                .as_deref()
                .unwrap_or("")
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            subject: c.sub,
            client_id: c.client_id,
            lab: c.lab,
            roles: c.roles,
            features: c.features.into_iter().collect(),
            acr: c.acr.as_deref().and_then(|a| a.parse().ok()),
            amr: c.amr,
            auth_time: c.auth_time,
            session_id: c.sid,
            grant_id: c.gid,
            dpop_jkt: c.cnf.map(|c| c.jkt),
        }
    }

    /// True when the token represents a user (not a client acting for itself).
    pub fn is_user(&self) -> bool {
        self.session_id.is_some()
    }

    pub fn allows(&self, feature: &str) -> bool {
        self.features.contains(feature)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Refuses unless the user authenticated at `level` or stronger.
    pub fn require_acr(&self, level: Acr) -> Result<(), StepUpRequired> {
        match self.acr {
            Some(a) if a >= level => Ok(()),
            _ => Err(StepUpRequired {
                acr: level,
                max_age: None,
            }),
        }
    }

    /// Refuses unless the user authenticated at `level` or stronger within `max_age` seconds.
    pub fn require_recent_acr(
        &self,
        level: Acr,
        max_age: u64,
        now: i64,
    ) -> Result<(), StepUpRequired> {
        let recent = self.auth_time.is_some_and(|t| now - t <= max_age as i64);
        match self.acr {
            Some(a) if a >= level && recent => Ok(()),
            _ => Err(StepUpRequired {
                acr: level,
                max_age: Some(max_age),
            }),
        }
    }

    /// Adds the features `map` derives from this token's roles and scopes.
    pub fn with_map(mut self, map: &FeatureMap) -> Grants {
        for r in &self.roles {
            if let Some(fs) = map.roles.get(r) {
                self.features.extend(fs.iter().cloned());
            }
        }
        for s in &self.scopes {
            if let Some(fs) = map.scopes.get(s) {
                self.features.extend(fs.iter().cloned());
            }
        }
        self
    }
}

/// A service's own mapping from roles or scopes to features.
#[derive(Debug, Clone, Default)]
pub struct FeatureMap {
    roles: HashMap<String, Vec<String>>,
    scopes: HashMap<String, Vec<String>>,
}

impl FeatureMap {
    pub fn new() -> FeatureMap {
        FeatureMap::default()
    }

    /// Every holder of `role` gets `features`.
    pub fn role<I, S>(mut self, role: &str, features: I) -> FeatureMap
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles
            .entry(role.to_owned())
            .or_default()
            .extend(features.into_iter().map(Into::into));
        self
    }

    /// Every token with `scope` gets `features`.
    pub fn scope<I, S>(mut self, scope: &str, features: I) -> FeatureMap
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes
            .entry(scope.to_owned())
            .or_default()
            .extend(features.into_iter().map(Into::into));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.scopes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(acr: Option<Acr>) -> Grants {
        Grants {
            dpop_jkt: None,
            subject: "u".into(),
            client_id: Some("c".into()),
            lab: Some("lab-42".into()),
            roles: vec!["approver".into()],
            features: ["orders:read".to_owned()].into_iter().collect(),
            scopes: vec!["openid".into(), "email".into()],
            acr,
            amr: vec!["pwd".into()],
            auth_time: Some(1000),
            session_id: Some("s".into()),
            grant_id: Some("g".into()),
        }
    }

    #[test]
    fn features_from_claims_and_map() {
        let g = grants(Some(Acr::Pwd));
        assert!(g.allows("orders:read"));
        assert!(!g.allows("invoices:approve"));
        let map = FeatureMap::new()
            .role("approver", ["invoices:approve"])
            .scope("email", ["newsletter:send"]);
        let g = g.with_map(&map);
        assert!(g.allows("invoices:approve") && g.allows("newsletter:send"));
    }

    #[test]
    fn rfc9470_step_up_when_acr_is_too_weak() {
        let g = grants(Some(Acr::Pwd));
        let e = g.require_acr(Acr::Phr).unwrap_err();
        assert_eq!(
            e.www_authenticate(),
            "Bearer error=\"insufficient_user_authentication\", error_description=\"A stronger authentication is required\", acr_values=\"phr\""
        );
        assert!(grants(Some(Acr::Phr)).require_acr(Acr::Mfa).is_ok());
        assert!(grants(None).require_acr(Acr::Pwd).is_err());
        assert!(g.require_recent_acr(Acr::Pwd, 60, 1100).is_err());
        assert!(g.require_recent_acr(Acr::Pwd, 60, 1050).is_ok());
    }
}
