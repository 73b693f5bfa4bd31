//! Test issuer: an ES256 key made with ring, its JWKS, and compact JWS signed with it.

use crate::{Verifier, VerifierOptions};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://id.lab.example";
pub const CLIENT_ID: &str = "lk_orders";
pub const BACKCHANNEL_LOGOUT: &str = "http://schemas.openid.net/event/backchannel-logout";

pub struct TestIssuer {
    pub kid: String,
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl TestIssuer {
    pub fn new(kid: &str) -> TestIssuer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        TestIssuer {
            kid: kid.to_owned(),
            key,
            rng,
        }
    }

    /// The public key as Latchkey publishes it.
    pub fn jwk(&self) -> Value {
        let point = self.key.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    pub fn jwks(&self) -> Vec<u8> {
        json!({ "keys": [self.jwk()] }).to_string().into_bytes()
    }

    /// A verifier for [`CLIENT_ID`] that trusts this key and serves one lab only (so that a
    /// test shows lab checks do not apply to logout tokens).
    pub fn verifier(&self) -> Verifier {
        Verifier::from_jwks(
            VerifierOptions::new(ISSUER, CLIENT_ID).lab("lab-a"),
            &self.jwks(),
        )
        .unwrap()
    }

    /// Signs `claims` under exactly `header`.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.key.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// Signs `claims` with ES256, this key's `kid` and `typ` when given.
    pub fn sign(&self, typ: Option<&str>, claims: &Value) -> String {
        let mut header = json!({ "alg": "ES256", "kid": self.kid });
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        self.sign_with_header(&header, claims)
    }

    /// A user's access token (RFC 9068) for [`CLIENT_ID`] in `lab-a`, password only, with
    /// claims changed by `edit`.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub fn access_token(&self, edit: impl FnOnce(&mut Value)) -> String {
        let now = now();
        let mut claims = json!({
            "iss": ISSUER,
            "sub": "01a22021-5bda-76b2-90d0-f73b9021c713",
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "jti": "at-1",
            "client_id": CLIENT_ID,
            "scope": "openid email",
            "auth_time": now,
            "acr": "pwd",
            "amr": ["pwd"],
            "sid": "Pp-NIAuREXSwdFcKtVOZJw",
            "gid": "g-1",
            "lab": "lab-a",
        });
        edit(&mut claims);
        self.sign(Some("at+jwt"), &claims)
    }

    /// A logout token as Latchkey sends it, with claims changed by `edit`.
    pub fn logout_token(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = logout_claims();
        edit(&mut claims);
        self.sign(Some("logout+jwt"), &claims)
    }
}

pub fn now() -> i64 {
    crate::verifier::now_unix()
}

/// The claims of section 2.4 as Latchkey fills them: both `sub` and `sid`, a fresh `jti`.
pub fn logout_claims() -> Value {
    let now = now();
    let mut jti = [0u8; 16];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut jti).unwrap();
    json!({
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 120,
        "jti": URL_SAFE_NO_PAD.encode(jti),
        "sub": "01a22021-5bda-76b2-90d0-f73b9021c713",
        "sid": "Pp-NIAuREXSwdFcKtVOZJw",
        "events": { BACKCHANNEL_LOGOUT: {} },
    })
}
