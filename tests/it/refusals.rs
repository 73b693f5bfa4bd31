//! Every refusal, named after the rule it enforces. Each runs on both databases.

use crate::both;
use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::{AccessTokenClaims, SigningAlg};
use latchkey_server::crypto::SigningKey;
use latchkey_server::crypto::jwt;
use latchkey_server::store::now;
use latchkey_server::token::jwt::{self as tokens, AccessTokenInput, UserContext};
use serde_json::Value;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Issued {
    client_id: String,
    secret: String,
    code: String,
    browser: Browser,
}

async fn code_for(app: &TestApp, extra: &[(&str, &str)]) -> Issued {
    let c = app.client(|_| {}).await;
    let browser = Browser::new(app);
    let back = browser
        .login(&authorize_url(app, &c.client_id, extra), EMAIL, PASSWORD)
        .await;
    Issued {
        client_id: c.client_id,
        secret: c.client_secret.unwrap(),
        code: query_param(&back, "code").expect("code"),
        browser,
    }
}

async fn token(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "RFC 6749 5.1/5.2: token responses are not cached"
    );
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn exchange(app: &TestApp, i: &Issued, verifier: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", i.code.as_str()),
        ("redirect_uri", CALLBACK),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token(app, &i.client_id, &i.secret, &form).await
}

/// `grant_type=refresh_token` for the issued client.
async fn refresh(app: &TestApp, i: &Issued, refresh_token: &str) -> (u16, Value) {
    token(
        app,
        &i.client_id,
        &i.secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

async fn userinfo_status(app: &TestApp, access_token: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let www = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (r.status().as_u16(), www)
}

both!(
    rfc7636_wrong_verifier_is_invalid_grant,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (s, body) = exchange(
            app,
            &i,
            Some("wrong-verifier-wrong-verifier-wrong-verifier-0"),
        )
        .await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"));
    }
);

both!(
    rfc7636_missing_verifier_is_invalid_grant,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (s, body) = exchange(app, &i, None).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"));
    }
);

both!(
    a_nul_character_in_an_authorization_parameter_is_invalid_request,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        for name in ["nonce", "state", "scope", "login_hint"] {
            let value = if name == "scope" { "openid\0" } else { "n\0n" };
            let r = Browser::new(app)
                .get(&authorize_url(app, &c.client_id, &[(name, value)]))
                .await;
            assert_eq!(r.status(), 303, "{name}");
            let back = url::Url::parse(&location(&r)).unwrap();
            assert_eq!(
                query_param(&back, "error").as_deref(),
                Some("invalid_request"),
                "{name}: {back}"
            );
        }
    }
);

both!(rfc7636_plain_method_is_refused, async |app: &TestApp| {
    let c = app.client(|_| {}).await;
    let r = Browser::new(app)
        .get(&authorize_url(
            app,
            &c.client_id,
            &[
                ("code_challenge_method", "plain"),
                ("code_challenge", VERIFIER),
            ],
        ))
        .await;
    assert_eq!(r.status(), 303);
    let back = url::Url::parse(&location(&r)).unwrap();
    assert!(back.as_str().starts_with(CALLBACK));
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
});

both!(
    rfc7636_public_client_without_pkce_is_invalid_request,
    async |app: &TestApp| {
        let c = app.client(|c| c.public = true).await;
        assert!(c.client_secret.is_none());
        let r = Browser::new(app)
            .get(&authorize_url(
                app,
                &c.client_id,
                &[("code_challenge", ""), ("code_challenge_method", "")],
            ))
            .await;
        let back = url::Url::parse(&location(&r)).unwrap();
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_request")
        );
    }
);

both!(
    rfc6749_4_1_2_code_replay_is_invalid_grant_and_revokes_first_tokens,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (s, first) = exchange(app, &i, Some(VERIFIER)).await;
        assert_eq!(s, 200, "{first}");
        let at = first["access_token"].as_str().unwrap().to_owned();
        let rt = first["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(userinfo_status(app, &at).await.0, 200);
        let (s, again) = exchange(app, &i, Some(VERIFIER)).await;
        assert_eq!((s, error_of(&again)), (400, "invalid_grant"));
        // What the first exchange issued is dead.
        let (s, www) = userinfo_status(app, &at).await;
        assert_eq!(s, 401);
        assert!(www.contains("invalid_token"), "{www}");
        let (s, body) = refresh(app, &i, &rt).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"));
    }
);

