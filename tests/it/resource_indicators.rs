//! Resource indicators (RFC 8707) over HTTP, both databases: a lab service's API registers a
//! resource URI, a client listed for it names it with `resource`, and the access token's `aud`
//! is the service. The `openidconnect` crate is the relying party (its `add_extra_param`
//! sends `resource` at the authorization and token endpoints); `latchkey-client` and the
//! example lab service are the resource servers. The refusals are named after the rule they
//! enforce.

use crate::both;
use crate::both_with;
use crate::client::lab_service;
use crate::common::*;
use crate::oidc_flow::{rp_client, rp_http};
use latchkey_client::{Verifier, VerifierOptions, VerifyError};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, Scope,
    TokenResponse,
};
use serde_json::Value;

const ORDERS: &str = "https://orders.lab.example/api";
const BILLING: &str = "https://billing.lab.example/";
const ARCHIVE: &str = "https://archive.lab.example/";

/// Three resource servers (Orders and Billing serve the test lab, Archive every lab) and the
/// lab notebook, a client that may get tokens for Orders and Billing, not Archive.
struct Setup {
    orders: (String, String),
    notebook: (String, String),
}

async fn resource_server(
    app: &TestApp,
    name: &str,
    uri: &str,
    labs: Vec<String>,
) -> (String, String) {
    let (name, uri) = (name.to_owned(), uri.to_owned());
    let c = app
        .client(move |c| {
            c.name = name;
            c.grant_types = vec!["client_credentials".into()];
            c.redirect_uris = vec![];
            c.post_logout_redirect_uris = vec![];
            c.resource_uri = Some(uri);
            c.labs = labs;
        })
        .await;
    (c.client_id, c.client_secret.unwrap())
}

async fn setup(app: &TestApp) -> Setup {
    let lab = vec![app.lab_id.clone()];
    let orders = resource_server(app, "Orders API", ORDERS, lab.clone()).await;
    resource_server(app, "Billing API", BILLING, lab).await;
    resource_server(app, "Archive API", ARCHIVE, vec!["*".into()]).await;
    let c = app
        .client(|c| {
            c.name = "Lab notebook".into();
            c.skip_consent = true;
            c.resources = vec![ORDERS.into(), BILLING.into()];
        })
        .await;
    Setup {
        orders,
        notebook: (c.client_id, c.client_secret.unwrap()),
    }
}

/// Signs in at `authorize` and returns the code.
async fn code_for(app: &TestApp, authorize: &str) -> String {
    let back = Browser::new(app).login(authorize, EMAIL, PASSWORD).await;
    query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"))
}

/// A token request with HTTP Basic `client`; (status, body).
async fn token(app: &TestApp, client: &(String, String), form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&client.0, Some(&client.1))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The code exchange of [`authorize_url`]'s request, with `resource` values.
async fn exchange(
    app: &TestApp,
    client: &(String, String),
    code: &str,
    resources: &[&str],
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ];
    form.extend(resources.iter().map(|r| ("resource", *r)));
    token(app, client, &form).await
}

/// Asserts a token endpoint's refusal `400 invalid_target` (RFC 8707 section 2).
#[track_caller]
fn invalid_target(status: u16, v: &Value) {
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_target")),
        "{v}"
    );
}

/// The `aud` of a token response's access token.
fn aud(v: &Value) -> Value {
    jwt_claims(v["access_token"].as_str().unwrap())["aud"].clone()
}

/// `authorize_url` with several `resource` parameters.
fn authorize_for(app: &TestApp, client_id: &str, resources: &[&str]) -> String {
    let mut u = url::Url::parse(&authorize_url(app, client_id, &[])).unwrap();
    for r in resources {
        u.query_pairs_mut().append_pair("resource", r);
    }
    u.to_string()
}

