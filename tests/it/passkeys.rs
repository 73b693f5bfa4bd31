//! WebAuthn ceremonies in process, with webauthn-authenticator-rs's `SoftPasskey` playing the
//! authenticator and the test playing the browser's JavaScript: registration from the account
//! page, passwordless sign-in, a security key as second factor, step-up to `phr`, and the
//! refusals (wrong origin, counter regression, removed credential). Both databases; the app is
//! served as `http://localhost:PORT` because an RP id cannot be an IP address.

use crate::both_with;
use crate::common::*;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{RequestChallengeResponse, Url};
use webauthn_rs_proto::{AllowCredentials, PublicKeyCredential};

/// SoftPasskey keeps no resident keys: give it the credential to use, and put the user handle
/// a discoverable credential would return into its answer (neither is signed).
pub(crate) fn sign_discoverable(
    sp: &mut impl WebauthnAuthenticator,
    options: Value,
    cred_id: &str,
    user_id: &str,
    at: &Url,
) -> PublicKeyCredential {
    let mut rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    rcr.public_key.allow_credentials = vec![AllowCredentials {
        type_: "public-key".into(),
        id: base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, cred_id)
            .unwrap(),
        transports: None,
    }];
    let mut pkc = sp.do_authentication(at.clone(), rcr).expect("assertion");
    pkc.response.user_handle = Some(uuid::Uuid::parse_str(user_id).unwrap().as_bytes().to_vec());
    pkc
}

/// Opens the login page of a new authorization; returns (flow, csrf).
pub(crate) async fn login_page(
    app: &TestApp,
    b: &Browser,
    client: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    b.open_login(&authorize_url(app, client, extra)).await
}

pub(crate) async fn client(app: &TestApp) -> (String, String) {
    let c = app.client(|c| c.skip_consent = true).await;
    (c.client_id, c.client_secret.unwrap())
}

/// Follows `{next}` to the client and returns the token response.
async fn follow(app: &TestApp, b: &Browser, c: &(String, String), next: &Value) -> Value {
    let r = b.get(next.as_str().unwrap()).await;
    let back = url::Url::parse(&location(&r)).unwrap();
    tokens(app, c, &back).await
}

both_with!(
    passkey_registers_and_signs_in_without_a_password_at_phr,
    on_localhost,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let mut sp = SoftPasskey::new(true);
        let cred_id = register(app, &b, &mut sp, "passkey").await;
        let page = b.get("/account").await.text().await.unwrap();
        assert!(page.contains("My passkey"));
        let c = client(app).await;
        let fresh = Browser::new(app);
        let (flow, csrf) = login_page(app, &fresh, &c.0, &[]).await;
        let (ceremony, options) = begin(
            &fresh,
            "/webauthn/login/begin",
            &[("flow", &flow), ("csrf", &csrf), ("mode", "modal")],
        )
        .await;
        assert_eq!(options["publicKey"]["userVerification"], "required");
        let pkc = sign_discoverable(&mut sp, options, &cred_id, &app.user_id, &origin(app));
        let (status, v) = finish(&fresh, app, &ceremony, &pkc).await;
        assert_eq!(status, 200, "{v}");
        let t = follow(app, &fresh, &c, &v["next"]).await;
        let id = jwt_claims(t["id_token"].as_str().unwrap());
        assert_eq!(id["acr"], "phr");
        assert_eq!(id["amr"], json!(["swk", "user", "mfa"]));
        // The sign-in is audited with where it came from, as a password one is.
        let entries = app.state.store.audit_for(&app.user_id).await.unwrap();
        let signed_in = entries
            .iter()
            .find(|e| e.action == "login.passkey")
            .unwrap();
        let d: Value = serde_json::from_str(&signed_in.details).unwrap();
        assert_eq!(d["source"], "127.0.0.1", "{d}");
        assert!(d["user_agent"].is_string(), "{d}");
        // The conditional-UI variant asks for mediation.
        let other = Browser::new(app);
        let (flow, csrf) = login_page(app, &other, &c.0, &[]).await;
        let (_, options) = begin(
            &other,
            "/webauthn/login/begin",
            &[("flow", &flow), ("csrf", &csrf), ("mode", "conditional")],
        )
        .await;
        assert_eq!(options["mediation"], "conditional");
    }
);