both!(
    rfc6749_4_1_2_concurrent_uses_of_one_code_leave_no_live_tokens,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (url, id, secret, code) = (
                app.url("/token"),
                i.client_id.clone(),
                i.secret.clone(),
                i.code.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let r = exchange_code(&url, (&id, &secret), &code).await;
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                (status, body)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (s, body) = t.await.unwrap();
            if s == 200 {
                winners.push(body["access_token"].as_str().unwrap().to_owned());
            } else {
                assert_eq!((s, error_of(&body)), (400, "invalid_grant"), "{body}");
            }
        }
        assert!(winners.len() <= 1, "one code, {} exchanges", winners.len());
        // Every loser was a replay (also those racing the first use on PostgreSQL): what the
        // first use issued is revoked.
        for at in winners {
            assert_eq!(userinfo_status(app, &at).await.0, 401);
        }
    }
);

both!(
    rfc6749_4_1_3_code_issued_to_another_client_is_invalid_grant,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let other = app.client(|_| {}).await;
        let (s, body) = token(
            app,
            &other.client_id,
            other.client_secret.as_deref().unwrap(),
            &[
                ("grant_type", "authorization_code"),
                ("code", &i.code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"));
    }
);

both!(
    rfc6749_4_1_3_redirect_uri_must_match_at_token_endpoint,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (s, body) = token(
            app,
            &i.client_id,
            &i.secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", &i.code),
                ("redirect_uri", "http://127.0.0.1:9/other"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"));
    }
);

both!(
    rfc6749_3_1_2_redirect_uri_mismatch_gets_error_page_not_redirect,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let b = Browser::new(app);
        for uri in [
            "http://evil.example/cb",      // other host
            "http://[::1]:9/cb", // other host (any port is fine on 127.0.0.1, RFC 8252 7.3)
            "http://127.0.0.1:9/cb/extra", // path suffix
            "http://127.0.0.1:9/cb?x=1", // extra query
            "http://127.0.0.1:9/CB", // case
        ] {
            let r = b
                .get(&authorize_url(app, &c.client_id, &[("redirect_uri", uri)]))
                .await;
            assert_eq!(r.status(), 400, "{uri}");
            assert!(
                r.headers().get("location").is_none(),
                "never redirect to {uri}"
            );
            let html = r.text().await.unwrap();
            assert!(html.contains("redirect_uri is not registered"), "{html}");
        }
    }
);

both!(
    rfc6749_4_1_2_1_unknown_client_gets_error_page,
    async |app: &TestApp| {
        let r = Browser::new(app)
            .get(&authorize_url(app, "lk_nosuchclient", &[]))
            .await;
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
        assert!(r.text().await.unwrap().contains("invalid_client"));
    }
);

both!(
    rfc6749_5_2_bad_client_secret_is_invalid_client,
    async |app: &TestApp| {
        let c = app
            .client(|c| c.grant_types.push("client_credentials".into()))
            .await;
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&c.client_id, Some("lk_cs_wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(error_of(&body), "invalid_client");
        // client_secret_post with a wrong secret: 400, no Basic challenge.
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &c.client_id),
                ("client_secret", "nope"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(error_of(&r.json().await.unwrap()), "invalid_client");
        // And the right secret works.
        let (s, body) = token(
            app,
            &c.client_id,
            c.client_secret.as_deref().unwrap(),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(s, 200, "{body}");
    }
);

both!(
    rfc6749_10_4_refresh_token_reuse_revokes_the_family,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (_, first) = exchange(app, &i, Some(VERIFIER)).await;
        let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
        let refresh = |rt: String| {
            let (id, secret) = (i.client_id.clone(), i.secret.clone());
            async move {
                token(
                    app,
                    &id,
                    &secret,
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await
            }
        };
        let (s, second) = refresh(rt1.clone()).await;
        assert_eq!(s, 200);
        let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
        let at2 = second["access_token"].as_str().unwrap().to_owned();
        // The old token again: refused, and the whole family dies.
        let (s, body) = refresh(rt1).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"));
        let (s, body) = refresh(rt2).await;
        assert_eq!(
            (s, error_of(&body)),
            (400, "invalid_grant"),
            "the current token died too"
        );
        assert_eq!(userinfo_status(app, &at2).await.0, 401);
    }
);

both!(
    oidc_core_3_1_2_1_prompt_none_without_session_is_login_required,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let r = Browser::new(app)
            .get(&authorize_url(app, &c.client_id, &[("prompt", "none")]))
            .await;
        assert_eq!(r.status(), 303);
        let back = url::Url::parse(&location(&r)).unwrap();
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("login_required")
        );
        assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
        assert_eq!(
            query_param(&back, "iss").as_deref(),
            Some(app.base.as_str())
        );
    }
);

both!(
    oidc_core_3_1_2_1_prompt_none_with_session_issues_silently,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let r = i
            .browser
            .get(&authorize_url(app, &i.client_id, &[("prompt", "none")]))
            .await;
        let back = url::Url::parse(&location(&r)).unwrap();
        assert!(query_param(&back, "code").is_some(), "{back}");
    }
);

both!(
    oidc_core_3_1_2_1_prompt_login_asks_for_the_password_again,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let r = i
            .browser
            .get(&authorize_url(app, &i.client_id, &[("prompt", "login")]))
            .await;
        assert!(location(&r).starts_with("/login?flow="));
    }
);

