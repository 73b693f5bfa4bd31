//! UserInfo and introspection are read paths with a per-node cache (`token::access`): what a
//! signature proved is kept until the token expires, and that a grant is live for at most
//! `tokens.liveness_cache_secs`. These tests hold the cache to its promises: a change made on
//! the node answering applies at once, a change made on another node (or behind Latchkey's
//! back, as the CLI does) within the bound, and never later.

use crate::common::*;
use crate::{both, both_with};
use latchkey_server::Config;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The bound these tests run with (the default).
const BOUND: Duration = Duration::from_secs(2);

async fn userinfo_at(base: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn active_at(base: &str, client: &(String, String), token: &str) -> bool {
    let v: Value = reqwest::Client::new()
        .post(format!("{base}/introspect"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["active"] == json!(true)
}

/// A client, a user's tokens for it (`openid email profile`): (client, access, refresh).
async fn signed_in(app: &TestApp) -> ((String, String), String, String) {
    let c = app.client(|_| {}).await;
    let client = (c.client_id.clone(), c.client_secret.clone().unwrap());
    let t = user_tokens(app, &client.0, &client.1, "openid email profile").await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    (client, at, rt)
}

/// Asks `base` until the token is refused by both read paths; how long that took.
async fn refused_within(
    base: &str,
    client: &(String, String),
    at: &str,
    limit: Duration,
) -> Duration {
    let t0 = Instant::now();
    loop {
        let (s, _) = userinfo_at(base, at).await;
        if s == 401 && !active_at(base, client, at).await {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "still answered as live {:?} after the change (bound {BOUND:?})",
            t0.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both!(
    rfc7009_a_revocation_on_this_node_ends_the_token_at_once,
    async |app: &TestApp| {
        let base = app.url("");
        let (client, at, rt) = signed_in(app).await;
        // Twice: the second answer comes from the cache.
        for _ in 0..2 {
            assert_eq!(userinfo_at(&base, &at).await.0, 200);
            assert!(active_at(&base, &client, &at).await);
        }
        let r = reqwest::Client::new()
            .post(app.url("/revoke"))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[("token", rt.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // No wait: the node that revoked the grant forgets what it cached.
        assert_eq!(userinfo_at(&base, &at).await.0, 401);
        assert!(!active_at(&base, &client, &at).await);
    }
);

both!(
    a_user_disabled_on_this_node_loses_userinfo_at_once,
    async |app: &TestApp| {
        let base = app.url("");
        let admin = client_token(app, "*").await;
        let (client, at, _) = signed_in(app).await;
        assert_eq!(userinfo_at(&base, &at).await.0, 200);
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("/api/v1/users/{}/disable", app.user_id),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(userinfo_at(&base, &at).await.0, 401);
        assert!(!active_at(&base, &client, &at).await);
    }
);

both!(
    oidc_core_5_3_userinfo_shows_a_changed_email_at_once,
    async |app: &TestApp| {
        let base = app.url("");
        let admin = client_token(app, "*").await;
        let (_, at, _) = signed_in(app).await;
        let (s, v) = userinfo_at(&base, &at).await;
        assert_eq!((s, v["email"].as_str()), (200, Some(EMAIL)));
        let (s, v) = call(
            app,
            Some(&admin),
            Method::PUT,
            &format!("/api/v1/users/{}/email", app.user_id),
            Some(json!({"email": "ada.new@example.org"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = userinfo_at(&base, &at).await;
        assert_eq!(s, 200);
        assert_eq!(v["email"], "ada.new@example.org");
        assert_eq!(v["email_verified"], false);
    }
);

both!(
    a_revocation_behind_the_nodes_back_applies_within_the_liveness_bound,
    async |app: &TestApp| {
        let base = app.url("");
        let (client, at, _) = signed_in(app).await;
        assert_eq!(userinfo_at(&base, &at).await.0, 200);
        assert!(active_at(&base, &client, &at).await);
        // What `latchkey` on the command line, or another node, does: straight to the database.
        let now = latchkey_server::store::now();
        tamper(
            app,
            &format!("UPDATE grants SET revoked_at = {now} WHERE revoked_at IS NULL"),
        )
        .await;
        let took = refused_within(&base, &client, &at, BOUND + Duration::from_millis(1500)).await;
        eprintln!("refused {took:?} after the change");
    }
);

/// Two nodes on one database, as PostgreSQL deployments run: a refresh token revoked at node
/// B ends the access token at node A within the bound, though A had just checked it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_another_node_applies_within_the_liveness_bound() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let a = TestApp::new(backend).await;
        let config: Config = a.state.config.clone();
        let port = crate::common::smtp::free_port();
        let b = TestApp::on_database(config, port, &a.lab_id, &a.user_id, None).await;
        let base_b = format!("http://{}", b.addr());
        let (client, at, rt) = signed_in(&a).await;
        let base_a = a.url("");
        assert_eq!(userinfo_at(&base_a, &at).await.0, 200);
        assert!(active_at(&base_a, &client, &at).await);
        assert_eq!(userinfo_at(&base_b, &at).await.0, 200, "node B serves it");
        let r = reqwest::Client::new()
            .post(format!("{base_b}/revoke"))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[("token", rt.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(userinfo_at(&base_b, &at).await.0, 401, "at once on node B");
        let took = refused_within(&base_a, &client, &at, BOUND + Duration::from_millis(1500)).await;
        eprintln!("{backend:?}: node A refused it {took:?} after node B revoked it");
        b.stop().await;
        a.stop().await;
    }
}

both_with!(
    with_the_cache_off_a_revocation_behind_the_nodes_back_applies_at_once,
    |c: &mut Config| c.tokens.liveness_cache_secs = 0,
    async |app: &TestApp| {
        let base = app.url("");
        let (client, at, _) = signed_in(app).await;
        assert_eq!(userinfo_at(&base, &at).await.0, 200);
        let now = latchkey_server::store::now();
        tamper(
            app,
            &format!("UPDATE grants SET revoked_at = {now} WHERE revoked_at IS NULL"),
        )
        .await;
        assert_eq!(userinfo_at(&base, &at).await.0, 401);
        assert!(!active_at(&base, &client, &at).await);
    }
);

both!(
    a_revoked_signing_key_ends_its_cached_tokens_at_once,
    async |app: &TestApp| {
        let base = app.url("");
        let (client, at, _) = signed_in(app).await;
        assert_eq!(userinfo_at(&base, &at).await.0, 200);
        assert!(active_at(&base, &client, &at).await);
        let kid = jwt_header(&at)["kid"].as_str().unwrap().to_owned();
        let s = &app.state;
        s.keys.revoke(&s.store, &s.kek, &kid, "test").await.unwrap();
        // The signature was verified (and kept) under a key that is no longer published.
        assert_eq!(userinfo_at(&base, &at).await.0, 401);
        assert!(!active_at(&base, &client, &at).await);
    }
);

fn jwt_header(jwt: &str) -> Value {
    use base64::Engine;
    let h = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap(),
    )
    .unwrap()
}
