//! Public keys as JWKs (RFC 7517, RFC 7518 section 6, RFC 8037) with RFC 7638 thumbprints.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::SigningAlg;
use serde::{Deserialize, Serialize};

/// The public half of a signing key, in the form a JWKS publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b
        .iter()
        .position(|&x| x != 0)
        .unwrap_or(b.len().saturating_sub(1));
    &b[first..]
}

impl PublicJwk {
    /// Builds the JWK for raw public key material; the `kid` is the RFC 7638 thumbprint.
    pub fn new(alg: SigningAlg, material: &PublicMaterial) -> PublicJwk {
        let mut jwk = match (alg, material) {
            (_, PublicMaterial::Rsa { n, e }) => PublicJwk {
                kty: "RSA".into(),
                n: Some(b64(strip_zeros(n))),
                e: Some(b64(strip_zeros(e))),
                ..PublicJwk::empty(alg)
            },
            (_, PublicMaterial::P256 { point }) => {
                // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
                let (x, y) = if point.len() == 65 {
                    (&point[1..33], &point[33..65])
                } else {
                    (&point[..0], &point[..0])
                };
                PublicJwk {
                    kty: "EC".into(),
                    crv: Some("P-256".into()),
                    x: Some(b64(x)),
                    y: Some(b64(y)),
                    ..PublicJwk::empty(alg)
                }
            }
            (_, PublicMaterial::Ed25519 { key }) => PublicJwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(b64(key)),
                ..PublicJwk::empty(alg)
            },
        };
        jwk.kid = jwk.thumbprint();
        jwk
    }

    fn empty(alg: SigningAlg) -> PublicJwk {
        PublicJwk {
            kty: String::new(),
            kid: String::new(),
            alg: alg.as_str().into(),
            use_: "sig".into(),
            crv: None,
            n: None,
            e: None,
            x: None,
            y: None,
        }
    }

    /// RFC 7638 JWK thumbprint (SHA-256) over the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        let s = |o: &Option<String>| o.clone().unwrap_or_default();
        let canonical = match self.kty.as_str() {
            "RSA" => serde_json::json!({"e": s(&self.e), "kty": "RSA", "n": s(&self.n)}),
            "EC" => {
                serde_json::json!({"crv": s(&self.crv), "kty": "EC", "x": s(&self.x), "y": s(&self.y)})
            }
            _ => serde_json::json!({"crv": s(&self.crv), "kty": self.kty, "x": s(&self.x)}),
        };
        // serde_json's map is ordered by key, which is exactly RFC 7638's lexicographic order.
        let bytes = canonical.to_string();
        b64(ring::digest::digest(&ring::digest::SHA256, bytes.as_bytes()).as_ref())
    }

    /// The raw public key ring verifies with.
    pub fn material(&self) -> Option<PublicMaterial> {
        let d = |o: &Option<String>| o.as_ref().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => Some(PublicMaterial::Rsa {
                n: d(&self.n)?,
                e: d(&self.e)?,
            }),
            ("EC", Some("P-256")) => {
                let (x, y) = (d(&self.x)?, d(&self.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Some(PublicMaterial::P256 { point })
            }
            ("OKP", Some("Ed25519")) => Some(PublicMaterial::Ed25519 { key: d(&self.x)? }),
            _ => None,
        }
    }
}

/// Raw public key bytes per key type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicMaterial {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { point: Vec<u8> },
    Ed25519 { key: Vec<u8> },
}

impl PublicMaterial {
    /// Verifies a JWS signature made with `alg` over `message`.
    pub fn verify(&self, alg: SigningAlg, message: &[u8], sig: &[u8]) -> bool {
        use ring::signature as s;
        match (alg, self) {
            (SigningAlg::RS256, PublicMaterial::Rsa { n, e }) => s::RsaPublicKeyComponents { n, e }
                .verify(&s::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            (SigningAlg::ES256, PublicMaterial::P256 { point }) => {
                s::UnparsedPublicKey::new(&s::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            (SigningAlg::EdDSA, PublicMaterial::Ed25519 { key }) => {
                s::UnparsedPublicKey::new(&s::ED25519, key)
                    .verify(message, sig)
                    .is_ok()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 section 3.1's example key and thumbprint.
    #[test]
    fn rfc7638_3_1_thumbprint_example() {
        let jwk = PublicJwk {
            kty: "RSA".into(),
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
            ..PublicJwk::empty(SigningAlg::RS256)
        };
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
