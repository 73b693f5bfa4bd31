//! End to end in a real browser: headless Chromium (Debian's) driven by playwright-core signs
//! in on the hosted login page; the `openidconnect` crate is the relying party that exchanges
//! the code and verifies the ID token. A screenshot of the login page is saved under
//! `target/browser-output/`.

use crate::common::*;
use crate::oidc_flow::{rp_client, rp_http};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, Scope, TokenResponse};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_through_the_hosted_login() {
    let app = TestApp::new(Backend::Sqlite).await;
    let created = app.client(|_| {}).await;
    let (client, _) = rp_client(&app, &created.client_id, created.client_secret.as_deref()).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-output");
    std::fs::create_dir_all(&out_dir).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/login.mjs");
    let output = tokio::process::Command::new("node")
        .arg(script)
        .env("AUTHORIZE_URL", auth_url.as_str())
        .env("CALLBACK_PREFIX", CALLBACK)
        .env("LOGIN_EMAIL", EMAIL)
        .env("LOGIN_PASSWORD", PASSWORD)
        .env("SCREENSHOT_DIR", &out_dir)
        .output()
        .await
        .expect("node runs (scripts/test installs playwright-core and chromium)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert!(out_dir.join("login-page.png").exists(), "screenshot saved");
    assert_eq!(
        result["wrongPasswordMessage"],
        "The email or password is not correct."
    );
    let back = url::Url::parse(result["callback"].as_str().unwrap()).unwrap();
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = query_param(&back, "code").unwrap();
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http())
        .await
        .unwrap();
    let claims = token
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.subject().as_str(), app.user_id);
    app.stop().await;
}