both!(
    oidc_core_3_1_2_1_max_age_zero_forces_login,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let r = i
            .browser
            .get(&authorize_url(app, &i.client_id, &[("max_age", "0")]))
            .await;
        assert!(location(&r).starts_with("/login?flow="));
    }
);

both!(
    wrong_password_shows_the_form_again_and_issues_nothing,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&authorize_url(app, &c.client_id, &[])).await;
        let r = b
            .submit_login(&flow, &csrf, EMAIL, "not the password at all")
            .await;
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()
                .get("set-cookie")
                .is_none_or(|v| !v.to_str().unwrap().contains("session"))
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("The email or password is not correct."));
        assert!(html.contains("autocomplete=\"current-password\""));
        // Unknown users get exactly the same answer.
        let r = b
            .submit_login(&flow, &csrf, "nobody@lab.example", PASSWORD)
            .await;
        assert_eq!(r.status(), 401);
        // The flow still works with the right password.
        let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 303);
    }
);

both!(
    login_form_without_valid_csrf_is_refused,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let b = Browser::new(app);
        let (flow, _) = b.open_login(&authorize_url(app, &c.client_id, &[])).await;
        let r = b.submit_login(&flow, "forged", EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 400);
        // Another browser cannot finish this flow (login CSRF).
        let other = Browser::new(app);
        let r = other.submit_login(&flow, "x", EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 400);
    }
);

both!(consent_deny_returns_access_denied, async |app: &TestApp| {
    let c = app.client(|_| {}).await;
    let b = Browser::new(app);
    let (flow, csrf) = b.open_login(&authorize_url(app, &c.client_id, &[])).await;
    let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
    let loc = b.consent_if_asked(r, "deny").await;
    let back = url::Url::parse(&loc).unwrap();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
});

both!(
    consent_is_remembered_and_first_party_clients_skip_it,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let r = i.browser.get(&authorize_url(app, &i.client_id, &[])).await;
        assert!(location(&r).starts_with(CALLBACK), "consent remembered");
        let r = i
            .browser
            .get(&authorize_url(
                app,
                &i.client_id,
                &[("scope", "openid profile")],
            ))
            .await;
        assert!(
            location(&r).starts_with("/consent"),
            "a new scope asks again"
        );
        let first = app.client(|c| c.skip_consent = true).await;
        let r = i
            .browser
            .get(&authorize_url(app, &first.client_id, &[]))
            .await;
        assert!(
            location(&r).starts_with(CALLBACK),
            "first-party client skips consent"
        );
    }
);

fn craft(key: &SigningKey, claims: &AccessTokenClaims) -> String {
    jwt::encode(key, "at+jwt", claims)
}

