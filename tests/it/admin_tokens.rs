//! What the admin API checks of a token beyond its signature: a console token stands only
//! while its grant is live (a revocation or a sign-out ends it at once, not when it expires),
//! an automation client's only while the client is active. Both databases.

use crate::both;
use crate::common::*;
use reqwest::Method;
use serde_json::Value;

const LABS: &str = "/api/v1/labs";

/// The test user, a lab administrator, signed in to the console in `b`.
async fn lab_admin_console(app: &TestApp, b: &Browser) -> String {
    app.state
        .store
        .set_lab_admin(&app.user(), &app.lab(), true, &[])
        .await
        .unwrap();
    let token = console_token(app, b, EMAIL).await;
    let (s, v) = call(app, Some(&token), Method::GET, LABS, None).await;
    assert_eq!(s, 200, "{v}");
    token
}

fn assert_unauthenticated(what: &str, (s, v): &(u16, Value)) {
    assert_eq!(*s, 401, "{what}: {v}");
    assert_eq!(v["error"], "unauthenticated", "{what}: {v}");
}

both!(
    admin_api_refuses_a_console_token_whose_grant_was_revoked,
    async |app: &TestApp| {
        let b = Browser::new(app);
        let token = lab_admin_console(app, &b).await;
        // RFC 7009: the console is a public client and names itself.
        let r = reqwest::Client::new()
            .post(app.url("/revoke"))
            .form(&[("client_id", "latchkey:admin"), ("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let refused = call(app, Some(&token), Method::GET, LABS, None).await;
        assert_unauthenticated("after /revoke", &refused);
        // The console holding it is sent to sign in again.
        let r = b.get("/admin").await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/admin/login"), "{}", location(&r));
    }
);

both!(
    admin_api_refuses_a_console_token_once_the_console_signed_out,
    async |app: &TestApp| {
        let b = Browser::new(app);
        let token = lab_admin_console(app, &b).await;
        // Sign out from the console's header: the token ends there, before `/logout` asks
        // whether to end the Latchkey session too.
        let page = b.get(&format!("/admin/labs/{}", app.lab_id)).await;
        let csrf = html_input(&page.text().await.unwrap(), "csrf").unwrap();
        let r = b.post_form("/admin/logout", &[("csrf", &csrf)]).await;
        assert_eq!(location(&r), "/logout");
        let refused = call(app, Some(&token), Method::GET, LABS, None).await;
        assert_unauthenticated("after signing out of the console", &refused);
        let page = b.get("/logout").await.text().await.unwrap();
        let csrf = html_input(&page, "csrf").unwrap();
        let r = b
            .post_form("/logout", &[("csrf", &csrf), ("decision", "logout")])
            .await;
        assert_eq!(r.status(), 200);
        let refused = call(app, Some(&token), Method::GET, LABS, None).await;
        assert_unauthenticated("after signing out", &refused);
    }
);

both!(
    admin_api_refuses_an_automation_clients_token_once_the_client_is_inactive,
    async |app: &TestApp| {
        let root = client_token(app, "*").await;
        let bot = app
            .client(|c| {
                c.grant_types = vec!["client_credentials".into()];
                c.redirect_uris = vec![];
                c.admin_of = Some("*".into());
            })
            .await;
        let id = bot.client_id.clone();
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&id, bot.client_secret.as_deref())
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "latchkey:admin"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let token = v["access_token"].as_str().unwrap().to_owned();
        let get = async || call(app, Some(&token), Method::GET, LABS, None).await;
        let root_does = async |m: Method, path: String| {
            let (s, v) = call(app, Some(&root), m, &path, None).await;
            assert!(s == 200 || s == 204, "{path}: {s} {v}");
        };
        assert_eq!(get().await.0, 200);
        // Disabled, then enabled again.
        root_does(Method::POST, format!("/api/v1/clients/{id}/disable")).await;
        assert_unauthenticated("disabled", &get().await);
        root_does(Method::POST, format!("/api/v1/clients/{id}/enable")).await;
        assert_eq!(get().await.0, 200, "enabled again");
        // Past its expiry.
        tamper(
            app,
            &format!("UPDATE clients SET expires_at = 1 WHERE id = '{id}'"),
        )
        .await;
        assert_unauthenticated("expired", &get().await);
        tamper(
            app,
            &format!("UPDATE clients SET expires_at = NULL WHERE id = '{id}'"),
        )
        .await;
        assert_eq!(get().await.0, 200, "no longer expired");
        // Deleted.
        root_does(Method::DELETE, format!("/api/v1/clients/{id}")).await;
        assert_unauthenticated("deleted", &get().await);
    }
);
