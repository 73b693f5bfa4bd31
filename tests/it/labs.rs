//! One active lab per token: a user in several labs picks one after signing in (the lab
//! picker), unless the request's `lab` hint names one of their labs; the chosen lab decides the
//! MFA policy and the `lab`, `roles`, `features` claims. Removing a user from a lab ends their
//! sessions and that lab's refresh tokens at once. Both databases.

use crate::both;
use crate::common::*;
use latchkey_core::Acr;
use latchkey_core::names::LabId;
use serde_json::Value;

/// The test user's second lab, "Lab 7" (the first is the test app's "Lab 42").
async fn second_lab(app: &TestApp) -> String {
    let store = &app.state.store;
    let lab = latchkey_server::provision::create_lab(store, "Lab 7")
        .await
        .unwrap();
    assert!(
        store
            .add_membership(&app.user_id, &lab.id, &[])
            .await
            .unwrap()
    );
    lab.id
}

/// A lab the test user is not in.
async fn foreign_lab(app: &TestApp) -> String {
    latchkey_server::provision::create_lab(&app.state.store, "Lab 99")
        .await
        .unwrap()
        .id
}

async fn new_client(app: &TestApp) -> (String, String) {
    let c = app.client(|c| c.skip_consent = true).await;
    (c.client_id, c.client_secret.unwrap())
}

/// Authorize → password; returns where the browser is sent next.
async fn after_password(b: &Browser, url: &str) -> String {
    let (flow, csrf) = b.open_login(url).await;
    let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
    assert_eq!(r.status(), 303, "the password is right");
    location(&r)
}

/// The picker at `loc`: its (flow, csrf, offered lab ids) and the page.
async fn open_picker(b: &Browser, loc: &str) -> (String, String, Vec<String>, String) {
    assert!(
        loc.starts_with("/login/lab?flow="),
        "expected the picker, got {loc}"
    );
    let r = b.get(loc).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse("input[type=radio][name=lab]").unwrap();
    let labs = doc
        .select(&sel)
        .filter_map(|e| e.value().attr("value").map(str::to_owned))
        .collect();
    (
        html_input(&html, "flow").unwrap(),
        html_input(&html, "csrf").unwrap(),
        labs,
        html,
    )
}

async fn pick(b: &Browser, loc: &str, lab: &str) -> reqwest::Response {
    let (flow, csrf, _, _) = open_picker(b, loc).await;
    b.post_form(
        "/login/lab",
        &[("flow", &flow), ("csrf", &csrf), ("lab", lab)],
    )
    .await
}

fn to_client(loc: &str) -> url::Url {
    assert!(loc.starts_with(CALLBACK), "expected the client, got {loc}");
    url::Url::parse(loc).unwrap()
}

async fn refresh(app: &TestApp, client: &(String, String), rt: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap()
}

both!(several_labs_show_the_picker, async |app: &TestApp| {
    let b_lab = second_lab(app).await;
    let client = new_client(app).await;
    let b = Browser::new(app);
    let loc = after_password(&b, &authorize_url(app, &client.0, &[])).await;
    let r = b.get(&loc).await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let (_, _, labs, html) = open_picker(&b, &loc).await;
    assert_eq!(
        labs,
        vec![app.lab_id.clone(), b_lab],
        "the user's labs, oldest first"
    );
    assert_eq!(
        select_text(&html, "fieldset legend").as_deref(),
        Some("Lab")
    );
    for (i, name) in [(1, "Lab 42"), (2, "Lab 7")] {
        assert_eq!(
            select_text(&html, &format!("label[for=\"lab-{i}\"]")).as_deref(),
            Some(name),
            "each radio button has its label"
        );
    }
    assert!(!html.contains("<script>") && !html.contains("style="));
    // A user in one lab never sees it.
    assert!(
        app.state
            .store
            .remove_membership(&app.user(), &app.lab(), &[])
            .await
            .unwrap()
    );
    let b = Browser::new(app);
    let loc = after_password(&b, &authorize_url(app, &client.0, &[])).await;
    let t = tokens(app, &client, &to_client(&loc)).await;
    let b_lab = app.state.store.user_labs(&app.user_id).await.unwrap()[0].clone();
    assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["lab"], b_lab);
});

