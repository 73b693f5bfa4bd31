//! Public keys that others sign with, as JWKs (RFC 7517): a client's `private_key_jwt` keys
//! (RFC 7523) and the key in a DPoP proof's header (RFC 9449). Only asymmetric algorithms
//! (RFC 7518); a JWK carrying private or symmetric key material is refused. [`PublicKey`]
//! verifies with ring and has an RFC 7638 thumbprint (`jkt`).
//!
//! This is the structural part: stricter rules for keys that are registered (RSA modulus size,
//! primality, Ed25519 small order) live with the registration, in the server.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;

/// The JWS algorithms accepted from others: asymmetric only. `none` and the HMAC algorithms
/// are never accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl JwsAlg {
    pub const ALL: [JwsAlg; 9] = [
        JwsAlg::RS256,
        JwsAlg::RS384,
        JwsAlg::RS512,
        JwsAlg::PS256,
        JwsAlg::PS384,
        JwsAlg::PS512,
        JwsAlg::ES256,
        JwsAlg::ES384,
        JwsAlg::EdDSA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlg::RS256 => "RS256",
            JwsAlg::RS384 => "RS384",
            JwsAlg::RS512 => "RS512",
            JwsAlg::PS256 => "PS256",
            JwsAlg::PS384 => "PS384",
            JwsAlg::PS512 => "PS512",
            JwsAlg::ES256 => "ES256",
            JwsAlg::ES384 => "ES384",
            JwsAlg::EdDSA => "EdDSA",
        }
    }

    /// The algorithm a JWS header names, if it is one of [`JwsAlg::ALL`].
    pub fn parse(s: &str) -> Option<JwsAlg> {
        JwsAlg::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for JwsAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { point: Vec<u8> },
    P384 { point: Vec<u8> },
    Ed25519 { key: Vec<u8> },
}

/// A public signature key, parsed from a JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(Material);

/// The members of a JWK that would make it a private key (RFC 7518 sections 6.2.2, 6.3.2,
/// 6.4; RFC 8037 section 2).
pub const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

type Jwk = serde_json::Map<String, serde_json::Value>;

fn member<'a>(jwk: &'a Jwk, name: &str) -> Result<&'a str, String> {
    match jwk.get(name) {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(format!("`{name}` must be a string")),
        None => Err(format!("`{name}` is missing")),
    }
}

fn b64(jwk: &Jwk, name: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(member(jwk, name)?)
        .map_err(|_| format!("`{name}` is not base64url without padding"))
}

fn point(jwk: &Jwk, len: usize) -> Result<Vec<u8>, String> {
    let (x, y) = (b64(jwk, "x")?, b64(jwk, "y")?);
    if x.len() != len || y.len() != len {
        return Err(format!("`x` and `y` must be {len} bytes each"));
    }
    let mut p = Vec::with_capacity(1 + 2 * len);
    p.push(4);
    p.extend_from_slice(&x);
    p.extend_from_slice(&y);
    Ok(p)
}

