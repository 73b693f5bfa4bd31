//! The applications a user allowed, on the account page: listed with their scopes and expiry,
//! withdrawn by the user (the application's grants and refresh tokens end, and it asks again),
//! and expired after `tokens.consent_ttl_days` (the consent page asks again; an expired
//! consent's scopes are not renewed silently).

use crate::both;
use crate::both_with;
use crate::common::*;
use serde_json::Value;

/// A client that asks for consent (the default): (id, secret).
async fn consenting_client(app: &TestApp) -> (String, String) {
    let c = app.client(|_| {}).await;
    (c.client_id, c.client_secret.unwrap())
}

/// Signs in from `b` and allows the client; returns the token response.
async fn allowed(app: &TestApp, b: &Browser, c: &(String, String), scope: &str) -> Value {
    let url = authorize_url(app, &c.0, &[("scope", scope)]);
    let back = b.login(&url, EMAIL, PASSWORD).await;
    tokens(app, c, &back).await
}

async fn refresh_status(app: &TestApp, c: &(String, String), t: &Value) -> u16 {
    reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&c.0, Some(&c.1))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Where a signed-in browser's new authorization for the client goes first.
async fn next_stop(app: &TestApp, b: &Browser, c: &(String, String), scope: &str) -> String {
    let r = b.get(&authorize_url(app, &c.0, &[("scope", scope)])).await;
    location(&r)
}

both!(
    consent_withdrawn_on_the_account_page_ends_the_applications_tokens,
    async |app: &TestApp| {
        let c = consenting_client(app).await;
        let b = Browser::new(app);
        let t = allowed(app, &b, &c, "openid offline_access").await;
        assert_eq!(refresh_status(app, &c, &t).await, 200);
        let t = allowed(app, &Browser::new(app), &c, "openid offline_access").await;
        // The account page lists the application with its scopes.
        let page = b.get("/account").await.text().await.unwrap();
        assert!(page.contains(&format!("data-client=\"{}\"", c.0)), "{page}");
        assert!(page.contains("Invoice app"));
        assert!(page.contains("openid offline_access"));
        let csrf = account_csrf(&b).await;
        let r = b
            .post_form(
                "/account/consents/withdraw",
                &[("csrf", &csrf), ("client", &c.0)],
            )
            .await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), "/account");
        // Its refresh tokens are refused, and it asks for consent again.
        assert_eq!(refresh_status(app, &c, &t).await, 400);
        assert!(
            next_stop(app, &b, &c, "openid")
                .await
                .starts_with("/consent?flow=")
        );
        let page = b.get("/account").await.text().await.unwrap();
        assert!(!page.contains(&format!("data-client=\"{}\"", c.0)));
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        let e = events
            .iter()
            .find(|e| e.action == "consent.withdrawn")
            .expect("audited");
        let d: Value = serde_json::from_str(&e.details).unwrap();
        assert_eq!(d["client"], c.0.as_str());
        assert_eq!(d["grants_revoked"], 2, "{d}");
    }
);

both!(
    withdrawing_a_consent_the_user_never_gave_changes_nothing,
    async |app: &TestApp| {
        let c = consenting_client(app).await;
        let other = Browser::new(app);
        let t = allowed(app, &other, &c, "openid offline_access").await;
        // An application the user never allowed: refused, and the real consent stays.
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let csrf = account_csrf(&b).await;
        let r = b
            .post_form(
                "/account/consents/withdraw",
                &[("csrf", &csrf), ("client", "no-such-client")],
            )
            .await;
        let page = r.text().await.unwrap();
        assert!(page.contains("That application has no access to withdraw."));
        assert_eq!(refresh_status(app, &c, &t).await, 200);
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        assert!(!events.iter().any(|e| e.action == "consent.withdrawn"));
    }
);

