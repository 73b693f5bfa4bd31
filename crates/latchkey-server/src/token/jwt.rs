//! Building and reading the tokens Latchkey signs: RFC 9068 access tokens (ES256, `at+jwt`)
//! and OpenID Connect ID tokens (RS256 by default, ES256 or EdDSA per client).

use crate::crypto::jwt::{self, JwtError};
use crate::keys::{KeySet, KeysError};
use crate::secret::random_id;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::{AccessTokenClaims, IdTokenClaims, SigningAlg};

/// Access tokens are always ES256: fast to sign and to verify, and small.
pub const ACCESS_TOKEN_ALG: SigningAlg = SigningAlg::ES256;
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Everything an access token says about its subject.
pub struct AccessTokenInput<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub client_id: &'a str,
    /// `aud`; the client id when `None` (Latchkey's admin API has its own audience).
    pub audience: Option<&'a str>,
    pub scope: &'a str,
    pub ttl: i64,
    pub now: i64,
    pub user: Option<UserContext<'a>>,
    /// The DPoP key (RFC 9449 thumbprint) the token is bound to: its `cnf.jkt`.
    pub cnf_jkt: Option<&'a str>,
}

/// The authentication behind a user's token.
#[derive(Clone, Copy)]
pub struct UserContext<'a> {
    pub auth_time: i64,
    pub acr: &'a str,
    pub amr: &'a [String],
    pub sid: &'a str,
    pub grant_id: &'a str,
    pub lab: Option<&'a str>,
    /// The user's roles and effective features in `lab`.
    pub roles: &'a [String],
    pub features: &'a [String],
}

pub fn access_token(keys: &KeySet, i: &AccessTokenInput<'_>) -> Result<String, KeysError> {
    let claims = AccessTokenClaims {
        iss: i.issuer.to_owned(),
        sub: i.subject.to_owned(),
        aud: i.audience.unwrap_or(i.client_id).to_owned(),
        exp: i.now + i.ttl,
        iat: i.now,
        jti: random_id(),
        client_id: i.client_id.to_owned(),
        scope: i.scope.to_owned(),
        auth_time: i.user.map(|u| u.auth_time),
        acr: i.user.map(|u| u.acr.to_owned()),
        amr: i.user.map(|u| u.amr.to_vec()).unwrap_or_default(),
        sid: i.user.map(|u| u.sid.to_owned()),
        gid: i.user.map(|u| u.grant_id.to_owned()),
        lab: i.user.and_then(|u| u.lab.map(str::to_owned)),
        roles: i.user.map(|u| u.roles.to_vec()).unwrap_or_default(),
        features: i.user.map(|u| u.features.to_vec()).unwrap_or_default(),
        cnf: i.cnf_jkt.map(|jkt| latchkey_core::Confirmation {
            jkt: jkt.to_owned(),
        }),
    };
    Ok(jwt::encode(
        keys.signer(ACCESS_TOKEN_ALG)?,
        ACCESS_TOKEN_TYP,
        &claims,
    ))
}

/// The `typ` of a logout token (OpenID Connect Back-Channel Logout 1.0 section 2.4, explicit
/// typing): an ID token or access token cannot pass for one.
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
/// The event a logout token declares (section 2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid, in seconds: it is sent at once.
pub const LOGOUT_TOKEN_TTL: i64 = 120;

/// Who a logout token logs out of `client_id`: the user `sub` and the session `sid` (the
/// ID token's `sid`).
pub struct LogoutInput<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub subject: &'a str,
    pub sid: &'a str,
    pub now: i64,
}

#[derive(serde::Serialize)]
struct LogoutTokenClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    sub: &'a str,
    sid: &'a str,
    events: serde_json::Value,
}

/// A logout token (section 2.4), signed with the algorithm of the client's ID tokens; a new
/// `jti` each time. It carries no `nonce`.
pub fn logout_token(
    keys: &KeySet,
    alg: SigningAlg,
    i: &LogoutInput<'_>,
) -> Result<String, KeysError> {
    let claims = LogoutTokenClaims {
        iss: i.issuer,
        aud: i.client_id,
        iat: i.now,
        exp: i.now + LOGOUT_TOKEN_TTL,
        jti: random_id(),
        sub: i.subject,
        sid: i.sid,
        events: serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
    };
    Ok(jwt::encode(keys.signer(alg)?, LOGOUT_TOKEN_TYP, &claims))
}

/// OIDC Core 3.1.3.6 `at_hash`: the left half of the hash of the access token, with the hash
/// the ID token's algorithm uses (SHA-512 for Ed25519).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let d = match alg {
        SigningAlg::EdDSA => ring::digest::digest(&ring::digest::SHA512, access_token.as_bytes()),
        _ => ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes()),
    };
    let b = d.as_ref();
    URL_SAFE_NO_PAD.encode(&b[..b.len() / 2])
}

pub fn id_token(
    keys: &KeySet,
    alg: SigningAlg,
    claims: &IdTokenClaims,
) -> Result<String, KeysError> {
    Ok(jwt::encode(keys.signer(alg)?, "JWT", claims))
}

/// Verifies one of our access tokens: signature, `typ`, issuer and expiry.
pub fn verify_access_token(
    keys: &KeySet,
    issuer: &str,
    token: &str,
    now: i64,
) -> Result<AccessTokenClaims, JwtError> {
    let v: jwt::VerifiedJwt<AccessTokenClaims> =
        jwt::verify(token, |kid| keys.public_key(kid), ACCESS_TOKEN_TYP)?;
    if v.claims.iss != issuer {
        return Err(JwtError::WrongIssuer);
    }
    if v.claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(v.claims)
}

/// Verifies an ID token we issued, ignoring expiry (`id_token_hint` may be expired, OIDC
/// RP-Initiated Logout section 2).
pub fn verify_id_token_hint(
    keys: &KeySet,
    issuer: &str,
    token: &str,
) -> Result<IdTokenClaims, JwtError> {
    let v: jwt::VerifiedJwt<IdTokenClaims> = jwt::verify(token, |kid| keys.public_key(kid), "JWT")?;
    if v.claims.iss != issuer {
        return Err(JwtError::WrongIssuer);
    }
    Ok(v.claims)
}
