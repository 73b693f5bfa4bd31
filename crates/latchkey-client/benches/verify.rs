//! Verification per core for ES256, RS256 and EdDSA access tokens, next to ring's raw verify
#![allow(clippy::expect_used, reason = "benchmark setup fails loudly")]
//! rate measured in the same run on the same signatures. `cargo bench -p latchkey-client`.
//! The crate's number includes parsing, the key lookup, the claim checks and grant mapping.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use latchkey_client::{SigningAlg, Verifier, VerifierOptions};
use latchkey_server::crypto::{SigningKey, jwt};
use ring::signature as s;

const ISSUER: &str = "https://id.lab.example";

fn token(key: &SigningKey, now: i64) -> String {
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "01a22021-5bda-76b2-90d0-f73b9021c713", "aud": "lk_invoices",
        "exp": now + 3600, "iat": now, "jti": "i69GCaZLvBa2YioOMskeew", "client_id": "lk_invoices",
        "scope": "openid email", "auth_time": now, "acr": "pwd", "amr": ["pwd"],
        "sid": "Pp-NIAuREXSwdFcKtVOZJw", "gid": "n7Xw1bQ9tDkz3cYH2m0Pqg", "lab": "01a22021-5b82-7013-a306-cc8ce1f2a21d",
        "roles": ["approver"], "features": ["orders:read"]
    });
    jwt::encode(key, "at+jwt", &claims)
}

fn bench(c: &mut Criterion) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for alg in [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::EdDSA] {
        let (key, _) = SigningKey::generate(alg).expect("key");
        let jwks = serde_json::json!({ "keys": [key.jwk] }).to_string();
        let verifier = Verifier::from_jwks(
            VerifierOptions::new(ISSUER, "lk_invoices").lab("01a22021-5b82-7013-a306-cc8ce1f2a21d"),
            jwks.as_bytes(),
        )
        .expect("verifier");
        let t = token(&key, now);
        assert!(
            verifier
                .verify_access_token_cached(&t, now)
                .expect("valid")
                .allows("orders:read")
        );

        let mut g = c.benchmark_group(alg.as_str());
        g.bench_function("latchkey-client", |b| {
            b.iter(|| {
                verifier
                    .verify_access_token_cached(black_box(&t), now)
                    .is_ok()
            })
        });
        // Raw ring: only the signature check, over the same bytes.
        let (input, sig_b64) = t.rsplit_once('.').expect("jws");
        use base64::Engine;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig_b64)
            .expect("sig");
        let m = key.jwk.material().expect("material");
        g.bench_function("ring raw verify", |b| {
            b.iter(|| match &m {
                latchkey_server::crypto::jwk::PublicMaterial::Rsa { n, e } => {
                    s::RsaPublicKeyComponents { n, e }
                        .verify(
                            &s::RSA_PKCS1_2048_8192_SHA256,
                            black_box(input.as_bytes()),
                            &sig,
                        )
                        .is_ok()
                }
                latchkey_server::crypto::jwk::PublicMaterial::P256 { point } => {
                    s::UnparsedPublicKey::new(&s::ECDSA_P256_SHA256_FIXED, point)
                        .verify(black_box(input.as_bytes()), &sig)
                        .is_ok()
                }
                latchkey_server::crypto::jwk::PublicMaterial::Ed25519 { key } => {
                    s::UnparsedPublicKey::new(&s::ED25519, key)
                        .verify(black_box(input.as_bytes()), &sig)
                        .is_ok()
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
