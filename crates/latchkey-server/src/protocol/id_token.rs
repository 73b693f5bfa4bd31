//! The claims of an ID token (OIDC Core sections 2, 3.1.3.6 and 5.4): what the grant says
//! about the authentication, plus the profile claims its scope releases. Signing is
//! [`crate::token::jwt`]'s; this only decides the content, given `now`.

use super::scope;
use latchkey_core::IdTokenClaims;

/// The user as the ID token may describe them.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub id: &'a str,
    pub email: &'a str,
    /// A link mailed to `email` was opened (OIDC Core 5.1 `email_verified`).
    pub email_verified: bool,
    pub name: Option<&'a str>,
}

/// The authentication and authorization behind the token.
#[derive(Debug, Clone, Copy)]
pub struct Authentication<'a> {
    pub client_id: &'a str,
    pub scope: &'a str,
    pub auth_time: i64,
    pub acr: &'a str,
    pub amr: &'a [String],
    pub sid: &'a str,
    pub nonce: Option<&'a str>,
    pub lab: Option<&'a str>,
    pub roles: &'a [String],
    pub features: &'a [String],
}

pub fn claims(
    issuer: &str,
    user: &Subject<'_>,
    auth: &Authentication<'_>,
    at_hash: Option<String>,
    ttl: i64,
    now: i64,
) -> IdTokenClaims {
    let email = scope::contains(auth.scope, "email");
    IdTokenClaims {
        iss: issuer.to_owned(),
        sub: user.id.to_owned(),
        aud: auth.client_id.to_owned(),
        exp: now + ttl,
        iat: now,
        auth_time: auth.auth_time,
        nonce: auth.nonce.map(str::to_owned),
        acr: auth.acr.to_owned(),
        amr: auth.amr.to_vec(),
        azp: auth.client_id.to_owned(),
        sid: auth.sid.to_owned(),
        at_hash,
        lab: auth.lab.map(str::to_owned),
        roles: auth.roles.to_vec(),
        features: auth.features.to_vec(),
        email: email.then(|| user.email.to_owned()),
        email_verified: email.then_some(user.email_verified),
        name: if scope::contains(auth.scope, "profile") {
            user.name.map(str::to_owned)
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(scope: &str) -> Authentication<'_> {
        Authentication {
            client_id: "app",
            scope,
            auth_time: 90,
            acr: "mfa",
            amr: &[],
            sid: "s1",
            nonce: Some("n-0S6"),
            lab: None,
            roles: &[],
            features: &[],
        }
    }

    const ALICE: Subject<'static> = Subject {
        id: "u1",
        email: "alice@example.com",
        email_verified: false,
        name: Some("Alice"),
    };

    #[test]
    fn oidc_core_2_id_token_times_audience_and_nonce() {
        let c = claims("https://idp", &ALICE, &auth("openid"), None, 300, 100);
        assert_eq!((c.iat, c.exp, c.auth_time), (100, 400, 90));
        assert_eq!((c.aud.as_str(), c.azp.as_str()), ("app", "app"));
        assert_eq!(c.nonce.as_deref(), Some("n-0S6"));
        assert_eq!((c.iss.as_str(), c.sub.as_str()), ("https://idp", "u1"));
    }

    #[test]
    fn oidc_core_5_4_profile_claims_only_with_their_scope() {
        let c = claims("i", &ALICE, &auth("openid"), None, 300, 100);
        assert_eq!((c.email, c.email_verified, c.name), (None, None, None));
        let c = claims("i", &ALICE, &auth("openid email profile"), None, 300, 100);
        assert_eq!(c.email.as_deref(), Some("alice@example.com"));
        assert_eq!(c.email_verified, Some(false));
        assert_eq!(c.name.as_deref(), Some("Alice"));
        let confirmed = Subject {
            email_verified: true,
            ..ALICE
        };
        let c = claims("i", &confirmed, &auth("openid email"), None, 300, 100);
        assert_eq!(c.email_verified, Some(true));
    }
}
