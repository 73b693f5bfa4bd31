//! The admin console over plain HTTP (the browser test, `browser.rs`, walks it in Chromium):
//! signing in to `/admin` through the hosted login on both backends, and where an expired
//! console sign-in leads.

use crate::both;
use crate::common::*;

/// `/admin` → `/admin/login` → `/authorize` → the hosted login → `/admin/callback` → the lab.
async fn console_sign_in(app: &TestApp, b: &Browser) {
    let r = b.get("/admin").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/login?back=%2Fadmin");
    let r = b.get(&location(&r)).await;
    assert_eq!(r.status(), 303);
    let authorize = location(&r);
    assert!(authorize.starts_with("/authorize?"), "{authorize}");
    let back = b.login(&authorize, EMAIL, PASSWORD).await;
    assert_eq!(back.path(), "/admin/callback", "{back}");
    let r = b.get(back.as_str()).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), "/admin");
    let r = b.get("/admin").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("/admin/labs/{}", app.lab_id));
}

both!(
    a_lab_administrator_signs_in_to_the_console,
    async |app: &TestApp| {
        app.state
            .store
            .set_lab_admin(&app.user(), &app.lab(), true, &[])
            .await
            .unwrap();
        let b = Browser::new(app);
        console_sign_in(app, &b).await;
        let r = b.get(&format!("/admin/labs/{}", app.lab_id)).await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("<h1>Lab 42</h1>"));
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