both!(
    rfc8707_a_token_for_a_resource_has_its_audience_and_only_that_service_accepts_it,
    async |app: &TestApp| {
        let s = setup(app).await;
        let (client, _) = rp_client(app, &s.notebook.0, Some(&s.notebook.1)).await;
        let http = rp_http();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (auth_url, _, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .add_extra_param("resource", ORDERS)
            .url();
        let code = code_for(app, auth_url.as_str()).await;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(verifier)
            .add_extra_param("resource", ORDERS)
            .request_async(&http)
            .await
            .expect("token exchange");
        // The ID token is still for the client (the crate checks its aud).
        tokens
            .id_token()
            .expect("id_token")
            .claims(&client.id_token_verifier(), &nonce)
            .expect("the ID token verifies for the notebook");
        let at = tokens.access_token().secret().clone();
        let claims = jwt_claims(&at);
        assert_eq!(claims["aud"], ORDERS);
        assert_eq!(claims["client_id"], s.notebook.0.as_str());
        assert_eq!(claims["lab"], app.lab_id.as_str());

        // The Orders service (audience: its resource URI) accepts it; a service verifying
        // the notebook's client id as its audience does not.
        let opts = |aud: &str| VerifierOptions::new(app.base.clone(), aud).lab(app.lab_id.clone());
        let orders = Verifier::discover(opts(ORDERS)).await.unwrap();
        let grants = orders.verify_access_token(&at).await.expect("for Orders");
        assert_eq!(grants.subject, app.user_id);
        let notebook_service = Verifier::discover(opts(&s.notebook.0)).await.unwrap();
        assert_eq!(
            notebook_service.verify_access_token(&at).await.unwrap_err(),
            VerifyError::WrongAudience
        );
        let billing = Verifier::discover(opts(BILLING)).await.unwrap();
        assert_eq!(
            billing.verify_access_token(&at).await.unwrap_err(),
            VerifyError::WrongAudience
        );

        // The example lab service, configured with the resource URI as its audience.
        use actix_web::test;
        let svc = test::init_service(
            actix_web::App::new()
                .app_data(actix_web::web::Data::new(
                    orders.with_feature_map(lab_service::feature_map()),
                ))
                .app_data(actix_web::web::Data::new(
                    lab_service::EndedSessions::default(),
                ))
                .configure(lab_service::routes),
        )
        .await;
        let r = test::call_service(
            &svc,
            test::TestRequest::get()
                .uri("/orders")
                .insert_header(("Authorization", format!("Bearer {at}")))
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), 200);

        // A refresh without `resource` gets a token for the grant's only resource.
        let refreshed = client
            .exchange_refresh_token(tokens.refresh_token().expect("refresh token"))
            .unwrap()
            .request_async(&http)
            .await
            .expect("refresh");
        assert_eq!(jwt_claims(refreshed.access_token().secret())["aud"], ORDERS);
    }
);

