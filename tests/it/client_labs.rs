//! Clients belong to labs (issue 11): a client serves the labs it is registered for, members of
//! other labs are refused at `/authorize` (a page; `access_denied` under `prompt=none`) and at
//! refresh, the lab picker offers only the labs the client serves, removing a lab from a client
//! ends its grants there, and `latchkey-client` refuses a token for a lab the service does not
//! serve — so a feature granted in lab B never opens lab A's service. Features a client
//! declares are what may be granted in its labs. Both databases.

use crate::both;
use crate::common::*;
use latchkey_client::actix::Require;
use latchkey_client::{Verifier, VerifierOptions, feature};
use latchkey_server::provision;
use reqwest::Method;
use serde_json::{Value, json};

feature!(ApproveInvoices = "invoices:approve");

/// A member of "Lab 7" only (not of the test lab).
const BEA: &str = "bea@lab.example";

/// "Lab 7" with `BEA` as its member; returns (lab id, Bea's user id).
async fn other_lab(app: &TestApp) -> (String, String) {
    let store = &app.state.store;
    let lab = provision::create_lab(store, "Lab 7").await.unwrap();
    let bea = provision::create_user(
        store,
        &app.state.config,
        &app.state.hasher,
        &lab.id,
        BEA,
        None,
        PASSWORD,
    )
    .await
    .unwrap();
    (lab.id, bea.id)
}

/// A first-party client registered for `labs` (ids).
async fn client_for(app: &TestApp, labs: &[&str]) -> (String, String) {
    let labs: Vec<String> = labs.iter().map(|l| (*l).to_owned()).collect();
    let c = app
        .client(move |c| {
            c.labs = labs;
            c.skip_consent = true;
        })
        .await;
    (c.client_id, c.client_secret.unwrap())
}

/// Follows same-site redirects from `r` until a page or the client's callback.
async fn follow(b: &Browser, r: reqwest::Response) -> (u16, String, String) {
    if r.status() != 303 {
        let status = r.status().as_u16();
        return (status, r.url().to_string(), r.text().await.unwrap());
    }
    let mut loc = location(&r);
    for _ in 0..6 {
        if loc.starts_with(CALLBACK) {
            return (303, loc, String::new());
        }
        let r = b.get(&loc).await;
        if r.status() == 303 {
            loc = location(&r);
            continue;
        }
        let status = r.status().as_u16();
        return (status, loc, r.text().await.unwrap());
    }
    panic!("too many redirects, last {loc}");
}

/// The audit log's entries as (action, details), oldest first.
async fn audit(app: &TestApp) -> Vec<(String, Value)> {
    app.state
        .store
        .audit_snapshot()
        .await
        .unwrap()
        .chain
        .into_iter()
        .map(|c| {
            (
                c.entry.action,
                serde_json::from_str(&c.entry.details).unwrap(),
            )
        })
        .collect()
}

/// `GET /labs/{lab}/features`: what the lab's services declare.
async fn declared(app: &TestApp, admin: &str, lab: &str) -> Value {
    let path = format!("/api/v1/labs/{lab}/features");
    call(app, Some(admin), Method::GET, &path, None).await.1
}

/// Allows (`true`) or denies a feature to the test user in `lab` through the API.
async fn grant(app: &TestApp, admin: &str, lab: &str, feature: &str, allow: bool) -> (u16, Value) {
    let path = format!(
        "/api/v1/labs/{lab}/members/{}/features/{feature}",
        app.user_id
    );
    call(
        app,
        Some(admin),
        Method::PUT,
        &path,
        Some(json!({ "allow": allow })),
    )
    .await
}

