//! `latchkey-client` against the real server: verification of Latchkey's tokens, every
//! refusal (tampered, wrong issuer/audience, expired, not yet valid, alg=none, HS256 with the
//! public key, header alg disagreeing with the JWK, unknown-kid storms, ID token offered as an
//! access token), and the example lab service's actix-web integration.

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_client::{FetchError, Jwks, KeySource, Verifier, VerifierOptions, VerifyError};
use latchkey_core::SigningAlg;
use latchkey_server::store::now;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[path = "../../crates/latchkey-client/examples/lab_service.rs"]
#[allow(dead_code)]
pub(crate) mod lab_service;

/// Counts fetches of the real JWKS endpoint.
struct Counting {
    inner: latchkey_client::HttpKeySource,
    fetches: Arc<AtomicU64>,
}

impl KeySource for Counting {
    fn fetch(&self) -> latchkey_client::FetchFuture<'_> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch()
    }
}

async fn counting_verifier(app: &TestApp, audience: &str) -> (Verifier, Arc<AtomicU64>) {
    let fetches = Arc::new(AtomicU64::new(0));
    let source = Counting {
        inner: latchkey_client::HttpKeySource::discover(&app.base)
            .await
            .unwrap(),
        fetches: fetches.clone(),
    };
    let mut opts = VerifierOptions::new(app.base.clone(), audience).any_lab();
    opts.min_refetch_interval = std::time::Duration::from_secs(5);
    (Verifier::with_source(opts, source).await.unwrap(), fetches)
}

