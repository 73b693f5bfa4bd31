//! Compact JWS (RFC 7515) encoding and verification of JWTs (RFC 7519) that Latchkey issues
//! and later reads back (userinfo, introspection, `id_token_hint`). The algorithm is taken from
//! the key the `kid` names, never from the header alone: a header `alg` that disagrees with the
//! key, `none`, or HMAC algorithms are refused.

use super::jwk::PublicJwk;
use super::signing::SigningKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::SigningAlg;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

/// Signs `claims` as a compact JWS with `typ` (`JWT` or `at+jwt`).
pub fn encode<C: Serialize>(key: &SigningKey, typ: &str, claims: &C) -> String {
    let header = Header {
        alg: key.alg.as_str().to_owned(),
        typ: Some(typ.to_owned()),
        kid: Some(key.kid().to_owned()),
    };
    let mut out = String::with_capacity(512);
    // Serialising these plain structs cannot fail.
    out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default()));
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default()));
    let sig = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a compact JWS")]
    Malformed,
    #[error("the token's key is unknown")]
    UnknownKey,
    #[error("the token's algorithm is not allowed")]
    BadAlgorithm,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token's type is wrong")]
    WrongType,
    #[error("the token was not issued by this server")]
    WrongIssuer,
    #[error("the token has expired")]
    Expired,
}

/// A token whose signature checked out, with its header and claims.
#[derive(Debug)]
pub struct VerifiedJwt<C> {
    pub header: Header,
    pub claims: C,
}

/// Verifies signature and `typ` of a compact JWS against `keys`, returning header and claims.
/// Time and issuer checks belong to the caller, who knows which leeway applies.
pub fn verify<'k, C: DeserializeOwned>(
    token: &str,
    keys: impl Fn(&str) -> Option<&'k PublicJwk>,
    typ: &str,
) -> Result<VerifiedJwt<C>, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Header =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed)?)
            .map_err(|_| JwtError::Malformed)?;
    let jwk =
        keys(header.kid.as_deref().ok_or(JwtError::UnknownKey)?).ok_or(JwtError::UnknownKey)?;
    let alg: SigningAlg = jwk.alg.parse().map_err(|_| JwtError::BadAlgorithm)?;
    if header.alg != jwk.alg {
        return Err(JwtError::BadAlgorithm);
    }
    if !header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}"))
    }) {
        return Err(JwtError::WrongType);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| JwtError::Malformed)?;
    let material = jwk.material().ok_or(JwtError::UnknownKey)?;
    let signed = &token[..h.len() + 1 + p.len()];
    if !material.verify(alg, signed.as_bytes(), &sig) {
        return Err(JwtError::BadSignature);
    }
    let claims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Malformed)?)
            .map_err(|_| JwtError::Malformed)?;
    Ok(VerifiedJwt { header, claims })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SigningKey {
        SigningKey::generate(SigningAlg::ES256).unwrap().0
    }

    #[test]
    fn round_trip() {
        let k = key();
        let t = encode(&k, "at+jwt", &serde_json::json!({"sub": "u"}));
        let v: VerifiedJwt<serde_json::Value> =
            verify(&t, |kid| (kid == k.kid()).then_some(&k.jwk), "at+jwt").unwrap();
        assert_eq!(v.claims["sub"], "u");
        let wrong_typ: Result<VerifiedJwt<serde_json::Value>, _> =
            verify(&t, |kid| (kid == k.kid()).then_some(&k.jwk), "JWT");
        assert_eq!(wrong_typ.unwrap_err(), JwtError::WrongType);
    }

    #[test]
    fn rfc7515_alg_none_is_refused() {
        let k = key();
        let t = encode(&k, "JWT", &serde_json::json!({"sub": "u"}));
        let mut parts: Vec<&str> = t.split('.').collect();
        let none = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            k.kid()
        ));
        parts[0] = &none;
        parts[2] = "";
        let forged = parts.join(".");
        let r: Result<VerifiedJwt<serde_json::Value>, _> =
            verify(&forged, |kid| (kid == k.kid()).then_some(&k.jwk), "JWT");
        assert_eq!(r.unwrap_err(), JwtError::BadAlgorithm);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(s in ".{0,200}") {
            let k = key();
            let r: Result<VerifiedJwt<serde_json::Value>, _> =
                verify(&s, |kid| (kid == k.kid()).then_some(&k.jwk), "JWT");
            prop_assert!(r.is_err());
        }
    }
}
