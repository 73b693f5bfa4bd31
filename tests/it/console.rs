//! The admin console over plain HTTP (the browser test, `browser.rs`, walks it in Chromium):
//! signing in to `/admin` through the hosted login on both backends, and where an expired
//! console sign-in leads. `admin_strength.rs` has the rules on how strongly and how recently.

use crate::both;
use crate::common::*;

both!(
    a_lab_administrator_signs_in_to_the_console,
    async |app: &TestApp| {
        app.state
            .store
            .set_lab_admin(&app.user(), &app.lab(), true, &[])
            .await
            .unwrap();
        let b = Browser::new(app);
        // `/admin` → `/admin/login` → `/authorize` → the hosted login.
        let r = b.get("/admin").await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), "/admin/login?back=%2Fadmin");
        console_token(app, &b, EMAIL).await;
        let r = b.get("/admin").await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), format!("/admin/labs/{}", app.lab_id));
        let r = b.get(&format!("/admin/labs/{}", app.lab_id)).await;
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("<h1>Lab 42</h1>"));
        assert_eq!(
            select_text(&html, "#admin-level").as_deref(),
            Some("with a password and a second factor (mfa)"),
            "the header shows the level"
        );
        assert!(!html.contains("id=\"step-up\""), "nothing needs more");
    }
);

both!(
    a_form_posted_after_the_console_sign_in_expired_leads_back_to_its_page,
    async |app: &TestApp| {
        let b = Browser::new(app);
        let lab = &app.lab_id;
        let user = &app.user_id;
        let back = |r: &reqwest::Response| {
            let loc = location(r);
            let u = url::Url::parse(&format!("http://x{loc}")).unwrap();
            assert_eq!(u.path(), "/admin/login", "{loc}");
            query_param(&u, "back").unwrap()
        };
        // A page comes back as it was asked for, query included.
        let r = b
            .get(&format!("/admin/labs/{lab}/audit?action=member."))
            .await;
        assert_eq!(r.status(), 303);
        assert_eq!(back(&r), format!("/admin/labs/{lab}/audit?action=member."));
        // A form has no page of its own: back to the page it was on.
        let r = b
            .post_form(&format!("/admin/labs/{lab}/policy"), &[("min_acr", "mfa")])
            .await;
        assert_eq!(r.status(), 303);
        assert_eq!(back(&r), format!("/admin/labs/{lab}"));
        let r = b
            .post_form(&format!("/admin/labs/{lab}/members/{user}/roles"), &[])
            .await;
        assert_eq!(back(&r), format!("/admin/labs/{lab}/members/{user}"));
        let r = b
            .post_form(&format!("/admin/labs/{lab}/members"), &[])
            .await;
        assert_eq!(back(&r), format!("/admin/labs/{lab}"));
        // Signing out needs no new sign-in: straight to /logout, which asks.
        let r = b.post_form("/admin/logout", &[]).await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), "/logout");
    }
);

both!(
    console_sign_out_only_expires_the_console_cookies,
    async |app: &TestApp| {
        app.state
            .store
            .set_lab_admin(&app.user(), &app.lab(), true, &[])
            .await
            .unwrap();
        let b = Browser::new(app);
        console_token(app, &b, EMAIL).await;
        let page = b.get(&format!("/admin/labs/{}", app.lab_id)).await;
        assert_eq!(page.status(), 200);
        let csrf = html_input(&page.text().await.unwrap(), "csrf").unwrap();
        let r = b.post_form("/admin/logout", &[("csrf", &csrf)]).await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), "/logout");
        // The token and the activity cookie are expired, and nothing sets either again (the
        // activity cookie is renewed on every other console response).
        let set: Vec<&str> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        let mut names: Vec<&str> = set
            .iter()
            .map(|c| {
                let (name, rest) = c.split_once('=').unwrap();
                assert!(rest.starts_with(';'), "{name} is emptied: {c}");
                assert!(rest.contains("Max-Age=0"), "{name} is expired: {c}");
                name
            })
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["latchkey_admin", "latchkey_admin_active"],
            "{set:?}"
        );
        // The console is signed out: the next page signs in again.
        let r = b.get("/admin").await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/admin/login"), "{}", location(&r));
    }
);