impl PublicKey {
    /// Parses the key of a JWK: RSA, EC P-256 or P-384, or OKP Ed25519. A JWK with private
    /// members or of type `oct` is refused. `kid`, `alg`, `use` and `key_ops` are the caller's.
    pub fn from_jwk(jwk: &Jwk) -> Result<PublicKey, String> {
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
            return Err(format!("the key holds private key material (`{m}`)"));
        }
        let crv = jwk.get("crv").and_then(|c| c.as_str());
        let material = match (member(jwk, "kty")?, crv) {
            ("RSA", _) => Material::Rsa {
                n: b64(jwk, "n")?,
                e: b64(jwk, "e")?,
            },
            ("EC", Some("P-256")) => Material::P256 {
                point: point(jwk, 32)?,
            },
            ("EC", Some("P-384")) => Material::P384 {
                point: point(jwk, 48)?,
            },
            ("OKP", Some("Ed25519")) => {
                let key = b64(jwk, "x")?;
                if key.len() != 32 {
                    return Err("an Ed25519 `x` must be 32 bytes".into());
                }
                Material::Ed25519 { key }
            }
            ("oct", _) => return Err("symmetric (`oct`) keys are not accepted".into()),
            (kty, crv) => {
                return Err(format!(
                    "key type {kty}{} is not supported (RSA, EC P-256 or P-384, OKP Ed25519)",
                    crv.map(|c| format!(" {c}")).unwrap_or_default()
                ));
            }
        };
        Ok(PublicKey(material))
    }

    /// The RSA modulus and exponent, for an RSA key.
    pub fn rsa(&self) -> Option<(&[u8], &[u8])> {
        match &self.0 {
            Material::Rsa { n, e } => Some((n, e)),
            _ => None,
        }
    }

    /// The 32 bytes of an Ed25519 key.
    pub fn ed25519(&self) -> Option<&[u8]> {
        match &self.0 {
            Material::Ed25519 { key } => Some(key),
            _ => None,
        }
    }

    /// The key type's name (`RSA`, `EC`, `OKP`).
    pub fn kty(&self) -> &'static str {
        match self.0 {
            Material::Rsa { .. } => "RSA",
            Material::P256 { .. } | Material::P384 { .. } => "EC",
            Material::Ed25519 { .. } => "OKP",
        }
    }

    /// Whether this key can verify signatures made with `alg`.
    pub fn fits(&self, alg: JwsAlg) -> bool {
        use JwsAlg as A;
        matches!(
            (&self.0, alg),
            (
                Material::Rsa { .. },
                A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512
            ) | (Material::P256 { .. }, A::ES256)
                | (Material::P384 { .. }, A::ES384)
                | (Material::Ed25519 { .. }, A::EdDSA)
        )
    }

    /// Verifies a JWS signature made with `alg` over `message` (false if the key does not fit;
    /// ring refuses RSA moduli under 2048 bits).
    pub fn verify(&self, alg: JwsAlg, message: &[u8], sig: &[u8]) -> bool {
        use JwsAlg as A;
        use ring::signature as s;
        let rsa = |params: &'static s::RsaParameters, n: &[u8], e: &[u8]| {
            s::RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .is_ok()
        };
        let unparsed = |params: &'static dyn s::VerificationAlgorithm, key: &[u8]| {
            s::UnparsedPublicKey::new(params, key)
                .verify(message, sig)
                .is_ok()
        };
        match (&self.0, alg) {
            (Material::Rsa { n, e }, A::RS256) => rsa(&s::RSA_PKCS1_2048_8192_SHA256, n, e),
            (Material::Rsa { n, e }, A::RS384) => rsa(&s::RSA_PKCS1_2048_8192_SHA384, n, e),
            (Material::Rsa { n, e }, A::RS512) => rsa(&s::RSA_PKCS1_2048_8192_SHA512, n, e),
            (Material::Rsa { n, e }, A::PS256) => rsa(&s::RSA_PSS_2048_8192_SHA256, n, e),
            (Material::Rsa { n, e }, A::PS384) => rsa(&s::RSA_PSS_2048_8192_SHA384, n, e),
            (Material::Rsa { n, e }, A::PS512) => rsa(&s::RSA_PSS_2048_8192_SHA512, n, e),
            (Material::P256 { point }, A::ES256) => unparsed(&s::ECDSA_P256_SHA256_FIXED, point),
            (Material::P384 { point }, A::ES384) => unparsed(&s::ECDSA_P384_SHA384_FIXED, point),
            (Material::Ed25519 { key }, A::EdDSA) => unparsed(&s::ED25519, key),
            _ => false,
        }
    }

    /// The RFC 7638 JWK SHA-256 thumbprint, base64url: the hash of the key's required members,
    /// in lexicographic order, without whitespace. DPoP binds tokens to it (`cnf.jkt`).
    pub fn thumbprint(&self) -> String {
        let e = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let json = match &self.0 {
            Material::Rsa { n, e: exp } => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, e(exp), e(n))
            }
            Material::P256 { point } | Material::P384 { point } => {
                let len = (point.len() - 1) / 2;
                let crv = if len == 32 { "P-256" } else { "P-384" };
                format!(
                    r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                    e(&point[1..1 + len]),
                    e(&point[1 + len..])
                )
            }
            Material::Ed25519 { key } => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, e(key))
            }
        };
        e(ring::digest::digest(&ring::digest::SHA256, json.as_bytes()).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(v: serde_json::Value) -> Jwk {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn rfc7638_3_1_thumbprint_of_the_rfcs_example_key() {
        let k = PublicKey::from_jwk(&jwk(serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        })))
        .unwrap();
        assert_eq!(
            k.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn rfc7517_private_and_symmetric_keys_are_refused() {
        let e = PublicKey::from_jwk(&jwk(
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}),
        ))
        .unwrap_err();
        assert!(e.contains("private key material"), "{e}");
        assert!(PublicKey::from_jwk(&jwk(serde_json::json!({"kty": "oct"}))).is_err());
        assert!(PublicKey::from_jwk(&jwk(serde_json::json!({"kty": 1}))).is_err());
    }

    #[test]
    fn a_key_fits_only_its_own_algorithm_family() {
        let p256 = PublicKey::from_jwk(&jwk(serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode([1u8; 32]), "y": URL_SAFE_NO_PAD.encode([2u8; 32])
        })))
        .unwrap();
        let fitting: Vec<JwsAlg> = JwsAlg::ALL.into_iter().filter(|a| p256.fits(*a)).collect();
        assert_eq!(fitting, [JwsAlg::ES256]);
        assert!(!p256.verify(JwsAlg::RS256, b"m", b"s"));
    }
}
