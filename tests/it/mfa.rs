//! Authentication strength through the hosted pages: TOTP enrolment and step-up, recovery
//! codes, `acr` that drops back after `max_age`, and MFA policy per lab, role and client
//! (step-up, enrolment with grace, `unmet_authentication_requirements`). Both databases.

use crate::common::*;
use crate::{both, both_with};
use latchkey_core::Acr;
use latchkey_core::names::{LabId, UserId};
use serde_json::Value;

pub async fn new_client(app: &TestApp, min: Option<Acr>) -> (String, String) {
    let c = app
        .client(|c| {
            c.skip_consent = true;
            c.min_acr = min;
        })
        .await;
    (c.client_id, c.client_secret.unwrap())
}

/// Authorize → password; returns where the browser is sent next.
pub async fn after_password(b: &Browser, url: &str) -> String {
    let (flow, csrf) = b.open_login(url).await;
    let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
    assert_eq!(r.status(), 303);
    location(&r)
}

/// Posts a code on the step-up page at `loc`.
pub async fn submit_code(b: &Browser, loc: &str, method: &str, code: &str) -> reqwest::Response {
    let html = b.get(loc).await.text().await.unwrap();
    let flow = html_input(&html, "flow").expect("flow");
    let csrf = html_input(&html, "csrf").expect("csrf");
    b.post_form(
        "/login/verify",
        &[
            ("flow", &flow),
            ("csrf", &csrf),
            ("method", method),
            ("code", code),
        ],
    )
    .await
}

both!(
    totp_step_up_asks_only_for_the_code_and_tokens_say_mfa,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let key = enrol_totp(&b).await;
        let client = new_client(app, None).await;
        // The session already has a password; acr_values=mfa asks only for the code.
        let r = b
            .get(&authorize_url(app, &client.0, &[("acr_values", "mfa")]))
            .await;
        // Enrolling just now proved the app, so the session is already at mfa.
        let back = url::Url::parse(&location(&r)).unwrap();
        let t = tokens(app, &client, &back).await;
        let id = jwt_claims(t["id_token"].as_str().unwrap());
        assert_eq!(id["acr"], "mfa");
        assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

        // A new browser: password first, then only the missing factor.
        let b2 = Browser::new(app);
        let loc = after_password(
            &b2,
            &authorize_url(app, &client.0, &[("acr_values", "mfa")]),
        )
        .await;
        assert!(loc.starts_with("/login/verify?flow="), "{loc}");
        let page = b2.get(&loc).await.text().await.unwrap();
        assert!(page.contains("authenticator app"));
        assert!(
            !page.contains("name=\"password\""),
            "no password asked again"
        );
        let r = submit_code(&b2, &loc, "totp", &totp_code(&key, 0)).await;
        let back = url::Url::parse(&location(&r)).unwrap();
        let t = tokens(app, &client, &back).await;
        let access = jwt_claims(t["access_token"].as_str().unwrap());
        assert_eq!(access["acr"], "mfa");
        assert!(
            access["amr"]
                .as_array()
                .unwrap()
                .contains(&Value::from("otp"))
        );
    }
);

both!(
    rfc6238_5_2_a_code_of_a_future_time_step_is_refused,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let key = enrol_totp(&b).await;
        let client = new_client(app, Some(Acr::Mfa)).await;
        let url = authorize_url(app, &client.0, &[]);
        let b1 = Browser::new(app);
        let loc = after_password(&b1, &url).await;
        // The next step's code: an attacker's head start, or a clock running fast.
        let r = submit_code(&b1, &loc, "totp", &totp_code(&key, 30)).await;
        assert_eq!(r.status(), 401);
        assert!(r.text().await.unwrap().contains("not correct"));
        let r = submit_code(&b1, &loc, "totp", &totp_code(&key, 0)).await;
        assert!(
            location(&r).starts_with(CALLBACK),
            "the current one is accepted"
        );
    }
);

both!(
    rfc6238_5_2_a_totp_code_is_accepted_once,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let key = enrol_totp(&b).await;
        let client = new_client(app, Some(Acr::Mfa)).await;
        let url = authorize_url(app, &client.0, &[]);
        let code = totp_code(&key, 0);
        let b1 = Browser::new(app);
        let loc = after_password(&b1, &url).await;
        let r = submit_code(&b1, &loc, "totp", &code).await;
        assert!(location(&r).starts_with(CALLBACK), "first use accepted");
        let b2 = Browser::new(app);
        let loc = after_password(&b2, &url).await;
        let r = submit_code(&b2, &loc, "totp", &code).await;
        assert_eq!(r.status(), 401, "the same code again is refused");
        assert!(r.text().await.unwrap().contains("already used"));
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        assert!(events.iter().any(|e| e.action == "totp.replay_refused"));
    }
);

