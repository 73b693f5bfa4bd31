//! Administration requires a strong, recent sign-in (issue 11, item 1): the console's sign-in
//! demands `admin.min_acr`, every admin API call and console page checks the token's `acr`
//! and `auth_time`, an administrator's own lab and role policy apply to what they do in that
//! lab, the console steps up and asks again after inactivity, the landing page and the first
//! administrator's bootstrap. Both databases.

use crate::common::*;
use crate::{both, both_with};
use latchkey_core::Acr;
use latchkey_core::names::{LabId, UserId};
use latchkey_server::admin::{Admin, ops};
use latchkey_server::secret::TokenHash;
use latchkey_server::store::grants::Grant;
use latchkey_server::store::sessions::Session;
use latchkey_server::token::jwt::{AccessTokenInput, UserContext, access_token};
use reqwest::Method;
use serde_json::{Value, json};

/// A console token as Latchkey signs them, with the `acr` and `auth_time` a test needs: the
/// password-only token the console issued before it had a minimum, or one signed in long ago
/// (without waiting twelve hours). Like a real console sign-in, it belongs to a live session
/// and grant of the console: the admin API refuses a token whose grant is gone.
async fn console_token_at(app: &TestApp, user: &str, acr: &str, auth_time: i64) -> String {
    let t = now();
    let session = Session {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.to_owned(),
        auth_time,
        amr: vec![],
        acr: acr.to_owned(),
        created_at: t,
        expires_at: t + 3600,
        factors: vec![],
    };
    let cookie = TokenHash::of(&uuid::Uuid::new_v4().to_string());
    app.state
        .store
        .create_session(cookie, &session, None, None)
        .await
        .unwrap();
    let grant = Grant {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: "latchkey:admin".into(),
        user_id: user.to_owned(),
        session_id: session.id.clone(),
        scope: "openid".into(),
        auth_time,
        acr: acr.to_owned(),
        amr: vec![],
        lab_id: None,
        created_at: t,
        expires_at: t + 3600,
        revoked_at: None,
        dpop_jkt: None,
        resources: vec![],
    };
    assert!(app.state.store.create_grant(&grant, None).await.unwrap());
    let keys = app.state.keys.current();
    access_token(
        &keys,
        &AccessTokenInput {
            issuer: &app.state.issuer,
            subject: user,
            client_id: "latchkey:admin",
            audience: None,
            scope: "openid",
            ttl: 900,
            now: t,
            user: Some(UserContext {
                auth_time,
                acr,
                amr: &[],
                sid: &session.id,
                grant_id: &grant.id,
                lab: None,
                roles: &[],
                features: &[],
            }),
            cnf_jkt: None,
        },
    )
    .unwrap()
}

fn now() -> i64 {
    latchkey_server::store::now()
}

async fn make_user(app: &TestApp, email: &str) -> UserId {
    UserId::new(
        latchkey_server::provision::create_user(
            &app.state.store,
            &app.state.config,
            &app.state.hasher,
            &app.lab_id,
            email,
            None,
            PASSWORD,
        )
        .await
        .unwrap()
        .id,
    )
}

async fn lab_admin(app: &TestApp, email: &str) -> UserId {
    let id = make_user(app, email).await;
    app.state
        .store
        .set_lab_admin(&id, &app.lab(), true, &[])
        .await
        .unwrap();
    id
}

/// Makes `user` a member and an administrator of `lab`.
async fn administer(app: &TestApp, user: &UserId, lab: &str) {
    let lab = LabId::new(lab);
    app.state
        .store
        .add_member(
            &lab,
            latchkey_server::store::admin::Joiner::Existing(user.clone()),
            &[],
            |_| Vec::new(),
        )
        .await
        .unwrap();
    app.state
        .store
        .set_lab_admin(user, &lab, true, &[])
        .await
        .unwrap();
}

