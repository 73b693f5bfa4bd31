//! The device authorization grant (RFC 8628) over HTTP, both databases: the `openidconnect`
//! crate plays the device (device authorization request, then polling the token endpoint),
//! a cookie-keeping HTTP client plays the user's phone (`/device`, sign-in, confirmation).
//! The refusals are named after the rule they enforce.

use crate::both;
use crate::both_with;
use crate::common::*;
use crate::oidc_flow::{ExtraMeta, ProviderMetadataWith, rp_http};
use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse, CoreGrantType};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, DeviceAuthorizationUrl, IssuerUrl, Nonce,
    OAuth2TokenResponse, Scope, TokenResponse,
};
use serde_json::Value;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
struct DeviceMeta {
    device_authorization_endpoint: DeviceAuthorizationUrl,
    #[serde(flatten)]
    rest: ExtraMeta,
}
impl AdditionalProviderMetadata for DeviceMeta {}

type DeviceProviderMetadata = ProviderMetadataWith<DeviceMeta>;

/// Polls every second, so the library's own polling finishes quickly.
pub(crate) fn fast_polling(c: &mut latchkey_server::Config) {
    c.device_authorization.interval_secs = 1;
}

/// A public device client that may refresh (`skip_consent`: the confirmation shows anyway).
pub(crate) async fn device_client(app: &TestApp) -> String {
    app.client(|c| {
        c.public = true;
        c.redirect_uris = vec![];
        c.grant_types = vec!["device_code".into(), "refresh_token".into()];
        c.skip_consent = true;
    })
    .await
    .client_id
}