both!(
    rfc8707_userinfo_refuses_a_token_for_another_resource,
    async |app: &TestApp| {
        let s = setup(app).await;
        let code = code_for(app, &authorize_for(app, &s.notebook.0, &[ORDERS])).await;
        let (status, t) = exchange(app, &s.notebook, &code, &[]).await;
        assert_eq!(status, 200, "{t}");
        let at = t["access_token"].as_str().unwrap();
        assert_eq!(jwt_claims(at)["aud"], ORDERS, "the grant's only resource");
        let r = reqwest::Client::new()
            .get(app.url("/userinfo"))
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(www.contains("invalid_token"), "{www}");
        // A token for the notebook itself still reads UserInfo.
        let code = code_for(app, &authorize_url(app, &s.notebook.0, &[])).await;
        let (_, t) = exchange(app, &s.notebook, &code, &[]).await;
        let at = t["access_token"].as_str().unwrap();
        assert_eq!(jwt_claims(at)["aud"], s.notebook.0.as_str());
        let r = reqwest::Client::new()
            .get(app.url("/userinfo"))
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
);

both!(
    rfc8707_the_resource_server_introspects_tokens_for_its_resource,
    async |app: &TestApp| {
        let s = setup(app).await;
        let code = code_for(app, &authorize_for(app, &s.notebook.0, &[ORDERS])).await;
        let (_, t) = exchange(app, &s.notebook, &code, &[ORDERS]).await;
        let at = t["access_token"].as_str().unwrap().to_owned();
        let introspect = |who: (String, String)| {
            let at = at.clone();
            async move {
                let r = reqwest::Client::new()
                    .post(app.url("/introspect"))
                    .basic_auth(&who.0, Some(&who.1))
                    .form(&[("token", at.as_str())])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()
            }
        };
        let by_orders = introspect(s.orders.clone()).await;
        assert_eq!(by_orders["active"], true, "{by_orders}");
        assert_eq!(by_orders["aud"], ORDERS);
        assert_eq!(introspect(s.notebook.clone()).await["active"], true);
        let other = app.client(|_| {}).await;
        let by_other = introspect((other.client_id, other.client_secret.unwrap())).await;
        assert_eq!(by_other, serde_json::json!({"active": false}));
    }
);

/// Where `/authorize` sends the browser back, and the error there.
async fn authorize_error(app: &TestApp, url: &str) -> (String, Option<String>, Option<String>) {
    let r = Browser::new(app).get(url).await;
    assert_eq!(r.status(), 303, "an error goes back to the client");
    let back = url::Url::parse(&location(&r)).unwrap();
    (
        back.as_str().to_owned(),
        query_param(&back, "error"),
        query_param(&back, "error_description"),
    )
}

both!(
    rfc8707_2_an_invalid_or_unlisted_resource_is_invalid_target_at_authorize,
    async |app: &TestApp| {
        let s = setup(app).await;
        for (resource, why) in [
            ("https://orders.lab.example/api#frag", "fragment"),
            ("https://orders.lab.example/api?x=1", "query"),
            ("orders", "absolute URI"),
            (ARCHIVE, "not among the resources"),
            ("https://unknown.lab.example/", "not among the resources"),
        ] {
            let (back, error, description) =
                authorize_error(app, &authorize_for(app, &s.notebook.0, &[ORDERS, resource])).await;
            assert!(back.starts_with(CALLBACK), "{back}");
            assert_eq!(error.as_deref(), Some("invalid_target"), "{resource}");
            let description = description.unwrap_or_default();
            assert!(description.contains(why), "{resource}: {description}");
        }
        // A client whose registration lists no resource gets none.
        let plain = app.client(|_| {}).await;
        let (_, error, _) =
            authorize_error(app, &authorize_for(app, &plain.client_id, &[ORDERS])).await;
        assert_eq!(error.as_deref(), Some("invalid_target"));
        // Pushed (RFC 9126) too: refused at /par.
        let r = reqwest::Client::new()
            .post(app.url("/par"))
            .basic_auth(&s.notebook.0, Some(&s.notebook.1))
            .form(&crate::par::request(
                app,
                &s.notebook.0,
                &[("resource", ARCHIVE)],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_target");
    }
);

both!(
    rfc8707_2_2_a_token_request_names_one_resource_of_the_authorization_and_loses_nothing,
    async |app: &TestApp| {
        let s = setup(app).await;
        let code = code_for(app, &authorize_for(app, &s.notebook.0, &[ORDERS, BILLING])).await;
        // Refused, each before the code is spent: several resources, none while the
        // authorization covers two, one it does not cover, a malformed one.
        for (resources, why) in [
            (&[ORDERS, BILLING][..], "one resource per token request"),
            (&[][..], "covers several resources"),
            (
                &[ARCHIVE][..],
                "not among those of the authorization request",
            ),
            (&["https://orders.lab.example/#x"][..], "fragment"),
        ] {
            let (status, v) = exchange(app, &s.notebook, &code, resources).await;
            assert_eq!(status, 400, "{v}");
            assert_eq!(v["error"], "invalid_target", "{v}");
            let d = v["error_description"].as_str().unwrap();
            assert!(d.contains(why), "{resources:?}: {d}");
        }
        let (status, v) = exchange(app, &s.notebook, &code, &[BILLING]).await;
        assert_eq!(status, 200, "the code was not spent by the refusals: {v}");
        assert_eq!(aud(&v), BILLING);
        let rt = v["refresh_token"].as_str().unwrap().to_owned();
        // A refresh without `resource` while the grant covers two: refused, the token left.
        let plain = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ];
        let (status, v) = token(app, &s.notebook, &plain).await;
        invalid_target(status, &v);
        // A refresh for a resource the grant does not cover is refused, and the refresh
        // token stays good; one for the grant's other resource is served.
        let notebook = &s.notebook;
        let refresh = |resource: &'static str, rt: String| async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
                ("resource", resource),
            ];
            token(app, notebook, &form).await
        };
        let (status, v) = refresh(ARCHIVE, rt.clone()).await;
        invalid_target(status, &v);
        let (status, v) = refresh(ORDERS, rt).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(aud(&v), ORDERS);
        let at = v["access_token"].as_str().unwrap().to_owned();
        // RFC 6749 section 4.1.2: a replay of the code is acted on (its grant revoked) whatever
        // resource it names, malformed or several.
        let (status, v) = exchange(app, &s.notebook, &code, &["notauri", ARCHIVE]).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "{v}"
        );
        let r = reqwest::Client::new()
            .post(app.url("/introspect"))
            .basic_auth(&s.notebook.0, Some(&s.notebook.1))
            .form(&[("token", at.as_str())])
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["active"], false, "the replay revoked the grant: {v}");
    }
);