/// The finding: the lab requires `mfa` of everyone, its `admin` role requires `phr`, and the
/// lab's administrator holds that role.
async fn strict_lab(app: &TestApp, admin: &UserId) {
    let s = &app.state.store;
    s.set_lab_policy(&app.lab(), Some(Acr::Mfa), None, None, &[])
        .await
        .unwrap();
    s.put_role(&app.lab(), "admin", &[], Some(Acr::Phr), &[])
        .await
        .unwrap();
    s.assign_role(admin, &app.lab(), "admin").await.unwrap();
}

/// `WWW-Authenticate` and body of an admin API call.
async fn api(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut req = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, www, r.json().await.unwrap_or(Value::Null))
}

fn assert_step_up(what: &str, (status, www, body): &(u16, String, Value), acr: &str) {
    assert_eq!(*status, 401, "{what}: {body}");
    assert_eq!(body["error"], "insufficient_user_authentication", "{what}");
    assert_eq!(body["acr_values"], acr, "{what}");
    assert!(
        www.starts_with("Bearer ")
            && www.contains(r#"error="insufficient_user_authentication""#)
            && www.contains(&format!(r#"acr_values="{acr}""#))
            && www.contains("max_age=43200"),
        "{what}: RFC 9470 challenge, got {www}"
    );
}

both!(
    admin_api_refuses_a_password_only_administrator_token,
    async |app: &TestApp| {
        let root = make_user(app, "root@lab.example").await;
        app.state
            .store
            .set_system_admin(&root, true, &[])
            .await
            .unwrap();
        let weak = console_token_at(app, root.as_str(), "pwd", now()).await;
        let lab = &app.lab_id;
        let clients = app.state.store.list_clients().await.unwrap().len();
        app.state
            .store
            .set_lab_policy(&app.lab(), Some(Acr::Mfa), None, None, &[])
            .await
            .unwrap();
        for (m, path, body) in [
            (Method::GET, "/api/v1/labs".to_owned(), None),
            (Method::GET, format!("/api/v1/labs/{lab}/members"), None),
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/policy"),
                Some(json!({"min_acr": null})),
            ),
            (
                Method::POST,
                "/api/v1/clients".to_owned(),
                Some(
                    json!({"name": "bot", "grant_types": ["client_credentials"], "admin_of": "*"}),
                ),
            ),
        ] {
            let what = format!("{m} {path}");
            assert_step_up(&what, &api(app, &weak, m, &path, body).await, "mfa");
        }
        assert!(
            app.state
                .store
                .lab_policy(&app.lab())
                .await
                .unwrap()
                .is_some(),
            "the lab's policy is still there"
        );
        assert_eq!(
            app.state.store.list_clients().await.unwrap().len(),
            clients,
            "no client created"
        );
        // The same administrator at `mfa` may.
        let strong = console_token_at(app, root.as_str(), "mfa", now()).await;
        let (s, _, _) = api(app, &strong, Method::GET, "/api/v1/labs", None).await;
        assert_eq!(s, 200);
        // Automation clients prove no person's sign-in: their tokens carry no acr and still work.
        let bot = client_token(app, "*").await;
        let (s, _, _) = api(app, &bot, Method::GET, "/api/v1/labs", None).await;
        assert_eq!(s, 200);
    }
);

both!(
    console_sign_in_demands_the_admin_minimum,
    async |app: &TestApp| {
        let boss = lab_admin(app, "boss@lab.example").await;
        // The lab's grace period must not let an administrator put their factor off.
        app.state
            .store
            .set_lab_policy(&app.lab(), Some(Acr::Mfa), Some(14), None, &[])
            .await
            .unwrap();
        let b = Browser::new(app);
        let r = b.get("/admin/login").await;
        let (flow, csrf) = b.open_login(&location(&r)).await;
        let r = b
            .submit_login(&flow, &csrf, "boss@lab.example", PASSWORD)
            .await;
        let loc = location(&r);
        let back = url::Url::parse(&loc).unwrap();
        assert_eq!(back.path(), "/admin/callback", "{loc}");
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("unmet_authentication_requirements"),
            "a password alone does not open the console"
        );
        let r = b.get(&loc).await;
        assert_eq!(r.status(), 403);
        assert!(admin_cookie(&r).is_none(), "no console token");
        let html = r.text().await.unwrap();
        assert!(html.contains("Set up a second factor to administer"));
        assert!(
            select_text(&html, "#enrol-need")
                .unwrap()
                .contains("a password and a second factor (mfa)")
        );
        assert!(!html.contains("Not now"), "no deferral for administration");
        assert!(html.contains("id=\"setup-totp\""), "enrolment starts here");
        // Its form is the account page's: the authenticator app, then the console again.
        let key = enrol_totp(&b).await;
        remember_totp(app, "boss@lab.example", &key);
        let r = b.get(&link_href(&html, "console-again")).await;
        let r = b.get(&location(&r)).await;
        let r = b.get(&location(&r)).await;
        let token = admin_cookie(&r).expect("signed in to the console");
        let claims = jwt_claims(&token);
        assert_eq!(claims["sub"], boss.as_str());
        assert_eq!(claims["acr"], "mfa");
        // The console client itself refuses `pwd` whatever a request asks.
        let mut u = url::Url::parse(&app.url("/authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", "latchkey:admin")
            .append_pair("redirect_uri", &app.url("/admin/callback"))
            .append_pair("scope", "openid")
            .append_pair("acr_values", "pwd")
            .append_pair(
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            )
            .append_pair("code_challenge_method", "S256");
        let fresh = Browser::new(app);
        make_user(app, "plain@lab.example").await;
        let (flow, csrf) = fresh.open_login(u.as_str()).await;
        let r = fresh
            .submit_login(&flow, &csrf, "plain@lab.example", PASSWORD)
            .await;
        assert!(
            location(&r).contains("error=unmet_authentication_requirements"),
            "{}",
            location(&r)
        );
    }
);

both_with!(
    admin_minimum_can_be_raised_to_phr,
    |c: &mut latchkey_server::Config| c.admin.min_acr = Acr::Phr,
    async |app: &TestApp| {
        let boss = lab_admin(app, "boss@lab.example").await;
        // An administrator with an authenticator app is not enough.
        let b = Browser::new(app);
        let r = b.get("/admin/login").await;
        let authorize = location(&r);
        assert!(
            !authorize.contains("acr_values"),
            "the console client's own minimum asks: {authorize}"
        );
        let (flow, csrf) = b.open_login(&authorize).await;
        let r = b
            .submit_login(&flow, &csrf, "boss@lab.example", PASSWORD)
            .await;
        let r = b.get(&location(&r)).await;
        assert_eq!(r.status(), 403);
        let html = r.text().await.unwrap();
        assert!(html.contains("Set up a passkey to administer"), "{html}");
        assert!(!html.contains("setup-totp"), "an app cannot reach phr");
        let mfa = console_token_at(app, boss.as_str(), "mfa", now()).await;
        assert_step_up(
            "GET /api/v1/labs at mfa",
            &api(app, &mfa, Method::GET, "/api/v1/labs", None).await,
            "phr",
        );
        let phr = console_token_at(app, boss.as_str(), "phr", now()).await;
        let (s, _, _) = api(app, &phr, Method::GET, "/api/v1/labs", None).await;
        assert_eq!(s, 200);
    }
);

both!(
    admin_token_older_than_max_age_is_refused,
    async |app: &TestApp| {
        let boss = lab_admin(app, "boss@lab.example").await;
        let members = format!("/api/v1/labs/{}/members", app.lab_id);
        let old = console_token_at(app, boss.as_str(), "phr", now() - 43_200 - 60).await;
        let (status, www, body) = api(app, &old, Method::GET, &members, None).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "insufficient_user_authentication");
        assert_eq!(body["max_age"], 43_200);
        assert!(www.contains("max_age=43200"), "{www}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("admin.max_age_secs"),
            "{body}"
        );
        let recent = console_token_at(app, boss.as_str(), "mfa", now() - 43_200 + 60).await;
        let (s, _, _) = api(app, &recent, Method::GET, &members, None).await;
        assert_eq!(s, 200, "within twelve hours of signing in");
    }
);

both!(
    lab_admin_meets_their_labs_role_policy,
    async |app: &TestApp| {
        let boss = lab_admin(app, "boss@lab.example").await;
        strict_lab(app, &boss).await;
        let lab = app.lab_id.clone();
        // A second factor opens the console, but not this lab.
        let b = Browser::new(app);
        let t = console_token(app, &b, "boss@lab.example").await;
        assert_eq!(jwt_claims(&t)["acr"], "mfa");
        for (m, path, body) in [
            (Method::GET, format!("/api/v1/labs/{lab}/members"), None),
            (Method::GET, format!("/api/v1/labs/{lab}/policy"), None),
            (
                Method::PUT,
                format!("/api/v1/labs/{lab}/policy"),
                Some(json!({"min_acr": null})),
            ),
        ] {
            let what = format!("{m} {path}");
            assert_step_up(&what, &api(app, &t, m, &path, body).await, "phr");
        }
        assert!(
            app.state
                .store
                .lab_policy(&app.lab())
                .await
                .unwrap()
                .is_some(),
            "the MFA policy was not removed"
        );
        // Listing what they administer needs only the minimum.
        let (s, _, labs) = api(app, &t, Method::GET, "/api/v1/labs", None).await;
        assert_eq!(s, 200);
        assert_eq!(labs[0]["id"], lab.as_str());
        // The console turns the refusal into a step-up, for pages and for forms, and changes
        // nothing.
        let r = b.get(&format!("/admin/labs/{lab}")).await;
        assert_eq!(r.status(), 303);
        assert_eq!(
            location(&r),
            format!("/admin/login?back=%2Fadmin%2Flabs%2F{lab}&acr=phr")
        );
        let r = b.get(&location(&r)).await;
        let authorize = url::Url::parse(&app.url(&location(&r))).unwrap();
        assert_eq!(
            query_param(&authorize, "acr_values").as_deref(),
            Some("phr")
        );
        // A form of that page (its CSRF token read from the header of the index, which lists
        // the labs and needs only the minimum).
        let other = app
            .state
            .store
            .create_lab("Lab B", |_| Vec::new())
            .await
            .unwrap()
            .id;
        administer(app, &boss, &other).await;
        let index = b.get("/admin").await.text().await.unwrap();
        let csrf = html_input(&index, "csrf").unwrap();
        let r = b
            .post_form(
                &format!("/admin/labs/{lab}/policy"),
                &[("csrf", &csrf), ("min_acr", "none")],
            )
            .await;
        assert_eq!(r.status(), 303);
        assert!(
            location(&r).starts_with("/admin/login?"),
            "{}",
            location(&r)
        );
        assert!(location(&r).ends_with("&acr=phr"), "{}", location(&r));
        assert!(
            app.state
                .store
                .lab_policy(&app.lab())
                .await
                .unwrap()
                .is_some()
        );
        // A system administrator who is not in this lab needs only the minimum there.
        let root = make_user(app, "root@lab.example").await;
        app.state
            .store
            .set_system_admin(&root, true, &[])
            .await
            .unwrap();
        let rt = console_token_at(app, root.as_str(), "mfa", now()).await;
        let (s, _, _) = api(
            app,
            &rt,
            Method::GET,
            &format!("/api/v1/labs/{lab}/members"),
            None,
        )
        .await;
        assert_eq!(s, 200, "root holds no role in the lab");
        // A system administrator who holds the role: system-wide operations reach that lab.
        app.state
            .store
            .assign_role(&root, &app.lab(), "admin")
            .await
            .unwrap();
        let (s, _, _) = api(
            app,
            &rt,
            Method::GET,
            &format!("/api/v1/labs/{other}/members"),
            None,
        )
        .await;
        assert_eq!(s, 200, "lab B asks nothing more of root");
        assert_step_up(
            "GET /api/v1/users",
            &api(app, &rt, Method::GET, "/api/v1/users", None).await,
            "phr",
        );
    }
);

both_with!(
    stepped_up_administrator_can_change_policy,
    on_localhost,
    async |app: &TestApp| {
        let boss = lab_admin(app, "boss@lab.example").await;
        strict_lab(app, &boss).await;
        let lab = app.lab_id.clone();
        let b = Browser::new(app);
        console_token(app, &b, "boss@lab.example").await;
        // The administrator adds a passkey on their account page (the console's session is
        // at mfa, recent enough to add a factor).
        let mut sp = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
        register(app, &b, &mut sp, "passkey").await;
        // The lab's page asks for the passkey and comes back.
        let r = b.get(&format!("/admin/labs/{lab}")).await;
        let r = b.get(&location(&r)).await;
        let r = b.get(&location(&r)).await;
        let verify = location(&r);
        assert!(verify.starts_with("/login/verify?flow="), "{verify}");
        let next = step_up_with_passkey(app, &b, &mut sp, &verify, "phr").await;
        let r = b.get(&next).await;
        assert_eq!(r.status(), 303, "the code goes to the console");
        let callback = location(&r);
        let callback = callback.strip_prefix(&app.state.issuer).unwrap();
        let r = b.get(callback).await;
        let token = admin_cookie(&r).expect("a new console token");
        assert_eq!(jwt_claims(&token)["acr"], "phr");
        assert_eq!(location(&r), format!("/admin/labs/{lab}"));
        let page = b.get(&location(&r)).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert_eq!(
            select_text(&html, "#admin-level").as_deref(),
            Some("with a passkey (phr)")
        );
        let csrf = html_input(&html, "csrf").unwrap();
        let r = b
            .post_form(
                &format!("/admin/labs/{lab}/policy"),
                &[("csrf", &csrf), ("min_acr", "none")],
            )
            .await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).contains("notice="), "{}", location(&r));
        assert!(
            app.state
                .store
                .lab_policy(&app.lab())
                .await
                .unwrap()
                .is_none(),
            "stepped up, the administrator changed the policy"
        );
        let (s, _, _) = api(
            app,
            &token,
            Method::GET,
            &format!("/api/v1/labs/{lab}/members"),
            None,
        )
        .await;
        assert_eq!(s, 200);
    }
);