/// The test user with a security key registered from the account page, and a client that
/// skips consent: (the key, (client id, secret)).
async fn with_security_key(app: &TestApp) -> (SoftPasskey, (String, String)) {
    let b = Browser::new(app);
    account_sign_in(&b).await;
    let mut sp = SoftPasskey::new(true);
    register(app, &b, &mut sp, "security_key").await;
    (sp, client(app).await)
}

/// A sign-in asking for `mfa` in browser `b`: the password, then the security key on the
/// step-up page; returns the token response.
async fn password_then_security_key(
    app: &TestApp,
    b: &Browser,
    sp: &mut SoftPasskey,
    c: &(String, String),
) -> Value {
    let (flow, csrf) = login_page(app, b, &c.0, &[("acr_values", "mfa")]).await;
    let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
    let loc = location(&r);
    assert!(loc.starts_with("/login/verify?flow="), "{loc}");
    let html = b.get(&loc).await.text().await.unwrap();
    assert!(html.contains("data-webauthn-verify"));
    let csrf = html_input(&html, "csrf").unwrap_or(csrf);
    let (ceremony, options) = begin(
        b,
        "/webauthn/verify/begin",
        &[("flow", &flow), ("csrf", &csrf), ("need", "mfa")],
    )
    .await;
    let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let pkc = sp.do_authentication(origin(app), rcr).unwrap();
    let (status, v) = finish(b, app, &ceremony, &pkc).await;
    assert_eq!(status, 200, "{v}");
    follow(app, b, c, &v["next"]).await
}

both_with!(
    security_key_is_a_second_factor_after_the_password,
    on_localhost,
    async |app: &TestApp| {
        let (mut sp, c) = with_security_key(app).await;
        let t = password_then_security_key(app, &Browser::new(app), &mut sp, &c).await;
        let id = jwt_claims(t["id_token"].as_str().unwrap());
        assert_eq!(id["acr"], "mfa");
        assert_eq!(id["amr"], json!(["pwd", "swk", "mfa"]));
    }
);

// Chromium refuses, before asking any authenticator, registration options that bind the
// credential to user verification (credProtect `userVerificationRequired`) while verification
// is only `preferred`. A security key is a second factor: it is asked for neither.
both_with!(
    webauthn_security_key_options_do_not_require_verification_they_do_not_ask_for,
    on_localhost,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let csrf = account_csrf(&b).await;
        let (_, options) = begin(
            &b,
            "/webauthn/register/begin",
            &[("csrf", &csrf), ("kind", "security_key")],
        )
        .await;
        let pk = &options["publicKey"];
        assert_eq!(
            pk["authenticatorSelection"]["userVerification"],
            "preferred"
        );
        assert!(
            pk["extensions"].get("credentialProtectionPolicy").is_none(),
            "{pk}"
        );
        assert!(
            pk["extensions"]
                .get("enforceCredentialProtectionPolicy")
                .is_none(),
            "{pk}"
        );
    }
);

fn unix_now() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
}

// A password given again for `prompt=login` right after a password and a security key
// (timestamps are whole seconds): only the new sign-in's factors count, so the tokens say
// `pwd`, not `mfa`. Tried until the re-authentication fell in the second of the security
// key's proof, which is the case a `>=` on whole seconds got wrong.
both_with!(
    oidc_core_3_1_2_1_prompt_login_counts_only_the_factors_of_the_new_sign_in,
    on_localhost,
    async |app: &TestApp| {
        let (mut sp, c) = with_security_key(app).await;
        let mut same_second = false;
        for _ in 0..10 {
            // Start just after a second begins, so that all of it fits in that second.
            let into = unix_now().subsec_millis();
            tokio::time::sleep(std::time::Duration::from_millis(u64::from(1005 - into))).await;
            let fresh = Browser::new(app);
            let started = unix_now().as_secs();
            let t = password_then_security_key(app, &fresh, &mut sp, &c).await;
            assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["acr"], "mfa");
            let (flow, csrf) = login_page(app, &fresh, &c.0, &[("prompt", "login")]).await;
            let r = fresh.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
            let ended = unix_now().as_secs();
            let back = url::Url::parse(&location(&r)).unwrap();
            let id = jwt_claims(tokens(app, &c, &back).await["id_token"].as_str().unwrap());
            assert_eq!(id["acr"], "pwd", "{id}");
            assert_eq!(id["amr"], json!(["pwd"]), "{id}");
            if started == ended {
                same_second = true;
                break;
            }
        }
        assert!(
            same_second,
            "never fitted in one second: the case was not tried"
        );
    }
);

