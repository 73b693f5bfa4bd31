//! DPoP (RFC 9449) over HTTP, both databases: proofs signed here with ring (ES256), as a
//! client library would make them. Tokens issued with a proof are bound to its key (`cnf.jkt`,
//! `token_type` DPoP); UserInfo, the admin API and `latchkey-client` accept a bound token only
//! with a fresh proof by that key. `browser::chromium_relying_party_uses_dpop_with_openid_client`
//! drives the same with panva's openid-client.

use crate::both;
use crate::both_with;
use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

/// A client's DPoP key.
pub struct DpopKey(EcdsaKeyPair);

impl DpopKey {
    pub fn new() -> DpopKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        DpopKey(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
        )
    }

    fn jwk(&self) -> Value {
        let p = self.0.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..])})
    }

    /// RFC 7638 thumbprint, as the server computes it.
    pub fn jkt(&self) -> String {
        let key =
            latchkey_core::jose::PublicKey::from_jwk(self.jwk().as_object().unwrap()).unwrap();
        key.thumbprint()
    }

    /// A proof with these claims (`jti` and `iat` added unless given).
    pub fn sign(&self, mut claims: Value) -> String {
        if claims.get("jti").is_none() {
            claims["jti"] = uuid::Uuid::new_v4().to_string().into();
        }
        if claims.get("iat").is_none() {
            claims["iat"] = latchkey_server::store::now().into();
        }
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// A proof for `method url`, for `token` when one is presented with it.
    pub fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        let mut c = json!({"htm": method, "htu": url});
        if let Some(t) = token {
            c["ath"] = latchkey_core::dpop::access_token_hash(t).into();
        }
        self.sign(c)
    }
}

