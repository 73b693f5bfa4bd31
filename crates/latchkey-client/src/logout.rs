//! Logout tokens at a relying party (OpenID Connect Back-Channel Logout 1.0). Latchkey POSTs
//! one to each client's `backchannel_logout_uri` when a session ends; section 2.6 says how the
//! receiver validates it, and [`Verifier::verify_logout_token`] does each step: the signature
//! as for any Latchkey token, explicit typing (`typ: logout+jwt`, section 2.4 and RFC 8725
//! section 3.11, so that an ID token or access token cannot be replayed as a logout token),
//! `iss`, `aud`, `iat` and `exp` as for ID tokens, the back-channel logout event, no `nonce`,
//! `sub` or `sid`, and each `jti` accepted once.
//!
//! The `jti`s are remembered in memory until their token expires (at most
//! [`VerifierOptions::logout_replay_capacity`](crate::VerifierOptions::logout_replay_capacity)
//! at once, failing closed past it). Several instances of one service each keep their own: a
//! logout token replayed to another instance is accepted there, which only ends a session that
//! is already ended.

use crate::error::VerifyError;
use crate::replay::{Seen, fingerprint};
use crate::verifier::{Verifier, check_signature, now_unix, one_or_many, typ_is};
use latchkey_core::jws;
use serde::{Deserialize, Deserializer};

/// The event member that makes a JWT a logout token (section 2.4).
const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A verified logout token: end the sessions it names. Latchkey always sends both `sub` (the
/// user) and `sid` (the `sid` of the ID tokens of the ended session); a token from another
/// issuer may carry only one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    /// The user whose sessions end (all of them, when `sid` is absent).
    pub sub: Option<String>,
    /// The issuer's session that ended, as in the ID tokens' `sid`.
    pub sid: Option<String>,
    /// The token's unique id (already checked unused by this verifier).
    pub jti: String,
    /// When the token was issued (Unix seconds).
    pub iat: i64,
}

#[derive(Deserialize)]
struct LogoutClaims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    aud: Vec<String>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    events: Option<serde_json::Value>,
    /// Whether the claim is there at all (`"nonce": null` counts).
    #[serde(default, deserialize_with = "present")]
    nonce: bool,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d)?;
    Ok(true)
}

fn not_a_logout_token(why: &str) -> VerifyError {
    VerifyError::NotALogoutToken(why.to_owned())
}

impl Verifier {
    /// Verifies a logout token (OpenID Connect Back-Channel Logout 1.0 section 2.6) sent to
    /// this service's `backchannel_logout_uri`, and spends its `jti`: the same token is
    /// refused ([`VerifyError::Replayed`]) for as long as it is valid. The signature is
    /// checked with the issuer's keys like an ID token's (the algorithm from the JWK; an
    /// unknown `kid` refetches the key set once), the audience is this service's client id,
    /// and the verifier's labs do not matter (a logout token names no lab).
    pub async fn verify_logout_token(&self, token: &str) -> Result<LogoutToken, VerifyError> {
        let parsed = jws::parse(token).map_err(|e| VerifyError::Malformed(e.0.into()))?;
        let key = self.signing_key(&parsed).await?;
        check_signature(&parsed, &key)?;
        self.check_logout(&parsed, now_unix())
    }

