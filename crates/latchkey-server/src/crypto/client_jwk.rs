//! A client's own public keys (RFC 7517 JWK Set), which it signs its `private_key_jwt`
//! assertions with (RFC 7523, OIDC Core section 9). Unlike Latchkey's own keys, a client's
//! keys may leave out `kid` and `alg`: the algorithm then comes from the assertion's header,
//! and must fit the key's type (an RSA key never verifies an `ES256` signature). A JWK Set
//! that holds private key material is refused outright: the client's private key has leaked
//! into its registration.

use serde::Deserialize;

/// The largest JWK Set document a client may register or serve (64 KiB).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// At most this many keys in a client's set.
pub const MAX_KEYS: usize = 20;

/// The JWS algorithms a client may sign its assertions with: asymmetric only (RFC 7518).
/// `none` and the HMAC algorithms are never accepted.
pub use latchkey_core::jose::JwsAlg as AssertionAlg;
use latchkey_core::jose::{PRIVATE_MEMBERS, PublicKey};

/// One usable public key of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    pub kid: Option<String>,
    /// The key's own `alg`, when its JWK names one: the assertion must then use exactly it.
    pub alg: Option<AssertionAlg>,
    key: PublicKey,
}

impl ClientKey {
    /// Whether this key can verify signatures made with `alg`.
    pub fn fits(&self, alg: AssertionAlg) -> bool {
        self.alg.is_none_or(|own| own == alg) && self.key.fits(alg)
    }

    /// Verifies a JWS signature made with `alg` over `message` (false if the key does not fit).
    pub fn verify(&self, alg: AssertionAlg, message: &[u8], sig: &[u8]) -> bool {
        self.fits(alg) && self.key.verify(alg, message, sig)
    }
}

/// Why a client's JWK Set cannot be registered (or used, when fetched from its `jwks_uri`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwksError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, JwksError> {
    Err(JwksError(m.into()))
}

/// A client's usable signing keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientJwks {
    keys: Vec<ClientKey>,
}

impl ClientJwks {
    /// Parses a client's JWK Set as registered. Keys meant for encryption (`use` other than `sig`,
    /// `key_ops` without `verify`) or of a type Latchkey cannot verify are left out; a set
    /// with private members, more than [`MAX_KEYS`] keys, or no usable key is refused.
    pub fn parse(json: &[u8]) -> Result<ClientJwks, JwksError> {
        let set = ClientJwks::parse_fetched(json)?;
        if set.keys.is_empty() {
            return err(
                "the JWK Set has no key Latchkey can verify signatures with (RSA of 2048 bits \
                 or more, EC P-256 or P-384, or Ed25519, with `use` sig)",
            );
        }
        Ok(set)
    }

    /// [`ClientJwks::parse`] for a document fetched from a client's `jwks_uri`, where a set
    /// without usable keys is an answer (the client withdrew its keys), not an error.
    pub fn parse_fetched(json: &[u8]) -> Result<ClientJwks, JwksError> {
        if json.len() > MAX_JWKS_BYTES {
            return err(format!(
                "the JWK Set is larger than {} KiB",
                MAX_JWKS_BYTES / 1024
            ));
        }
        #[derive(Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Map<String, serde_json::Value>>,
        }
        let doc: Doc = serde_json::from_slice(json).or_else(|e| {
            err(format!(
                "not a JWK Set (a JSON object with a `keys` array, RFC 7517 section 5): {e}"
            ))
        })?;
        if doc.keys.len() > MAX_KEYS {
            return err(format!("a JWK Set may hold at most {MAX_KEYS} keys"));
        }
        let mut keys = Vec::new();
        for (i, member) in doc.keys.into_iter().enumerate() {
            if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| member.contains_key(**m)) {
                return err(format!(
                    "key {i} holds private key material (`{m}`): register only public keys, \
                     and replace this key pair, whose private half has been shared"
                ));
            }
            if let Some(key) = parse_key(&member).map_err(|m| JwksError(format!("key {i}: {m}")))? {
                keys.push(key);
            }
        }
        Ok(ClientJwks { keys })
    }

    /// The keys that may have signed a JWS whose header names `kid` (if any) and `alg`.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: AssertionAlg,
    ) -> impl Iterator<Item = &'a ClientKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)) && k.fits(alg))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// An RSA public key as NIST SP 800-56B and RFC 7518 section 3.3 allow it: a modulus of 2048