/// POSTs a token request with HTTP Basic (when a secret is given) and an optional proof.
pub(crate) async fn token_request(
    app: &TestApp,
    client: (&str, Option<&str>),
    form: &[(&str, &str)],
    proof: Option<String>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = reqwest::Client::new().post(app.url("/token"));
    r = match client.1 {
        Some(s) => r.basic_auth(client.0, Some(s)).form(form),
        None => {
            let mut f: Vec<(&str, &str)> = form.to_vec();
            f.push(("client_id", client.0));
            r.form(&f)
        }
    };
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

async fn cc_client(app: &TestApp, require_dpop: bool) -> (String, String) {
    let c = app
        .client(|c| {
            c.grant_types = vec!["client_credentials".into()];
            c.redirect_uris = vec![];
            c.require_dpop = require_dpop;
        })
        .await;
    (c.client_id, c.client_secret.unwrap())
}

async fn cc_dpop(app: &TestApp, c: &(String, String), key: &DpopKey) -> Value {
    let proof = key.proof("POST", &app.url("/token"), None);
    let (status, _, v) = token_request(
        app,
        (&c.0, Some(&c.1)),
        &[("grant_type", "client_credentials")],
        Some(proof),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// A user's tokens from a browser login (`public`: a public client), bound to `key` if given.
async fn user_tokens_dpop(app: &TestApp, public: bool, key: Option<&DpopKey>) -> (String, Value) {
    let c = app
        .client(move |c| {
            c.public = public;
            c.skip_consent = true;
        })
        .await;
    let back = Browser::new(app)
        .login(&authorize_url(app, &c.client_id, &[]), EMAIL, PASSWORD)
        .await;
    let code = query_param(&back, "code").unwrap();
    let proof = key.map(|k| k.proof("POST", &app.url("/token"), None));
    let (status, _, v) = token_request(
        app,
        (&c.client_id, c.client_secret.as_deref()),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
        proof,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    (c.client_id, v)
}

async fn userinfo(
    app: &TestApp,
    authorization: &str,
    proof: Option<String>,
) -> (u16, String, Value) {
    let mut r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .header("Authorization", authorization);
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let www = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ");
    (status, www, r.json().await.unwrap_or(Value::Null))
}

both!(
    rfc9449_5_a_proof_at_the_token_endpoint_binds_the_access_token_to_its_key,
    async |app: &TestApp| {
        let c = cc_client(app, false).await;
        let key = DpopKey::new();
        let v = cc_dpop(app, &c, &key).await;
        assert_eq!(v["token_type"], "DPoP");
        let at = v["access_token"].as_str().unwrap();
        assert_eq!(jwt_claims(at)["cnf"]["jkt"], key.jkt());
        // RFC 9449 section 6.2: introspection tells the binding.
        let r = reqwest::Client::new()
            .post(app.url("/introspect"))
            .basic_auth(&c.0, Some(&c.1))
            .form(&[("token", at)])
            .send()
            .await
            .unwrap();
        let i: Value = r.json().await.unwrap();
        assert_eq!(i["active"], true);
        assert_eq!(i["token_type"], "DPoP");
        assert_eq!(i["cnf"]["jkt"], key.jkt());
        // Without a proof the same client gets a bearer token, unbound.
        let plain = cc_token(app, &c.0, &c.1).await;
        assert!(jwt_claims(&plain).get("cnf").is_none());
    }
);

both!(
    rfc9449_11_1_a_proof_is_accepted_once_at_the_token_endpoint,
    async |app: &TestApp| {
        let c = cc_client(app, false).await;
        let key = DpopKey::new();
        let proof = key.proof("POST", &app.url("/token"), None);
        let form = [("grant_type", "client_credentials")];
        let (s1, _, _) = token_request(app, (&c.0, Some(&c.1)), &form, Some(proof.clone())).await;
        assert_eq!(s1, 200);
        let (s2, _, v) = token_request(app, (&c.0, Some(&c.1)), &form, Some(proof)).await;
        assert_eq!(
            (s2, v["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{v}"
        );
    }
);

both!(
    rfc9449_4_3_a_proof_for_another_method_uri_or_time_is_refused,
    async |app: &TestApp| {
        let c = cc_client(app, false).await;
        let key = DpopKey::new();
        let form = [("grant_type", "client_credentials")];
        let now = latchkey_server::store::now();
        for proof in [
            key.proof("GET", &app.url("/token"), None),
            key.proof("POST", &app.url("/userinfo"), None),
            key.sign(json!({"htm": "POST", "htu": app.url("/token"), "iat": now - 3600})),
            key.sign(json!({"htm": "POST", "htu": app.url("/token"), "iat": now + 3600})),
            "not.a.proof".to_owned(),
        ] {
            let (s, _, v) = token_request(app, (&c.0, Some(&c.1)), &form, Some(proof)).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (400, Some("invalid_dpop_proof")),
                "{v}"
            );
        }
        // Two DPoP headers are refused too (section 4.3 item 1).
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(&c.0, Some(&c.1))
            .header("DPoP", key.proof("POST", &app.url("/token"), None))
            .header("DPoP", key.proof("POST", &app.url("/token"), None))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
);

both!(
    rfc9449_5_2_a_client_registered_for_dpop_gets_no_bearer_token,
    async |app: &TestApp| {
        let c = cc_client(app, true).await;
        let (s, _, v) = token_request(
            app,
            (&c.0, Some(&c.1)),
            &[("grant_type", "client_credentials")],
            None,
        )
        .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{v}"
        );
        let v = cc_dpop(app, &c, &DpopKey::new()).await;
        assert_eq!(v["token_type"], "DPoP");
    }
);

both!(
    rfc9449_7_a_bound_token_is_good_at_userinfo_only_with_a_proof_by_its_key,
    async |app: &TestApp| {
        let key = DpopKey::new();
        let (_, v) = user_tokens_dpop(app, false, Some(&key)).await;
        assert_eq!(v["token_type"], "DPoP");
        let at = v["access_token"].as_str().unwrap();
        let ui = app.url("/userinfo");
        // Section 7.2: not as a bearer token.
        let (s, www, _) = userinfo(app, &format!("Bearer {at}"), None).await;
        assert_eq!(s, 401);
        assert!(www.starts_with("DPoP error=\"invalid_token\""), "{www}");
        // Not without a proof, nor with one by another key, nor one without `ath`.
        let dpop = format!("DPoP {at}");
        let (s, www, _) = userinfo(app, &dpop, None).await;
        assert_eq!(s, 401);
        assert!(www.contains("invalid_dpop_proof"), "{www}");
        let other = DpopKey::new().proof("GET", &ui, Some(at));
        let (s, www, _) = userinfo(app, &dpop, Some(other)).await;
        assert_eq!(s, 401);
        assert!(www.contains("invalid_dpop_proof"), "{www}");
        let no_ath = key.proof("GET", &ui, None);
        let (s, _, _) = userinfo(app, &dpop, Some(no_ath)).await;
        assert_eq!(s, 401);
        // With its key's proof, once.
        let good = key.proof("GET", &ui, Some(at));
        let (s, _, info) = userinfo(app, &dpop, Some(good.clone())).await;
        assert_eq!((s, info["email"].as_str()), (200, Some(EMAIL)), "{info}");
        let (s, www, _) = userinfo(app, &dpop, Some(good)).await;
        assert_eq!(s, 401);
        assert!(www.contains("invalid_dpop_proof"), "{www}");
        // An unbound token is not accepted with the DPoP scheme.
        let c = app.client(|c| c.skip_consent = true).await;
        let plain = user_tokens(
            app,
            &c.client_id,
            c.client_secret.as_deref().unwrap(),
            "openid",
        )
        .await;
        let pat = plain["access_token"].as_str().unwrap();
        let (s, _, _) = userinfo(
            app,
            &format!("DPoP {pat}"),
            Some(key.proof("GET", &ui, Some(pat))),
        )
        .await;
        assert_eq!(s, 401);
        let (s, _, _) = userinfo(app, &format!("Bearer {pat}"), None).await;
        assert_eq!(s, 200);
    }
);

/// A bound refresh token (`form`) is refused without a proof and with another key's proof,
/// and neither refusal spends it.
async fn refresh_needs_its_key(app: &TestApp, client_id: &str, form: &[(&str, &str)]) {
    let other = DpopKey::new().proof("POST", &app.url("/token"), None);
    for proof in [None, Some(other)] {
        let (s, _, e) = token_request(app, (client_id, None), form, proof).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{e}"
        );
    }
}

both!(
    rfc9449_5_a_public_clients_refresh_token_is_bound_to_its_key,
    async |app: &TestApp| {
        let key = DpopKey::new();
        let (client_id, v) = user_tokens_dpop(app, true, Some(&key)).await;
        let rt = v["refresh_token"].as_str().unwrap().to_owned();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ];
        let token_url = app.url("/token");
        refresh_needs_its_key(app, &client_id, &form).await;
        let proof = key.proof("POST", &token_url, None);
        let (s, _, r) = token_request(app, (&client_id, None), &form, Some(proof)).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["token_type"], "DPoP");
        assert_eq!(
            jwt_claims(r["access_token"].as_str().unwrap())["cnf"]["jkt"],
            key.jkt()
        );
        // The rotated token is bound too.
        let next = r["refresh_token"].as_str().unwrap();
        let form = [("grant_type", "refresh_token"), ("refresh_token", next)];
        let (s, _, _) = token_request(app, (&client_id, None), &form, None).await;
        assert_eq!(s, 400);
    }
);

both!(
    rfc9449_5_a_public_client_starting_dpop_at_refresh_binds_its_refresh_token,
    async |app: &TestApp| {
        let (client_id, v) = user_tokens_dpop(app, true, None).await;
        assert_eq!(v["token_type"], "Bearer");
        let rt = v["refresh_token"].as_str().unwrap();
        let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
        let key = DpopKey::new();
        let token_url = app.url("/token");
        let proof = key.proof("POST", &token_url, None);
        let (s, _, r) = token_request(app, (&client_id, None), &form, Some(proof)).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["token_type"], "DPoP");
        // From here the grant is bound: the next refresh token needs a proof by that key, and
        // a refusal leaves it to its holder.
        let next = r["refresh_token"].as_str().unwrap();
        let form = [("grant_type", "refresh_token"), ("refresh_token", next)];
        refresh_needs_its_key(app, &client_id, &form).await;
        let proof = key.proof("POST", &token_url, None);
        let (s, _, r) = token_request(app, (&client_id, None), &form, Some(proof)).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(
            jwt_claims(r["access_token"].as_str().unwrap())["cnf"]["jkt"],
            key.jkt()
        );
    }
);

both!(
    rfc9449_5_a_confidential_clients_refresh_token_stays_unbound,
    async |app: &TestApp| {
        let c = app.client(|c| c.skip_consent = true).await;
        let secret = c.client_secret.as_deref().unwrap();
        let v = user_tokens(app, &c.client_id, secret, "openid offline_access").await;
        let rt = v["refresh_token"].as_str().unwrap();
        let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
        let key = DpopKey::new();
        let proof = key.proof("POST", &app.url("/token"), None);
        let (s, _, r) = token_request(app, (&c.client_id, Some(secret)), &form, Some(proof)).await;
        assert_eq!((s, r["token_type"].as_str()), (200, Some("DPoP")), "{r}");
        // Sender-constrained by its secret already: the next refresh needs no proof.
        let next = r["refresh_token"].as_str().unwrap();
        let form = [("grant_type", "refresh_token"), ("refresh_token", next)];
        let (s, _, r) = token_request(app, (&c.client_id, Some(secret)), &form, None).await;
        assert_eq!((s, r["token_type"].as_str()), (200, Some("Bearer")), "{r}");
    }
);

both_with!(
    rfc9449_8_a_server_nonce_is_required_when_configured,
    |c| c.dpop.require_nonce = true,
    async |app: &TestApp| {
        let c = cc_client(app, false).await;
        let key = DpopKey::new();
        let token_url = app.url("/token");
        let form = [("grant_type", "client_credentials")];
        let (s, h, e) = token_request(
            app,
            (&c.0, Some(&c.1)),
            &form,
            Some(key.proof("POST", &token_url, None)),
        )
        .await;
        assert_eq!(
            (s, e["error"].as_str()),
            (400, Some("use_dpop_nonce")),
            "{e}"
        );
        let nonce = h
            .get("dpop-nonce")
            .expect("DPoP-Nonce")
            .to_str()
            .unwrap()
            .to_owned();
        // A nonce Latchkey did not issue is refused the same way.
        let forged =
            key.sign(json!({"htm": "POST", "htu": token_url, "nonce": "AAAAAAAAAAAAAAAA"}));
        let (s, _, e) = token_request(app, (&c.0, Some(&c.1)), &form, Some(forged)).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (400, Some("use_dpop_nonce")),
            "{e}"
        );
        let proof = key.sign(json!({"htm": "POST", "htu": token_url, "nonce": nonce}));
        let (s, h, v) = token_request(app, (&c.0, Some(&c.1)), &form, Some(proof)).await;
        assert_eq!(s, 200, "{v}");
        assert!(h.get("dpop-nonce").is_some());
        // At a resource, the answer is a 401 DPoP challenge with the nonce.
        let at = v["access_token"].as_str().unwrap();
        let r = reqwest::Client::new()
            .post(app.url("/introspect"))
            .basic_auth(&c.0, Some(&c.1))
            .form(&[("token", at)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let key2 = DpopKey::new();
        let (s2, _, v2) = user_tokens_nonce(app, &key2).await;
        assert_eq!(s2, 200, "{v2}");
        let at = v2["access_token"].as_str().unwrap();
        let (s, www, _) = userinfo(
            app,
            &format!("DPoP {at}"),
            Some(key2.proof("GET", &app.url("/userinfo"), Some(at))),
        )
        .await;
        assert_eq!(s, 401);
        assert!(www.contains("use_dpop_nonce"), "{www}");
    }
);

/// A user's bound tokens when the server asks for nonces: the first proof earns the nonce.
async fn user_tokens_nonce(
    app: &TestApp,
    key: &DpopKey,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let c = app.client(|c| c.skip_consent = true).await;
    let back = Browser::new(app)
        .login(&authorize_url(app, &c.client_id, &[]), EMAIL, PASSWORD)
        .await;
    let code = query_param(&back, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    let secret = c.client_secret.as_deref();
    let (_, h, _) = token_request(
        app,
        (&c.client_id, secret),
        &form,
        Some(key.proof("POST", &app.url("/token"), None)),
    )
    .await;
    let nonce = h.get("dpop-nonce").unwrap().to_str().unwrap().to_owned();
    let proof = key.sign(json!({"htm": "POST", "htu": app.url("/token"), "nonce": nonce}));
    token_request(app, (&c.client_id, secret), &form, Some(proof)).await
}

/// An admin automation client: its id and secret.
async fn admin_client(app: &TestApp) -> (String, String) {
    let c = app
        .client(|c| {
            c.grant_types = vec!["client_credentials".into()];
            c.redirect_uris = vec![];
            c.admin_of = Some("*".into());
        })
        .await;
    (c.client_id, c.client_secret.unwrap())
}

/// Asks for an admin token bound to `key` (`nonce`: the server's, if it asks): the status,
/// the `DPoP-Nonce` header and the body.
async fn admin_token_dpop(
    app: &TestApp,
    c: &(String, String),
    key: &DpopKey,
    nonce: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut claims = json!({"htm": "POST", "htu": app.url("/token")});
    if let Some(n) = nonce {
        claims["nonce"] = n.into();
    }
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "latchkey:admin"),
    ];
    let (s, h, v) = token_request(app, (&c.0, Some(&c.1)), &form, Some(key.sign(claims))).await;
    let next = h.get("dpop-nonce").map(|n| n.to_str().unwrap().to_owned());
    (s, next, v)
}

/// GETs an admin API URL: the status, the `WWW-Authenticate` challenge, the `DPoP-Nonce`
/// header and the body.
async fn admin_get(
    url: &str,
    authorization: &str,
    proof: Option<String>,
) -> (u16, String, Option<String>, Value) {
    let mut r = reqwest::Client::new()
        .get(url)
        .header("Authorization", authorization);
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    let r = r.send().await.unwrap();
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    let (www, nonce) = (h("www-authenticate").unwrap_or_default(), h("dpop-nonce"));
    (
        r.status().as_u16(),
        www,
        nonce,
        r.json().await.unwrap_or(Value::Null),
    )
}

both!(
    rfc9449_7_the_admin_api_takes_a_bound_admin_token_only_with_its_proof,
    async |app: &TestApp| {
        let key = DpopKey::new();
        let (s, _, v) = admin_token_dpop(app, &admin_client(app).await, &key, None).await;
        assert_eq!(s, 200, "{v}");
        let at = v["access_token"].as_str().unwrap();
        let labs = app.url("/api/v1/labs");
        // Refusals are the admin API's `unauthenticated`, with the DPoP challenge that says
        // which rule failed (section 7.1).
        let (s, www, _, body) = admin_get(&labs, &format!("Bearer {at}"), None).await;
        assert_eq!((s, body["error"].as_str()), (401, Some("unauthenticated")));
        assert!(
            www.starts_with("DPoP realm=\"latchkey-admin\", error=\"invalid_token\""),
            "{www}"
        );
        assert!(www.contains("algs=\"") && www.contains("ES256"), "{www}");
        let dpop = format!("DPoP {at}");
        let (s, www, _, _) = admin_get(&labs, &dpop, None).await;
        assert_eq!(s, 401);
        assert!(www.contains("error=\"invalid_dpop_proof\""), "{www}");
        let other = DpopKey::new().proof("GET", &labs, Some(at));
        let (s, www, _, _) = admin_get(&labs, &dpop, Some(other)).await;
        assert_eq!(s, 401);
        assert!(www.contains("error=\"invalid_dpop_proof\""), "{www}");
        let good = key.proof("GET", &labs, Some(at));
        let (s, _, _, body) = admin_get(&labs, &dpop, Some(good.clone())).await;
        assert_eq!(s, 200, "{body}");
        // Section 11.1: once.
        let (s, www, _, _) = admin_get(&labs, &dpop, Some(good)).await;
        assert_eq!(s, 401);
        assert!(www.contains("error=\"invalid_dpop_proof\""), "{www}");
    }
);

both_with!(
    rfc9449_9_the_admin_api_asks_for_a_nonce_with_use_dpop_nonce,
    |c| c.dpop.require_nonce = true,
    async |app: &TestApp| {
        let key = DpopKey::new();
        let c = admin_client(app).await;
        // The token endpoint hands out the first nonce.
        let (s, first, _) = admin_token_dpop(app, &c, &key, None).await;
        assert_eq!(s, 400);
        let first = first.expect("DPoP-Nonce");
        let (s, _, v) = admin_token_dpop(app, &c, &key, Some(&first)).await;
        assert_eq!(s, 200, "{v}");
        let at = v["access_token"].as_str().unwrap();
        let labs = app.url("/api/v1/labs");
        let dpop = format!("DPoP {at}");
        let no_nonce = key.proof("GET", &labs, Some(at));
        let (s, www, nonce, body) = admin_get(&labs, &dpop, Some(no_nonce)).await;
        assert_eq!((s, body["error"].as_str()), (401, Some("unauthenticated")));
        assert!(www.contains("error=\"use_dpop_nonce\""), "{www}");
        let nonce = nonce.expect("a DPoP-Nonce header with use_dpop_nonce");
        let ath = latchkey_core::dpop::access_token_hash(at);
        let proof = key.sign(json!({"htm": "GET", "htu": labs, "ath": ath, "nonce": nonce}));
        let (s, _, _, body) = admin_get(&labs, &dpop, Some(proof)).await;
        assert_eq!(s, 200, "{body}");
    }
);

both!(
    rfc9449_7_latchkey_client_verifies_bound_tokens_for_a_resource_server,
    async |app: &TestApp| {
        use latchkey_client::{Presented, Verifier, VerifierOptions, VerifyError};
        let c = cc_client(app, false).await;
        let key = DpopKey::new();
        let v = cc_dpop(app, &c, &key).await;
        let at = v["access_token"].as_str().unwrap();
        let verifier =
            Verifier::discover(VerifierOptions::new(app.base.clone(), c.0.clone()).any_lab())
                .await
                .unwrap();
        let uri = "https://orders.lab.example/orders/42";
        assert_eq!(
            verifier
                .verify_request(Presented::Bearer(at), "GET", uri)
                .await
                .unwrap_err(),
            VerifyError::DpopBound
        );
        let proof = key.proof("GET", uri, Some(at));
        let presented = Presented::Dpop {
            token: at,
            proof: Some(&proof),
        };
        let g = verifier
            .verify_request(presented, "GET", uri)
            .await
            .unwrap();
        assert_eq!(g.dpop_jkt.as_deref(), Some(key.jkt().as_str()));
        assert_eq!(
            verifier
                .verify_request(presented, "GET", uri)
                .await
                .unwrap_err(),
            VerifyError::DpopReplayed
        );
        let wrong_uri = key.proof("GET", "https://orders.lab.example/other", Some(at));
        let e = verifier
            .verify_request(
                Presented::Dpop {
                    token: at,
                    proof: Some(&wrong_uri),
                },
                "GET",
                uri,
            )
            .await
            .unwrap_err();
        assert!(e.is_dpop_proof(), "{e}");
        let other = DpopKey::new().proof("GET", uri, Some(at));
        assert_eq!(
            verifier
                .verify_request(
                    Presented::Dpop {
                        token: at,
                        proof: Some(&other)
                    },
                    "GET",
                    uri
                )
                .await
                .unwrap_err(),
            VerifyError::DpopKeyMismatch
        );
    }
);