both!(
    rfc6750_userinfo_refuses_expired_garbled_unsigned_and_foreign_tokens,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (_, first) = exchange(app, &i, Some(VERIFIER)).await;
        let good = first["access_token"].as_str().unwrap().to_owned();
        assert_eq!(userinfo_status(app, &good).await.0, 200);
        let keys = app.state.keys.current();
        let claims =
            latchkey_server::token::jwt::verify_access_token(&keys, &app.base, &good, now())
                .unwrap();

        // Expired: a real signature, exp in the past.
        let t = now() - 3600;
        let expired = tokens::access_token(
            &keys,
            &AccessTokenInput {
                issuer: &app.base,
                audience: None,
                subject: &claims.sub,
                client_id: &claims.client_id,
                scope: &claims.scope,
                ttl: 60,
                now: t,
                user: Some(UserContext {
                    auth_time: t,
                    acr: "pwd",
                    amr: &claims.amr,
                    sid: claims.sid.as_deref().unwrap(),
                    grant_id: claims.gid.as_deref().unwrap(),
                    lab: None,
                    roles: &[],
                    features: &[],
                }),
                cnf_jkt: None,
            },
        )
        .unwrap();
        // Garbled: one character of the payload changed.
        let mut garbled = good.clone().into_bytes();
        let mid = good.find('.').unwrap() + 5;
        garbled[mid] = if garbled[mid] == b'A' { b'B' } else { b'A' };
        let garbled = String::from_utf8(garbled).unwrap();
        // alg=none with our kid.
        let kid = keys.signer(SigningAlg::ES256).unwrap().kid().to_owned();
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#)),
            good.split('.').nth(1).unwrap()
        );
        // Foreign key: same claims, signed by a key Latchkey never published, under its own kid
        // and under ours.
        let (foreign, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let foreign_own_kid = craft(&foreign, &claims);
        let forged = {
            let t = craft(&foreign, &claims);
            let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
            parts[0] = URL_SAFE_NO_PAD
                .encode(format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}"}}"#));
            let signing_input = format!("{}.{}", parts[0], parts[1]);
            parts[2] = URL_SAFE_NO_PAD.encode(foreign.sign(signing_input.as_bytes()));
            parts.join(".")
        };
        for (name, bad) in [
            ("expired", expired.as_str()),
            ("garbled", garbled.as_str()),
            ("alg=none", none.as_str()),
            ("foreign key", foreign_own_kid.as_str()),
            ("forged with our kid", forged.as_str()),
            ("not a JWT", "lk_rt_abc"),
        ] {
            let (s, www) = userinfo_status(app, bad).await;
            assert_eq!(s, 401, "{name}");
            assert!(
                www.starts_with("Bearer") && www.contains("error=\"invalid_token\""),
                "{name}: {www}"
            );
        }
        // No token at all: a bare challenge (RFC 6750 3.1).
        let r = reqwest::Client::new()
            .get(app.url("/userinfo"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers().get("www-authenticate").unwrap(),
            "Bearer realm=\"latchkey\""
        );
    }
);

both!(
    rfc6749_4_4_client_credentials_needs_the_grant_and_writes_nothing,
    async |app: &TestApp| {
        let plain = app.client(|_| {}).await;
        let (s, body) = token(
            app,
            &plain.client_id,
            plain.client_secret.as_deref().unwrap(),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!((s, error_of(&body)), (400, "unauthorized_client"));
        let svc = app
            .client(|c| c.grant_types = vec!["client_credentials".into()])
            .await;
        let (s, body) = token(
            app,
            &svc.client_id,
            svc.client_secret.as_deref().unwrap(),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(s, 200);
        assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
        let claims = latchkey_server::token::jwt::verify_access_token(
            &app.state.keys.current(),
            &app.base,
            body["access_token"].as_str().unwrap(),
            now(),
        )
        .unwrap();
        assert_eq!(claims.sub, svc.client_id);
        assert!(claims.gid.is_none());
    }
);

both!(rfc6749_5_2_unsupported_grant_type, async |app: &TestApp| {
    let c = app.client(|_| {}).await;
    let (s, body) = token(
        app,
        &c.client_id,
        c.client_secret.as_deref().unwrap(),
        &[("grant_type", "password")],
    )
    .await;
    assert_eq!((s, error_of(&body)), (400, "unsupported_grant_type"));
});

both!(
    rfc6749_3_1_duplicate_token_parameters_are_invalid_request,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&c.client_id, c.client_secret.as_deref())
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=authorization_code&code=a&code=b")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(error_of(&r.json().await.unwrap()), "invalid_request");
    }
);

both!(
    rp_initiated_logout_refuses_unregistered_post_logout_redirect_uri,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let mut u = url::Url::parse(&app.url("/logout")).unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", &c.client_id)
            .append_pair("post_logout_redirect_uri", "http://evil.example/bye");
        let r = Browser::new(app).get(u.as_str()).await;
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
    }
);