both!(
    wrong_second_factor_codes_end_the_flow_after_five,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        enrol_totp(&b).await;
        let client = new_client(app, Some(Acr::Mfa)).await;
        let b1 = Browser::new(app);
        let loc = after_password(&b1, &authorize_url(app, &client.0, &[])).await;
        for _ in 0..4 {
            let r = submit_code(&b1, &loc, "totp", "000000").await;
            assert_eq!(r.status(), 401);
        }
        let r = submit_code(&b1, &loc, "totp", "000000").await;
        assert_eq!(r.status(), 400);
        assert_eq!(b1.get(&loc).await.status(), 400, "the flow is gone");
    }
);

both!(
    acr_drops_back_after_max_age_and_only_the_password_is_asked,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        enrol_totp(&b).await;
        let client = new_client(app, None).await;
        let r = b.get(&authorize_url(app, &client.0, &[])).await;
        let back = url::Url::parse(&location(&r)).unwrap();
        let t = tokens(app, &client, &back).await;
        assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["acr"], "mfa");
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        // max_age=1: both factors are too old; the request needs only pwd, so only the
        // password is asked, and the token no longer claims mfa.
        let r = b
            .get(&authorize_url(app, &client.0, &[("max_age", "1")]))
            .await;
        let loc = location(&r);
        assert!(loc.starts_with("/login?flow="), "{loc}");
        let html = b.get(&loc).await.text().await.unwrap();
        let r = b
            .submit_login(
                &html_input(&html, "flow").unwrap(),
                &html_input(&html, "csrf").unwrap(),
                EMAIL,
                PASSWORD,
            )
            .await;
        let back = url::Url::parse(&location(&r)).unwrap();
        let t = tokens(app, &client, &back).await;
        let id = jwt_claims(t["id_token"].as_str().unwrap());
        assert_eq!(id["acr"], "pwd");
        assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    }
);

both!(
    oidc_core_3_1_2_6_prompt_none_below_the_level_is_interaction_required,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        enrol_totp(&b).await;
        let client = new_client(app, None).await;
        let b1 = Browser::new(app);
        let loc = after_password(&b1, &authorize_url(app, &client.0, &[])).await;
        assert!(loc.starts_with(CALLBACK));
        let r = b1
            .get(&authorize_url(
                app,
                &client.0,
                &[("prompt", "none"), ("acr_values", "mfa")],
            ))
            .await;
        let back = url::Url::parse(&location(&r)).unwrap();
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("interaction_required")
        );
    }
);

both!(
    oidc_core_5_5_1_1_essential_acr_without_a_factor_is_unmet_authentication_requirements,
    async |app: &TestApp| {
        let client = new_client(app, None).await;
        let claims = r#"{"id_token":{"acr":{"essential":true,"values":["phr"]}}}"#;
        let b = Browser::new(app);
        let loc = after_password(&b, &authorize_url(app, &client.0, &[("claims", claims)])).await;
        let back = url::Url::parse(&loc).unwrap();
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("unmet_authentication_requirements")
        );
        assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
    }
);

/// What the browser sees right after the password.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Outcome {
    Code,
    StepUp,
    Enrol,
    Unmet,
}

fn outcome(loc: &str) -> Outcome {
    if loc.starts_with("/login/verify") {
        Outcome::StepUp
    } else if loc.starts_with("/login/enrol") {
        Outcome::Enrol
    } else if loc.contains("error=unmet_authentication_requirements") {
        Outcome::Unmet
    } else if loc.contains("code=") {
        Outcome::Code
    } else {
        panic!("unexpected redirect {loc}")
    }
}

/// The rule the matrix checks, written independently of the server's code: the strictest
/// demand wins; a user who has a factor reaching it steps up; a user who has none is led to
/// enrol while the lab's grace lasts, else the client hears `unmet_authentication_requirements`.
fn expected(
    lab: Option<Acr>,
    grace: bool,
    role: Option<Acr>,
    client: Option<Acr>,
    reach: Acr,
) -> Outcome {
    let need = [lab, role, client]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(Acr::Pwd);
    if need == Acr::Pwd {
        Outcome::Code
    } else if reach >= need {
        Outcome::StepUp
    } else if grace && lab.is_some() {
        Outcome::Enrol
    } else {
        Outcome::Unmet
    }
}