both!(
    rfc8707_2_a_users_grant_that_named_no_resource_gets_tokens_for_the_client_only,
    async |app: &TestApp| {
        let s = setup(app).await;
        let code = code_for(app, &authorize_url(app, &s.notebook.0, &[])).await;
        // Listed for the client, but the user was not asked about it.
        let (status, v) = exchange(app, &s.notebook, &code, &[BILLING]).await;
        invalid_target(status, &v);
        let (status, v) = exchange(app, &s.notebook, &code, &[]).await;
        assert_eq!(status, 200, "the refusal left the code: {v}");
        assert_eq!(aud(&v), s.notebook.0.as_str());
        let rt = v["refresh_token"].as_str().unwrap();
        let with_resource = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("resource", ORDERS),
        ];
        let (status, v) = token(app, &s.notebook, &with_resource).await;
        invalid_target(status, &v);
        let plain = [("grant_type", "refresh_token"), ("refresh_token", rt)];
        let (status, v) = token(app, &s.notebook, &plain).await;
        assert_eq!(status, 200, "the refusal left the refresh token: {v}");
    }
);

both!(
    rfc8707_the_consent_page_asks_again_for_a_service_the_user_was_not_asked_about,
    async |app: &TestApp| {
        setup(app).await;
        let c = app
            .client(|c| c.resources = vec![ORDERS.into(), BILLING.into()])
            .await;
        let b = Browser::new(app);
        // Consent to the client alone.
        let (flow, csrf) = b.open_login(&authorize_url(app, &c.client_id, &[])).await;
        let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        let back = b.consent_if_asked(r, "allow").await;
        assert!(back.starts_with(CALLBACK), "{back}");
        // The same scopes for the Orders API: the page again, naming it.
        let r = b.get(&authorize_for(app, &c.client_id, &[ORDERS])).await;
        let at = location(&r);
        assert!(at.starts_with("/consent?flow="), "{at}");
        let page = b.get(&at).await.text().await.unwrap();
        assert!(
            page.contains("Orders API") && page.contains(ORDERS),
            "{page}"
        );
        let r = b
            .post_form(
                "/consent",
                &[
                    ("flow", &html_input(&page, "flow").unwrap()),
                    ("csrf", &html_input(&page, "csrf").unwrap()),
                    ("decision", "allow"),
                ],
            )
            .await;
        assert!(location(&r).starts_with(CALLBACK));
        // Remembered: no page for Orders now, the page for Billing.
        let r = b.get(&authorize_for(app, &c.client_id, &[ORDERS])).await;
        assert!(location(&r).starts_with(CALLBACK), "{}", location(&r));
        let r = b.get(&authorize_for(app, &c.client_id, &[BILLING])).await;
        assert!(
            location(&r).starts_with("/consent?flow="),
            "{}",
            location(&r)
        );
    }
);

both!(
    rfc8707_a_resource_server_that_is_disabled_or_does_not_serve_the_lab_gets_no_tokens,
    async |app: &TestApp| {
        let other_lab = latchkey_server::provision::create_lab(&app.state.store, "Lab 99")
            .await
            .unwrap()
            .id;
        let elsewhere = "https://elsewhere.lab.example/";
        resource_server(app, "Elsewhere API", elsewhere, vec![other_lab]).await;
        let s = setup(app).await;
        let notebook = app
            .client(|c| {
                c.skip_consent = true;
                c.resources = vec![ORDERS.into(), elsewhere.into()];
            })
            .await;
        let notebook = (notebook.client_id, notebook.client_secret.unwrap());
        let code = code_for(app, &authorize_for(app, &notebook.0, &[elsewhere])).await;
        let (status, v) = exchange(app, &notebook, &code, &[elsewhere]).await;
        invalid_target(status, &v);
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("does not serve the lab"),
            "{v}"
        );
        // An earlier grant for Orders, then the Orders API disabled: no more tokens for it,
        // and nothing spent, so that they work again once it is enabled.
        let earlier = code_for(app, &authorize_for(app, &notebook.0, &[ORDERS])).await;
        let (status, v) = exchange(app, &notebook, &earlier, &[]).await;
        assert_eq!(status, 200, "{v}");
        let rt = v["refresh_token"].as_str().unwrap().to_owned();
        let admin = client_token(app, "*").await;
        let switch = |what: &'static str| {
            let (admin, id) = (admin.clone(), s.orders.0.clone());
            async move {
                let path = format!("/api/v1/clients/{id}/{what}");
                let (status, v) = call(app, Some(&admin), reqwest::Method::POST, &path, None).await;
                assert_eq!(status, 200, "{v}");
            }
        };
        let code = code_for(app, &authorize_for(app, &notebook.0, &[ORDERS])).await;
        switch("disable").await;
        let (status, v) = exchange(app, &notebook, &code, &[ORDERS]).await;
        invalid_target(status, &v);
        let d = v["error_description"].as_str().unwrap();
        assert!(d.contains("no active service"), "{v}");
        let refresh = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ];
        let (status, v) = token(app, &notebook, &refresh).await;
        invalid_target(status, &v);
        switch("enable").await;
        let (status, v) = exchange(app, &notebook, &code, &[ORDERS]).await;
        assert_eq!(status, 200, "the code was left: {v}");
        let (status, v) = token(app, &notebook, &refresh).await;
        assert_eq!(status, 200, "the refresh token was left: {v}");
        assert_eq!(aud(&v), ORDERS);
    }
);