both!(
    lab_hint_skips_the_picker_at_sign_in_and_for_a_lab_chosen_before,
    async |app: &TestApp| {
        let b_lab = second_lab(app).await;
        let client = new_client(app).await;
        // By name and by id.
        for hint in ["Lab 7", b_lab.as_str()] {
            let b = Browser::new(app);
            let loc = after_password(&b, &authorize_url(app, &client.0, &[("lab", hint)])).await;
            let t = tokens(app, &client, &to_client(&loc)).await;
            assert_eq!(
                jwt_claims(t["access_token"].as_str().unwrap())["lab"],
                b_lab
            );
            assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["lab"], b_lab);
        }
        // A signed-in browser asking for a lab the user never chose for this client is not
        // answered silently (the client would learn the user's labs one request at a time):
        // the picker, with that lab preselected. Once chosen, the hint answers at once.
        let b = Browser::new(app);
        after_password(&b, &authorize_url(app, &client.0, &[("lab", "Lab 7")])).await;
        let other = || authorize_url(app, &client.0, &[("lab", &app.lab_id)]);
        let loc = location(&b.get(&other()).await);
        let (_, _, _, html) = open_picker(&b, &loc).await;
        let doc = scraper::Html::parse_document(&html);
        let checked = scraper::Selector::parse("input[name=lab][checked]").unwrap();
        let preselected: Vec<_> = doc
            .select(&checked)
            .filter_map(|e| e.value().attr("value"))
            .collect();
        assert_eq!(preselected, [app.lab_id.as_str()]);
        let r = pick(&b, &loc, &app.lab_id).await;
        tokens(app, &client, &to_client(&location(&r))).await;
        let r = b.get(&other()).await;
        let t = tokens(app, &client, &to_client(&location(&r))).await;
        assert_eq!(
            jwt_claims(t["id_token"].as_str().unwrap())["lab"],
            app.lab_id
        );
    }
);

both!(
    lab_hint_for_a_foreign_lab_is_ignored,
    async |app: &TestApp| {
        second_lab(app).await;
        let foreign = foreign_lab(app).await;
        let client = new_client(app).await;
        for hint in ["Lab 99", foreign.as_str(), "no such lab"] {
            let b = Browser::new(app);
            // Not an error before sign-in (nothing is known yet) …
            let url = authorize_url(app, &client.0, &[("lab", hint)]);
            let loc = after_password(&b, &url).await;
            // … nor after: the picker, offering only the user's own labs.
            let (_, _, labs, html) = open_picker(&b, &loc).await;
            assert_eq!(labs.len(), 2);
            assert!(!labs.contains(&foreign));
            assert!(!html.contains("Lab 99"));
        }
    }
);