both_with!(
    policy_matrix_lab_role_client_minimums_give_the_right_step,
    on_localhost,
    async |app: &TestApp| {
        use latchkey_server::store::factors::WebauthnRow;
        let store = &app.state.store;
        let mut cases = 0;
        for lab in [None, Some(Acr::Mfa)] {
            for grace in [false, true] {
                if grace && lab.is_none() {
                    continue;
                }
                for role in [None, Some(Acr::Phr)] {
                    for client_min in [None, Some(Acr::Mfa)] {
                        for reach in [Acr::Pwd, Acr::Mfa, Acr::Phr] {
                            cases += 1;
                            // A fresh lab and member for each case.
                            let lab_row = latchkey_server::provision::create_lab(
                                store,
                                &format!("matrix {cases}"),
                            )
                            .await
                            .unwrap();
                            let email = format!("m{cases}@lab.example");
                            let user = latchkey_server::provision::create_user(
                                store,
                                &app.state.config,
                                &app.state.hasher,
                                &lab_row.id,
                                &email,
                                None,
                                PASSWORD,
                            )
                            .await
                            .unwrap();
                            store
                                .set_lab_policy(
                                    &LabId::new(&lab_row.id),
                                    lab,
                                    grace.then_some(7),
                                    None,
                                    &[],
                                )
                                .await
                                .unwrap();
                            if role.is_some() {
                                store
                                    .set_role_policy(&LabId::new(&lab_row.id), "admin", role)
                                    .await
                                    .unwrap();
                                store
                                    .assign_role(
                                        &UserId::new(&user.id),
                                        &LabId::new(&lab_row.id),
                                        "admin",
                                    )
                                    .await
                                    .unwrap();
                            }
                            match reach {
                                Acr::Pwd => {}
                                Acr::Mfa => store
                                    .replace_recovery_codes(
                                        &user.id,
                                        vec![vec![cases as u8; 32]],
                                        &seeded(&user.id),
                                    )
                                    .await
                                    .unwrap(),
                                Acr::Phr => store
                                    .add_webauthn(
                                        &WebauthnRow {
                                            id: format!("cred-{cases}"),
                                            user_id: user.id.clone(),
                                            name: "Passkey".into(),
                                            kind: "passkey".into(),
                                            credential: "{}".into(),
                                            sign_count: 0,
                                            backup_eligible: false,
                                            backup_state: false,
                                            created_at: 0,
                                            last_used_at: None,
                                            attestation_root: None,
                                        },
                                        &seeded(&user.id),
                                    )
                                    .await
                                    .unwrap(),
                            }
                            let client = new_client(app, client_min).await;
                            let b = Browser::new(app);
                            let (flow, csrf) =
                                b.open_login(&authorize_url(app, &client.0, &[])).await;
                            let r = b.submit_login(&flow, &csrf, &email, PASSWORD).await;
                            let got = outcome(&location(&r));
                            let want = expected(lab, grace, role, client_min, reach);
                            assert_eq!(
                                got, want,
                                "lab={lab:?} grace={grace} role={role:?} client={client_min:?} reach={reach:?}"
                            );
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 36);
    }
);

both!(
    lab_grace_lets_members_defer_enrolment_then_ends,
    async |app: &TestApp| {
        let store = &app.state.store;
        store
            .set_lab_policy(&app.lab(), Some(Acr::Mfa), None, Some(1), &[])
            .await
            .unwrap();
        let client = new_client(app, None).await;
        let url = authorize_url(app, &client.0, &[]);
        let b = Browser::new(app);
        let loc = after_password(&b, &url).await;
        assert!(loc.starts_with("/login/enrol?flow="), "{loc}");
        let html = b.get(&loc).await.text().await.unwrap();
        assert!(html.contains("1 sign-in left"), "the page says how long");
        assert!(html.contains("Set up an authenticator app"));
        let doc = scraper::Html::parse_document(&html);
        let sel =
            scraper::Selector::parse("form[action=\"/login/enrol\"] input[name=csrf]").unwrap();
        let csrf = doc
            .select(&sel)
            .next()
            .unwrap()
            .value()
            .attr("value")
            .unwrap()
            .to_owned();
        let flow = html_input(&html, "flow").unwrap();
        let r = b
            .post_form("/login/enrol", &[("flow", &flow), ("csrf", &csrf)])
            .await;
        let back = url::Url::parse(&location(&r)).unwrap();
        let t = tokens(app, &client, &back).await;
        assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["acr"], "pwd");
        // The one deferral is used up: the next sign-in cannot go on without a factor.
        let b2 = Browser::new(app);
        let loc = after_password(&b2, &url).await;
        assert_eq!(outcome(&loc), Outcome::Unmet);
    }
);

both!(
    enrolment_during_sign_in_sets_up_totp_and_continues_at_mfa,
    async |app: &TestApp| {
        app.state
            .store
            .set_lab_policy(&app.lab(), Some(Acr::Mfa), Some(14), None, &[])
            .await
            .unwrap();
        let client = new_client(app, None).await;
        let b = Browser::new(app);
        let loc = after_password(&b, &authorize_url(app, &client.0, &[])).await;
        let html = b.get(&loc).await.text().await.unwrap();
        assert!(html.contains("14 days left"));
        let doc = scraper::Html::parse_document(&html);
        let sel = scraper::Selector::parse("form[action=\"/account/totp/setup\"] input[name=csrf]")
            .unwrap();
        let csrf = doc
            .select(&sel)
            .next()
            .unwrap()
            .value()
            .attr("value")
            .unwrap()
            .to_owned();
        let flow = html_input(&html, "flow").unwrap();
        let r = b
            .post_form("/account/totp/setup", &[("csrf", &csrf), ("flow", &flow)])
            .await;
        let key = select_text(&r.text().await.unwrap(), "#totp-key").unwrap();
        let r = b
            .post_form(
                "/account/totp/confirm",
                &[
                    ("csrf", &csrf),
                    ("flow", &flow),
                    ("code", &totp_code(&key, 0)),
                ],
            )
            .await;
        let loc = location(&r);
        assert!(loc.starts_with("/login/continue?flow="), "{loc}");
        let r = b.get(&loc).await;
        let back = url::Url::parse(&location(&r)).unwrap();
        let t = tokens(app, &client, &back).await;
        assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["acr"], "mfa");
    }
);

both!(
    removing_the_last_factor_a_policy_requires_is_refused,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        enrol_totp(&b).await;
        app.state
            .store
            .set_lab_policy(&app.lab(), Some(Acr::Mfa), None, None, &[])
            .await
            .unwrap();
        let csrf = account_csrf(&b).await;
        let r = b
            .post_form("/account/totp/remove", &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("last sign-in method"));
        assert!(
            app.state.enrolled(&app.user_id).await.unwrap().totp,
            "still there"
        );
        // Without the policy it may go.
        app.state
            .store
            .set_lab_policy(&app.lab(), None, None, None, &[])
            .await
            .unwrap();
        let r = b
            .post_form("/account/totp/remove", &[("csrf", &csrf)])
            .await;
        assert_eq!(location(&r), "/account");
        assert!(!app.state.enrolled(&app.user_id).await.unwrap().totp);
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        assert!(events.iter().any(|e| e.action == "factor.removed"));
    }
);

both!(
    changing_factors_needs_a_recent_sign_in_at_the_users_level,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let key = enrol_totp(&b).await;
        // A second browser that knows only the password cannot add or remove factors.
        let thief = Browser::new(app);
        account_sign_in(&thief).await;
        let csrf = account_csrf(&thief).await;
        let r = thief
            .post_form("/account/recovery-codes", &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status(), 303);
        let loc = location(&r);
        assert!(
            loc.starts_with("/login?flow="),
            "asked to sign in again: {loc}"
        );
        let html = thief.get(&loc).await.text().await.unwrap();
        let r = thief
            .submit_login(
                &html_input(&html, "flow").unwrap(),
                &html_input(&html, "csrf").unwrap(),
                EMAIL,
                PASSWORD,
            )
            .await;
        let loc = location(&r);
        assert!(
            loc.starts_with("/login/verify?flow="),
            "and for the second factor: {loc}"
        );
        assert_eq!(
            app.state
                .store
                .recovery_status(&app.user_id)
                .await
                .unwrap()
                .total,
            0
        );
        // With the code, the sign-in completes; the change can then be made.
        let r = submit_code(&thief, &loc, "totp", &totp_code(&key, 0)).await;
        assert_eq!(location(&r), "/account");
        let r = thief
            .post_form("/account/recovery-codes", &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status(), 200);
    }
);

