//! Pushed authorization requests (RFC 9126) over HTTP, both databases: the client pushes its
//! request to `/par` with its credentials, the browser brings only `client_id` and the
//! one-time `request_uri` to `/authorize`. The refusals are named after the rule they enforce;
//! `browser::chromium_relying_party_pushes_its_request_with_openid_client` drives the same
//! flow with panva's openid-client.

use crate::both;
use crate::both_with;
use crate::common::*;
use serde_json::Value;

/// The default test request's parameters (`authorize_url`'s), as a client would push them.
pub(crate) fn request(
    app: &TestApp,
    client_id: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let url = url::Url::parse(&authorize_url(app, client_id, extra)).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Pushes `params` with HTTP Basic credentials; returns (status, body).
async fn push(app: &TestApp, c: &(String, String), params: &[(String, String)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url("/par"))
        .basic_auth(&c.0, Some(&c.1))
        .form(params)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn client(app: &TestApp, require_par: bool) -> (String, String) {
    let c = app
        .client(|c| {
            c.skip_consent = true;
            c.require_par = require_par;
        })
        .await;
    (c.client_id, c.client_secret.unwrap())
}

/// `/authorize` with only `client_id` and `request_uri` (and `extra`).
pub(crate) fn par_authorize(
    app: &TestApp,
    client_id: &str,
    request_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut u = url::Url::parse(&app.url("/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri);
    for (k, v) in extra {
        u.query_pairs_mut().append_pair(k, v);
    }
    u.to_string()
}

/// Signs in with the password from `authorize`; returns the client's callback URL.
pub(crate) async fn sign_in(b: &Browser, authorize: &str) -> url::Url {
    let (flow, csrf) = b.open_login(authorize).await;
    let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
    url::Url::parse(&location(&r)).expect("back at the client")
}

both!(
    rfc9126_a_pushed_request_signs_in_and_its_request_uri_is_used_once,
    async |app: &TestApp| {
        let c = client(app, false).await;
        let (status, v) = push(app, &c, &request(app, &c.0, &[])).await;
        assert_eq!(status, 201, "{v}");
        let uri = v["request_uri"].as_str().unwrap().to_owned();
        assert!(
            uri.starts_with("urn:ietf:params:oauth:request_uri:"),
            "{uri}"
        );
        assert_eq!(v["expires_in"], 60);
        let b = Browser::new(app);
        let back = sign_in(&b, &par_authorize(app, &c.0, &uri, &[])).await;
        assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
        let t = tokens(app, &c, &back).await;
        let id = jwt_claims(t["id_token"].as_str().unwrap());
        assert_eq!(id["nonce"], "n0nce");
        assert_eq!(id["sub"], app.user_id.as_str());
        // RFC 9126 section 4: the request_uri is single-use.
        let r = Browser::new(app)
            .get(&par_authorize(app, &c.0, &uri, &[]))
            .await;
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("invalid_request_uri"));
    }
);

both!(
    rfc9126_authorize_ignores_parameters_beside_the_request_uri,
    async |app: &TestApp| {
        let c = client(app, false).await;
        let (_, v) = push(app, &c, &request(app, &c.0, &[])).await;
        let uri = v["request_uri"].as_str().unwrap();
        // The browser's own state, scope and redirect_uri are not the pushed ones: ignored.
        let evil = [
            ("state", "forged"),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ("scope", "openid offline_access"),
        ];
        let back = sign_in(&Browser::new(app), &par_authorize(app, &c.0, uri, &evil)).await;
        assert!(back.as_str().starts_with(CALLBACK), "{back}");
        assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
        let t = tokens(app, &c, &back).await;
        assert_eq!(
            t["scope"], "openid email",
            "the pushed scope, not the browser's"
        );
    }
);

both!(
    rfc9126_a_request_uri_is_bound_to_the_client_that_pushed_it,
    async |app: &TestApp| {
        let a = client(app, false).await;
        let other = client(app, false).await;
        let (_, v) = push(app, &a, &request(app, &a.0, &[])).await;
        let uri = v["request_uri"].as_str().unwrap();
        let r = Browser::new(app)
            .get(&par_authorize(app, &other.0, uri, &[]))
            .await;
        assert_eq!(r.status(), 400);
        // Refused for another client, it is still there for its own.
        let back = sign_in(&Browser::new(app), &par_authorize(app, &a.0, uri, &[])).await;
        assert!(query_param(&back, "code").is_some());
        // Not a URN this server issued, and no client_id: refused on Latchkey's page.
        let r = Browser::new(app)
            .get(&par_authorize(app, &a.0, "https://evil.example/req", &[]))
            .await;
        assert_eq!(r.status(), 400);
        let r = Browser::new(app)
            .get(&format!("/authorize?request_uri={}", urlencode(uri)))
            .await;
        assert_eq!(r.status(), 400);
    }
);

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

both!(
    rfc9126_the_push_is_validated_and_authenticated_like_a_token_request,
    async |app: &TestApp| {
        let c = client(app, false).await;
        // Wrong secret: invalid_client, 401 with a challenge.
        let (status, v) = push(
            app,
            &(c.0.clone(), "wrong".into()),
            &request(app, &c.0, &[]),
        )
        .await;
        assert_eq!((status, v["error"].as_str()), (401, Some("invalid_client")));
        // A redirect URI that is not registered: invalid_request, nothing stored.
        let (status, v) = push(
            app,
            &c,
            &request(
                app,
                &c.0,
                &[("redirect_uri", "http://127.0.0.1:9/elsewhere")],
            ),
        )
        .await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{v}"
        );
        // No PKCE: invalid_request, as /authorize would say.
        let (status, v) = push(
            app,
            &c,
            &request(
                app,
                &c.0,
                &[("code_challenge", ""), ("code_challenge_method", "")],
            ),
        )
        .await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{v}"
        );
        // RFC 9126 section 2.1: request_uri cannot itself be pushed.
        let (status, v) = push(
            app,
            &c,
            &request(
                app,
                &c.0,
                &[("request_uri", "urn:ietf:params:oauth:request_uri:x")],
            ),
        )
        .await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{v}"
        );
        // Another client's id in the body beside HTTP Basic.
        let (status, v) = push(app, &c, &request(app, "someone-else", &[])).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{v}"
        );
        // The same parameter twice.
        let mut twice = request(app, &c.0, &[]);
        twice.push(("state".into(), "again".into()));
        let (status, v) = push(app, &c, &twice).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{v}"
        );
    }
);

