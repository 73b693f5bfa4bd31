//! WebAuthn attestation end to end (W3C WebAuthn Level 2 section 7.1 steps 19-21, RFC 8176
//! `hwk`): webauthn-authenticator-rs's `SoftToken` answers registrations with a packed
//! attestation whose certificate chain ends at a CA made for it, which the tests trust (or
//! not) through `authentication.webauthn_attestation_roots`; `SoftPasskey` attests only
//! itself. Both databases; the app is served as `http://localhost:PORT`.

use crate::common::*;
use crate::passkeys::{client, login_page, sign_discoverable};
use crypto_glue::traits::{EncodeDer, EncodePem, LineEndingPem};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;

/// An attesting authenticator (it verifies its user) and its attestation CA as PEM.
fn attesting_token() -> (SoftToken, String) {
    let (token, ca) = SoftToken::new(true).expect("a SoftToken");
    assert!(!ca.to_der().unwrap().is_empty());
    (token, ca.to_pem(LineEndingPem::LF).unwrap())
}

/// An app on localhost that trusts `roots` (PEM) beside the bundled roots, with `tweak`.
async fn app_trusting(
    backend: Backend,
    roots: Option<&str>,
    tweak: impl FnOnce(&mut latchkey_server::Config),
) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roots.pem");
    if let Some(pem) = roots {
        std::fs::write(&path, pem).unwrap();
    }
    let app = TestApp::with_config(backend, |c| {
        on_localhost(c);
        if roots.is_some() {
            c.authentication.webauthn_attestation_roots = Some(path);
        }
        tweak(c);
    })
    .await;
    (app, dir)
}

/// The test user's account page, signed in.
async fn account(app: &TestApp) -> Browser {
    let b = Browser::new(app);
    account_sign_in(&b).await;
    b
}

/// Registers a passkey from the account page in `b` with `token`; returns its credential id,
/// after checking that the registration asked for the authenticator's attestation.
async fn register_passkey(
    app: &TestApp,
    b: &Browser,
    token: &mut impl WebauthnAuthenticator,
) -> String {
    let csrf = account_csrf(b).await;
    let (_, options) = begin(
        b,
        "/webauthn/register/begin",
        &[("csrf", &csrf), ("kind", "passkey")],
    )
    .await;
    assert_eq!(options["publicKey"]["attestation"], "direct");
    register(app, b, token, "passkey").await
}

/// Signs in without a password with the passkey `cred_id` held by `token`: the ID token's
/// claims, or where the flow went instead of back to the client with a code (and the browser).
async fn passkey_sign_in(
    app: &TestApp,
    token: &mut impl WebauthnAuthenticator,
    cred_id: &str,
    extra: &[(&str, &str)],
) -> Result<Value, (String, Browser)> {
    let c = client(app).await;
    let b = Browser::new(app);
    let (flow, csrf) = login_page(app, &b, &c.0, extra).await;
    let (ceremony, options) = begin(
        &b,
        "/webauthn/login/begin",
        &[("flow", &flow), ("csrf", &csrf), ("mode", "modal")],
    )
    .await;
    let pkc = sign_discoverable(token, options, cred_id, &app.user_id, &origin(app));
    let (status, v) = finish(&b, app, &ceremony, &pkc).await;
    assert_eq!(status, 200, "{v}");
    let r = b.get(v["next"].as_str().unwrap()).await;
    let back = location(&r);
    match url::Url::parse(&back) {
        Ok(u) if query_param(&u, "code").is_some() => {
            let t = tokens(app, &c, &u).await;
            Ok(jwt_claims(t["id_token"].as_str().unwrap()))
        }
        _ => Err((back, b)),
    }
}

async fn stored_root(app: &TestApp, cred_id: &str) -> Option<String> {
    let rows = app.state.store.list_webauthn(&app.user_id).await.unwrap();
    rows.into_iter()
        .find(|r| r.id == cred_id)
        .expect("the credential")
        .attestation_root
}

