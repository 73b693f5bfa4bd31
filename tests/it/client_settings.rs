//! A client's protocol settings changed after registration, through the admin API, the command
//! line's operation and the console: whether a legacy confidential client may leave PKCE out
//! (RFC 9700 section 2.1.1; shown in the console wherever the client is) and whether it must
//! push its authorization requests (RFC 9126). Each change applies to the next request and
//! is audited with before and after. Both databases.

use crate::both;
use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Where `/authorize` sends the browser: a refusal at the client's callback, or a page here.
async fn authorize(app: &TestApp, client: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let b = Browser::new(app);
    let r = b.get(&authorize_url(app, client, extra)).await;
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location)
}

async fn patch(app: &TestApp, admin: &str, client: &str, body: Value) -> (u16, Value) {
    call(
        app,
        Some(admin),
        Method::PATCH,
        &format!("/api/v1/clients/{client}"),
        Some(body),
    )
    .await
}

both!(
    rfc9700_2_1_1_pkce_optional_and_rfc9126_require_par_change_after_registration,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let c = app.client(|c| c.skip_consent = true).await;
        let id = c.client_id.as_str();
        let no_pkce = [("code_challenge", ""), ("code_challenge_method", "")];
        let (_, to) = authorize(app, id, &no_pkce).await;
        assert!(to.contains("error=invalid_request"), "PKCE required: {to}");

        let (s, v) = patch(app, &admin, id, json!({"pkce_optional": true})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["pkce_optional"], true);
        let (s, to) = authorize(app, id, &no_pkce).await;
        assert!(
            !to.contains("error="),
            "a legacy client may leave PKCE out: {s} {to}"
        );

        let (s, v) = patch(
            app,
            &admin,
            id,
            json!({"pkce_optional": false, "require_par": true}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["pkce_optional"].clone(), v["require_par"].clone()),
            (json!(false), json!(true))
        );
        let (_, to) = authorize(app, id, &[]).await;
        assert!(
            to.contains("error=invalid_request"),
            "an unpushed request is refused: {to}"
        );
        let (_, action, d) = last_action(app).await;
        assert_eq!(action, "client.update");
        assert_eq!(d["before"]["require_par"], false);
        assert_eq!(d["after"]["require_par"], true);
        assert_eq!(d["after"]["pkce_optional"], false);

        // A public client always uses PKCE: refused, nothing changed.
        let public = app.client(|c| c.public = true).await;
        let (s, v) = patch(
            app,
            &admin,
            &public.client_id,
            json!({"pkce_optional": true}),
        )
        .await;
        assert_eq!(s, 422, "{v}");
        assert_eq!(v["field"], "pkce_optional");
        let (s, v) = call(
            app,
            Some(&admin),
            Method::GET,
            &format!("/api/v1/clients/{}", public.client_id),
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(v["pkce_optional"], false);
    }
);

both!(
    the_console_shows_and_changes_pkce_optional_and_require_par,
    async |app: &TestApp| {
        use latchkey_core::names::ClientId;
        let store = &app.state.store;
        store
            .set_system_admin(&app.user(), true, &[])
            .await
            .unwrap();
        let c = app.client(|c| c.pkce_optional = true).await;
        let b = Browser::new(app);
        console_token(app, &b, EMAIL).await;
        let list = b.get("/admin/clients").await.text().await.unwrap();
        assert!(
            list.contains("PKCE optional"),
            "the list flags the legacy client"
        );
        let page = b.get(&format!("/admin/clients/{}", c.client_id)).await;
        let html = page.text().await.unwrap();
        assert!(html.contains("id=\"client-pkce-warning\""));
        let csrf = html_input(&html, "csrf").unwrap();
        let r = b
            .post_form(
                &format!("/admin/clients/{}/update", c.client_id),
                &[
                    ("csrf", &csrf),
                    ("name", "Invoice app"),
                    ("redirect_uris", CALLBACK),
                    ("all_labs", "yes"),
                    ("flags", "yes"),
                    ("pkce_flag", "yes"),
                    ("require_par", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        let after = store
            .client_record(&ClientId::new(&c.client_id))
            .await
            .unwrap()
            .unwrap();
        assert!(!after.pkce_optional, "unticked: PKCE required again");
        assert!(after.require_par);
        let html = b
            .get(&format!("/admin/clients/{}", c.client_id))
            .await
            .text()
            .await
            .unwrap();
        assert!(!html.contains("id=\"client-pkce-warning\""));
        assert!(html.contains("id=\"client-require-par\" checked"));
    }
);

both!(
    a_clients_minimum_acr_is_set_through_the_admin_api,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let c = app.client(|_| {}).await;
        let put = |id: String, body: Value| {
            let admin = admin.clone();
            async move {
                call(
                    app,
                    Some(&admin),
                    Method::PUT,
                    &format!("/api/v1/clients/{id}/policy"),
                    Some(body),
                )
                .await
            }
        };
        let (s, v) = put(c.client_id.clone(), json!({"min_acr": "mfa"})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["min_acr"], "mfa");
        let (s, v) = put(c.client_id.clone(), json!({"min_acr": "strong"})).await;
        assert_eq!((s, v["field"].as_str()), (422, Some("min_acr")), "{v}");
        let (s, v) = put("latchkey:admin".into(), json!({"min_acr": "pwd"})).await;
        assert_eq!(s, 409, "{v}");
        let (s, v) = put(c.client_id.clone(), json!({"min_acr": null})).await;
        assert_eq!(s, 200, "{v}");
        assert!(v["min_acr"].is_null());
    }
);