/// to 4096 bits that is odd and not prime (a prime modulus gives away the private exponent),
/// and an odd public exponent of at least 65537 and below 2^256. The primality check is one
/// Miller-Rabin round to base 2 (a real modulus fails it; a prime always passes): one modular
/// exponentiation, so a fetched set of large keys cannot stall the server.
fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), String> {
    use num_bigint_dig::BigUint;
    let n = BigUint::from_bytes_be(n);
    let e = BigUint::from_bytes_be(e);
    let bits = n.bits();
    if !(2048..=4096).contains(&bits) {
        return Err(format!(
            "RSA keys must have 2048 to 4096 bits (this one has {bits})"
        ));
    }
    let one = BigUint::from(1u32);
    if (&n & &one) != one || num_bigint_dig::prime::probably_prime_miller_rabin(&n, 1, true) {
        return Err("the RSA modulus `n` is not the product of two primes".into());
    }
    if (&e & &one) != one || e < BigUint::from(65_537u32) || e.bits() > 256 {
        return Err("the RSA exponent `e` must be odd, at least 65537 and below 2^256".into());
    }
    Ok(())
}

fn text<'a>(jwk: &'a Jwk, name: &str) -> Result<Option<&'a str>, String> {
    match jwk.get(name) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{name}` must be a string")),
    }
}

type Jwk = serde_json::Map<String, serde_json::Value>;

/// One key of a client's set. `Ok(None)`: a key that is not for signatures, which the set may
/// hold beside them.
fn parse_key(jwk: &Jwk) -> Result<Option<ClientKey>, String> {
    let key_ops_verify = match jwk.get("key_ops") {
        None => true,
        Some(serde_json::Value::Array(ops)) => ops.iter().any(|o| o.as_str() == Some("verify")),
        Some(_) => return Err("`key_ops` must be an array".into()),
    };
    if text(jwk, "use")?.is_some_and(|u| u != "sig") || !key_ops_verify {
        return Ok(None);
    }
    let alg = match text(jwk, "alg")? {
        None => None,
        Some(a) => Some(AssertionAlg::parse(a).ok_or_else(|| {
            format!(
                "`alg` {a} is not an asymmetric signature algorithm Latchkey verifies ({})",
                AssertionAlg::ALL.map(AssertionAlg::as_str).join(", ")
            )
        })?),
    };
    let key = PublicKey::from_jwk(jwk)?;
    if let Some((n, e)) = key.rsa() {
        check_rsa(n, e)?;
    }
    if let Some(x) = key.ed25519() {
        let bytes = <[u8; 32]>::try_from(x).map_err(|_| "an Ed25519 `x` must be 32 bytes")?;
        // A point off the curve never verifies; one of small order (the identity among
        // them) verifies signatures anyone can make.
        match curve25519_dalek::edwards::CompressedEdwardsY(bytes).decompress() {
            Some(p) if !p.is_small_order() => {}
            _ => return Err("the Ed25519 `x` is not a usable public key".into()),
        }
    }
    let kid = text(jwk, "kid")?.map(str::to_owned);
    let key = ClientKey { kid, alg, key };
    if let Some(a) = alg
        && !key.fits(a)
    {
        return Err(format!("`alg` {a} does not fit a {} key", key.key.kty()));
    }
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use latchkey_core::SigningAlg;

    fn jwks_of(k: &SigningKey) -> String {
        serde_json::json!({"keys": [k.jwk]}).to_string()
    }

    #[test]
    fn rfc7517_private_key_material_is_refused() {
        let k = SigningKey::generate(SigningAlg::ES256).unwrap().0;
        let mut jwk = serde_json::to_value(&k.jwk).unwrap();
        jwk["d"] = "AAAA".into();
        let doc = serde_json::json!({"keys": [jwk]}).to_string();
        let e = ClientJwks::parse(doc.as_bytes()).unwrap_err();
        assert!(e.0.contains("private key material"), "{e}");
    }

    #[test]
    fn rfc7518_symmetric_keys_are_refused() {
        let doc = r#"{"keys":[{"kty":"oct","alg":"HS256"}]}"#;
        assert!(ClientJwks::parse(doc.as_bytes()).is_err());
    }

    #[test]
    fn a_key_verifies_only_its_own_algorithm_family() {
        for alg in SigningAlg::ALL {
            let k = SigningKey::generate(alg).unwrap().0;
            let set = ClientJwks::parse(jwks_of(&k).as_bytes()).unwrap();
            let sig = k.sign(b"m");
            let own = AssertionAlg::parse(alg.as_str()).unwrap();
            let key = set.candidates(Some(k.kid()), own).next().unwrap();
            assert!(key.verify(own, b"m", &sig));
            assert!(!key.verify(own, b"other", &sig));
            for other in AssertionAlg::ALL.into_iter().filter(|a| *a != own) {
                assert!(!key.verify(other, b"m", &sig), "{alg} key under {other}");
            }
        }
    }

    #[test]
    fn keys_without_kid_or_alg_are_usable_and_encryption_keys_are_skipped() {
        let k = SigningKey::generate(SigningAlg::ES256).unwrap().0;
        let mut jwk = serde_json::to_value(&k.jwk).unwrap();
        jwk.as_object_mut().unwrap().remove("kid");
        jwk.as_object_mut().unwrap().remove("alg");
        let mut enc = jwk.clone();
        enc["use"] = "enc".into();
        let doc = serde_json::json!({"keys": [enc, jwk]}).to_string();
        let set = ClientJwks::parse(doc.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.candidates(None, AssertionAlg::ES256).count(), 1);
        assert_eq!(set.candidates(Some("x"), AssertionAlg::ES256).count(), 0);
        assert_eq!(set.candidates(None, AssertionAlg::RS256).count(), 0);
    }

    #[test]
    fn degenerate_keys_anyone_could_sign_for_are_refused() {
        // The Ed25519 identity point: R = identity, S = 0 verifies any message.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let doc = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(identity)}]});
        assert!(ClientJwks::parse(doc.to_string().as_bytes()).is_err());
        // A prime modulus (2^2203 - 1, a Mersenne prime): its private exponent is public.
        // Real moduli pass, at every size allowed.
        let mut n = vec![0x07u8];
        n.extend(std::iter::repeat_n(0xffu8, 275));
        let doc = serde_json::json!({"keys": [{"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"}]});
        let e = ClientJwks::parse(doc.to_string().as_bytes()).unwrap_err();
        assert!(e.0.contains("product of two primes"), "{e}");
        let k = SigningKey::generate(SigningAlg::RS256).unwrap().0;
        assert!(ClientJwks::parse(jwks_of(&k).as_bytes()).is_ok());
        // e = 1, or even.
        let k = SigningKey::generate(SigningAlg::RS256).unwrap().0;
        for bad_e in ["AQ", "AQAA"] {
            let mut jwk = serde_json::to_value(&k.jwk).unwrap();
            jwk["e"] = bad_e.into();
            let doc = serde_json::json!({"keys": [jwk]}).to_string();
            assert!(ClientJwks::parse(doc.as_bytes()).is_err(), "e = {bad_e}");
        }
    }

    #[test]
    fn short_rsa_keys_and_empty_sets_are_refused() {
        let short = serde_json::json!({"keys": [{"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xffu8; 128]), "e": "AQAB"}]});
        assert!(ClientJwks::parse(short.to_string().as_bytes()).is_err());
        assert!(ClientJwks::parse(br#"{"keys":[]}"#).is_err());
        // Fetched from a jwks_uri, an empty set is the client withdrawing its keys.
        assert!(
            ClientJwks::parse_fetched(br#"{"keys":[]}"#)
                .unwrap()
                .is_empty()
        );
        assert!(ClientJwks::parse(b"[]").is_err());
    }
}
