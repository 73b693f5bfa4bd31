//! `private_key_jwt` client authentication (RFC 7523 sections 2.2 and 3, OIDC Core section 9)
//! over HTTP, both databases: a client registered with its public keys (a JWK Set, or a
//! `jwks_uri`) signs a short-lived JWT for each request to the token, introspection,
//! revocation and PAR endpoints. Every refusal is named after the rule it enforces;
//! `browser::chromium_relying_party_signs_in_with_private_key_jwt_with_openid_client` drives
//! it with panva's openid-client.

use crate::both;
use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::SigningAlg;
use latchkey_server::crypto::SigningKey;
use latchkey_server::crypto::jwt::encode;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn key(alg: SigningAlg) -> SigningKey {
    SigningKey::generate(alg).unwrap().0
}

fn jwks(keys: &[&SigningKey]) -> String {
    json!({"keys": keys.iter().map(|k| &k.jwk).collect::<Vec<_>>()}).to_string()
}

/// A client_credentials (and authorization_code) client registered with `key`'s public half.
async fn key_client(app: &TestApp, key: &SigningKey) -> String {
    let set = jwks(&[key]);
    let c = app
        .client(move |c| {
            c.grant_types = vec!["authorization_code".into(), "client_credentials".into()];
            c.jwks = Some(set);
            c.skip_consent = true;
        })
        .await;
    assert!(c.client_secret.is_none(), "no secret is made");
    assert_eq!(c.token_endpoint_auth_method, "private_key_jwt");
    c.client_id
}