both!(
    console_header_offers_the_step_up_a_lab_needs,
    async |app: &TestApp| {
        let boss = lab_admin(app, "boss@lab.example").await;
        strict_lab(app, &boss).await;
        // A second lab they administer that needs no more than the minimum.
        let other = app
            .state
            .store
            .create_lab("Lab B", |_| Vec::new())
            .await
            .unwrap()
            .id;
        administer(app, &boss, &other).await;
        let b = Browser::new(app);
        console_token(app, &b, "boss@lab.example").await;
        let r = b.get("/admin").await;
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert_eq!(
            select_text(&html, "#admin-level").as_deref(),
            Some("with a password and a second factor (mfa)")
        );
        assert_eq!(
            select_text(&html, "#step-up").as_deref(),
            Some("Confirm with a passkey (phr)")
        );
        assert_eq!(
            link_href(&html, "step-up"),
            "/admin/login?back=%2Fadmin&acr=phr"
        );
        let doc = scraper::Html::parse_document(&html);
        let rows: Vec<(String, Option<String>)> = doc
            .select(&scraper::Selector::parse("ul.labs li").unwrap())
            .map(|li| {
                let name = li
                    .select(&scraper::Selector::parse("a").unwrap())
                    .next()
                    .unwrap();
                let step = li
                    .select(&scraper::Selector::parse("a.step-up").unwrap())
                    .next()
                    .map(|a| a.value().attr("href").unwrap().to_owned());
                (name.text().collect(), step)
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (
                    "Lab 42".to_owned(),
                    Some(format!(
                        "/admin/login?back=%2Fadmin%2Flabs%2F{}&acr=phr",
                        app.lab_id
                    ))
                ),
                ("Lab B".to_owned(), None),
            ],
            "the strict lab's row offers the step-up"
        );
        let r = b.get(&format!("/admin/labs/{other}")).await;
        assert_eq!(r.status(), 200, "lab B needs only the minimum");
    }
);