both!(
    rfc8707_a_resource_removed_from_the_registration_is_refused_and_spends_nothing,
    async |app: &TestApp| {
        let s = setup(app).await;
        let code = code_for(app, &authorize_for(app, &s.notebook.0, &[ORDERS])).await;
        let (status, v) = exchange(app, &s.notebook, &code, &[]).await;
        assert_eq!(status, 200, "{v}");
        let rt = v["refresh_token"].as_str().unwrap().to_owned();
        let admin = client_token(app, "*").await;
        let set = |resources: Value| {
            let (admin, id) = (admin.clone(), s.notebook.0.clone());
            async move {
                let path = format!("/api/v1/clients/{id}");
                let body = serde_json::json!({ "resources": resources });
                let (status, v) =
                    call(app, Some(&admin), reqwest::Method::PATCH, &path, Some(body)).await;
                assert_eq!(status, 200, "{v}");
            }
        };
        set(serde_json::json!([])).await;
        let refresh = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ];
        let (status, v) = token(app, &s.notebook, &refresh).await;
        invalid_target(status, &v);
        set(serde_json::json!([ORDERS])).await;
        let (status, v) = token(app, &s.notebook, &refresh).await;
        assert_eq!(status, 200, "the refusal left the refresh token: {v}");
        assert_eq!(aud(&v), ORDERS);
    }
);

both!(
    rfc8707_client_credentials_gets_a_token_for_a_listed_resource,
    async |app: &TestApp| {
        let s = setup(app).await;
        let lab = vec![app.lab_id.clone()];
        let service = app
            .client(move |c| {
                c.grant_types = vec!["client_credentials".into()];
                c.redirect_uris = vec![];
                c.labs = lab;
                c.resources = vec![ORDERS.into()];
            })
            .await;
        let service = (service.client_id, service.client_secret.unwrap());
        let cc = |resource: &'static str| {
            let service = service.clone();
            async move {
                token(
                    app,
                    &service,
                    &[("grant_type", "client_credentials"), ("resource", resource)],
                )
                .await
            }
        };
        let (status, v) = cc(ORDERS).await;
        assert_eq!(status, 200, "{v}");
        let at = v["access_token"].as_str().unwrap();
        assert_eq!(jwt_claims(at)["aud"], ORDERS);
        let orders = Verifier::discover(VerifierOptions::new(app.base.clone(), ORDERS).any_lab())
            .await
            .unwrap();
        orders.verify_access_token(at).await.expect("for Orders");
        let (status, v) = cc(BILLING).await;
        invalid_target(status, &v);
        // Without `resource`, the token is for the service itself, as before.
        let at = cc_token(app, &service.0, &service.1).await;
        assert_eq!(jwt_claims(&at)["aud"], service.0.as_str());
        let _ = s;
    }
);