both!(
    rfc9126_a_client_that_requires_par_is_refused_an_unpushed_request,
    async |app: &TestApp| {
        let c = client(app, true).await;
        let r = Browser::new(app).get(&authorize_url(app, &c.0, &[])).await;
        assert_eq!(r.status(), 303);
        let back = url::Url::parse(&location(&r)).unwrap();
        assert!(back.as_str().starts_with(CALLBACK), "{back}");
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_request")
        );
        assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
        assert!(query_param(&back, "code").is_none());
        let (_, v) = push(app, &c, &request(app, &c.0, &[])).await;
        let uri = v["request_uri"].as_str().unwrap();
        let back = sign_in(&Browser::new(app), &par_authorize(app, &c.0, uri, &[])).await;
        assert!(query_param(&back, "code").is_some());
    }
);

fn par_required(c: &mut latchkey_server::Config) {
    c.par.required = true;
}

both_with!(
    rfc9126_par_required_applies_to_every_client_and_is_in_discovery,
    par_required,
    async |app: &TestApp| {
        let d: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(d["require_pushed_authorization_requests"], true);
        assert_eq!(d["pushed_authorization_request_endpoint"], app.url("/par"));
        let c = client(app, false).await;
        let r = Browser::new(app).get(&authorize_url(app, &c.0, &[])).await;
        let back = url::Url::parse(&location(&r)).unwrap();
        assert_eq!(
            query_param(&back, "error").as_deref(),
            Some("invalid_request")
        );
        // Latchkey's own account page still signs in (its requests never leave the server).
        let b = Browser::new(app);
        account_sign_in(&b).await;
        assert_eq!(b.get("/account").await.status(), 200);
    }
);

fn few_flows(c: &mut latchkey_server::Config) {
    c.throttle.flows_per_source = 2;
}

both_with!(
    rfc9126_pushes_count_against_the_per_address_flow_budget,
    few_flows,
    async |app: &TestApp| {
        // Anyone can push for a public client: pushes are stored like login flows, and
        // limited per address like them.
        let c = app
            .client(|c| {
                c.public = true;
                c.skip_consent = true;
            })
            .await;
        let push_public = async || {
            reqwest::Client::new()
                .post(app.url("/par"))
                .form(&request(app, &c.client_id, &[]))
                .send()
                .await
                .unwrap()
        };
        assert_eq!(push_public().await.status(), 201);
        assert_eq!(push_public().await.status(), 201);
        let r = push_public().await;
        assert_eq!(r.status(), 429);
        assert!(r.headers().get("retry-after").is_some());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "temporarily_unavailable");
    }
);

both!(
    rfc9126_a_push_keeps_only_what_authorize_reads,
    async |app: &TestApp| {
        let c = client(app, false).await;
        let mut params = request(app, &c.0, &[]);
        params.push(("padding".into(), "A".repeat(20_000)));
        let (status, v) = push(app, &c, &params).await;
        assert_eq!(status, 201, "{v}");
        // The unknown parameter is not kept (a push stores no more than a request holds).
        let uri = v["request_uri"].as_str().unwrap();
        let back = sign_in(&Browser::new(app), &par_authorize(app, &c.0, uri, &[])).await;
        assert!(query_param(&back, "code").is_some());
        params.push(("more".into(), "A".repeat(20_000)));
        let (status, v) = push(app, &c, &params).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{v}"
        );
    }
);