both_with!(
    console_left_idle_asks_for_a_recent_sign_in,
    |c: &mut latchkey_server::Config| c.admin.idle_timeout_secs = 2,
    async |app: &TestApp| {
        lab_admin(app, "boss@lab.example").await;
        let b = Browser::new(app);
        console_token(app, &b, "boss@lab.example").await;
        // In use: an expired console token would be replaced silently.
        let r = b.get("/admin/login").await;
        let authorize = url::Url::parse(&app.url(&location(&r))).unwrap();
        assert_eq!(query_param(&authorize, "max_age"), None);
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        // Idle: the page asks for a sign-in, which must be from the idle window.
        let r = b.get("/admin").await;
        assert_eq!(location(&r), "/admin/login?back=%2Fadmin");
        let r = b.get(&location(&r)).await;
        let authorize = url::Url::parse(&app.url(&location(&r))).unwrap();
        assert_eq!(query_param(&authorize, "max_age").as_deref(), Some("2"));
        let r = b.get(authorize.as_str()).await;
        assert!(
            location(&r).starts_with("/login?flow="),
            "the session's factors are too old: {}",
            location(&r)
        );
        // Dropping `max_age` from the request gets a code, but not a console token.
        let mut stripped = authorize.clone();
        let pairs: Vec<(String, String)> = authorize
            .query_pairs()
            .filter(|(k, _)| k != "max_age")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        stripped.query_pairs_mut().clear().extend_pairs(pairs);
        let r = b.get(stripped.as_str()).await;
        let callback = location(&r);
        assert!(callback.contains("/admin/callback?code="), "{callback}");
        let r = b.get(&callback).await;
        assert_eq!(r.status(), 400);
        assert!(admin_cookie(&r).is_none());
        assert!(r.text().await.unwrap().contains("Please sign in again"));
    }
);