both_with!(
    consent_expires_after_consent_ttl_days_and_its_scopes_are_not_renewed,
    |c: &mut latchkey_server::Config| c.tokens.consent_ttl_days = 30,
    async |app: &TestApp| {
        let c = consenting_client(app).await;
        let b = Browser::new(app);
        allowed(app, &b, &c, "openid email").await;
        // Within 30 days no consent page.
        assert!(next_stop(app, &b, &c, "openid").await.starts_with(CALLBACK));
        // 31 days later it has expired: asked again, even for fewer scopes.
        tamper(
            app,
            &format!(
                "UPDATE consents SET created_at = created_at - {}",
                31 * 86_400
            ),
        )
        .await;
        let r = b
            .get(&authorize_url(app, &c.0, &[("scope", "openid")]))
            .await;
        assert!(
            location(&r).starts_with("/consent?flow="),
            "{}",
            location(&r)
        );
        let back = b.consent_if_asked(r, "allow").await;
        assert!(back.starts_with(CALLBACK));
        // The new consent covers what was asked now, not the expired `email`.
        let consents = app.state.store.consents_of(&app.user_id).await.unwrap();
        assert_eq!(consents.len(), 1);
        assert_eq!(consents[0].2, "openid");
        assert!(
            next_stop(app, &b, &c, "openid email")
                .await
                .starts_with("/consent?flow="),
            "email needs consent again"
        );
    }
);

// A code issued before the withdrawal but not yet exchanged must not become live tokens.
both!(
    consent_withdrawal_also_voids_codes_not_yet_exchanged,
    async |app: &TestApp| {
        let c = consenting_client(app).await;
        let b = Browser::new(app);
        allowed(app, &b, &c, "openid offline_access").await;
        let r = b
            .get(&authorize_url(
                app,
                &c.0,
                &[("scope", "openid offline_access")],
            ))
            .await;
        let back = url::Url::parse(&location(&r)).unwrap();
        assert!(query_param(&back, "code").is_some(), "{back}");
        let csrf = account_csrf(&b).await;
        b.post_form(
            "/account/consents/withdraw",
            &[("csrf", &csrf), ("client", &c.0)],
        )
        .await;
        let code = query_param(&back, "code").unwrap();
        let r = exchange_code(&app.url("/token"), (&c.0, &c.1), &code).await;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        let e = events
            .iter()
            .find(|e| e.action == "consent.withdrawn")
            .unwrap();
        let d: Value = serde_json::from_str(&e.details).unwrap();
        assert_eq!(d["source"], "127.0.0.1", "{d}");
    }
);

// Consenting to one more scope renews only what the page showed: scopes kept from an older
// consent keep its age, so the consent still expires when they would.
both_with!(
    consenting_again_does_not_renew_scopes_the_page_did_not_show,
    |c: &mut latchkey_server::Config| c.tokens.consent_ttl_days = 30,
    async |app: &TestApp| {
        let c = consenting_client(app).await;
        let b = Browser::new(app);
        allowed(app, &b, &c, "openid offline_access").await;
        let aged = 29 * 86_400;
        tamper(
            app,
            &format!("UPDATE consents SET created_at = created_at - {aged}"),
        )
        .await;
        let before = app.state.store.consents_of(&app.user_id).await.unwrap()[0].3;
        allowed(app, &Browser::new(app), &c, "openid email").await;
        let after = app.state.store.consents_of(&app.user_id).await.unwrap();
        assert_eq!(after[0].2, "openid offline_access email");
        assert_eq!(
            after[0].3, before,
            "not renewed: offline_access was not on the page"
        );
        // Everything shown (the page is asked for): renewed.
        let url = authorize_url(
            app,
            &c.0,
            &[
                ("scope", "openid offline_access email"),
                ("prompt", "consent"),
            ],
        );
        Browser::new(app).login(&url, EMAIL, PASSWORD).await;
        let renewed = app.state.store.consents_of(&app.user_id).await.unwrap();
        assert!(renewed[0].3 > before + aged - 60, "{renewed:?}");
    }
);
