//! `latchkey-client`'s axum extractors and tower layer against the real server, both
//! databases: the example lab service on axum (`examples/lab_service_axum.rs`), served over
//! HTTP, with tokens a user got from Latchkey. The same answers as the actix example
//! (`client::example_lab_service_enforces_features_and_rfc9470_step_up`), the tower layer's
//! route, and back-channel logout ending the service's sessions.

use crate::both_with;
use crate::common::*;
use latchkey_client::{Verifier, VerifierOptions};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[path = "../../crates/latchkey-client/examples/lab_service_axum.rs"]
#[allow(dead_code)]
mod lab_service_axum;

/// Serves the example service for `audience` on `listener`.
async fn serve(app: &TestApp, audience: &str, listener: tokio::net::TcpListener) {
    let verifier = Verifier::discover(
        VerifierOptions::new(app.base.clone(), audience).lab(app.lab_id.clone()),
    )
    .await
    .unwrap()
    .with_feature_map(lab_service_axum::feature_map());
    let router = lab_service_axum::router(verifier, Arc::default());
    tokio::spawn(async move { axum::serve(listener, router).await });
}

fn fast(c: &mut latchkey_server::Config) {
    c.backchannel_logout.interval_ms = 100;
    c.backchannel_logout.retry_secs = 1;
}

async fn get(url: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut r = reqwest::Client::new().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        r.status().as_u16(),
        www,
        r.json().await.unwrap_or(Value::Null),
    )
}

both_with!(
    example_axum_lab_service_enforces_features_step_up_and_backchannel_logout,
    fast,
    async |app: &TestApp| {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let (cb, logout) = (
            format!("{origin}/cb"),
            format!("{origin}/backchannel-logout"),
        );
        let lab = app.lab_id.clone();
        let c = app
            .client(move |c| {
                c.redirect_uris = vec![CALLBACK.into(), cb];
                c.backchannel_logout_uri = Some(logout);
                c.labs = vec![lab];
            })
            .await;
        serve(app, &c.client_id, listener).await;
        let secret = c.client_secret.as_deref().unwrap();
        let b = Browser::new(app);
        let client = (c.client_id.clone(), secret.to_owned());
        let (b, client) = (&b, &client);
        let login = async |scope: &'static str| {
            let url = authorize_url(app, &client.0, &[("scope", scope)]);
            let r = b.get(&url).await;
            let back = if location(&r).starts_with("/login?flow=") {
                b.login(&url, EMAIL, PASSWORD).await
            } else {
                url::Url::parse(&b.consent_if_asked(r, "allow").await).unwrap()
            };
            tokens(app, client, &back).await
        };
        let wide = login("openid email").await;
        let narrow = login("openid").await;
        let at = wide["access_token"].as_str().unwrap();
        let url = |p: &str| format!("{origin}{p}");

        let (status, _, who) = get(&url("/whoami"), Some(at)).await;
        assert_eq!(status, 200, "{who}");
        assert_eq!(who["sub"], app.user_id.as_str());
        assert_eq!(who["lab"], app.lab_id.as_str());
        assert_eq!(get(&url("/orders"), Some(at)).await.0, 200);
        // rfc6750_3_1_missing_token_is_401_with_bare_challenge, DPoP offered beside Bearer.
        let (status, www, _) = get(&url("/orders"), None).await;
        assert_eq!(status, 401);
        assert_eq!(
            www.as_deref(),
            Some("Bearer, DPoP algs=\"RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA\"")
        );
        let (status, www, body) = get(&url("/orders"), Some("x.y.z")).await;
        assert_eq!(status, 401);
        assert!(www.unwrap().contains("invalid_token"));
        assert_eq!(body["error"], "invalid_token");
        // rfc6750_3_1_missing_feature_is_403_insufficient_scope
        let (status, www, _) = get(
            &url("/orders"),
            Some(narrow["access_token"].as_str().unwrap()),
        )
        .await;
        assert_eq!(status, 403);
        assert!(www.unwrap().contains("insufficient_scope"));
        // The tower layer's route: the feature `reports:read` comes with the role approver.
        let (status, www, _) = get(&url("/reports"), Some(at)).await;
        assert_eq!(status, 403);
        assert!(www.unwrap().contains("insufficient_scope"));
        assert_eq!(get(&url("/reports"), None).await.0, 401);
        // rfc9470_password_session_gets_step_up_challenge
        let r = reqwest::Client::new()
            .post(url("/invoices/INV-7/approve"))
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            www.contains("error=\"insufficient_user_authentication\"")
                && www.contains("acr_values=\"mfa\""),
            "{www}"
        );
        assert_eq!(get(&url("/health"), None).await.0, 200);

        // Back-channel logout: signing out ends the service's sessions too.
        let page = b.get(&format!("/logout?client_id={}", c.client_id)).await;
        let csrf = html_input(&page.text().await.unwrap(), "csrf").unwrap();
        let r = b
            .post_form(
                "/logout",
                &[
                    ("csrf", &csrf),
                    ("client_id", &c.client_id),
                    ("decision", "logout"),
                ],
            )
            .await;
        assert!(r.status().is_redirection() || r.status().is_success());
        for _ in 0..100 {
            if get(&url("/whoami"), Some(at)).await.0 == 401 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (status, www, _) = get(&url("/whoami"), Some(at)).await;
        assert_eq!(status, 401, "the logout token reached the axum service");
        assert!(www.unwrap().contains("the session has ended"));
    }
);