    /// Section 2.6 steps 3 to 8, on a token whose signature is verified.
    fn check_logout(&self, t: &jws::Compact<'_>, now: i64) -> Result<LogoutToken, VerifyError> {
        // Section 2.4 / RFC 8725 3.11: explicit typing keeps every other JWT of the issuer out.
        if !typ_is(t.header.typ.as_deref(), "logout+jwt") {
            return Err(VerifyError::WrongType {
                expected: "logout+jwt logout token",
            });
        }
        let c: LogoutClaims = serde_json::from_slice(&t.payload)
            .map_err(|e| VerifyError::Malformed(format!("claims: {e}")))?;
        let opts = self.options();
        if c.iss.as_deref() != Some(opts.issuer.as_str()) {
            return Err(VerifyError::WrongIssuer);
        }
        if !c.aud.contains(&opts.audience) {
            return Err(VerifyError::WrongAudience);
        }
        let leeway = opts.leeway.as_secs() as i64;
        let exp = c
            .exp
            .ok_or_else(|| VerifyError::Malformed("logout token without exp".into()))?;
        if exp <= now - leeway {
            return Err(VerifyError::Expired);
        }
        let iat = c
            .iat
            .ok_or_else(|| VerifyError::Malformed("logout token without iat".into()))?;
        if iat > now + leeway || c.nbf.is_some_and(|n| n > now + leeway) {
            return Err(VerifyError::NotYetValid);
        }
        let Some(events) = c.events.as_ref().and_then(serde_json::Value::as_object) else {
            return Err(not_a_logout_token("it has no events object"));
        };
        match events.get(BACKCHANNEL_LOGOUT_EVENT) {
            Some(serde_json::Value::Object(_)) => {}
            Some(_) => {
                return Err(not_a_logout_token(
                    "its back-channel logout event is not a JSON object",
                ));
            }
            None => return Err(not_a_logout_token("it has no back-channel logout event")),
        }
        if c.nonce {
            return Err(not_a_logout_token("it carries a nonce"));
        }
        let sub = c.sub.filter(|s| !s.is_empty());
        let sid = c.sid.filter(|s| !s.is_empty());
        if sub.is_none() && sid.is_none() {
            return Err(not_a_logout_token("it names neither sub nor sid"));
        }
        let jti = c
            .jti
            .filter(|j| !j.is_empty())
            .ok_or_else(|| VerifyError::Malformed("logout token without jti".into()))?;
        // Remembered for as long as the token would pass the checks above.
        let key = fingerprint(&[jti.as_bytes()]);
        match self
            .logout_replay
            .insert(key, exp + leeway, now, opts.logout_replay_capacity)
        {
            Seen::First => Ok(LogoutToken { sub, sid, jti, iat }),
            Seen::Replayed => Err(VerifyError::Replayed),
            Seen::Full => Err(VerifyError::ReplayCacheFull),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::keys::{FetchFuture, JwkSet, Jwks, KeySource};
    use crate::testkit::*;
    use crate::{LogoutToken, Verifier, VerifierOptions, VerifyError};
    use serde_json::{Value, json};
    use std::sync::{Arc, Mutex};

    fn not_a_logout_token(r: Result<LogoutToken, VerifyError>) -> bool {
        matches!(r, Err(VerifyError::NotALogoutToken(_)))
    }

    #[tokio::test]
    async fn bclogout_2_6_a_good_logout_token_is_accepted() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        let mut claims = logout_claims();
        let token = issuer.sign(Some("logout+jwt"), &claims);
        let t = v.verify_logout_token(&token).await.unwrap();
        assert_eq!(
            t,
            LogoutToken {
                sub: Some("01a22021-5bda-76b2-90d0-f73b9021c713".into()),
                sid: Some("Pp-NIAuREXSwdFcKtVOZJw".into()),
                jti: claims["jti"].as_str().unwrap().into(),
                iat: claims["iat"].as_i64().unwrap(),
            }
        );
        // `aud` as an array, `typ` spelled as a media type (RFC 7515 4.1.9).
        claims["jti"] = json!("another");
        claims["aud"] = json!(["lk_other", CLIENT_ID]);
        let token = issuer.sign(Some("application/Logout+JWT"), &claims);
        assert_eq!(v.verify_logout_token(&token).await.unwrap().jti, "another");
    }

    #[tokio::test]
    async fn bclogout_2_6_lab_checks_do_not_apply_to_logout_tokens() {
        let issuer = TestIssuer::new("k1");
        // The verifier serves lab-a only; a logout token names no lab, or another one.
        let v = issuer.verifier();
        let t = issuer.logout_token(|c| c["lab"] = json!("lab-b"));
        assert!(v.verify_logout_token(&t).await.is_ok());
        assert!(
            v.verify_logout_token(&issuer.logout_token(|_| {}))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn bclogout_2_4_an_id_token_is_not_a_logout_token() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        // Even with every logout claim: only `typ: logout+jwt` makes a logout token.
        for typ in [None, Some("JWT"), Some("at+jwt"), Some("logout")] {
            let token = issuer.sign(typ, &logout_claims());
            assert_eq!(
                v.verify_logout_token(&token).await.unwrap_err(),
                VerifyError::WrongType {
                    expected: "logout+jwt logout token"
                },
                "{typ:?}"
            );
        }
    }

    #[tokio::test]
    async fn bclogout_2_4_a_logout_token_is_neither_an_id_token_nor_an_access_token() {
        let issuer = TestIssuer::new("k1");
        let v = Verifier::from_jwks(
            VerifierOptions::new(ISSUER, CLIENT_ID).any_lab(),
            &issuer.jwks(),
        )
        .unwrap();
        let token = issuer.logout_token(|_| {});
        assert!(matches!(
            v.verify_id_token(&token, None).await,
            Err(VerifyError::WrongType { .. })
        ));
        assert!(matches!(
            v.verify_access_token(&token).await,
            Err(VerifyError::WrongType { .. })
        ));
    }

    #[tokio::test]
    async fn bclogout_2_6_a_token_without_the_logout_event_is_refused() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        let without: [fn(&mut Value); 6] = [
            |c| {
                c.as_object_mut().unwrap().remove("events");
            },
            |c| c["events"] = json!(null),
            |c| c["events"] = json!([BACKCHANNEL_LOGOUT]),
            |c| c["events"] = json!({}),
            |c| c["events"] = json!({ "http://schemas.openid.net/event/other": {} }),
            |c| c["events"] = json!({ BACKCHANNEL_LOGOUT: true }),
        ];
        for edit in without {
            let token = issuer.logout_token(edit);
            assert!(not_a_logout_token(v.verify_logout_token(&token).await));
        }
        // Other events beside it do not matter.
        let token = issuer.logout_token(|c| {
            c["events"]["http://schemas.openid.net/event/other"] = json!({"x": 1})
        });
        assert!(v.verify_logout_token(&token).await.is_ok());
    }

    #[tokio::test]
    async fn bclogout_2_6_a_nonce_is_refused() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        for nonce in [json!("n-1"), json!(""), json!(null)] {
            let token = issuer.logout_token(|c| c["nonce"] = nonce);
            let e = v.verify_logout_token(&token).await.unwrap_err();
            assert_eq!(
                e.to_string(),
                "the token is not a logout token: it carries a nonce"
            );
        }
    }