both_with!(
    console_sign_in_older_than_max_age_is_asked_again,
    |c: &mut latchkey_server::Config| {
        c.admin.idle_timeout_secs = 12;
        c.admin.max_age_secs = 8;
    },
    async |app: &TestApp| {
        lab_admin(app, "boss@lab.example").await;
        let b = Browser::new(app);
        // Timed from the sign-in, whatever it took (a loaded CI machine is slow): the sign-in
        // happened between `before` and `after`.
        let before = std::time::Instant::now();
        console_token(app, &b, "boss@lab.example").await;
        let after = std::time::Instant::now();
        let page = format!("/admin/labs/{}", app.lab_id);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        if before.elapsed() < std::time::Duration::from_secs(7) {
            assert_eq!(b.get(&page).await.status(), 200, "in use, recent enough");
        }
        // Past max_age (whole seconds) since the latest possible sign-in, within the idle
        // timeout since the last use.
        let past = after + std::time::Duration::from_millis(9_500);
        tokio::time::sleep_until(past.into()).await;
        let r = b.get(&page).await;
        assert_eq!(r.status(), 303, "still in use, but signed in too long ago");
        assert_eq!(
            location(&r),
            format!(
                "/admin/login?back=%2Fadmin%2Flabs%2F{}&acr=mfa&max_age=8",
                app.lab_id
            )
        );
    }
);

