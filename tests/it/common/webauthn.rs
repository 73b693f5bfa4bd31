//! WebAuthn steps the passkey tests and the administration tests share: webauthn-authenticator-rs's
//! `SoftPasskey` (or `SoftToken`, which attests) plays the authenticator and these functions play `webauthn.js`. The app must
//! be served as `http://localhost:PORT` ([`on_localhost`]): an RP id cannot be an IP address.

use super::*;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

/// The origin the browser would show.
pub fn origin(app: &TestApp) -> Url {
    Url::parse(&app.base.replace("127.0.0.1", "localhost")).unwrap()
}

pub async fn post_json(b: &Browser, app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let r = b.http.post(app.url(path)).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Answers a ceremony at `/webauthn/finish`, as `webauthn.js` does.
pub async fn finish(
    b: &Browser,
    app: &TestApp,
    ceremony: &str,
    credential: &impl serde::Serialize,
) -> (u16, Value) {
    post_json(
        b,
        app,
        "/webauthn/finish",
        &json!({"ceremony": ceremony, "credential": credential}),
    )
    .await
}

/// Begins a ceremony; returns its id and the options for the authenticator.
pub async fn begin(b: &Browser, path: &str, form: &[(&str, &str)]) -> (String, Value) {
    let r = b.post_form(path, form).await;
    assert_eq!(r.status(), 200, "{path}");
    let v: Value = r.json().await.unwrap();
    (
        v["ceremony"].as_str().unwrap().to_owned(),
        v["options"].clone(),
    )
}

/// Registers a credential of `kind` for the signed-in browser; returns its id (base64url).
pub async fn register(
    app: &TestApp,
    b: &Browser,
    sp: &mut impl WebauthnAuthenticator,
    kind: &str,
) -> String {
    let csrf = account_csrf(b).await;
    let (ceremony, options) = begin(
        b,
        "/webauthn/register/begin",
        &[("csrf", &csrf), ("kind", kind)],
    )
    .await;
    let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let cred = sp.do_registration(origin(app), ccr).expect("registration");
    let id = cred.id.clone();
    let (status, v) = post_json(
        b,
        app,
        "/webauthn/finish",
        &json!({"ceremony": ceremony, "credential": cred, "name": format!("My {kind}")}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["next"], "/account");
    id
}

/// Answers the step-up page at `verify` (`/login/verify?flow=…`) with the passkey, asked for
/// `need`; returns where the finished ceremony leads (`next`).
pub async fn step_up_with_passkey(
    app: &TestApp,
    b: &Browser,
    sp: &mut impl WebauthnAuthenticator,
    verify: &str,
    need: &str,
) -> String {
    let html = b.get(verify).await.text().await.unwrap();
    let flow = verify
        .split("flow=")
        .nth(1)
        .expect("a flow")
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let csrf = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("[data-webauthn-verify]").unwrap())
        .next()
        .expect("the page offers the passkey")
        .value()
        .attr("data-csrf")
        .unwrap()
        .to_owned();
    let (ceremony, options) = begin(
        b,
        "/webauthn/verify/begin",
        &[("flow", &flow), ("csrf", &csrf), ("need", need)],
    )
    .await;
    let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let pkc = sp.do_authentication(origin(app), rcr).unwrap();
    let (status, v) = finish(b, app, &ceremony, &pkc).await;
    assert_eq!(status, 200, "{v}");
    v["next"].as_str().unwrap().to_owned()
}