    #[tokio::test]
    async fn bclogout_2_6_a_token_with_neither_sub_nor_sid_is_refused() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        let neither = issuer.logout_token(|c| {
            let c = c.as_object_mut().unwrap();
            c.remove("sub");
            c.remove("sid");
        });
        assert!(not_a_logout_token(v.verify_logout_token(&neither).await));
        let empty = issuer.logout_token(|c| {
            c["sub"] = json!("");
            c["sid"] = json!("");
        });
        assert!(not_a_logout_token(v.verify_logout_token(&empty).await));
        // One of them is enough.
        let sub_only = issuer.logout_token(|c| {
            c.as_object_mut().unwrap().remove("sid");
        });
        let t = v.verify_logout_token(&sub_only).await.unwrap();
        assert!(t.sub.is_some() && t.sid.is_none());
        let sid_only = issuer.logout_token(|c| {
            c.as_object_mut().unwrap().remove("sub");
        });
        let t = v.verify_logout_token(&sid_only).await.unwrap();
        assert!(t.sub.is_none() && t.sid.is_some());
    }

    #[tokio::test]
    async fn bclogout_2_6_a_token_of_another_issuer_is_refused() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        for iss in [json!("https://evil.example"), json!(null)] {
            let token = issuer.logout_token(|c| c["iss"] = iss);
            assert_eq!(
                v.verify_logout_token(&token).await.unwrap_err(),
                VerifyError::WrongIssuer
            );
        }
    }

    #[tokio::test]
    async fn bclogout_2_6_a_token_for_another_client_is_refused() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        for aud in [
            json!("lk_other"),
            json!(["lk_other", "lk_third"]),
            json!([]),
        ] {
            let token = issuer.logout_token(|c| c["aud"] = aud);
            assert_eq!(
                v.verify_logout_token(&token).await.unwrap_err(),
                VerifyError::WrongAudience
            );
        }
    }

    #[tokio::test]
    async fn bclogout_2_6_an_expired_token_is_refused() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        let now = now();
        let expired = issuer.logout_token(|c| {
            c["iat"] = json!(now - 300);
            c["exp"] = json!(now - 180);
        });
        assert_eq!(
            v.verify_logout_token(&expired).await.unwrap_err(),
            VerifyError::Expired
        );
        // Within the leeway (30 s) it still passes.
        let late = issuer.logout_token(|c| {
            c["iat"] = json!(now - 130);
            c["exp"] = json!(now - 10);
        });
        assert!(v.verify_logout_token(&late).await.is_ok());
        let no_exp = issuer.logout_token(|c| {
            c.as_object_mut().unwrap().remove("exp");
        });
        assert!(matches!(
            v.verify_logout_token(&no_exp).await,
            Err(VerifyError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn bclogout_2_6_iat_is_required_and_not_in_the_future() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        let now = now();
        let future = issuer.logout_token(|c| {
            c["iat"] = json!(now + 300);
            c["exp"] = json!(now + 420);
        });
        assert_eq!(
            v.verify_logout_token(&future).await.unwrap_err(),
            VerifyError::NotYetValid
        );
        let skewed = issuer.logout_token(|c| c["iat"] = json!(now + 10));
        assert!(v.verify_logout_token(&skewed).await.is_ok());
        let no_iat = issuer.logout_token(|c| {
            c.as_object_mut().unwrap().remove("iat");
        });
        assert!(matches!(
            v.verify_logout_token(&no_iat).await,
            Err(VerifyError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn bclogout_2_4_a_token_without_jti_is_refused() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        for edit in [
            (|c: &mut Value| {
                c.as_object_mut().unwrap().remove("jti");
            }) as fn(&mut Value),
            |c| c["jti"] = json!(""),
        ] {
            assert!(matches!(
                v.verify_logout_token(&issuer.logout_token(edit)).await,
                Err(VerifyError::Malformed(_))
            ));
        }
    }

    #[tokio::test]
    async fn bclogout_2_6_a_jti_is_accepted_once() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        let token = issuer.logout_token(|_| {});
        assert!(v.verify_logout_token(&token).await.is_ok());
        assert_eq!(
            v.verify_logout_token(&token).await.unwrap_err(),
            VerifyError::Replayed
        );
        // A clone shares the memory; another token with the same jti is refused too.
        let jti = token_jti(&token);
        let again = issuer.logout_token(|c| c["jti"] = json!(jti));
        assert_eq!(
            v.clone().verify_logout_token(&again).await.unwrap_err(),
            VerifyError::Replayed
        );
        // Another verifier instance keeps its own memory.
        assert!(issuer.verifier().verify_logout_token(&token).await.is_ok());
    }

    fn token_jti(token: &str) -> String {
        let p = latchkey_core::jws::parse(token).unwrap();
        let c: Value = serde_json::from_slice(&p.payload).unwrap();
        c["jti"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn bclogout_2_6_a_refused_token_does_not_spend_its_jti() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        let claims = logout_claims();
        let typed_wrong = issuer.sign(Some("JWT"), &claims);
        assert!(v.verify_logout_token(&typed_wrong).await.is_err());
        let good = issuer.sign(Some("logout+jwt"), &claims);
        assert!(v.verify_logout_token(&good).await.is_ok());
    }

    #[tokio::test]
    async fn bclogout_2_6_a_full_replay_memory_fails_closed() {
        let issuer = TestIssuer::new("k1");
        let mut opts = VerifierOptions::new(ISSUER, CLIENT_ID).any_lab();
        opts.logout_replay_capacity = 1;
        let v = Verifier::from_jwks(opts, &issuer.jwks()).unwrap();
        assert!(
            v.verify_logout_token(&issuer.logout_token(|_| {}))
                .await
                .is_ok()
        );
        assert_eq!(
            v.verify_logout_token(&issuer.logout_token(|_| {}))
                .await
                .unwrap_err(),
            VerifyError::ReplayCacheFull
        );
    }

    #[tokio::test]
    async fn bclogout_2_6_the_signature_is_checked_as_for_id_tokens() {
        let issuer = TestIssuer::new("k1");
        let v = issuer.verifier();
        let good = issuer.logout_token(|_| {});
        // Tampered claims.
        let (h, rest) = good.split_once('.').unwrap();
        let (_, s) = rest.split_once('.').unwrap();
        let mut claims = logout_claims();
        claims["sub"] = json!("someone-else");
        let forged = format!(
            "{h}.{}.{s}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                claims.to_string()
            )
        );
        assert_eq!(
            v.verify_logout_token(&forged).await.unwrap_err(),
            VerifyError::BadSignature
        );
        // Signed by another key under the same kid.
        let other = TestIssuer::new("k1");
        assert_eq!(
            v.verify_logout_token(&other.logout_token(|_| {}))
                .await
                .unwrap_err(),
            VerifyError::BadSignature
        );
        // The header's alg must be the key's; `none` never is.
        for alg in ["none", "EdDSA", "RS256", "HS256"] {
            let t = issuer.sign_with_header(
                &json!({"alg": alg, "kid": "k1", "typ": "logout+jwt"}),
                &logout_claims(),
            );
            assert_eq!(
                v.verify_logout_token(&t).await.unwrap_err(),
                VerifyError::AlgorithmMismatch,
                "{alg}"
            );
        }
        let unknown = TestIssuer::new("k9").logout_token(|_| {});
        assert_eq!(
            v.verify_logout_token(&unknown).await.unwrap_err(),
            VerifyError::UnknownKey
        );
        assert!(matches!(
            v.verify_logout_token("not.a-token").await,
            Err(VerifyError::Malformed(_))
        ));
    }

    /// A key source whose key set the test replaces, as the issuer rotates.
    struct Rotating(Arc<Mutex<Vec<u8>>>);

    impl KeySource for Rotating {
        fn fetch(&self) -> FetchFuture<'_> {
            let json = self.0.lock().unwrap().clone();
            Box::pin(async move {
                Ok(Jwks {
                    keys: JwkSet::from_json(&json)?,
                    max_age: None,
                })
            })
        }
    }

    #[tokio::test]
    async fn bclogout_2_6_a_new_signing_key_is_fetched_on_its_unknown_kid() {
        let old = TestIssuer::new("k1");
        let new = TestIssuer::new("k2");
        let jwks = Arc::new(Mutex::new(old.jwks()));
        let mut opts = VerifierOptions::new(ISSUER, CLIENT_ID).any_lab();
        opts.min_refetch_interval = std::time::Duration::ZERO;
        let v = Verifier::with_source(opts, Rotating(jwks.clone()))
            .await
            .unwrap();
        *jwks.lock().unwrap() = new.jwks();
        let t = v
            .verify_logout_token(&new.logout_token(|_| {}))
            .await
            .unwrap();
        assert!(t.sid.is_some());
        assert_eq!(v.status().fetches, 2);
    }
}
