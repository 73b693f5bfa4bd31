//! Feature grants in tokens: a role's features, plus a member's allows, minus their denies,
//! become the `features` claim (and `roles`), verified and read back with `latchkey-client`;
//! a changed grant applies to the next token (a refresh). Both databases.

use crate::both;
use crate::common::*;
use latchkey_client::{Verifier, VerifierOptions};
use serde_json::Value;

async fn refresh(app: &TestApp, id: &str, secret: &str, rt: &str) -> Value {
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

both!(
    role_features_and_member_overrides_make_the_features_claim,
    async |app: &TestApp| {
        let store = &app.state.store;
        let lab = &app.lab();
        for f in ["orders:read", "invoices:approve"] {
            store
                .set_role_feature(lab, "accountant", f, true)
                .await
                .unwrap();
        }
        store
            .set_role_feature(lab, "viewer", "orders:read", true)
            .await
            .unwrap();
        store
            .assign_role(&app.user(), lab, "accountant")
            .await
            .unwrap();
        store.assign_role(&app.user(), lab, "viewer").await.unwrap();
        store
            .set_member_feature(&app.user(), lab, "reports:export", Some(true), &[])
            .await
            .unwrap();
        store
            .set_member_feature(&app.user(), lab, "invoices:approve", Some(false), &[])
            .await
            .unwrap();
        let c = app.client(|_| {}).await;
        let secret = c.client_secret.clone().unwrap();
        let t = user_tokens(app, &c.client_id, &secret, "openid offline_access").await;
        let verifier = Verifier::discover(
            VerifierOptions::new(app.base.clone(), c.client_id.clone()).lab(app.lab_id.clone()),
        )
        .await
        .unwrap();
        let g = verifier
            .verify_access_token(t["access_token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(g.lab.as_deref(), Some(lab.as_str()));
        assert_eq!(g.roles, vec!["accountant", "viewer"]);
        assert!(g.allows("orders:read"));
        assert!(g.allows("reports:export"), "allowed to the member");
        assert!(
            !g.allows("invoices:approve"),
            "denied to the member despite the role"
        );
        let id = jwt_claims(t["id_token"].as_str().unwrap());
        assert_eq!(
            id["features"],
            serde_json::json!(["orders:read", "reports:export"])
        );

        // A changed grant applies to the next token.
        store
            .set_member_feature(&app.user(), lab, "invoices:approve", None, &[])
            .await
            .unwrap();
        store
            .set_role_feature(lab, "viewer", "orders:read", false)
            .await
            .unwrap();
        let t2 = refresh(
            app,
            &c.client_id,
            &secret,
            t["refresh_token"].as_str().unwrap(),
        )
        .await;
        let g = verifier
            .verify_access_token(t2["access_token"].as_str().unwrap())
            .await
            .unwrap();
        assert!(g.allows("invoices:approve"), "the deny was cleared");
        assert!(
            g.allows("orders:read"),
            "still given by the accountant role"
        );
    }
);

both!(
    removing_a_member_from_a_lab_ends_their_refresh_tokens_for_it,
    async |app: &TestApp| {
        let store = &app.state.store;
        store
            .set_role_feature(&app.lab(), "viewer", "orders:read", true)
            .await
            .unwrap();
        store
            .assign_role(&app.user(), &app.lab(), "viewer")
            .await
            .unwrap();
        let c = app.client(|_| {}).await;
        let secret = c.client_secret.clone().unwrap();
        let t = user_tokens(app, &c.client_id, &secret, "openid offline_access").await;
        assert!(
            store
                .remove_membership(&app.user(), &app.lab(), &[])
                .await
                .unwrap()
        );
        assert!(
            !store
                .remove_membership(&app.user(), &app.lab(), &[])
                .await
                .unwrap()
        );
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&c.client_id, Some(&secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_grant");
        assert!(store.user_labs(&app.user_id).await.unwrap().is_empty());
        // Grants for a lab the user is not in are refused, and write nothing.
        for r in [
            store.assign_role(&app.user(), &app.lab(), "viewer").await,
            store
                .set_member_feature(&app.user(), &app.lab(), "orders:read", Some(true), &[])
                .await,
        ] {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("not a member"), "{e}");
        }
        assert!(
            store
                .member_grants(&app.user_id, &app.lab_id)
                .await
                .unwrap()
                .roles
                .is_empty()
        );
    }
);