/// `POST /device_authorization` as a public client (scope `openid email` unless `extra` has
/// one); (status, body).
pub(crate) async fn ask(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![("client_id", client_id)];
    if !extra.iter().any(|(k, _)| *k == "scope") {
        form.push(("scope", "openid email"));
    }
    form.extend_from_slice(extra);
    let r = reqwest::Client::new()
        .post(app.url("/device_authorization"))
        .form(&form)
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

/// One poll of the token endpoint; (status, body).
pub(crate) async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", GRANT),
            ("client_id", client_id),
            ("device_code", device_code),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The user's browser types `code` at `/device`; returns the response to the form.
async fn enter_code(b: &Browser, code: &str) -> reqwest::Response {
    let page = b.get("/device").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let csrf = html_input(&html, "csrf").expect("csrf");
    b.post_form("/device", &[("csrf", &csrf), ("user_code", code)])
        .await
}

/// Types `code`, signs in with the password and answers the confirmation with `decision`;
/// returns where the browser ends (`/device/done?outcome=...`) and the confirmation page.
pub(crate) async fn approve(b: &Browser, code: &str, decision: &str) -> (String, String) {
    let r = enter_code(b, code).await;
    assert_eq!(r.status(), 303);
    let login = location(&r);
    assert!(login.starts_with("/login?flow="), "{login}");
    let html = b.get(&login).await.text().await.unwrap();
    let flow = html_input(&html, "flow").unwrap();
    let csrf = html_input(&html, "csrf").unwrap();
    let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
    let confirm = location(&r);
    assert!(
        confirm.starts_with("/consent?flow="),
        "the confirmation page is always shown: {confirm}"
    );
    let page = b.get(&confirm).await.text().await.unwrap();
    let r = b
        .post_form(
            "/consent",
            &[
                ("flow", &html_input(&page, "flow").unwrap()),
                ("csrf", &html_input(&page, "csrf").unwrap()),
                ("decision", decision),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    (location(&r), page)
}

both_with!(
    rfc8628_openidconnect_device_signs_in_once_its_user_approves,
    fast_polling,
    async |app: &TestApp| {
        let client_id = device_client(app).await;
        let http = rp_http();
        let meta = DeviceProviderMetadata::discover_async(
            IssuerUrl::new(app.base.clone()).unwrap(),
            &http,
        )
        .await
        .expect("discovery");
        assert!(
            meta.grant_types_supported()
                .unwrap()
                .contains(&CoreGrantType::DeviceCode)
        );
        let device_url = meta
            .additional_metadata()
            .device_authorization_endpoint
            .clone();
        let client =
            CoreClient::from_provider_metadata(meta, ClientId::new(client_id.clone()), None)
                .set_device_authorization_url(device_url);
        let details: CoreDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_scope(Scope::new("email".into()))
            .request_async(&http)
            .await
            .expect("device authorization");
        let code = details.user_code().secret().clone();
        assert!(
            regex_lite_code(&code),
            "a user code is 8 consonants: {code}"
        );
        assert_eq!(details.interval().as_secs(), 1);
        assert_eq!(details.expires_in().as_secs(), 600);
        assert_eq!(
            details.verification_uri().as_str(),
            format!("{}/device", app.base)
        );
        let complete = details
            .verification_uri_complete()
            .expect("verification_uri_complete")
            .secret()
            .clone();
        assert!(
            complete.ends_with(&format!("?user_code={code}")),
            "{complete}"
        );
        let device_code = details.device_code().secret().clone();

        // The device polls (the library answers authorization_pending by waiting) while the
        // user opens the complete link on their phone: the code is filled in.
        let polling = {
            let client = client.clone();
            let details = details.clone();
            let http = http.clone();
            tokio::spawn(async move {
                client
                    .exchange_device_access_token(&details)
                    .unwrap()
                    .request_async(&http, tokio::time::sleep, None)
                    .await
            })
        };
        let b = Browser::new(app);
        let page = b.get(&complete).await.text().await.unwrap();
        assert_eq!(
            html_input(&page, "user_code").as_deref(),
            Some(code.as_str())
        );
        // Typed in lower case, without the dash: the same code.
        let typed = code.replace('-', "").to_lowercase();
        let (done, confirmation) = approve(&b, &typed, "allow").await;
        assert_eq!(done, "/device/done?outcome=approved");
        assert!(
            confirmation.contains(&code),
            "the page shows the code to compare"
        );
        assert!(confirmation.contains("device-warning"));
        let page = b.get(&done).await.text().await.unwrap();
        assert!(page.contains("Device connected"), "{page}");
        let (_, action, details_json) = last_action(app).await;
        assert_eq!(action, "device.approved");
        assert_eq!(details_json["client"], client_id.as_str());

        let token = polling.await.unwrap().expect("the device gets its tokens");
        let id_token = token.id_token().expect("an ID token (scope openid)");
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .expect("the ID token verifies");
        assert_eq!(claims.subject().as_str(), app.user_id.as_str());
        let at = jwt_claims(token.access_token().secret());
        assert_eq!(at["sub"], app.user_id.as_str());
        assert_eq!(at["client_id"], client_id.as_str());
        assert_eq!(at["acr"], "pwd");
        assert!(token.refresh_token().is_some());

        // RFC 8628 section 3.5: the device_code is spent.
        let (status, v) = poll(app, &client_id, &device_code).await;
        assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
        // And the user code with it.
        let r = enter_code(&b, &code).await;
        assert_eq!(r.status(), 400);
        // The refresh token works like any other.
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", client_id.as_str()),
                ("refresh_token", token.refresh_token().unwrap().secret()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
);

/// 8 letters of RFC 8628 section 6.1's consonant alphabet, shown as `XXXX-XXXX`.
fn regex_lite_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 9
        && b[4] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || b"BCDFGHJKLMNPQRSTVWXZ".contains(c))
}

both!(
    rfc8628_polling_before_the_interval_is_slow_down,
    async |app: &TestApp| {
        let client_id = device_client(app).await;
        let (status, v) = ask(app, &client_id, &[]).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["interval"], 5);
        let dc = v["device_code"].as_str().unwrap();
        assert!(dc.starts_with("lk_dc_"));
        let (status, v) = poll(app, &client_id, dc).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("authorization_pending"))
        );
        let (status, v) = poll(app, &client_id, dc).await;
        assert_eq!((status, v["error"].as_str()), (400, Some("slow_down")));
        // The interval grew to 10 s: polling 5 s later would still be too soon; the test does
        // not wait, it polls again at once and is told the same.
        let (_, v) = poll(app, &client_id, dc).await;
        assert_eq!(v["error"], "slow_down");
    }
);

both!(
    rfc8628_a_denied_request_is_access_denied_for_the_device,
    async |app: &TestApp| {
        let client_id = device_client(app).await;
        let (_, v) = ask(app, &client_id, &[]).await;
        let b = Browser::new(app);
        let (done, _) = approve(&b, v["user_code"].as_str().unwrap(), "deny").await;
        assert_eq!(done, "/device/done?outcome=denied");
        let (status, body) = poll(app, &client_id, v["device_code"].as_str().unwrap()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("access_denied"))
        );
        let (_, action, details) = last_action(app).await;
        assert_eq!(action, "device.denied");
        assert_eq!(details["error"], "access_denied");
    }
);