pub(crate) async fn refresh(app: &TestApp, client: &(String, String), rt: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

both!(
    a_client_refuses_a_user_of_no_lab_it_serves,
    async |app: &TestApp| {
        other_lab(app).await;
        let client = client_for(app, &[&app.lab_id]).await;
        // Bea (Lab 7 only) signs in at a Lab 42 client: a readable page, no code.
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&authorize_url(app, &client.0, &[])).await;
        let r = b.submit_login(&flow, &csrf, BEA, PASSWORD).await;
        let (status, at, html) = follow(&b, r).await;
        assert_eq!(status, 403, "refused at {at}");
        assert!(html.contains("Not available for your labs"), "{html}");
        assert!(html.contains("Invoice app"), "the page names the client");
        // Still signed in (single sign-on), but prompt=none gets access_denied, not a code.
        let r = b
            .get(&authorize_url(app, &client.0, &[("prompt", "none")]))
            .await;
        assert_eq!(r.status(), 303);
        let back = url::Url::parse(&location(&r)).unwrap();
        assert!(back.as_str().starts_with(CALLBACK), "{back}");
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("access_denied")
        );
        assert!(query_param(&back, "code").is_none());
        // A member of the client's lab gets tokens for it.
        let t = user_tokens(app, &client.0, &client.1, "openid").await;
        assert_eq!(
            jwt_claims(t["access_token"].as_str().unwrap())["lab"],
            app.lab_id
        );
    }
);

both!(
    the_lab_picker_offers_only_the_labs_the_client_serves,
    async |app: &TestApp| {
        let store = &app.state.store;
        let (lab7, _) = other_lab(app).await;
        let lab99 = provision::create_lab(store, "Lab 99").await.unwrap().id;
        for l in [&lab7, &lab99] {
            assert!(store.add_membership(&app.user_id, l, &[]).await.unwrap());
        }
        // Three labs, the client serves one of them: no picker, that lab.
        let one = client_for(app, &[&app.lab_id]).await;
        let t = user_tokens(app, &one.0, &one.1, "openid").await;
        assert_eq!(
            jwt_claims(t["access_token"].as_str().unwrap())["lab"],
            app.lab_id
        );
        // It serves two: the picker offers those two, and a tampered choice of the third is
        // refused.
        let two = client_for(app, &[&app.lab_id, &lab7]).await;
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&authorize_url(app, &two.0, &[])).await;
        let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        let loc = location(&r);
        assert!(loc.starts_with("/login/lab?flow="), "{loc}");
        let html = b.get(&loc).await.text().await.unwrap();
        let doc = scraper::Html::parse_document(&html);
        let sel = scraper::Selector::parse("input[type=radio][name=lab]").unwrap();
        let offered: Vec<String> = doc
            .select(&sel)
            .filter_map(|e| e.value().attr("value").map(str::to_owned))
            .collect();
        assert_eq!(offered, vec![app.lab_id.clone(), lab7.clone()]);
        let csrf = html_input(&html, "csrf").unwrap();
        let r = b
            .post_form(
                "/login/lab",
                &[("flow", &flow), ("csrf", &csrf), ("lab", &lab99)],
            )
            .await;
        assert_eq!(r.status(), 400, "a lab the client does not serve");
        // A hint naming a lab the client does not serve is ignored like any other.
        let b = Browser::new(app);
        let url = authorize_url(app, &two.0, &[("lab", "Lab 99")]);
        let (flow, csrf) = b.open_login(&url).await;
        let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert!(location(&r).starts_with("/login/lab?flow="));
    }
);