both!(
    picked_lab_sets_lab_roles_features_claims,
    async |app: &TestApp| {
        let store = &app.state.store;
        let b_lab = second_lab(app).await;
        store
            .set_role_feature(&app.lab(), "viewer", "orders:read", true)
            .await
            .unwrap();
        store
            .assign_role(&app.user(), &app.lab(), "viewer")
            .await
            .unwrap();
        store
            .set_role_feature(&LabId::new(&b_lab), "reviewer", "papers:review", true)
            .await
            .unwrap();
        store
            .assign_role(&app.user(), &LabId::new(&b_lab), "reviewer")
            .await
            .unwrap();
        store
            .set_member_feature(
                &app.user(),
                &LabId::new(&b_lab),
                "papers:publish",
                Some(true),
                &[],
            )
            .await
            .unwrap();
        let client = new_client(app).await;
        let b = Browser::new(app);
        let url = authorize_url(app, &client.0, &[("scope", "openid offline_access")]);
        let loc = after_password(&b, &url).await;
        let r = pick(&b, &loc, &b_lab).await;
        assert_eq!(r.status(), 303);
        let t = tokens(app, &client, &to_client(&location(&r))).await;
        for jwt in ["id_token", "access_token"] {
            let c = jwt_claims(t[jwt].as_str().unwrap());
            assert_eq!(c["lab"], b_lab, "{jwt}");
            assert_eq!(c["roles"], serde_json::json!(["reviewer"]), "{jwt}");
            assert_eq!(
                c["features"],
                serde_json::json!(["papers:publish", "papers:review"]),
                "{jwt}"
            );
        }
        // Refresh keeps the grant's lab, and a changed grant applies to the next token.
        store
            .set_member_feature(
                &app.user(),
                &LabId::new(&b_lab),
                "papers:publish",
                None,
                &[],
            )
            .await
            .unwrap();
        let r = refresh(app, &client, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!(r.status(), 200);
        let t2: Value = r.json().await.unwrap();
        let c = jwt_claims(t2["access_token"].as_str().unwrap());
        assert_eq!(c["lab"], b_lab);
        assert_eq!(c["features"], serde_json::json!(["papers:review"]));
    }
);

both!(picked_lab_policy_applies, async |app: &TestApp| {
    let store = &app.state.store;
    let b_lab = second_lab(app).await;
    store
        .set_lab_policy(&LabId::new(&b_lab), Some(Acr::Mfa), None, None, &[])
        .await
        .unwrap();
    let account = Browser::new(app);
    account_sign_in(&account).await;
    let key = enrol_totp(&account).await;
    let client = new_client(app).await;
    // Lab 42 has no policy: the password is enough.
    let b = Browser::new(app);
    let loc = after_password(&b, &authorize_url(app, &client.0, &[])).await;
    let r = pick(&b, &loc, &app.lab_id).await;
    let t = tokens(app, &client, &to_client(&location(&r))).await;
    let c = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(c["acr"], "pwd");
    assert_eq!(c["lab"], app.lab_id.as_str());
    // Lab 7 requires mfa: picking it asks for the second factor.
    let b = Browser::new(app);
    let loc = after_password(&b, &authorize_url(app, &client.0, &[])).await;
    let r = pick(&b, &loc, &b_lab).await;
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert!(loc.starts_with("/login/verify?flow="), "{loc}");
    let html = b.get(&loc).await.text().await.unwrap();
    let r = b
        .post_form(
            "/login/verify",
            &[
                ("flow", &html_input(&html, "flow").unwrap()),
                ("csrf", &html_input(&html, "csrf").unwrap()),
                ("method", "totp"),
                ("code", &totp_code(&key, 0)),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let t = tokens(app, &client, &to_client(&location(&r))).await;
    let c = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(c["acr"], "mfa");
    assert_eq!(c["lab"], b_lab);
    // The hint leads to the same policy without the picker.
    let b = Browser::new(app);
    let loc = after_password(&b, &authorize_url(app, &client.0, &[("lab", "Lab 7")])).await;
    assert!(loc.starts_with("/login/verify?flow="), "{loc}");
});

both!(
    prompt_none_with_several_labs_needs_interaction_and_cannot_list_them,
    async |app: &TestApp| {
        let b_lab = second_lab(app).await;
        let client = new_client(app).await;
        let b = Browser::new(app);
        let loc = after_password(&b, &authorize_url(app, &client.0, &[("lab", "Lab 42")])).await;
        to_client(&loc);
        let r = b
            .get(&authorize_url(app, &client.0, &[("prompt", "none")]))
            .await;
        let back = to_client(&location(&r));
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("interaction_required")
        );
        assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
        // A foreign hint changes nothing; a valid one answers silently.
        let foreign = foreign_lab(app).await;
        let r = b
            .get(&authorize_url(
                app,
                &client.0,
                &[("prompt", "none"), ("lab", &foreign)],
            ))
            .await;
        let back = to_client(&location(&r));
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("interaction_required")
        );
        // A lab the user is in but never chose for this client answers exactly like the
        // foreign one: silent requests cannot list the user's labs (issue 11 item 6).
        let silent_b = || authorize_url(app, &client.0, &[("prompt", "none"), ("lab", "Lab 7")]);
        let r = b.get(&silent_b()).await;
        let back = to_client(&location(&r));
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("interaction_required")
        );
        // Once the user has chosen that lab for the client, the hint answers silently.
        let loc = location(
            &b.get(&authorize_url(app, &client.0, &[("lab", "Lab 7")]))
                .await,
        );
        let r = pick(&b, &loc, &b_lab).await;
        tokens(app, &client, &to_client(&location(&r))).await;
        let r = b.get(&silent_b()).await;
        let t = tokens(app, &client, &to_client(&location(&r))).await;
        assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["lab"], b_lab);
    }
);

both!(
    picker_refuses_a_lab_the_user_is_not_in,
    async |app: &TestApp| {
        second_lab(app).await;
        let foreign = foreign_lab(app).await;
        let client = new_client(app).await;
        let b = Browser::new(app);
        let loc = after_password(&b, &authorize_url(app, &client.0, &[])).await;
        let (flow, csrf, _, _) = open_picker(&b, &loc).await;
        // Without the CSRF token: refused.
        let r = b
            .post_form("/login/lab", &[("flow", &flow), ("lab", &app.lab_id)])
            .await;
        assert_eq!(r.status(), 400);
        // A tampered lab: an error page, no redirect, and the flow is over.
        for lab in [foreign.as_str(), "no such lab"] {
            let r = b
                .post_form(
                    "/login/lab",
                    &[("flow", &flow), ("csrf", &csrf), ("lab", lab)],
                )
                .await;
            assert_eq!(r.status(), 400);
            assert!(location(&r).is_empty(), "nothing sent to the client");
        }
        let r = b
            .post_form(
                "/login/lab",
                &[("flow", &flow), ("csrf", &csrf), ("lab", &app.lab_id)],
            )
            .await;
        assert_eq!(r.status(), 400, "the flow ended: not even a valid lab now");
        assert!(location(&r).is_empty());
        let r = b.get(&format!("/login/continue?flow={flow}")).await;
        assert_eq!(r.status(), 400);
    }
);