both!(
    rfc8628_an_expired_request_is_expired_token_and_its_user_code_is_refused,
    async |app: &TestApp| {
        let client_id = device_client(app).await;
        let (_, v) = ask(app, &client_id, &[]).await;
        tamper(
            app,
            "UPDATE device_authorizations SET expires_at = expires_at - 601",
        )
        .await;
        let (status, body) = poll(app, &client_id, v["device_code"].as_str().unwrap()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("expired_token"))
        );
        let r = enter_code(&Browser::new(app), v["user_code"].as_str().unwrap()).await;
        assert_eq!(r.status(), 400);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("not valid, or it has expired")
        );
    }
);

both!(
    rfc8628_a_device_code_is_bound_to_the_client_it_was_issued_to,
    async |app: &TestApp| {
        let owner = device_client(app).await;
        let other = device_client(app).await;
        let (_, v) = ask(app, &owner, &[]).await;
        let dc = v["device_code"].as_str().unwrap();
        let (status, body) = poll(app, &other, dc).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        // Untouched for its own client.
        let (_, body) = poll(app, &owner, dc).await;
        assert_eq!(body["error"], "authorization_pending");
    }
);

both!(
    rfc8628_a_client_not_registered_for_the_grant_is_unauthorized_client,
    async |app: &TestApp| {
        let c = app.client(|c| c.public = true).await;
        let (status, v) = ask(app, &c.client_id, &[]).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("unauthorized_client"))
        );
        let (status, v) = poll(app, &c.client_id, "lk_dc_made-up").await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("unauthorized_client"))
        );
        // Nothing was stored for it.
        let device = device_client(app).await;
        let (status, v) = ask(app, &device, &[("scope", "openid unknown")]).await;
        assert_eq!((status, v["error"].as_str()), (400, Some("invalid_scope")));
    }
);

both!(
    rfc8628_an_approval_is_taken_once_by_racing_polls,
    async |app: &TestApp| {
        let client_id = device_client(app).await;
        let (_, v) = ask(app, &client_id, &[]).await;
        let (done, _) = approve(
            &Browser::new(app),
            v["user_code"].as_str().unwrap(),
            "allow",
        )
        .await;
        assert_eq!(done, "/device/done?outcome=approved");
        let dc = v["device_code"].as_str().unwrap();
        let (a, b) = tokio::join!(poll(app, &client_id, dc), poll(app, &client_id, dc));
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 400], "{a:?} {b:?}");
    }
);

both_with!(
    rfc8628_wrong_user_codes_are_throttled_per_address,
    |c: &mut latchkey_server::Config| c.throttle.user_codes_per_source = 3,
    async |app: &TestApp| {
        let client_id = device_client(app).await;
        let (_, v) = ask(app, &client_id, &[]).await;
        let b = Browser::new(app);
        for wrong in ["BCDF-GHJK", "not a code", "ZZZZ-ZZZZ"] {
            let r = enter_code(&b, wrong).await;
            assert_eq!(r.status(), 400, "{wrong}");
        }
        // The budget is spent: even the right code waits, and nothing is looked up.
        let r = enter_code(&b, v["user_code"].as_str().unwrap()).await;
        assert_eq!(r.status(), 429);
        assert!(r.headers().get("retry-after").is_some());
    }
);

both!(
    rfc8628_the_approving_user_must_reach_the_level_the_device_asks,
    async |app: &TestApp| {
        let client_id = device_client(app).await;
        // The test user has only a password: `mfa` cannot be reached, and there is no grace.
        let (_, v) = ask(app, &client_id, &[("acr_values", "mfa")]).await;
        let b = Browser::new(app);
        let r = enter_code(&b, v["user_code"].as_str().unwrap()).await;
        let login = location(&r);
        let html = b.get(&login).await.text().await.unwrap();
        let r = b
            .submit_login(
                &html_input(&html, "flow").unwrap(),
                &html_input(&html, "csrf").unwrap(),
                EMAIL,
                PASSWORD,
            )
            .await;
        assert_eq!(location(&r), "/device/done?outcome=unmet");
        let (_, body) = poll(app, &client_id, v["device_code"].as_str().unwrap()).await;
        assert_eq!(body["error"], "access_denied");
    }
);

both!(
    rfc8628_the_code_form_needs_its_csrf_token,
    async |app: &TestApp| {
        let client_id = device_client(app).await;
        let (_, v) = ask(app, &client_id, &[]).await;
        let b = Browser::new(app);
        assert_eq!(b.get("/device").await.status(), 200);
        let r = b
            .post_form(
                "/device",
                &[("user_code", v["user_code"].as_str().unwrap())],
            )
            .await;
        assert!(r.status().is_client_error(), "{}", r.status());
        let (_, body) = poll(app, &client_id, v["device_code"].as_str().unwrap()).await;
        assert_eq!(body["error"], "authorization_pending");
    }
);