both!(
    removing_a_lab_from_a_client_ends_its_grants_there_and_refresh_refuses_them,
    async |app: &TestApp| {
        let (lab7, _) = other_lab(app).await;
        let client = client_for(app, &[&app.lab_id, &lab7]).await;
        let t = user_tokens(app, &client.0, &client.1, "openid offline_access").await;
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        let (s, t) = refresh(app, &client, &rt).await;
        assert_eq!(s, 200, "{t}");
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        let admin = client_token(app, "*").await;
        let (s, v) = call(
            app,
            Some(&admin),
            Method::PATCH,
            &format!("/api/v1/clients/{}", client.0),
            Some(json!({"labs": ["Lab 7"]})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["labs"], json!([lab7]), "named by name, shown by id");
        let entries = audit(app).await;
        let (_, update) = entries
            .iter()
            .rev()
            .find(|(a, _)| a == "client.update")
            .expect("audited");
        assert_eq!(update["grants_ended"], 1);
        assert_eq!(update["after"]["labs"], json!([lab7]));
        let (s, v) = refresh(app, &client, &rt).await;
        assert_eq!(s, 400);
        assert_eq!(v["error"], "invalid_grant");
        // The test user (Lab 42 only) is now refused at the client.
        let b = Browser::new(app);
        let (flow, csrf) = b.open_login(&authorize_url(app, &client.0, &[])).await;
        let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        let (status, _, _) = follow(&b, r).await;
        assert_eq!(status, 403);
    }
);

both!(
    a_token_for_lab_b_does_not_pass_require_in_a_service_for_lab_a,
    async |app: &TestApp| {
        use actix_web::test;
        let (lab7, bea) = other_lab(app).await;
        let store = &app.state.store;
        // Bea may approve invoices in Lab 7; the client serves every lab.
        store
            .set_member_feature(
                &latchkey_core::names::UserId::new(&bea),
                &latchkey_core::names::LabId::new(&lab7),
                "invoices:approve",
                Some(true),
                &[],
            )
            .await
            .unwrap();
        let client = client_for(app, &["*"]).await;
        let t = user_tokens_for(app, &client.0, &client.1, "openid", BEA).await;
        let at = t["access_token"].as_str().unwrap().to_owned();
        assert_eq!(jwt_claims(&at)["lab"], lab7);
        assert_eq!(jwt_claims(&at)["features"], json!(["invoices:approve"]));
        async fn approve(_: Require<ApproveInvoices>) -> actix_web::HttpResponse {
            actix_web::HttpResponse::Ok().finish()
        }
        for (labs, expected) in [(vec![app.lab_id.clone()], 401), (vec![lab7.clone()], 200)] {
            let opts = VerifierOptions::new(app.base.clone(), client.0.clone()).labs(labs);
            let verifier = Verifier::discover(opts).await.unwrap();
            let svc = test::init_service(
                actix_web::App::new()
                    .app_data(actix_web::web::Data::new(verifier))
                    .route("/approve", actix_web::web::post().to(approve)),
            )
            .await;
            let req = test::TestRequest::post()
                .uri("/approve")
                .insert_header(("Authorization", format!("Bearer {at}")))
                .to_request();
            let r = test::call_service(&svc, req).await;
            assert_eq!(r.status().as_u16(), expected);
            if expected == 401 {
                let www = r
                    .headers()
                    .get("www-authenticate")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert!(
                    www.contains("invalid_token") && www.contains("does not serve"),
                    "{www}"
                );
            }
        }
    }
);

both!(
    registering_a_client_needs_its_labs,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let before = audit(app).await.len();
        let body =
            |labs: Value| json!({"name": "Orders", "redirect_uris": [CALLBACK], "labs": labs});
        for (labs, says) in [
            (json!([]), "name the labs"),
            (json!(["no such lab"]), "no lab `no such lab`"),
            (json!(["*", "Lab 42"]), "cannot be combined"),
        ] {
            let (s, v) = call(
                app,
                Some(&admin),
                Method::POST,
                "/api/v1/clients",
                Some(body(labs)),
            )
            .await;
            assert_eq!(s, 422, "{v}");
            assert_eq!(v["field"], "labs", "{v}");
            let d = v["message"].as_str().unwrap();
            assert!(d.contains(says) && !d.contains("--"), "{d}");
        }
        assert_eq!(audit(app).await.len(), before, "nothing was written");
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            "/api/v1/clients",
            Some(body(json!(["Lab 42"]))),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["client"]["labs"], json!([app.lab_id]));
        // A client that signs no one in needs no lab.
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            "/api/v1/clients",
            Some(json!({"name": "bot", "grant_types": ["client_credentials"]})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["client"]["labs"], json!([]));
    }
);

