//! DPoP (RFC 9449) with a real relying-party library (`tests/browser/dpop.mjs`): panva's
//! openid-client, as a public client with a DPoP key, signs its user in through Chromium,
//! redeems the code, reads UserInfo and refreshes with proofs while Latchkey asks for nonces,
//! then calls the example lab service (`latchkey-client`'s actix extractor) with the bound
//! token.

use crate::browser::run_browser_script;
use crate::common::*;

use crate::client::lab_service;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_relying_party_uses_dpop_with_openid_client() {
    use latchkey_client::{Verifier, VerifierOptions};
    let app = TestApp::with_config(Backend::Sqlite, |c| c.dpop.require_nonce = true).await;
    let created = app
        .client(|c| {
            c.skip_consent = true;
            c.public = true;
        })
        .await;
    // The lab service, on its own port, accepting this client's tokens for the test lab.
    let verifier = Verifier::discover(
        VerifierOptions::new(app.base.clone(), created.client_id.clone()).lab(app.lab_id.clone()),
    )
    .await
    .unwrap()
    .with_feature_map(lab_service::feature_map());
    let data = actix_web::web::Data::new(verifier);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .app_data(actix_web::web::Data::new(
                lab_service::EndedSessions::default(),
            ))
            .configure(lab_service::routes)
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    let resource = format!("http://127.0.0.1:{port}/orders");

    let result = run_browser_script(
        "dpop.mjs",
        &[
            ("ISSUER", &app.base),
            ("CLIENT_ID", &created.client_id),
            ("REDIRECT_URI", CALLBACK),
            ("LOGIN_EMAIL", EMAIL),
            ("LOGIN_PASSWORD", PASSWORD),
            ("RESOURCE_URL", &resource),
        ],
    )
    .await;
    assert_eq!(
        result["tokenType"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("dpop"),
        "{result}"
    );
    assert!(
        result["cnf"]["jkt"].as_str().is_some_and(|j| j.len() == 43),
        "{result}"
    );
    assert_eq!(result["userinfo"]["email"], EMAIL, "{result}");
    assert_eq!(
        result["refreshed"]["tokenType"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("dpop")
    );
    assert_eq!(result["resource"]["status"], 200, "{result}");
    assert_eq!(
        result["resource"]["body"]["orders"][0], "PO-1001",
        "{result}"
    );
    assert_eq!(result["bearerStatus"], 401, "{result}");
    assert!(
        result["bearerChallenge"]
            .as_str()
            .is_some_and(|c| c.starts_with("DPoP ")),
        "{result}"
    );
    handle.stop(true).await;
    app.stop().await;
}