both!(
    rfc7009_revoking_another_clients_token_is_refused,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (_, first) = exchange(app, &i, Some(VERIFIER)).await;
        let rt = first["refresh_token"].as_str().unwrap();
        let other = app.client(|_| {}).await;
        let r = reqwest::Client::new()
            .post(app.url("/revoke"))
            .basic_auth(&other.client_id, other.client_secret.as_deref())
            .form(&[("token", rt)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(error_of(&r.json().await.unwrap()), "unauthorized_client");
        // Unknown tokens are fine (RFC 7009 2.2).
        let r = reqwest::Client::new()
            .post(app.url("/revoke"))
            .basic_auth(&other.client_id, other.client_secret.as_deref())
            .form(&[("token", "lk_rt_unknown")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
);

both!(
    rfc6749_6_wider_scope_on_refresh_is_invalid_scope_and_keeps_the_token,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (_, first) = exchange(app, &i, Some(VERIFIER)).await;
        let rt = first["refresh_token"].as_str().unwrap().to_owned();
        let (s, body) = token(
            app,
            &i.client_id,
            &i.secret,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("scope", "openid profile"),
            ],
        )
        .await;
        assert_eq!((s, error_of(&body)), (400, "invalid_scope"));
        let (s, body) = token(
            app,
            &i.client_id,
            &i.secret,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("scope", "openid"),
            ],
        )
        .await;
        assert_eq!(s, 200, "the refused request did not burn the token: {body}");
        assert_eq!(body["scope"], "openid");
    }
);

both!(
    rfc9700_4_14_concurrent_use_of_one_refresh_token_is_reuse,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (_, first) = exchange(app, &i, Some(VERIFIER)).await;
        let rt = first["refresh_token"].as_str().unwrap().to_owned();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (url, id, secret, rt) = (
                app.url("/token"),
                i.client_id.clone(),
                i.secret.clone(),
                rt.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let r = reqwest::Client::new()
                    .post(url)
                    .basic_auth(id, Some(secret))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", rt.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                (status, body)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (s, body) = t.await.unwrap();
            if s == 200 {
                winners.push(body["refresh_token"].as_str().unwrap().to_owned());
            }
        }
        assert!(
            winners.len() <= 1,
            "at most one concurrent use may win, got {}",
            winners.len()
        );
        // Seven losers presented a used token: the family is revoked, the winner's token too.
        for rt in winners {
            let (s, body) = refresh(app, &i, &rt).await;
            assert_eq!((s, error_of(&body)), (400, "invalid_grant"));
        }
    }
);

both!(
    reauthentication_keeps_the_session_and_other_clients_tokens,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (_, first) = exchange(app, &i, Some(VERIFIER)).await;
        let at = first["access_token"].as_str().unwrap().to_owned();
        let other = app.client(|c| c.skip_consent = true).await;
        let (flow, csrf) = i
            .browser
            .open_login(&authorize_url(
                app,
                &other.client_id,
                &[("prompt", "login")],
            ))
            .await;
        let r = i.browser.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with(CALLBACK));
        assert_eq!(
            userinfo_status(app, &at).await.0,
            200,
            "the first client's token survives"
        );
    }
);

both!(
    oauth_form_post_response_mode_posts_code_and_state,
    async |app: &TestApp| {
        let c = app.client(|c| c.skip_consent = true).await;
        let b = Browser::new(app);
        let (flow, csrf) = b
            .open_login(&authorize_url(
                app,
                &c.client_id,
                &[("response_mode", "form_post")],
            ))
            .await;
        let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert_eq!(
            r.status(),
            200,
            "form_post answers with an auto-submitting page"
        );
        let csp = r
            .headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains(&format!("form-action 'self' {CALLBACK}")),
            "{csp}"
        );
        assert!(!csp.contains('*'), "{csp}");
        let html = r.text().await.unwrap();
        assert!(html.contains(&format!("action=\"{CALLBACK}\"")), "{html}");
        assert!(html_input(&html, "code").unwrap().starts_with("lk_ac_"));
        assert_eq!(html_input(&html, "state").as_deref(), Some("st4te"));
        assert!(
            html.contains("/static/form_post.js") && !html.contains("<script>"),
            "no inline script"
        );
    }
);