both!(
    granting_a_feature_no_service_of_the_lab_declares_is_refused,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let lab = &app.lab_id;
        // Nothing declared yet: any well-formed name.
        let (s, v) = call(
            app,
            Some(&admin),
            Method::PUT,
            &format!("/api/v1/labs/{lab}/roles/clerk"),
            Some(json!({"features": ["orders:read"]})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(declared(app, &admin, lab).await, json!([]));
        // A service of the lab declares its features.
        let client = client_for(app, &[lab]).await;
        let (s, v) = call(
            app,
            Some(&admin),
            Method::PATCH,
            &format!("/api/v1/clients/{}", client.0),
            Some(json!({"features": ["orders:read", "invoices:approve", "invoices:approve"]})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["features"], json!(["invoices:approve", "orders:read"]));
        assert_eq!(
            declared(app, &admin, lab).await,
            json!(["invoices:approve", "orders:read"])
        );
        let before = audit(app).await.len();
        let (s, v) = call(
            app,
            Some(&admin),
            Method::PUT,
            &format!("/api/v1/labs/{lab}/roles/clerk"),
            Some(json!({"features": ["orders:read", "orders:reed"]})),
        )
        .await;
        assert_eq!(s, 422, "{v}");
        let d = v["message"].as_str().unwrap();
        assert!(
            d.contains("`orders:reed`") && d.contains("`invoices:approve`"),
            "{d}"
        );
        let (s, v) = grant(app, &admin, lab, "reports:export", true).await;
        assert_eq!(s, 422, "{v}");
        assert_eq!(audit(app).await.len(), before, "nothing was written");
        // A declared feature may be granted; a deny is always possible.
        let (s, v) = grant(app, &admin, lab, "invoices:approve", true).await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = grant(app, &admin, lab, "reports:export", false).await;
        assert_eq!(s, 200, "{v}");
        // A disabled client's features are not offered (its service is suspended).
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("/api/v1/clients/{}/disable", client.0),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(declared(app, &admin, lab).await, json!([]));
        // Another lab's services do not count here.
        let (lab7, _) = other_lab(app).await;
        assert_eq!(declared(app, &admin, &lab7).await, json!([]));
    }
);

both!(
    a_refresh_token_without_offline_access_ends_with_the_sign_in_session,
    async |app: &TestApp| {
        let client = client_for(app, &[&app.lab_id]).await;
        let b = Browser::new(app);
        let url = authorize_url(app, &client.0, &[]);
        let back = b.login(&url, EMAIL, PASSWORD).await;
        let t = tokens(app, &client, &back).await;
        let rt = t["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_owned();
        let (s, t) = refresh(app, &client, &rt).await;
        assert_eq!(s, 200, "{t}");
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        // The user signs out of Latchkey: the session's grants without offline_access end.
        let sid = jwt_claims(t["access_token"].as_str().unwrap())["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        app.state.store.end_session(&sid, None).await.unwrap();
        let (s, v) = refresh(app, &client, &rt).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["error"], "invalid_grant");
        // A refresh does not keep the session alive: an idle session ends its grants though
        // the relying party refreshed within the idle timeout.
        let b = Browser::new(app);
        let back = b.login(&url, EMAIL, PASSWORD).await;
        let t = tokens(app, &client, &back).await;
        let sid = jwt_claims(t["access_token"].as_str().unwrap())["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        let idle = app.state.config.tokens.session_idle_timeout_secs;
        let seen = latchkey_server::store::now() - idle + 120;
        tamper(
            app,
            &format!("UPDATE sessions SET last_seen_at = {seen} WHERE id = '{sid}'"),
        )
        .await;
        let (s, t) = refresh(app, &client, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!(s, 200, "{t}");
        assert_eq!(
            app.state.store.live_session_seen(&sid, None).await.unwrap(),
            Some(seen),
            "the refresh did not mark the session as used"
        );
        tamper(
            app,
            &format!(
                "UPDATE sessions SET last_seen_at = {} WHERE id = '{sid}'",
                seen - 240
            ),
        )
        .await;
        let (s, v) = refresh(app, &client, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!(s, 400, "idle: {v}");
        // With offline_access (consented: a client that asks) the grant outlives the session.
        let lab = app.lab_id.clone();
        let asks = app.client(move |c| c.labs = vec![lab]).await;
        let client = (asks.client_id, asks.client_secret.unwrap());
        let t = user_tokens(app, &client.0, &client.1, "openid offline_access").await;
        assert!(
            t["scope"].as_str().unwrap().contains("offline_access"),
            "{t}"
        );
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        let sid = jwt_claims(t["access_token"].as_str().unwrap())["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        app.state.store.end_session(&sid, None).await.unwrap();
        let (s, v) = refresh(app, &client, &rt).await;
        assert_eq!(s, 200, "{v}");
    }
);

both!(
    the_console_edits_a_clients_labs_and_offers_declared_features,
    async |app: &TestApp| {
        use latchkey_core::names::ClientId;
        let store = &app.state.store;
        store
            .set_system_admin(&app.user(), true, &[])
            .await
            .unwrap();
        let (lab7, _) = other_lab(app).await;
        let client = client_for(app, &[&app.lab_id]).await;
        let b = Browser::new(app);
        console_token(app, &b, EMAIL).await;
        let page = b.get(&format!("/admin/clients/{}", client.0)).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let checked = |html: &str, value: &str| {
            let doc = scraper::Html::parse_document(html);
            let sel = scraper::Selector::parse(&format!(
                "input[type=checkbox][name=labs][value=\"{value}\"]"
            ))
            .unwrap();
            doc.select(&sel)
                .next()
                .map(|e| e.value().attr("checked").is_some())
        };
        assert_eq!(checked(&html, &app.lab_id), Some(true));
        assert_eq!(checked(&html, &lab7), Some(false));
        let csrf = html_input(&html, "csrf").unwrap();
        let update = format!("/admin/clients/{}/update", client.0);
        // No lab for a client that signs people in: refused, nothing changed.
        let r = b
            .post_form(
                &update,
                &[
                    ("csrf", &csrf),
                    ("name", "Invoice app"),
                    ("redirect_uris", CALLBACK),
                ],
            )
            .await;
        assert_eq!(r.status(), 200, "unticking every lab asks first");
        assert!(r.text().await.unwrap().contains("Stop serving some labs?"));
        let r = b
            .post_form(
                &update,
                &[
                    ("csrf", &csrf),
                    ("name", "Invoice app"),
                    ("redirect_uris", CALLBACK),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status(), 422);
        assert!(r.text().await.unwrap().contains("name the labs"));
        let r = b
            .post_form(
                &update,
                &[
                    ("csrf", &csrf),
                    ("name", "Invoice app"),
                    ("redirect_uris", CALLBACK),
                    ("labs", &lab7),
                    ("labs", &app.lab_id),
                    ("features", "orders:read, invoices:approve"),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        let c = store
            .client_record(&ClientId::new(&client.0))
            .await
            .unwrap()
            .unwrap();
        assert!(c.labs.serves(Some(&lab7)) && c.labs.serves(Some(&app.lab_id)));
        assert_eq!(c.features, vec!["invoices:approve", "orders:read"]);
        // The lab's pages offer the declared features.
        let html = b
            .get(&format!(
                "/admin/labs/{}/members/{}",
                app.lab_id, app.user_id
            ))
            .await
            .text()
            .await
            .unwrap();
        let doc = scraper::Html::parse_document(&html);
        let sel = scraper::Selector::parse("select#grant-feature option").unwrap();
        let offered: Vec<String> = doc
            .select(&sel)
            .filter_map(|e| e.value().attr("value").map(str::to_owned))
            .collect();
        assert_eq!(offered, vec!["invoices:approve", "orders:read"]);
        let html = b
            .get(&format!("/admin/labs/{}", app.lab_id))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            select_text(&html, "#declared-features")
                .is_some_and(|t| t.contains("invoices:approve") && t.contains("orders:read")),
            "{html}"
        );
        // Every lab.
        let r = b
            .post_form(
                &update,
                &[
                    ("csrf", &csrf),
                    ("name", "Invoice app"),
                    ("redirect_uris", CALLBACK),
                    ("all_labs", "yes"),
                    ("features", "orders:read invoices:approve"),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        let c = store
            .client_record(&ClientId::new(&client.0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.labs, latchkey_server::store::clients::ClientLabs::All);
    }
);

both!(
    no_lab_name_can_pose_as_every_lab_or_another_labs_id,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        for name in ["*", app.lab_id.as_str()] {
            let (s, v) = call(
                app,
                Some(&admin),
                Method::POST,
                "/api/v1/labs",
                Some(json!({ "name": name })),
            )
            .await;
            assert_eq!((s, v["field"].as_str()), (422, Some("name")), "{name}: {v}");
        }
        // A NUL byte in a lab named through the console is an unknown lab, not a server error.
        app.state
            .store
            .set_system_admin(&app.user(), true, &[])
            .await
            .unwrap();
        let client = client_for(app, &[&app.lab_id]).await;
        let b = Browser::new(app);
        console_token(app, &b, EMAIL).await;
        let html = b
            .get(&format!("/admin/clients/{}", client.0))
            .await
            .text()
            .await
            .unwrap();
        let csrf = html_input(&html, "csrf").unwrap();
        let bad = format!("{}\0", app.lab_id);
        let r = b
            .post_form(
                &format!("/admin/clients/{}/update", client.0),
                &[
                    ("csrf", &csrf),
                    ("name", "Invoice app"),
                    ("redirect_uris", CALLBACK),
                    ("labs", &bad),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status(), 422);
    }
);