both!(
    removal_from_lab_ends_sessions_and_that_labs_refresh_tokens,
    async |app: &TestApp| {
        let store = &app.state.store;
        let b_lab = second_lab(app).await;
        let client = new_client(app).await;
        // The user allowed offline access to this client before (a skip-consent client gets
        // it only so): its grants outlive the browser session this test ends.
        store
            .save_consent(
                &app.user_id,
                &client.0,
                &["offline_access".to_owned()],
                &[],
                0,
            )
            .await
            .unwrap();
        let b = Browser::new(app);
        let scope = ("scope", "openid offline_access");
        let loc = after_password(
            &b,
            &authorize_url(app, &client.0, &[scope, ("lab", "Lab 42")]),
        )
        .await;
        let for_a = tokens(app, &client, &to_client(&loc)).await;
        // Lab 7 is new for this client: the picker, once.
        let loc = location(
            &b.get(&authorize_url(app, &client.0, &[scope, ("lab", "Lab 7")]))
                .await,
        );
        let r = pick(&b, &loc, &b_lab).await;
        let for_b = tokens(app, &client, &to_client(&location(&r))).await;
        // A code for lab 7 issued but not yet exchanged when the user leaves it.
        let r = b
            .get(&authorize_url(app, &client.0, &[scope, ("lab", "Lab 7")]))
            .await;
        let pending = to_client(&location(&r));

        assert!(
            store
                .remove_membership(&app.user(), &LabId::new(&b_lab), &[])
                .await
                .unwrap()
        );

        let r = refresh(app, &client, for_b["refresh_token"].as_str().unwrap()).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_grant");
        let code = query_param(&pending, "code").unwrap();
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                (
                    "code_verifier",
                    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                ),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "a pending code for the lab is refused");
        // The other lab's grant lives on.
        let r = refresh(app, &client, for_a["refresh_token"].as_str().unwrap()).await;
        assert_eq!(r.status(), 200);
        // The browser session ended: no silent sign-in, for any lab.
        let r = b
            .get(&authorize_url(app, &client.0, &[("prompt", "none")]))
            .await;
        let back = to_client(&location(&r));
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("login_required")
        );
        let r = b
            .get(&authorize_url(app, &client.0, &[("lab", "Lab 42")]))
            .await;
        assert!(location(&r).starts_with("/login?flow="), "signs in again");
    }
);

both!(
    a_refresh_refused_for_a_lost_membership_ends_the_grant,
    async |app: &TestApp| {
        use latchkey_server::secret::TokenHash;
        let client = new_client(app).await;
        let b = Browser::new(app);
        let loc = after_password(&b, &authorize_url(app, &client.0, &[])).await;
        let t = tokens(app, &client, &to_client(&loc)).await;
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        // The membership row goes without Latchkey's removal (which ends the lab's grants
        // itself): a restore, a race with a removal, an edit behind its back.
        tamper(
            app,
            &format!(
                "DELETE FROM memberships WHERE user_id = '{}' AND lab_id = '{}'",
                app.user_id, app.lab_id
            ),
        )
        .await;
        let r = refresh(app, &client, &rt).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_grant");
        // The token was spent by the refusal: the grant ends with it, audited, instead of
        // living on with a successor token nobody received.
        let (grant, _) = app
            .state
            .store
            .grant_by_refresh_token(TokenHash::of(&rt))
            .await
            .unwrap()
            .unwrap();
        assert!(grant.revoked_at.is_some(), "the grant is revoked");
        let ended = app
            .state
            .store
            .audit_for(app.user().as_str())
            .await
            .unwrap()
            .into_iter()
            .any(|e| {
                e.action == "grant.ended"
                    && e.details.contains("no longer a member")
                    && e.details.contains(&grant.id)
            });
        assert!(ended, "the end is audited with its reason");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trojan_source_display_names_refuse_text_direction_overrides() {
    use latchkey_server::admin::{Admin, ops};
    let app = TestApp::new(Backend::Sqlite).await;
    let e = ops::create_lab(
        &app.state,
        &Admin::cli(),
        ops::NewLab {
            name: "Bio\u{202E}bal".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(format!("{e:?}").contains("text-direction"), "{e:?}");
    let e = latchkey_server::provision::create_lab(&app.state.store, "Chem\u{2066}")
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("text-direction"), "{e:?}");
    assert!(latchkey_server::provision::check_client_name("App\u{200F}").is_err());
    // A passkey's name the user types loses them.
    assert_eq!(
        latchkey_server::signin::account::clean_name(Some(" key\u{202E}1 ")).as_deref(),
        Some("key1")
    );
    app.stop().await;
}
