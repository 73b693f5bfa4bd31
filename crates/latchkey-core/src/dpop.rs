//! DPoP proofs (RFC 9449 section 4.3): the checks that make a proof valid for one HTTP
//! request, shared by the server (token endpoint, UserInfo, admin API) and by resource servers
//! (`latchkey-client`). What needs state is the caller's: that `jti` is used once
//! (section 11.1) and, where the server issues them, that `nonce` is one of its own (section 8).

use crate::jose::{JwsAlg, PublicKey};
use crate::jws;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The `typ` of a DPoP proof (section 4.2).
pub const PROOF_TYP: &str = "dpop+jwt";
/// The request header that carries a proof, and the `Authorization` scheme of a DPoP-bound
/// access token (section 7.1).
pub const HEADER: &str = "DPoP";
/// The response header that carries a server's nonce (section 8).
pub const NONCE_HEADER: &str = "DPoP-Nonce";
/// The longest `jti` accepted; a UUID or 128 random bits need far less.
pub const MAX_JTI_LEN: usize = 256;

/// The HTTP request a proof must be for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method, as sent (`POST`).
    pub method: &'a str,
    /// The target URI as the client addressed it; query and fragment are ignored.
    pub uri: &'a str,
    /// The access token the request presents, whose hash the proof must carry (`ath`).
    pub access_token: Option<&'a str>,
}

/// How old (and how far ahead of the verifier's clock) a proof's `iat` may be, in seconds
/// (section 11.1: a short window bounds the replay cache).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub max_age: i64,
    pub leeway: i64,
}

/// A valid proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the proof's key: what a token is bound to (`cnf.jkt`).
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    pub nonce: Option<String>,
}

/// Why a proof is not valid. The text is safe to send back (`error_description`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the DPoP proof is malformed: {0}")]
    Malformed(String),
    #[error("the DPoP proof's typ must be dpop+jwt")]
    WrongType,
    #[error("the DPoP proof's alg must be an asymmetric algorithm ({})", algs())]
    UnsupportedAlg,
    #[error("the DPoP proof's jwk is not a usable public key: {0}")]
    BadKey(String),
    #[error("the DPoP proof's signature does not verify with its jwk")]
    BadSignature,
    #[error("the DPoP proof's htm does not match the request's method")]
    WrongMethod,
    #[error("the DPoP proof's htu does not match the request's URI")]
    WrongUri,
    #[error("the DPoP proof's iat is too old or in the future")]
    Stale,
    #[error("the DPoP proof's ath does not match the access token")]
    WrongAccessTokenHash,
}

fn algs() -> String {
    JwsAlg::ALL.map(JwsAlg::as_str).join(" ")
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<serde_json::Number>,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

fn malformed(s: &str) -> ProofError {
    ProofError::Malformed(s.to_owned())
}

/// Checks a proof against the request it came with (section 4.3, items 2 to 9, 11 and 12).
pub fn verify(
    proof: &str,
    req: &Request<'_>,
    now: i64,
    window: Window,
) -> Result<Proof, ProofError> {
    let t = jws::parse(proof).map_err(|e| ProofError::Malformed(e.0.to_owned()))?;
    if !t
        .header
        .typ
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case(PROOF_TYP))
    {
        return Err(ProofError::WrongType);
    }
    let alg = JwsAlg::parse(&t.header.alg).ok_or(ProofError::UnsupportedAlg)?;
    let jwk = t
        .header
        .jwk
        .as_ref()
        .ok_or_else(|| malformed("the header has no jwk"))?;
    let key = PublicKey::from_jwk(jwk).map_err(ProofError::BadKey)?;
    if !key.fits(alg) {
        return Err(ProofError::BadKey(format!(
            "a {} key cannot sign {alg}",
            key.kty()
        )));
    }
    if !key.verify(alg, t.signing_input.as_bytes(), &t.signature) {
        return Err(ProofError::BadSignature);
    }
    let c: Claims = serde_json::from_slice(&t.payload)
        .map_err(|_| malformed("the claims are not a JSON object"))?;
    let jti = c
        .jti
        .filter(|j| !j.is_empty())
        .ok_or_else(|| malformed("jti is missing"))?;
    if jti.len() > MAX_JTI_LEN {
        return Err(malformed("jti is too long"));
    }
    let htm = c.htm.ok_or_else(|| malformed("htm is missing"))?;
    let htu = c.htu.ok_or_else(|| malformed("htu is missing"))?;
    let iat = c
        .iat
        .and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)))
        .ok_or_else(|| malformed("iat is missing or not a number"))?;
    if htm != req.method {
        return Err(ProofError::WrongMethod);
    }
    if !same_uri(&htu, req.uri) {
        return Err(ProofError::WrongUri);
    }
    if iat < now.saturating_sub(window.max_age) || iat > now.saturating_add(window.leeway) {
        return Err(ProofError::Stale);
    }
    match (req.access_token, c.ath.as_deref()) {
        (None, _) => {}
        (Some(token), Some(ath)) if ath == access_token_hash(token) => {}
        (Some(_), _) => return Err(ProofError::WrongAccessTokenHash),
    }
    Ok(Proof {
        jkt: key.thumbprint(),
        jti,
        iat,
        nonce: c.nonce,
    })
}

/// `ath` (section 4.2): base64url of the SHA-256 of the access token's ASCII.
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        access_token.as_bytes(),
    ))
}

/// Section 4.3 item 9: `htu` and the request's URI compare without query and fragment, after
/// RFC 3986 section 6.2.2 and 6.2.3 normalisation (scheme and host case, the default port, an
/// empty path).
pub fn same_uri(a: &str, b: &str) -> bool {
    matches!((normalise(a), normalise(b)), (Some(a), Some(b)) if a == b)
}

