//! The refresh-token grant's decisions (RFC 6749 section 6): whether a grant is still strong
//! enough for the MFA policy in force now, and which scope a refresh may ask for. MFA policy
//! changes apply at the next token request: a grant weaker than what the client, the lab or
//! the user's roles now demand ends, and the user signs in again.

use super::OAuthError;
use latchkey_core::{Acr, ErrorCode};

/// The grant's stored `acr`. A value this version cannot read counts as the weakest level:
/// an unreadable value may make a grant look weaker than it is, never stronger.
pub fn stored_acr(s: &str) -> Acr {
    s.parse().unwrap_or(Acr::Pwd)
}

/// Whether the lab's policy floor must be read at all: a phishing-resistant grant meets any
/// floor, and a grant outside a lab has none (this keeps a query off the hot path).
pub fn needs_lab_floor(acr: Acr, lab: Option<&str>) -> bool {
    lab.is_some() && acr != Acr::Phr
}

/// `Err(needed)` when the grant's `acr` is below the client's minimum or the lab's floor.
pub fn strong_enough(acr: Acr, client_min: Option<Acr>, lab_floor: Option<Acr>) -> Result<(), Acr> {
    match client_min.max(lab_floor) {
        Some(need) if acr < need => Err(need),
        _ => Ok(()),
    }
}

/// The refusal for a grant [`strong_enough`] rejected.
pub fn too_weak(need: Acr) -> OAuthError {
    OAuthError::invalid_grant(format!(
        "a stronger sign-in (acr `{need}`) is now required; start a new authorization request"
    ))
}

/// The scope of a refresh asking for `wanted` (parsed by [`super::scope::parse`]): a narrower scope
/// may be asked for (section 6), never a wider one. The result keeps the request's order.
pub fn narrowed_scope(wanted: &[String], granted: &str) -> Result<String, OAuthError> {
    let granted: Vec<&str> = granted.split(' ').filter(|s| !s.is_empty()).collect();
    if let Some(extra) = wanted.iter().find(|w| !granted.contains(&w.as_str())) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("scope `{extra}` was not granted originally"),
        ));
    }
    Ok(wanted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::scope;

    #[test]
    fn mfa_floor_a_grant_below_the_client_minimum_ends() {
        assert_eq!(strong_enough(Acr::Pwd, Some(Acr::Mfa), None), Err(Acr::Mfa));
        assert_eq!(strong_enough(Acr::Mfa, Some(Acr::Mfa), None), Ok(()));
        assert_eq!(strong_enough(Acr::Pwd, None, None), Ok(()));
    }

    #[test]
    fn mfa_floor_the_stronger_of_client_and_lab_floor_applies() {
        assert_eq!(
            strong_enough(Acr::Mfa, Some(Acr::Mfa), Some(Acr::Phr)),
            Err(Acr::Phr)
        );
        assert_eq!(
            strong_enough(Acr::Mfa, Some(Acr::Phr), Some(Acr::Pwd)),
            Err(Acr::Phr)
        );
        assert_eq!(
            strong_enough(Acr::Phr, Some(Acr::Phr), Some(Acr::Phr)),
            Ok(())
        );
    }

    #[test]
    fn mfa_floor_is_read_only_for_lab_grants_below_phr() {
        assert!(needs_lab_floor(Acr::Pwd, Some("lab")));
        assert!(needs_lab_floor(Acr::Mfa, Some("lab")));
        assert!(!needs_lab_floor(Acr::Phr, Some("lab")));
        assert!(!needs_lab_floor(Acr::Pwd, None));
    }

    #[test]
    fn an_unreadable_stored_acr_counts_as_the_weakest() {
        assert_eq!(stored_acr("mfa"), Acr::Mfa);
        assert_eq!(stored_acr("phr"), Acr::Phr);
        assert_eq!(stored_acr("aal9"), Acr::Pwd);
    }

    #[test]
    fn rfc6749_6_refresh_may_narrow_never_widen_scope() {
        let wanted = |s: &str| scope::parse(s).unwrap();
        assert_eq!(
            narrowed_scope(&wanted("email openid"), "openid email profile").unwrap(),
            "email openid"
        );
        let e = narrowed_scope(&wanted("openid profile"), "openid").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
        assert!(e.description.contains("`profile`"));
    }
}