/// The claims of a good assertion from `client` to `app`.
fn claims(app: &TestApp, client: &str) -> Value {
    let now = latchkey_server::store::now();
    json!({
        "iss": client,
        "sub": client,
        "aud": app.base,
        "iat": now,
        "exp": now + 60,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

fn sign(key: &SigningKey, claims: &Value) -> String {
    encode(key, "JWT", claims)
}

/// A JWS with `header` over `claims`, signed by `signer` (raw signature bytes).
fn forge(header: Value, claims: &Value, signer: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let mut t = URL_SAFE_NO_PAD.encode(header.to_string());
    t.push('.');
    t.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = signer(t.as_bytes());
    t.push('.');
    t.push_str(&URL_SAFE_NO_PAD.encode(sig));
    t
}

/// POSTs `form` plus the assertion to `path`: (status, body).
async fn with_assertion(
    app: &TestApp,
    path: &str,
    assertion: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = form.to_vec();
    form.push(("client_assertion_type", ASSERTION_TYPE));
    form.push(("client_assertion", assertion));
    let r = reqwest::Client::new()
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn cc(app: &TestApp, assertion: &str) -> (u16, Value) {
    with_assertion(
        app,
        "/token",
        assertion,
        &[("grant_type", "client_credentials")],
    )
    .await
}

/// Asserts `invalid_client` whose description mentions `why` (400: the credentials came in
/// the body, not in an `Authorization` header).
fn refused(r: (u16, Value), why: &str) {
    assert_eq!(r.0, 400, "{}", r.1);
    assert_eq!(r.1["error"], "invalid_client", "{}", r.1);
    let d = r.1["error_description"].as_str().unwrap_or("");
    assert!(d.contains(why), "`{why}` not in: {d}");
}

both!(
    rfc7523_2_2_a_signed_assertion_authenticates_the_client_with_every_key_type,
    async |app: &TestApp| {
        for alg in SigningAlg::ALL {
            let k = key(alg);
            let id = key_client(app, &k).await;
            let (s, v) = cc(app, &sign(&k, &claims(app, &id))).await;
            assert_eq!(s, 200, "{alg}: {v}");
            let at = v["access_token"].as_str().unwrap().to_owned();
            // The token endpoint's URL is an audience as good as the issuer (OIDC Core 9).
            let mut c = claims(app, &id);
            c["aud"] = json!([app.url("/token")]);
            let (s, v) = with_assertion(app, "/introspect", &sign(&k, &c), &[("token", &at)]).await;
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["active"], true);
            assert_eq!(v["client_id"], id.as_str());
            let (s, _) = with_assertion(
                app,
                "/revoke",
                &sign(&k, &claims(app, &id)),
                &[("token", &at)],
            )
            .await;
            assert_eq!(s, 200);
        }
    }
);

both!(
    rfc7523_3_an_assertion_is_used_once,
    async |app: &TestApp| {
        let k = key(SigningAlg::ES256);
        let id = key_client(app, &k).await;
        let a = sign(&k, &claims(app, &id));
        assert_eq!(cc(app, &a).await.0, 200);
        refused(cc(app, &a).await, "used before");
        // At another endpoint too: the jti is the client's, wherever it was spent.
        refused(
            with_assertion(app, "/introspect", &a, &[("token", "x")]).await,
            "used before",
        );
    }
);

both!(
    rfc7523_3_an_assertion_made_for_another_server_is_refused,
    async |app: &TestApp| {
        let k = key(SigningAlg::ES256);
        let id = key_client(app, &k).await;
        for aud in [
            json!("https://other.example"),
            json!([format!("{}/authorize", app.base)]),
            json!(format!("{}.evil", app.base)),
            json!(null),
        ] {
            let mut c = claims(app, &id);
            c["aud"] = aud;
            refused(cc(app, &sign(&k, &c)).await, "aud");
        }
    }
);

both!(
    rfc7523_3_iss_and_sub_must_both_be_the_client,
    async |app: &TestApp| {
        let k = key(SigningAlg::ES256);
        let id = key_client(app, &k).await;
        let other = key_client(app, &key(SigningAlg::ES256)).await;
        let mut c = claims(app, &id);
        c["iss"] = json!(other);
        refused(cc(app, &sign(&k, &c)).await, "iss and sub");
        // Signed by this client's key but claiming to be the other client: the other
        // client's keys do not verify it.
        let mut c = claims(app, &id);
        c["sub"] = json!(other);
        c["iss"] = json!(other);
        refused(cc(app, &sign(&k, &c)).await, "signature");
        // A client_id beside the assertion must name the same client.
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", other.as_str()),
        ];
        refused(
            with_assertion(app, "/token", &sign(&k, &claims(app, &id)), &form).await,
            "client_id differs",
        );
    }
);

both!(
    rfc7523_3_expired_future_and_long_lived_assertions_are_refused,
    async |app: &TestApp| {
        let k = key(SigningAlg::EdDSA);
        let id = key_client(app, &k).await;
        let now = latchkey_server::store::now();
        let cases: [(&str, Value, &str); 5] = [
            ("exp", json!(now - 120), "expired"),
            ("exp", json!(now + 3600), "seconds away"),
            ("exp", Value::Null, "no exp"),
            ("nbf", json!(now + 600), "not valid yet"),
            ("jti", Value::Null, "jti"),
        ];
        for (claim, value, why) in cases {
            let mut c = claims(app, &id);
            if value.is_null() {
                c.as_object_mut().unwrap().remove(claim);
            } else {
                c[claim] = value;
            }
            refused(cc(app, &sign(&k, &c)).await, why);
        }
    }
);

both!(
    rfc7515_alg_none_and_hmac_assertions_are_refused,
    async |app: &TestApp| {
        let k = key(SigningAlg::RS256);
        let id = key_client(app, &k).await;
        let c = claims(app, &id);
        let none = forge(json!({"alg": "none"}), &c, |_| Vec::new());
        refused(cc(app, &none).await, "alg");
        // Key confusion: an HMAC keyed with the client's public key, which anyone can read.
        let public = serde_json::to_vec(&k.jwk).unwrap();
        let hs = forge(json!({"alg": "HS256", "kid": k.kid()}), &c, |m| {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public);
            ring::hmac::sign(&key, m).as_ref().to_vec()
        });
        refused(cc(app, &hs).await, "alg");
        // An RSA key never verifies an ES256 header, whatever the signature.
        let es = forge(json!({"alg": "ES256", "kid": k.kid()}), &c, |m| k.sign(m));
        refused(cc(app, &es).await, "signature");
        // Another kind of JWT is not an assertion.
        let at = encode(&k, "at+jwt", &claims(app, &id));
        refused(cc(app, &at).await, "typ");
    }
);

both!(
    rfc7523_3_a_signature_by_another_key_is_refused,
    async |app: &TestApp| {
        let k = key(SigningAlg::ES256);
        let id = key_client(app, &k).await;
        let stranger = key(SigningAlg::ES256);
        // Naming the client's key, signed by another.
        let forged = forge(
            json!({"alg": "ES256", "kid": k.kid()}),
            &claims(app, &id),
            |m| stranger.sign(m),
        );
        refused(cc(app, &forged).await, "signature");
        // Naming no key at all.
        let forged = forge(json!({"alg": "ES256"}), &claims(app, &id), |m| {
            stranger.sign(m)
        });
        refused(cc(app, &forged).await, "signature");
        // A key without a kid in the client's set verifies an assertion naming none.
        let bare = key(SigningAlg::ES256);
        let mut jwk = serde_json::to_value(&bare.jwk).unwrap();
        jwk.as_object_mut().unwrap().remove("kid");
        let set = json!({"keys": [jwk]}).to_string();
        let c = app
            .client(move |c| {
                c.grant_types = vec!["client_credentials".into()];
                c.redirect_uris = vec![];
                c.jwks = Some(set);
            })
            .await;
        let signed = forge(json!({"alg": "ES256"}), &claims(app, &c.client_id), |m| {
            bare.sign(m)
        });
        assert_eq!(cc(app, &signed).await.0, 200);
    }
);

both!(
    oidc_core_9_a_client_uses_the_method_it_registered,
    async |app: &TestApp| {
        let k = key(SigningAlg::ES256);
        let id = key_client(app, &k).await;
        // A key client has no secret to send.
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&id, Some("lk_cs_guess"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        // A secret client cannot authenticate with an assertion, even one it signed.
        let secret_client = app
            .client(|c| {
                c.grant_types = vec!["client_credentials".into()];
                c.redirect_uris = vec![];
            })
            .await;
        let a = sign(&k, &claims(app, &secret_client.client_id));
        refused(cc(app, &a).await, "client authentication failed");
        // Nor can a public client; neither answer says what the client is.
        let public = app.client(|c| c.public = true).await;
        let a = sign(&k, &claims(app, &public.client_id));
        let r = with_assertion(app, "/token", &a, &[("grant_type", "authorization_code")]).await;
        assert_eq!(
            r.1["error_description"], "client authentication failed",
            "{}",
            r.1
        );
        // One method at a time.
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&id, Some("x"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &sign(&k, &claims(app, &id))),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request");
        // An unknown assertion type.
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "urn:example:saml"),
                ("client_assertion", &sign(&k, &claims(app, &id))),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_client");
    }
);

both!(
    private_key_jwt_clients_are_registered_and_rekeyed_through_the_admin_api,
    async |app: &TestApp| {
        let admin = client_token(app, "*").await;
        let old = key(SigningAlg::ES256);
        let body = |extra: Value| {
            let mut b = json!({
                "name": "Scanner service",
                "grant_types": ["client_credentials"],
            });
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            b
        };
        let jwks_of = |k: &SigningKey| serde_json::from_str::<Value>(&jwks(&[k])).unwrap();
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            "/api/v1/clients",
            Some(body(json!({"jwks": jwks_of(&old)}))),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert!(v["client_secret"].is_null(), "{v}");
        assert_eq!(v["client"]["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(v["client"]["public"], false);
        let id = v["client"]["client_id"].as_str().unwrap().to_owned();
        assert_eq!(cc(app, &sign(&old, &claims(app, &id))).await.0, 200);

        // Refusals: each names the field and creates nothing.
        let mut private = serde_json::to_value(&old.jwk).unwrap();
        private["d"] = json!("AAAA");
        let before = app.state.store.list_clients().await.unwrap().len();
        for (extra, field) in [
            (json!({"jwks": {"keys": [private]}}), "jwks"),
            (json!({"jwks": {"keys": []}}), "jwks"),
            (
                json!({"jwks": jwks_of(&old), "jwks_uri": "https://rp.example/jwks"}),
                "jwks",
            ),
            (json!({"jwks_uri": "http://rp.example/jwks"}), "jwks_uri"),
            (json!({"jwks": jwks_of(&old), "public": true}), "public"),
        ] {
            let (s, v) = call(
                app,
                Some(&admin),
                Method::POST,
                "/api/v1/clients",
                Some(body(extra.clone())),
            )
            .await;
            assert_eq!(s, 422, "{extra}: {v}");
            assert_eq!(v["field"], field, "{extra}: {v}");
        }
        assert_eq!(app.state.store.list_clients().await.unwrap().len(), before);

        // A key client has no secret to rotate.
        let (s, v) = call(
            app,
            Some(&admin),
            Method::POST,
            &format!("/api/v1/clients/{id}/rotate-secret"),
            Some(json!({})),
        )
        .await;
        assert_eq!(s, 409, "{v}");

        // New keys: the old key stops at once, the new one works.
        let new = key(SigningAlg::EdDSA);
        let (s, v) = call(
            app,
            Some(&admin),
            Method::PATCH,
            &format!("/api/v1/clients/{id}"),
            Some(json!({"jwks": jwks_of(&new)})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        refused(cc(app, &sign(&old, &claims(app, &id))).await, "signature");
        assert_eq!(cc(app, &sign(&new, &claims(app, &id))).await.0, 200);

        // A secret client is not turned into a key client by an edit.
        let secret_client = app
            .client(|c| {
                c.grant_types = vec!["client_credentials".into()];
                c.redirect_uris = vec![];
            })
            .await;
        let (s, v) = call(
            app,
            Some(&admin),
            Method::PATCH,
            &format!("/api/v1/clients/{}", secret_client.client_id),
            Some(json!({"jwks": jwks_of(&new)})),
        )
        .await;
        assert_eq!(s, 409, "{v}");
    }
);

/// client_credentials requests with each of `assertions`, all sent at once.
async fn at_once(app: &TestApp, assertions: Vec<String>) -> Vec<(u16, Value)> {
    let mut set = tokio::task::JoinSet::new();
    for a in assertions {
        let url = app.url("/token");
        set.spawn(async move {
            let r = reqwest::Client::new()
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &a),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
        });
    }
    set.join_all().await
}

/// A relying party's JWK Set server: what it serves, and how often it was asked.
struct JwksServer {
    url: String,
    served: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    handle: actix_web::dev::ServerHandle,
}

async fn jwks_server(initial: String) -> JwksServer {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let served = Arc::new(Mutex::new(initial));
    let hits = Arc::new(AtomicUsize::new(0));
    let (s, h) = (served.clone(), hits.clone());
    let server = HttpServer::new(move || {
        let (s, h) = (s.clone(), h.clone());
        App::new().route(
            "/jwks.json",
            web::get().to(move || {
                let (s, h) = (s.clone(), h.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let body = s.lock().unwrap().clone();
                    HttpResponse::Ok()
                        .content_type("application/jwk-set+json")
                        .body(body)
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}/jwks.json", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    JwksServer {
        url,
        served,
        hits,
        handle,
    }
}

/// A client whose keys live at its `jwks_uri`: fetched once and cached; a rotation (a kid the
/// cache does not hold) fetches again, but assertions naming unknown keys cannot make Latchkey
/// fetch more than once per 10 seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7523_keys_from_a_jwks_uri_are_cached_and_refetched_after_a_rotation() {
    let app = TestApp::new(Backend::Sqlite).await;
    let first = key(SigningAlg::ES256);
    let server = jwks_server(jwks(&[&first])).await;
    let uri = server.url.clone();
    let c = app
        .client(move |c| {
            c.grant_types = vec!["client_credentials".into()];
            c.redirect_uris = vec![];
            c.jwks_uri = Some(uri);
        })
        .await;
    let id = c.client_id;
    for _ in 0..3 {
        assert_eq!(cc(&app, &sign(&first, &claims(&app, &id))).await.0, 200);
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "fetched once, then cached"
    );

    // Unknown keys right after the fetch: refused from the cache, no flood of fetches.
    let stranger = key(SigningAlg::ES256);
    for _ in 0..5 {
        refused(
            cc(&app, &sign(&stranger, &claims(&app, &id))).await,
            "signature",
        );
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);

    // The client rotates to a new key; once the refetch interval has passed, its first
    // assertions with the new key make Latchkey fetch again, once for all of them at the same
    // time, and succeed.
    let second = key(SigningAlg::RS256);
    *server.served.lock().unwrap() = jwks(&[&second]);
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    let signed: Vec<String> = (0..10).map(|_| sign(&second, &claims(&app, &id))).collect();
    for (s, v) in at_once(&app, signed).await {
        assert_eq!(s, 200, "{v}");
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        2,
        "one fetch for the burst"
    );
    refused(
        cc(&app, &sign(&first, &claims(&app, &id))).await,
        "signature",
    );
    // Assertions naming unknown keys, all at once: still no new fetch.
    let signed: Vec<String> = (0..20)
        .map(|_| sign(&key(SigningAlg::ES256), &claims(&app, &id)))
        .collect();
    for r in at_once(&app, signed).await {
        refused(r, "signature");
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    server.handle.stop(false).await;
    app.stop().await;
}

both!(
    rfc6749_5_2_a_client_deleted_behind_this_nodes_cache_is_refused_not_an_error,
    async |app: &TestApp| {
        let k = key(SigningAlg::ES256);
        let id = key_client(app, &k).await;
        assert_eq!(cc(app, &sign(&k, &claims(app, &id))).await.0, 200);
        // Deleted by another node (or the command line): this node still caches the client.
        tamper(app, &format!("DELETE FROM clients WHERE id = '{id}'")).await;
        refused(
            cc(app, &sign(&k, &claims(app, &id))).await,
            "client authentication failed",
        );
    }
);