fn normalise(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let authority = authority.strip_suffix(default).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}{path}"))
}

/// The token in an `Authorization: DPoP <token>` header value (section 7.1).
pub fn dpop_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case(HEADER) && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    struct Signer(EcdsaKeyPair);

    impl Signer {
        fn new() -> Signer {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            Signer(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap(),
            )
        }

        fn jwk(&self) -> serde_json::Value {
            let p = self.0.public_key().as_ref();
            serde_json::json!({"kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..])})
        }

        fn sign(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let sig = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }

        fn proof(&self, claims: serde_json::Value) -> String {
            self.sign(
                serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()}),
                claims,
            )
        }
    }

    const W: Window = Window {
        max_age: 60,
        leeway: 5,
    };
    const TOKEN_EP: Request<'static> = Request {
        method: "POST",
        uri: "https://id.example/token",
        access_token: None,
    };

    fn claims(iat: i64) -> serde_json::Value {
        serde_json::json!({"jti": "j1", "htm": "POST", "htu": "https://id.example/token", "iat": iat})
    }

    #[test]
    fn a_valid_proof_gives_its_keys_thumbprint() {
        let s = Signer::new();
        let p = verify(&s.proof(claims(1000)), &TOKEN_EP, 1000, W).unwrap();
        let key = PublicKey::from_jwk(s.jwk().as_object().unwrap()).unwrap();
        assert_eq!(p.jkt, key.thumbprint());
        assert_eq!((p.jti.as_str(), p.iat), ("j1", 1000));
    }

    #[test]
    fn rfc9449_4_3_proof_must_be_typed_dpop_jwt() {
        let s = Signer::new();
        let t = s.sign(
            serde_json::json!({"typ": "JWT", "alg": "ES256", "jwk": s.jwk()}),
            claims(1000),
        );
        assert_eq!(verify(&t, &TOKEN_EP, 1000, W), Err(ProofError::WrongType));
    }

    #[test]
    fn rfc9449_4_3_symmetric_and_none_algorithms_are_refused() {
        let s = Signer::new();
        for alg in ["none", "HS256"] {
            let t = s.sign(
                serde_json::json!({"typ": "dpop+jwt", "alg": alg, "jwk": s.jwk()}),
                claims(1000),
            );
            assert_eq!(
                verify(&t, &TOKEN_EP, 1000, W),
                Err(ProofError::UnsupportedAlg)
            );
        }
    }

    #[test]
    fn rfc9449_4_3_private_key_in_the_header_is_refused() {
        let s = Signer::new();
        let mut jwk = s.jwk();
        jwk["d"] = "AAAA".into();
        let t = s.sign(
            serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}),
            claims(1000),
        );
        assert!(matches!(
            verify(&t, &TOKEN_EP, 1000, W),
            Err(ProofError::BadKey(_))
        ));
    }

    #[test]
    fn rfc9449_4_3_signature_must_verify_with_the_header_key() {
        let (s, other) = (Signer::new(), Signer::new());
        let t = other.sign(
            serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": s.jwk()}),
            claims(1000),
        );
        assert_eq!(
            verify(&t, &TOKEN_EP, 1000, W),
            Err(ProofError::BadSignature)
        );
    }

    #[test]
    fn rfc9449_4_3_method_and_uri_must_match_the_request() {
        let s = Signer::new();
        let mut c = claims(1000);
        c["htm"] = "GET".into();
        assert_eq!(
            verify(&s.proof(c), &TOKEN_EP, 1000, W),
            Err(ProofError::WrongMethod)
        );
        let mut c = claims(1000);
        c["htu"] = "https://id.example/userinfo".into();
        assert_eq!(
            verify(&s.proof(c), &TOKEN_EP, 1000, W),
            Err(ProofError::WrongUri)
        );
        let mut c = claims(1000);
        c["htu"] = "HTTPS://ID.example:443/token?x=1#f".into();
        assert!(verify(&s.proof(c), &TOKEN_EP, 1000, W).is_ok());
    }

    #[test]
    fn rfc9449_11_1_proof_iat_must_be_recent() {
        let s = Signer::new();
        assert_eq!(
            verify(&s.proof(claims(900)), &TOKEN_EP, 1000, W),
            Err(ProofError::Stale)
        );
        assert_eq!(
            verify(&s.proof(claims(1006)), &TOKEN_EP, 1000, W),
            Err(ProofError::Stale)
        );
        assert!(verify(&s.proof(claims(940)), &TOKEN_EP, 1000, W).is_ok());
    }

    #[test]
    fn rfc9449_4_3_ath_must_hash_the_presented_access_token() {
        let s = Signer::new();
        let req = Request {
            method: "GET",
            uri: "https://rs.example/x",
            access_token: Some("tok"),
        };
        let mut c = serde_json::json!({"jti": "j", "htm": "GET", "htu": "https://rs.example/x", "iat": 1000});
        assert_eq!(
            verify(&s.proof(c.clone()), &req, 1000, W),
            Err(ProofError::WrongAccessTokenHash)
        );
        c["ath"] = access_token_hash("other").into();
        assert_eq!(
            verify(&s.proof(c.clone()), &req, 1000, W),
            Err(ProofError::WrongAccessTokenHash)
        );
        c["ath"] = access_token_hash("tok").into();
        assert!(verify(&s.proof(c), &req, 1000, W).is_ok());
    }

    #[test]
    fn rfc9449_7_1_dpop_authorization_scheme() {
        assert_eq!(dpop_token("DPoP abc"), Some("abc"));
        assert_eq!(dpop_token("dpop abc"), Some("abc"));
        assert_eq!(dpop_token("Bearer abc"), None);
        assert_eq!(dpop_token("DPoP "), None);
    }
}