both!(
    refresh_after_a_stricter_policy_is_invalid_grant,
    async |app: &TestApp| {
        let c = app
            .client(|c| {
                c.skip_consent = true;
            })
            .await;
        let client = (c.client_id, c.client_secret.unwrap());
        let b = Browser::new(app);
        let back = url::Url::parse(
            &after_password(
                &b,
                &authorize_url(app, &client.0, &[("scope", "openid offline_access")]),
            )
            .await,
        )
        .unwrap();
        let t = tokens(app, &client, &back).await;
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        app.state
            .store
            .set_lab_policy(&app.lab(), Some(Acr::Mfa), None, None, &[])
            .await
            .unwrap();
        // Nodes cache whether a lab has a policy for five seconds.
        tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_grant");
        assert!(v["error_description"].as_str().unwrap().contains("mfa"));
        // The grant ended, with its entry.
        let (chain, _) = app.state.store.audit_chain().await.unwrap();
        let last = &chain.last().unwrap().entry;
        assert_eq!(
            last.action,
            latchkey_server::audit::Action::GrantEnded.as_str()
        );
        assert!(last.details.contains("acr `mfa`"), "{}", last.details);
    }
);

both!(
    grace_deferral_is_refused_to_users_who_have_a_suitable_factor,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        enrol_totp(&b).await;
        app.state
            .store
            .set_lab_policy(&app.lab(), Some(Acr::Mfa), Some(14), None, &[])
            .await
            .unwrap();
        let client = new_client(app, None).await;
        let b1 = Browser::new(app);
        let loc = after_password(&b1, &authorize_url(app, &client.0, &[])).await;
        assert!(loc.starts_with("/login/verify?flow="), "{loc}");
        let html = b1.get(&loc).await.text().await.unwrap();
        let flow = html_input(&html, "flow").unwrap();
        let csrf = html_input(&html, "csrf").unwrap();
        // "Not now" is not on offer: posting it anyway does not skip the code.
        let r = b1
            .post_form("/login/enrol", &[("flow", &flow), ("csrf", &csrf)])
            .await;
        let loc = location(&r);
        assert!(
            !loc.contains("code="),
            "no code without the second factor: {loc}"
        );
        let r = b1.get(&loc).await;
        assert!(
            location(&r).starts_with("/login/verify"),
            "back to the step-up page: {}",
            location(&r)
        );
        assert_eq!(
            b1.get(&format!("/login/enrol?flow={flow}")).await.status(),
            303
        );
    }
);

