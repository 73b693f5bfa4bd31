//! Instruction count of one verification, for `valgrind --tool=callgrind` (deterministic,
//! unlike wall-clock timings on a shared machine). See docs/benchmarks.md.
//!
//! ```sh
//! cargo build --release -p latchkey-client --example verify_cost
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/verify_cost ES256
//! callgrind_annotate --inclusive=yes cg.out | grep -E 'verify_access_token_cached|VerificationKey::verify'
//! ```
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "measurement harness"
)]
use latchkey_client::{SigningAlg, Verifier, VerifierOptions};
use latchkey_server::crypto::{SigningKey, jwt};
fn main() {
    let now = 1_800_000_000i64;
    let alg: SigningAlg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ES256".into())
        .parse()
        .expect("ES256, RS256 or EdDSA");
    let (key, _) = SigningKey::generate(alg).unwrap();
    let jwks = serde_json::json!({ "keys": [key.jwk] }).to_string();
    let v = Verifier::from_jwks(
        VerifierOptions::new("https://id.lab.example", "lk_invoices")
            .lab("01a22021-5b82-7013-a306-cc8ce1f2a21d"),
        jwks.as_bytes(),
    )
    .unwrap();
    let claims = serde_json::json!({
        "iss": "https://id.lab.example", "sub": "01a22021-5bda-76b2-90d0-f73b9021c713", "aud": "lk_invoices",
        "exp": now + 3600, "iat": now, "jti": "i69GCaZLvBa2YioOMskeew", "client_id": "lk_invoices",
        "scope": "openid email", "auth_time": now, "acr": "pwd", "amr": ["pwd"],
        "sid": "Pp-NIAuREXSwdFcKtVOZJw", "gid": "n7Xw1bQ9tDkz3cYH2m0Pqg", "lab": "01a22021-5b82-7013-a306-cc8ce1f2a21d",
        "roles": ["approver"], "features": ["orders:read"]
    });
    let t = jwt::encode(&key, "at+jwt", &claims);
    let mut ok = 0;
    for _ in 0..3000 {
        if v.verify_access_token_cached(&t, now).is_ok() {
            ok += 1;
        }
    }
    println!("{alg}: {ok} of 3000 verified");
}