/// A passkey whose attestation chains to a trusted root is a hardware key: the sign-in says
/// `hwk`, the account page names who vouched for it, the audit entry records it.
async fn attested_passkey_claims_hwk(backend: Backend) {
    let (mut token, ca) = attesting_token();
    let (app, _dir) = app_trusting(backend, Some(&ca), |_| {}).await;
    let b = account(&app).await;
    let cred_id = register_passkey(&app, &b, &mut token).await;
    assert!(stored_root(&app, &cred_id).await.is_some());
    let id = passkey_sign_in(&app, &mut token, &cred_id, &[])
        .await
        .ok()
        .expect("back at the client with a code");
    assert_eq!(id["acr"], "phr");
    assert_eq!(id["amr"], json!(["hwk", "user", "mfa"]));

    let page = b.get("/account").await.text().await.unwrap();
    let hardware = select_text(&page, ".credentials .hardware").expect("marked as hardware");
    assert!(
        hardware.contains("WebauthnRS"),
        "named by its root's organisation: {hardware}"
    );
    let entries = app.state.store.audit_for(&app.user_id).await.unwrap();
    let enrolled = entries
        .iter()
        .find(|e| e.action == "factor.enrolled")
        .unwrap();
    let d: Value = serde_json::from_str(&enrolled.details).unwrap();
    assert_eq!(d["hardware"], true, "{d}");
    assert!(
        d["attested_by"].as_str().unwrap().contains("WebauthnRS"),
        "{d}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8176_an_attested_passkey_signs_in_with_hwk_sqlite() {
    attested_passkey_claims_hwk(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8176_an_attested_passkey_signs_in_with_hwk_postgres() {
    attested_passkey_claims_hwk(Backend::Postgres).await;
}

/// The same attesting key, with its root not trusted, and a key that attests only itself,
/// are software keys as far as anyone can prove: `swk`, and nothing on the account page.
async fn unattested_keys_claim_swk(backend: Backend) {
    let (mut token, _ca) = attesting_token();
    let (app, _dir) = app_trusting(backend, None, |_| {}).await;
    let b = account(&app).await;
    let cred_id = register_passkey(&app, &b, &mut token).await;
    assert_eq!(stored_root(&app, &cred_id).await, None);
    let mut soft = SoftPasskey::new(true);
    let soft_id = register_passkey(&app, &b, &mut soft).await;
    assert_eq!(stored_root(&app, &soft_id).await, None, "self attestation");

    let id = passkey_sign_in(&app, &mut token, &cred_id, &[])
        .await
        .ok()
        .expect("back at the client with a code");
    assert_eq!(id["amr"], json!(["swk", "user", "mfa"]));
    let id = passkey_sign_in(&app, &mut soft, &soft_id, &[])
        .await
        .ok()
        .expect("back at the client with a code");
    assert_eq!(id["amr"], json!(["swk", "user", "mfa"]));
    let page = b.get("/account").await.text().await.unwrap();
    assert_eq!(select_text(&page, ".credentials .hardware"), None);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8176_a_key_without_a_trusted_attestation_is_swk_sqlite() {
    unattested_keys_claim_swk(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8176_a_key_without_a_trusted_attestation_is_swk_postgres() {
    unattested_keys_claim_swk(Backend::Postgres).await;
}

/// `authentication.phr_requires_attestation`: a passkey that attests only itself signs in at
/// `mfa`, and a request for `phr` is not satisfied by it (the user is asked to add a hardware
/// passkey); an attested one reaches `phr`.
async fn phr_requires_attestation(backend: Backend) {
    let (mut token, ca) = attesting_token();
    let (app, _dir) = app_trusting(backend, Some(&ca), |c| {
        c.authentication.phr_requires_attestation = true;
    })
    .await;
    let b = account(&app).await;
    let mut soft = SoftPasskey::new(true);
    let soft_id = register_passkey(&app, &b, &mut soft).await;
    let id = passkey_sign_in(&app, &mut soft, &soft_id, &[])
        .await
        .ok()
        .expect("back at the client with a code");
    assert_eq!(id["acr"], "mfa");
    assert_eq!(id["amr"], json!(["swk", "user", "mfa"]));
    // The software passkey cannot reach phr, and the user has no other factor that can: the
    // client hears so (OIDC Core 3.1.2.6), no code.
    let (back, _) = passkey_sign_in(&app, &mut soft, &soft_id, &[("acr_values", "phr")])
        .await
        .unwrap_err();
    assert!(back.contains("error="), "{back}");
    assert!(!back.contains("code="), "{back}");

    let cred_id = register_passkey(&app, &b, &mut token).await;
    // With a hardware passkey enrolled, the software one's sign-in is asked to step up with
    // it (only hardware keys are offered).
    let (next, other) = passkey_sign_in(&app, &mut soft, &soft_id, &[("acr_values", "phr")])
        .await
        .unwrap_err();
    assert!(next.starts_with("/login/verify"), "{next}");
    let html = other.get(&next).await.text().await.unwrap();
    let flow = next
        .split("flow=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let csrf = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("[data-webauthn-verify]").unwrap())
        .next()
        .expect("the page offers a passkey")
        .value()
        .attr("data-csrf")
        .unwrap()
        .to_owned();
    let (_, options) = begin(
        &other,
        "/webauthn/verify/begin",
        &[("flow", flow), ("csrf", &csrf), ("need", "phr")],
    )
    .await;
    let allowed: Vec<&str> = options["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(allowed, vec![cred_id.as_str()], "only the hardware passkey");
    let id = passkey_sign_in(&app, &mut token, &cred_id, &[("acr_values", "phr")])
        .await
        .ok()
        .expect("back at the client with a code");
    assert_eq!(id["acr"], "phr");
    assert_eq!(id["amr"], json!(["hwk", "user", "mfa"]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phr_requires_attestation_refuses_a_software_passkey_sqlite() {
    phr_requires_attestation(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phr_requires_attestation_refuses_a_software_passkey_postgres() {
    phr_requires_attestation(Backend::Postgres).await;
}

/// A roots file that is not PEM stops the server with a message naming the file.
#[test]
fn an_unreadable_roots_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vendor-roots.pem");
    std::fs::write(
        &path,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = latchkey_server::attestation::Roots::load(true, Some(&path)).unwrap_err();
    assert!(e.contains("vendor-roots.pem"), "{e}");
}

/// A key whose attestation root is no longer trusted (taken out of the configuration) is a
/// hardware key nowhere: not for the step-up offers, not for the best level an administrator
/// sees, not when the user removes a key their policy needs.
async fn a_root_taken_out_of_trust_demotes_its_keys_everywhere(backend: Backend) {
    use latchkey_server::protocol::strength::Rules;
    let app = TestApp::with_config(backend, |c| {
        c.authentication.phr_requires_attestation = true;
    })
    .await;
    let row = latchkey_server::store::factors::WebauthnRow {
        id: "cred-of-a-distrusted-root".into(),
        user_id: app.user_id.clone(),
        name: "Old key".into(),
        kind: "passkey".into(),
        credential: "{}".into(),
        sign_count: 0,
        backup_eligible: false,
        backup_state: false,
        created_at: 0,
        last_used_at: None,
        // The SHA-256 of a root this node does not trust (any more).
        attestation_root: Some("00".repeat(32)),
    };
    let event = latchkey_server::audit::Event::new(
        &app.user_id,
        latchkey_server::audit::Action::FactorEnrolled,
        &app.user_id,
        json!({"seeded": true}),
    );
    app.state.store.add_webauthn(&row, &event).await.unwrap();
    let e = app.state.enrolled(&app.user_id).await.unwrap();
    assert_eq!((e.passkeys, e.hardware, e.hardware_passkeys), (1, 0, 0));
    assert_eq!(
        e.best(Rules::of(&app.state.config)),
        latchkey_core::Acr::Mfa
    );
    assert!(!app.state.is_hardware(&row));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_taken_out_of_trust_demotes_its_keys_everywhere_sqlite() {
    a_root_taken_out_of_trust_demotes_its_keys_everywhere(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_taken_out_of_trust_demotes_its_keys_everywhere_postgres() {
    a_root_taken_out_of_trust_demotes_its_keys_everywhere(Backend::Postgres).await;
}