both!(
    landing_page_on_a_fresh_install_names_the_bootstrap_command,
    async |app: &TestApp| {
        let r = reqwest::get(app.url("/")).await.unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert_eq!(
            select_text(&html, "#bootstrap-command").as_deref(),
            Some(
                "latchkey admin bootstrap --email you@example.org --name \"Your Name\" --password-stdin"
            )
        );
        // The command it names, through the operation the command line calls.
        let root = ops::bootstrap_system_admin(
            &app.state,
            &Admin::cli(),
            ops::NewSystemAdmin {
                email: "root@lab.example".into(),
                name: Some("Root".into()),
                password: PASSWORD.into(),
                force: false,
            },
        )
        .await
        .unwrap();
        let html = reqwest::get(app.url("/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("bootstrap"), "{html}");
        assert_eq!(link_href(&html, "account-link"), "/account");
        assert_eq!(link_href(&html, "console-link"), "/admin");
        // Signed in: a member goes to their account page, an administrator to the console.
        let b = Browser::new(app);
        account_sign_in(&b).await;
        assert_eq!(location(&b.get("/").await), "/account");
        let a = Browser::new(app);
        console_token(app, &a, "root@lab.example").await;
        assert_eq!(location(&a.get("/").await), "/admin");
        assert!(root.system_admin && root.labs.is_empty());
    }
);

both!(
    bootstrapped_administrator_enrols_at_first_console_sign_in,
    async |app: &TestApp| {
        let new = |email: &str, force| ops::NewSystemAdmin {
            email: email.into(),
            name: None,
            password: PASSWORD.into(),
            force,
        };
        let root =
            ops::bootstrap_system_admin(&app.state, &Admin::cli(), new("root@lab.example", false))
                .await
                .unwrap();
        // Once there is one, a second needs --force; an existing account is granted instead.
        let e =
            ops::bootstrap_system_admin(&app.state, &Admin::cli(), new("two@lab.example", false))
                .await
                .unwrap_err();
        assert_eq!(e.code(), "conflict");
        let e = ops::bootstrap_system_admin(&app.state, &Admin::cli(), new(EMAIL, true))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("admin grant --system"), "{e}");
        ops::bootstrap_system_admin(&app.state, &Admin::cli(), new("two@lab.example", true))
            .await
            .unwrap();
        // Audited with the account, by the command line.
        let events = app.state.store.audit_for(root.id.as_str()).await.unwrap();
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        assert!(actions.contains(&"user.create"), "{actions:?}");
        assert!(actions.contains(&"user.system_admin"), "{actions:?}");
        // Only the command line bootstraps: an administrator's token names others instead.
        let t = console_token_at(app, root.id.as_str(), "mfa", now()).await;
        let caller = latchkey_server::admin::authenticate(&app.state, &t, None)
            .await
            .unwrap();
        let e = ops::bootstrap_system_admin(&app.state, &caller, new("three@lab.example", true))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "forbidden");
        // The first console sign-in leads to enrolment (`console_token` follows it).
        let b = Browser::new(app);
        let token = console_token(app, &b, "root@lab.example").await;
        assert_eq!(jwt_claims(&token)["sub"], root.id.as_str());
        let r = b.get("/admin").await;
        assert_eq!(r.status(), 200, "a system administrator sees every lab");
        assert!(r.text().await.unwrap().contains("Lab 42"));
    }
);