both_with!(
    acr_values_phr_steps_a_password_session_up_with_the_passkey,
    on_localhost,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let mut sp = SoftPasskey::new(true);
        register(app, &b, &mut sp, "passkey").await;
        let c = client(app).await;
        let fresh = Browser::new(app);
        let (flow, csrf) = login_page(app, &fresh, &c.0, &[]).await;
        let r = fresh.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert!(location(&r).starts_with(CALLBACK), "pwd is enough at first");
        // The relying party now asks for phishing resistance: only the passkey is asked.
        let r = fresh
            .get(&authorize_url(app, &c.0, &[("acr_values", "phr")]))
            .await;
        let loc = location(&r);
        assert!(loc.starts_with("/login/verify?flow="), "{loc}");
        let html = fresh.get(&loc).await.text().await.unwrap();
        assert!(!html.contains("authenticator app"), "TOTP cannot reach phr");
        let flow = loc.trim_start_matches("/login/verify?flow=").to_owned();
        let csrf = scraper::Html::parse_document(&html)
            .select(&scraper::Selector::parse("[data-webauthn-verify]").unwrap())
            .next()
            .unwrap()
            .value()
            .attr("data-csrf")
            .unwrap()
            .to_owned();
        let (ceremony, options) = begin(
            &fresh,
            "/webauthn/verify/begin",
            &[("flow", &flow), ("csrf", &csrf), ("need", "phr")],
        )
        .await;
        let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
        let pkc = sp.do_authentication(origin(app), rcr).unwrap();
        let (status, v) = finish(&fresh, app, &ceremony, &pkc).await;
        assert_eq!(status, 200, "{v}");
        let t = follow(app, &fresh, &c, &v["next"]).await;
        assert_eq!(
            jwt_claims(t["access_token"].as_str().unwrap())["acr"],
            "phr"
        );
    }
);

both_with!(
    webauthn_refuses_wrong_origin_counter_regression_and_removed_credentials,
    on_localhost,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let mut sp = SoftPasskey::new(true);
        let cred_id = register(app, &b, &mut sp, "passkey").await;
        let c = client(app).await;
        let attempt = async |at: &Url| {
            let fresh = Browser::new(app);
            let (flow, csrf) = login_page(app, &fresh, &c.0, &[]).await;
            let (ceremony, options) = begin(
                &fresh,
                "/webauthn/login/begin",
                &[("flow", &flow), ("csrf", &csrf)],
            )
            .await;
            (fresh, ceremony, options, at.clone())
        };

        // Wrong origin: the same host on another port.
        let evil = Url::parse("http://localhost:9").unwrap();
        let (fresh, ceremony, options, at) = attempt(&evil).await;
        let pkc = sign_discoverable(&mut sp, options, &cred_id, &app.user_id, &at);
        let (status, v) = finish(&fresh, app, &ceremony, &pkc).await;
        assert_eq!(status, 401, "{v}");
        assert!(fresh.get("/account").await.status() == 303, "not signed in");

        // Counter regression: two assertions signed in order, presented newest first.
        let (b1, c1, o1, at) = attempt(&origin(app)).await;
        let older = sign_discoverable(&mut sp, o1, &cred_id, &app.user_id, &at);
        let (b2, c2, o2, at) = attempt(&origin(app)).await;
        let newer = sign_discoverable(&mut sp, o2, &cred_id, &app.user_id, &at);
        let (status, _) = finish(&b2, app, &c2, &newer).await;
        assert_eq!(status, 200);
        let (status, v) = finish(&b1, app, &c1, &older).await;
        assert_eq!(status, 401);
        assert!(v["error"].as_str().unwrap().contains("counter"));
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.action == "webauthn.counter_regression")
        );

        // A ceremony is answered once.
        let (status, _) = finish(&b2, app, &c2, &newer).await;
        assert_eq!(status, 400);

        // Removed credential: sign-in with it is refused. Removal needs a fresh sign-in at
        // the user's level (b signed in with the password, then registered the passkey).
        let csrf = account_csrf(&b).await;
        let r = b
            .post_form(
                "/account/webauthn/remove",
                &[("csrf", &csrf), ("id", &cred_id)],
            )
            .await;
        assert_eq!(location(&r), "/account");
        assert!(
            app.state
                .store
                .list_webauthn(&app.user_id)
                .await
                .unwrap()
                .is_empty()
        );
        let (fresh, ceremony, options, at) = attempt(&origin(app)).await;
        let pkc = sign_discoverable(&mut sp, options, &cred_id, &app.user_id, &at);
        let (status, v) = finish(&fresh, app, &ceremony, &pkc).await;
        assert_eq!(status, 401);
        assert!(v["error"].as_str().unwrap().contains("not registered"));
    }
);

