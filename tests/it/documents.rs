//! Snapshots of the documents clients depend on: discovery metadata, the JWKS shape, and the
//! error bodies of the token and userinfo endpoints.

use crate::common::*;
use serde_json::Value;

fn redact(app: &TestApp, v: Value) -> Value {
    serde_json::from_str(&v.to_string().replace(&app.base, "https://issuer.example")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_discovery_document() {
    let app = TestApp::new(Backend::Sqlite).await;
    let r = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["issuer"], app.base.as_str());
    insta::assert_json_snapshot!("discovery", redact(&app, doc.clone()));
    // RFC 8414: the same metadata at the OAuth well-known location.
    let oauth: Value = reqwest::get(app.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(oauth, doc);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7517_jwks_every_key_has_kid_alg_use() {
    let app = TestApp::new(Backend::Sqlite).await;
    let r = reqwest::get(app.url("/jwks.json")).await.unwrap();
    let cache = r
        .headers()
        .get("cache-control")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cache.contains("max-age="), "{cache}");
    let jwks: Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for k in keys {
        assert!(k["kid"].as_str().is_some_and(|s| s.len() == 43), "{k}");
        assert_eq!(k["use"], "sig");
        assert!(
            k.get("d").is_none() && k.get("p").is_none(),
            "never a private member"
        );
    }
    let shape: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut names: Vec<&String> = k.as_object().unwrap().keys().collect();
            names.sort();
            serde_json::json!({"alg": k["alg"], "kty": k["kty"], "members": names})
        })
        .collect();
    let mut shape = shape;
    shape.sort_by_key(|v| v["alg"].to_string());
    insta::assert_json_snapshot!("jwks_shape", shape);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies() {
    let app = TestApp::new(Backend::Sqlite).await;
    let c = app.client(|_| {}).await;
    let http = reqwest::Client::new();
    let mut bodies = serde_json::Map::new();
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "token_invalid_grant",
            http.post(app.url("/token"))
                .basic_auth(&c.client_id, c.client_secret.as_deref())
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", "lk_ac_nope"),
                    ("redirect_uri", CALLBACK),
                ]),
        ),
        (
            "token_invalid_client",
            http.post(app.url("/token"))
                .basic_auth(&c.client_id, Some("wrong"))
                .form(&[("grant_type", "authorization_code")]),
        ),
        (
            "token_unsupported_grant_type",
            http.post(app.url("/token"))
                .basic_auth(&c.client_id, c.client_secret.as_deref())
                .form(&[("grant_type", "implicit")]),
        ),
        (
            "token_missing_grant_type",
            http.post(app.url("/token"))
                .basic_auth(&c.client_id, c.client_secret.as_deref())
                .form(&[("code", "x")]),
        ),
        (
            "token_wrong_content_type",
            http.post(app.url("/token"))
                .basic_auth(&c.client_id, c.client_secret.as_deref())
                .json(&serde_json::json!({"grant_type": "client_credentials"})),
        ),
        (
            "userinfo_invalid_token",
            http.get(app.url("/userinfo")).bearer_auth("garbage"),
        ),
    ];
    for (name, req) in cases {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let www = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = r.json().await.unwrap();
        bodies.insert(
            name.into(),
            serde_json::json!({"status": status, "www_authenticate": www, "body": body}),
        );
    }
    insta::assert_json_snapshot!("error_bodies", Value::Object(bodies));
    app.stop().await;
}

/// `docs/audit.md` lists every audit action the code can write, generated from the enum.
#[test]
fn docs_audit_md_lists_every_action() {
    let doc = include_str!("../../docs/audit.md");
    let begin = "<!-- actions:begin -->\n";
    let end = "<!-- actions:end -->";
    let a = doc.find(begin).expect("begin marker") + begin.len();
    let b = doc.find(end).expect("end marker");
    let expected = latchkey_server::audit::Action::markdown_table();
    assert_eq!(
        &doc[a..b],
        expected,
        "docs/audit.md's action table is stale; replace it with:\n{expected}"
    );
}