both!(
    concurrent_bootstraps_make_exactly_one_system_administrator,
    async |app: &TestApp| {
        let new = |email: &str| ops::NewSystemAdmin {
            email: email.into(),
            name: None,
            password: PASSWORD.into(),
            force: false,
        };
        let cli = Admin::cli();
        // Both pass the early check (neither has written yet); the store's check and insert
        // are one step, so only one of them makes an administrator.
        let (one, two) = tokio::join!(
            ops::bootstrap_system_admin(&app.state, &cli, new("one@lab.example")),
            ops::bootstrap_system_admin(&app.state, &cli, new("two@lab.example")),
        );
        let made: Vec<bool> = [&one, &two].iter().map(|r| r.is_ok()).collect();
        assert_eq!(made.iter().filter(|m| **m).count(), 1, "{one:?} / {two:?}");
        let e = one.and(two).unwrap_err();
        assert_eq!(e.code(), "conflict");
        assert!(
            e.to_string()
                .starts_with("a system administrator already exists"),
            "{e}"
        );
        // The refused one left no account behind.
        let mut accounts = 0;
        for email in ["one@lab.example", "two@lab.example"] {
            if let Some(u) = app.state.store.find_user_by_email(email).await.unwrap() {
                let rights = app.state.store.admin_rights(&UserId::new(u.id)).await;
                assert!(rights.unwrap().unwrap().system, "{email}");
                accounts += 1;
            }
        }
        assert_eq!(accounts, 1);
    }
);
