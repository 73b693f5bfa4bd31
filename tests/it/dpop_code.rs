//! DPoP authorization code binding (RFC 9449 section 10), both databases: a code requested
//! with `dpop_jkt`, or pushed to `/par` with a proof, is redeemed only with a proof by that
//! key. A refused redemption leaves the code for its rightful holder.

use crate::both;
use crate::common::*;
use crate::dpop::{DpopKey, token_request};
use crate::par::{par_authorize, request, sign_in};
use serde_json::Value;

/// Redeems `code` at `/token` as the confidential client `c`, with an optional proof.
async fn redeem(
    app: &TestApp,
    c: &(String, String),
    code: &str,
    proof: Option<String>,
) -> (u16, Value) {
    let (status, _, v) = token_request(
        app,
        (&c.0, Some(&c.1)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
        proof,
    )
    .await;
    (status, v)
}

async fn client(app: &TestApp) -> (String, String) {
    let c = app.client(|c| c.skip_consent = true).await;
    (c.client_id, c.client_secret.unwrap())
}

/// The rightful key's redemption, after the refusals: the code was left alone by them.
async fn redeemed_by(app: &TestApp, c: &(String, String), code: &str, key: &DpopKey) {
    let (status, v) = redeem(
        app,
        c,
        code,
        Some(key.proof("POST", &app.url("/token"), None)),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    assert_eq!(
        jwt_claims(v["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
}

/// The refusals every bound code gets: no proof, and a proof by another key.
async fn refused_without_its_key(app: &TestApp, c: &(String, String), code: &str) {
    let (status, v) = redeem(app, c, code, None).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("dpop_jkt"),
        "{v}"
    );
    let other = DpopKey::new();
    let (status, v) = redeem(
        app,
        c,
        code,
        Some(other.proof("POST", &app.url("/token"), None)),
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
}

both!(
    rfc9449_10_a_code_requested_with_dpop_jkt_is_redeemed_only_with_that_keys_proof,
    async |app: &TestApp| {
        let c = client(app).await;
        let key = DpopKey::new();
        let jkt = key.jkt();
        let back = Browser::new(app)
            .login(
                &authorize_url(app, &c.0, &[("dpop_jkt", &jkt)]),
                EMAIL,
                PASSWORD,
            )
            .await;
        let code = query_param(&back, "code").unwrap();
        refused_without_its_key(app, &c, &code).await;
        redeemed_by(app, &c, &code, &key).await;
    }
);

both!(
    rfc9449_10_a_malformed_dpop_jkt_is_invalid_request,
    async |app: &TestApp| {
        let c = client(app).await;
        let r = Browser::new(app)
            .get(&authorize_url(
                app,
                &c.0,
                &[("dpop_jkt", "not-a-thumbprint")],
            ))
            .await;
        let back = url::Url::parse(&location(&r)).expect("back at the client");
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_request")
        );
        assert!(
            query_param(&back, "error_description")
                .unwrap()
                .contains("dpop_jkt"),
            "{back}"
        );
    }
);

/// Pushes the default request, with `extra` parameters and an optional proof.
async fn push(
    app: &TestApp,
    c: &(String, String),
    extra: &[(&str, &str)],
    proof: Option<String>,
) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(app.url("/par"))
        .basic_auth(&c.0, Some(&c.1))
        .form(&request(app, &c.0, extra));
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

both!(
    rfc9449_10_1_a_proof_at_the_par_endpoint_binds_the_code_to_its_key,
    async |app: &TestApp| {
        let c = client(app).await;
        let key = DpopKey::new();
        // A proof for the token endpoint is not one for /par.
        let (status, v) = push(
            app,
            &c,
            &[],
            Some(key.proof("POST", &app.url("/token"), None)),
        )
        .await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{v}"
        );
        // dpop_jkt beside a proof must name the proof's key.
        let other = DpopKey::new();
        let (status, v) = push(
            app,
            &c,
            &[("dpop_jkt", &other.jkt())],
            Some(key.proof("POST", &app.url("/par"), None)),
        )
        .await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{v}"
        );

        let (status, v) = push(
            app,
            &c,
            &[],
            Some(key.proof("POST", &app.url("/par"), None)),
        )
        .await;
        assert_eq!(status, 201, "{v}");
        let b = Browser::new(app);
        let back = sign_in(
            &b,
            &par_authorize(app, &c.0, v["request_uri"].as_str().unwrap(), &[]),
        )
        .await;
        let code = query_param(&back, "code").unwrap();
        refused_without_its_key(app, &c, &code).await;
        redeemed_by(app, &c, &code, &key).await;
    }
);