both!(
    wrong_codes_lock_the_second_factor_across_flows,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let key = enrol_totp(&b).await;
        let csrf = account_csrf(&b).await;
        b.post_form("/account/recovery-codes", &[("csrf", &csrf)])
            .await;
        let client = new_client(app, Some(Acr::Mfa)).await;
        let url = authorize_url(app, &client.0, &[]);
        // Four wrong codes in one flow, a fifth in another: the user is locked, not the flow.
        let b1 = Browser::new(app);
        let loc = after_password(&b1, &url).await;
        for _ in 0..4 {
            assert_eq!(submit_code(&b1, &loc, "totp", "000000").await.status(), 401);
        }
        let b2 = Browser::new(app);
        let loc2 = after_password(&b2, &url).await;
        // The fifth starts the lock: 429, with Retry-After saying when it ends (30 s).
        let r = submit_code(&b2, &loc2, "recovery", "wrong-code").await;
        assert_eq!(r.status(), 429);
        let wait = |r: &reqwest::Response| -> i64 {
            r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!((1..=30).contains(&wait(&r)), "{}", wait(&r));
        assert!(r.text().await.unwrap().contains("Too many wrong codes"));
        // Even the right code is refused (unchecked) while the lock lasts.
        let r = submit_code(&b2, &loc2, "totp", &totp_code(&key, 0)).await;
        assert_eq!(r.status(), 429);
        assert!((1..=30).contains(&wait(&r)));
        assert!(r.text().await.unwrap().contains("Too many wrong codes"));
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        assert!(events.iter().any(|e| e.action == "factor.locked"));
    }
);

/// The audit entry of a factor a test seeds directly in the store.
fn seeded(user_id: &str) -> latchkey_server::audit::Event {
    latchkey_server::audit::Event::new(
        user_id,
        latchkey_server::audit::Action::FactorEnrolled,
        user_id,
        serde_json::json!({"seeded": true}),
    )
}

both!(
    oidc_core_5_5_1_1_essential_acr_of_unknown_values_is_refused_not_weakened,
    async |app: &TestApp| {
        let client = new_client(app, None).await;
        let claims = r#"{"id_token":{"acr":{"essential":true,"values":["PHR"]}}}"#;
        let b = Browser::new(app);
        let r = b
            .get(&authorize_url(app, &client.0, &[("claims", claims)]))
            .await;
        let back = url::Url::parse(&location(&r)).unwrap();
        assert!(back.as_str().starts_with(CALLBACK), "{back}");
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("unmet_authentication_requirements")
        );
        assert!(
            query_param(&back, "error_description")
                .unwrap()
                .contains("pwd, mfa, phr")
        );
    }
);