both!(
    public_client_exchanges_with_pkce_and_no_secret,
    async |app: &TestApp| {
        let c = app
            .client(|c| {
                c.public = true;
                c.skip_consent = true;
            })
            .await;
        let back = Browser::new(app)
            .login(&authorize_url(app, &c.client_id, &[]), EMAIL, PASSWORD)
            .await;
        let code = query_param(&back, "code").unwrap();
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", c.client_id.as_str()),
                ("code", code.as_str()),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert!(body["id_token"].is_string() && body["refresh_token"].is_string());
        // A secret sent for a public client is refused.
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", "x"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(error_of(&r.json().await.unwrap()), "invalid_client");
    }
);

both!(
    retention_purges_dead_rows_and_keeps_live_ones,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (_, first) = exchange(app, &i, Some(VERIFIER)).await;
        let rt = first["refresh_token"].as_str().unwrap().to_owned();
        let store = &app.state.store;
        // Now: everything is live, nothing goes.
        let p = store.purge_expired(now()).await.unwrap();
        assert_eq!((p.codes, p.grants, p.sessions), (0, 0, 0));
        let (s, _) = refresh(app, &i, &rt).await;
        assert_eq!(s, 200, "live grants survive a purge");
        // Far in the future: the code, grant (with its refresh tokens) and session are dead.
        let later = now() + 400 * 24 * 3600;
        let p = store.purge_expired(later).await.unwrap();
        assert!(p.codes >= 1 && p.grants >= 1 && p.sessions >= 1, "{p:?}");
        assert!(
            store
                .grant_by_refresh_token(latchkey_server::secret::TokenHash::of(&rt))
                .await
                .unwrap()
                .is_none()
        );
    }
);

both!(
    disabling_a_user_ends_sessions_and_tokens_at_once,
    async |app: &TestApp| {
        let i = code_for(app, &[]).await;
        let (_, first) = exchange(app, &i, Some(VERIFIER)).await;
        let at = first["access_token"].as_str().unwrap().to_owned();
        let rt = first["refresh_token"].as_str().unwrap().to_owned();
        assert!(
            app.state
                .store
                .set_user_disabled(&app.user_id, true, &[])
                .await
                .unwrap()
        );
        assert_eq!(userinfo_status(app, &at).await.0, 401);
        let (s, body) = refresh(app, &i, &rt).await;
        assert_eq!((s, error_of(&body)), (400, "invalid_grant"));
        for t in [at.as_str(), rt.as_str()] {
            let r: Value = reqwest::Client::new()
                .post(app.url("/introspect"))
                .basic_auth(&i.client_id, Some(&i.secret))
                .form(&[("token", t)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(r["active"], false);
        }
        // The browser session is gone and the password no longer signs in.
        let r = i.browser.get(&authorize_url(app, &i.client_id, &[])).await;
        assert!(location(&r).starts_with("/login"));
        let (flow, csrf) = i
            .browser
            .open_login(&authorize_url(app, &i.client_id, &[]))
            .await;
        let r = i.browser.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 401);
        // Enabled again: sign-in works.
        assert!(
            app.state
                .store
                .set_user_disabled(&app.user_id, false, &[])
                .await
                .unwrap()
        );
        let r = i.browser.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 303);
    }
);

both!(
    hosted_pages_refuse_a_nul_byte_without_a_server_error,
    async |app: &TestApp| {
        let c = app.client(|_| {}).await;
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&authorize_url(app, &c.client_id, &[])).await;
        for path in [
            "/login?flow=a%00b",
            "/consent?flow=a%00b",
            "/login/lab?flow=a%00b",
            "/login/verify?flow=a%00b",
            "/login/continue?flow=a%00b",
        ] {
            let r = b.get(path).await;
            assert_eq!(r.status(), 400, "{path}");
        }
        let nul_email = format!("{EMAIL}\0");
        for form in [
            vec![
                ("flow", "a\0b"),
                ("csrf", csrf.as_str()),
                ("email", EMAIL),
                ("password", PASSWORD),
            ],
            vec![
                ("flow", flow.as_str()),
                ("csrf", csrf.as_str()),
                ("email", nul_email.as_str()),
                ("password", PASSWORD),
            ],
        ] {
            let r = b.post_form("/login", &form).await;
            assert_eq!(r.status(), 400, "{form:?}");
        }
        // The flow is untouched: the right password still signs in.
        let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 303);
    }
);