both_with!(
    rfc8707_a_device_names_its_resource_at_the_device_authorization_request,
    crate::device_flow::fast_polling,
    async |app: &TestApp| {
        setup(app).await;
        let device = app
            .client(|c| {
                c.public = true;
                c.redirect_uris = vec![];
                c.post_logout_redirect_uris = vec![];
                c.grant_types = vec!["device_code".into()];
                c.resources = vec![ORDERS.into()];
            })
            .await
            .client_id;
        let (status, v) = crate::device_flow::ask(app, &device, &[("resource", ARCHIVE)]).await;
        invalid_target(status, &v);
        let (status, v) = crate::device_flow::ask(app, &device, &[("resource", ORDERS)]).await;
        assert_eq!(status, 200, "{v}");
        let b = Browser::new(app);
        let (done, confirmation) =
            crate::device_flow::approve(&b, v["user_code"].as_str().unwrap(), "allow").await;
        assert_eq!(done, "/device/done?outcome=approved");
        assert!(
            confirmation.contains("Orders API") && confirmation.contains(ORDERS),
            "the confirmation names the service: {confirmation}"
        );
        let device_code = v["device_code"].as_str().unwrap();
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", device.as_str()),
                ("device_code", device_code),
                ("resource", BILLING),
            ])
            .send()
            .await
            .unwrap();
        let refused: Value = r.json().await.unwrap();
        assert_eq!(refused["error"], "invalid_target", "{refused}");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (status, t) = crate::device_flow::poll(app, &device, device_code).await;
        assert_eq!(status, 200, "the refusal left the approval: {t}");
        assert_eq!(aud(&t), ORDERS);
    }
);

both!(
    rfc8707_registration_checks_resource_uris,
    async |app: &TestApp| {
        setup(app).await;
        let admin = client_token(app, "*").await;
        let create = |body: Value| {
            let admin = admin.clone();
            async move {
                call(
                    app,
                    Some(&admin),
                    reqwest::Method::POST,
                    "/api/v1/clients",
                    Some(body),
                )
                .await
            }
        };
        let base = |extra: Value| {
            let mut b = serde_json::json!({
                "name": "Inventory API",
                "grant_types": ["client_credentials"],
                "labs": ["*"],
            });
            for (k, v) in extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            b
        };
        for (extra, field, why) in [
            (
                serde_json::json!({"resource_uri": ORDERS}),
                "resource_uri",
                "already",
            ),
            (
                serde_json::json!({"resource_uri": app.base.clone() + "/api"}),
                "resource_uri",
                "Latchkey itself",
            ),
            (
                serde_json::json!({"resource_uri": "https://inventory.lab.example/#x"}),
                "resource_uri",
                "fragment",
            ),
            (
                serde_json::json!({"resource_uri": "latchkey:admin"}),
                "resource_uri",
                "https",
            ),
            (
                serde_json::json!({"resources": ["https://nowhere.lab.example/"]}),
                "resources",
                "not the resource URI of any registered client",
            ),
        ] {
            let before = app.state.store.list_clients().await.unwrap().len();
            let (status, v) = create(base(extra.clone())).await;
            assert_eq!(status, 422, "{extra}: {v}");
            assert_eq!(v["field"], field, "{v}");
            let message = v["message"].as_str().unwrap_or_default();
            assert!(message.contains(why), "{extra}: {v}");
            assert_eq!(app.state.store.list_clients().await.unwrap().len(), before);
        }
        let (status, v) = create(base(serde_json::json!({
            "resource_uri": "https://inventory.lab.example/",
            "resources": [ORDERS],
        })))
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["client"]["resource_uri"],
            "https://inventory.lab.example/"
        );
        assert_eq!(v["client"]["resources"], serde_json::json!([ORDERS]));
        // Edited: cleared, then a URI another client holds is refused.
        let id = v["client"]["client_id"].as_str().unwrap().to_owned();
        let patch = |body: Value| {
            let (admin, id) = (admin.clone(), id.clone());
            async move {
                call(
                    app,
                    Some(&admin),
                    reqwest::Method::PATCH,
                    &format!("/api/v1/clients/{id}"),
                    Some(body),
                )
                .await
            }
        };
        let (status, v) = patch(serde_json::json!({"resource_uri": "", "resources": []})).await;
        assert_eq!(status, 200, "{v}");
        assert!(v["resource_uri"].is_null(), "{v}");
        assert_eq!(v["resources"], serde_json::json!([]));
        let (status, v) = patch(serde_json::json!({"resource_uri": BILLING})).await;
        assert_eq!(status, 422, "{v}");
        assert_eq!(v["field"], "resource_uri", "{v}");
        let (_, action, details) = last_action(app).await;
        assert_eq!(action, "client.update");
        assert_eq!(
            details["before"]["resource_uri"],
            "https://inventory.lab.example/"
        );
        assert!(details["after"]["resource_uri"].is_null());
    }
);