both_with!(
    registering_a_passkey_does_not_by_itself_reach_phr,
    on_localhost,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        enrol_totp(&b).await;
        // The session is at mfa (password + app). A new passkey registered from it must be
        // used before the session counts as phishing-resistant.
        let mut sp = SoftPasskey::new(true);
        register(app, &b, &mut sp, "passkey").await;
        let c = client(app).await;
        let r = b
            .get(&authorize_url(app, &c.0, &[("acr_values", "phr")]))
            .await;
        let loc = location(&r);
        assert!(
            loc.starts_with("/login/verify?flow="),
            "asked to use the passkey: {loc}"
        );
    }
);

both_with!(
    account_renaming_a_passkey_is_audited_with_the_change,
    on_localhost,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let mut sp = SoftPasskey::new(true);
        let cred_id = register(app, &b, &mut sp, "passkey").await;
        let csrf = account_csrf(&b).await;
        let r = b
            .post_form(
                "/account/webauthn/rename",
                &[("csrf", &csrf), ("id", &cred_id), ("name", "Laptop")],
            )
            .await;
        assert_eq!(r.status(), 303);
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        let renamed: Vec<_> = events
            .iter()
            .filter(|e| e.action == "factor.renamed")
            .collect();
        assert_eq!(renamed.len(), 1, "{events:?}");
        assert!(renamed[0].details.contains("Laptop"));
    }
);

both_with!(
    webauthn_ceremony_is_finished_only_by_the_browser_that_began_it,
    on_localhost,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let mut sp = SoftPasskey::new(true);
        let cred_id = register(app, &b, &mut sp, "passkey").await;
        let c = client(app).await;
        let owner = Browser::new(app);
        let (flow, csrf) = login_page(app, &owner, &c.0, &[]).await;
        let (ceremony, options) = begin(
            &owner,
            "/webauthn/login/begin",
            &[("flow", &flow), ("csrf", &csrf), ("mode", "modal")],
        )
        .await;
        let pkc = sign_discoverable(&mut sp, options, &cred_id, &app.user_id, &origin(app));
        // Another browser that learned the ceremony id is refused, and the ceremony stays
        // for its owner: it cannot be used up by someone else.
        let other = Browser::new(app);
        login_page(app, &other, &c.0, &[]).await;
        let (status, v) = finish(&other, app, &ceremony, &pkc).await;
        assert_eq!(status, 400, "{v}");
        assert!(v.to_string().contains("another browser"), "{v}");
        let (status, v) = finish(&owner, app, &ceremony, &pkc).await;
        assert_eq!(status, 200, "{v}");
        assert!(follow(app, &owner, &c, &v["next"]).await["id_token"].is_string());
    }
);