fn resign(
    token: &str,
    header: Value,
    claims: Value,
    key: &latchkey_server::crypto::SigningKey,
) -> String {
    let _ = token;
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{h}.{p}");
    let sig = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()));
    format!("{input}.{sig}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifies_access_tokens_and_maps_grants() {
    let app = TestApp::new(Backend::Sqlite).await;
    let c = app.client(|_| {}).await;
    let tokens = user_tokens(
        &app,
        &c.client_id,
        c.client_secret.as_deref().unwrap(),
        "openid email",
    )
    .await;
    let verifier = Verifier::discover(
        VerifierOptions::new(app.base.clone(), c.client_id.clone()).lab(app.lab_id.clone()),
    )
    .await
    .unwrap()
    .with_feature_map(lab_service::feature_map());
    let g = verifier
        .verify_access_token(tokens["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(g.subject, app.user_id);
    assert_eq!(g.lab.as_deref(), Some(app.lab_id.as_str()));
    assert_eq!(g.acr, Some(latchkey_core::Acr::Pwd));
    assert_eq!(g.amr, vec!["pwd".to_owned()]);
    assert!(g.auth_time.is_some() && g.is_user());
    assert!(g.allows("orders:read"), "mapped from the email scope");
    assert!(!g.allows("invoices:approve"));
    assert!(g.require_acr(latchkey_core::Acr::Mfa).is_err());
    let id = verifier
        .verify_id_token(tokens["id_token"].as_str().unwrap(), Some("n-1"))
        .await
        .unwrap();
    assert_eq!(id.sub, app.user_id);
    assert_eq!(
        verifier
            .verify_id_token(tokens["id_token"].as_str().unwrap(), Some("other"))
            .await
            .unwrap_err(),
        VerifyError::NonceMismatch
    );
    // rfc9068_id_token_offered_as_access_token_is_refused
    assert!(matches!(
        verifier
            .verify_access_token(tokens["id_token"].as_str().unwrap())
            .await,
        Err(VerifyError::WrongType { .. })
    ));
    assert!(matches!(
        verifier
            .verify_id_token(tokens["access_token"].as_str().unwrap(), None)
            .await,
        Err(VerifyError::WrongType { .. })
    ));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_forged_and_misdirected_tokens() {
    let app = TestApp::new(Backend::Sqlite).await;
    let svc = app
        .client(|c| c.grant_types = vec!["client_credentials".into()])
        .await;
    let secret = svc.client_secret.clone().unwrap();
    let good = cc_token(&app, &svc.client_id, &secret).await;
    let (verifier, _) = counting_verifier(&app, &svc.client_id).await;
    verifier.verify_access_token(&good).await.unwrap();
    // A client's own token is for no lab: a service that serves named labs refuses it.
    let for_a_lab = Verifier::discover(
        VerifierOptions::new(app.base.clone(), svc.client_id.clone()).lab(app.lab_id.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        for_a_lab.verify_access_token(&good).await.unwrap_err(),
        VerifyError::WrongLab
    );
    let keys = app.state.keys.current();
    let es = keys.signer(SigningAlg::ES256).unwrap();
    let rs = keys.signer(SigningAlg::RS256).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        f(&mut c);
        resign(&good, header.clone(), c, es)
    };
    let t = now();

    // Tampered payload, signature kept.
    let mut tampered_claims = claims.clone();
    tampered_claims["sub"] = json!("someone-else");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(tampered_claims.to_string()),
        parts[2]
    );
    // alg=none.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD
            .encode(json!({"alg": "none", "typ": "at+jwt", "kid": es.kid()}).to_string()),
        parts[1]
    );
    // HS256 keyed with the public key (the classic RS/HS confusion).
    let rs_jwk = serde_json::to_vec(&rs.jwk).unwrap();
    let hs_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD
            .encode(json!({"alg": "HS256", "typ": "at+jwt", "kid": rs.kid()}).to_string()),
        parts[1]
    );
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &rs_jwk),
        hs_input.as_bytes(),
    );
    let hs256 = format!("{hs_input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
    // Header alg RS256 on the ES256 key.
    let mismatch = resign(
        &good,
        json!({"alg": "RS256", "typ": "at+jwt", "kid": es.kid()}),
        claims.clone(),
        es,
    );
    type Case<'a> = (&'a str, String, fn(&VerifyError) -> bool);
    let cases: Vec<Case> = vec![
        ("tampered payload", tampered, |e| {
            *e == VerifyError::BadSignature
        }),
        ("alg=none", none, |e| *e == VerifyError::AlgorithmMismatch),
        ("HS256 with the public key", hs256, |e| {
            *e == VerifyError::AlgorithmMismatch
        }),
        ("header alg disagrees with JWK", mismatch, |e| {
            *e == VerifyError::AlgorithmMismatch
        }),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("https://evil.example")),
            |e| *e == VerifyError::WrongIssuer,
        ),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!("lk_other")),
            |e| *e == VerifyError::WrongAudience,
        ),
        ("expired", with(&|c| c["exp"] = json!(t - 120)), |e| {
            *e == VerifyError::Expired
        }),
        ("not yet valid", with(&|c| c["nbf"] = json!(t + 600)), |e| {
            *e == VerifyError::NotYetValid
        }),
        (
            "issued in the future",
            with(&|c| c["iat"] = json!(t + 600)),
            |e| *e == VerifyError::NotYetValid,
        ),
        (
            "no typ",
            resign(
                &good,
                json!({"alg": "ES256", "kid": es.kid()}),
                claims.clone(),
                es,
            ),
            |e| matches!(e, VerifyError::WrongType { .. }),
        ),
        ("garbage", "a.b.c".into(), |e| {
            matches!(e, VerifyError::Malformed(_))
        }),
    ];
    for (name, token, expected) in cases {
        let err = verifier.verify_access_token(&token).await.unwrap_err();
        assert!(expected(&err), "{name}: got {err:?}");
    }
    // Within the leeway is fine.
    verifier
        .verify_access_token(&with(&|c| c["exp"] = json!(t - 5)))
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_storm_fetches_at_most_once_per_interval() {
    let app = TestApp::new(Backend::Sqlite).await;
    let svc = app
        .client(|c| c.grant_types = vec!["client_credentials".into()])
        .await;
    let good = cc_token(&app, &svc.client_id, svc.client_secret.as_deref().unwrap()).await;
    let (verifier, fetches) = counting_verifier(&app, &svc.client_id).await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "the initial fetch");
    let (attacker, _) = latchkey_server::crypto::SigningKey::generate(SigningAlg::ES256).unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(good.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    for i in 0..200 {
        let t = resign(
            &good,
            json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("random-{i}")}),
            claims.clone(),
            &attacker,
        );
        assert_eq!(
            verifier.verify_access_token(&t).await.unwrap_err(),
            VerifyError::UnknownKey
        );
    }
    let n = fetches.load(Ordering::SeqCst);
    assert!(n <= 2, "200 unknown kids caused {n} fetches");
    verifier.verify_access_token(&good).await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_verifier_and_last_good_keys_when_the_issuer_is_down() {
    let app = TestApp::new(Backend::Sqlite).await;
    let svc = app
        .client(|c| c.grant_types = vec!["client_credentials".into()])
        .await;
    let good = cc_token(&app, &svc.client_id, svc.client_secret.as_deref().unwrap()).await;
    let jwks = reqwest::get(app.url("/jwks.json"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let offline = Verifier::from_jwks(
        VerifierOptions::new(app.base.clone(), svc.client_id.clone()).any_lab(),
        &jwks,
    )
    .unwrap();
    let mut opts = VerifierOptions::new(app.base.clone(), svc.client_id.clone()).any_lab();
    opts.default_max_age = std::time::Duration::from_millis(200);
    opts.min_refetch_interval = std::time::Duration::from_millis(100);
    opts.max_stale = std::time::Duration::from_secs(2);
    let source = latchkey_client::HttpKeySource::with_jwks_uri(app.url("/jwks.json")).unwrap();
    // Ignore the server's Cache-Control so the cache expires quickly in this test.
    struct Short(latchkey_client::HttpKeySource);
    impl KeySource for Short {
        fn fetch(&self) -> latchkey_client::FetchFuture<'_> {
            Box::pin(async move {
                let mut j: Jwks = self.0.fetch().await?;
                j.max_age = Some(std::time::Duration::from_millis(200));
                Ok::<Jwks, FetchError>(j)
            })
        }
    }
    let online = Verifier::with_source(opts, Short(source)).await.unwrap();
    app.stop().await;
    // Lifetimes are clamped to at least one second.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    // Issuer gone: both still verify with the last good keys; the online one reports it.
    offline.verify_access_token(&good).await.unwrap();
    online.verify_access_token(&good).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    online.verify_access_token(&good).await.unwrap();
    let status = online.status();
    assert!(status.stale, "{status:?}");
    assert!(status.last_error.is_some(), "{status:?}");
    assert!(status.keys >= 3);
    // Past max_stale, the verifier fails closed: a revoked key cannot outlive an outage.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(
        online.verify_access_token(&good).await.unwrap_err(),
        VerifyError::UnknownKey
    );
    offline.verify_access_token(&good).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_lab_service_enforces_features_and_rfc9470_step_up() {
    use actix_web::test;
    let app = TestApp::new(Backend::Sqlite).await;
    let c = app.client(|_| {}).await;
    let tokens = user_tokens(
        &app,
        &c.client_id,
        c.client_secret.as_deref().unwrap(),
        "openid email",
    )
    .await;
    let narrow = user_tokens(
        &app,
        &c.client_id,
        c.client_secret.as_deref().unwrap(),
        "openid",
    )
    .await;
    let verifier = Verifier::discover(
        VerifierOptions::new(app.base.clone(), c.client_id.clone()).lab(app.lab_id.clone()),
    )
    .await
    .unwrap()
    .with_feature_map(lab_service::feature_map());
    let svc = test::init_service(
        actix_web::App::new()
            .app_data(actix_web::web::Data::new(verifier))
            .app_data(actix_web::web::Data::new(
                lab_service::EndedSessions::default(),
            ))
            .configure(lab_service::routes),
    )
    .await;
    let at = tokens["access_token"].as_str().unwrap();
    let call = |method: actix_web::http::Method, path: &str, token: Option<&str>| {
        let mut r = test::TestRequest::default().method(method).uri(path);
        if let Some(t) = token {
            r = r.insert_header(("Authorization", format!("Bearer {t}")));
        }
        r.to_request()
    };
    use actix_web::http::Method;
    let r = test::call_service(&svc, call(Method::GET, "/whoami", Some(at))).await;
    assert_eq!(r.status(), 200);
    let r = test::call_service(&svc, call(Method::GET, "/orders", Some(at))).await;
    assert_eq!(r.status(), 200);
    // rfc6750_3_1_missing_token_is_401_with_bare_challenge
    let r = test::call_service(&svc, call(Method::GET, "/orders", None)).await;
    assert_eq!(r.status(), 401);
    // RFC 9449 section 7.1: the DPoP scheme is offered beside Bearer.
    assert_eq!(
        r.headers().get("www-authenticate").unwrap(),
        "Bearer, DPoP algs=\"RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA\""
    );
    // rfc6750_3_1_invalid_token
    let r = test::call_service(&svc, call(Method::GET, "/orders", Some("x.y.z"))).await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // rfc6750_3_1_missing_feature_is_403_insufficient_scope
    let r = test::call_service(
        &svc,
        call(
            Method::GET,
            "/orders",
            Some(narrow["access_token"].as_str().unwrap()),
        ),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // rfc9470_password_session_gets_step_up_challenge
    let r = test::call_service(
        &svc,
        call(Method::POST, "/invoices/INV-7/approve", Some(at)),
    )
    .await;
    assert_eq!(r.status(), 401);
    let www = r
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        www.contains("error=\"insufficient_user_authentication\"")
            && www.contains("acr_values=\"mfa\""),
        "{www}"
    );
    let r = test::call_service(&svc, call(Method::GET, "/health", None)).await;
    assert_eq!(r.status(), 200);
    app.stop().await;
}
