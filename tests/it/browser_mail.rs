//! Chromium follows the links Latchkey mailed (read from a real SMTP server): a forgotten
//! password reset, then a sign-in that still asks for the second factor; an address change
//! confirmed by both addresses. Screenshots of each new page go to `target/browser-output/`.

use crate::browser::{browser_output, run_browser_script};
use crate::common::smtp::{SmtpServer, through};
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_resets_a_forgotten_password_by_mail_and_changes_the_address() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_config(Backend::Sqlite, |c| {
        on_localhost(c);
        through(c, &smtp);
    })
    .await;
    let base = app.base.replace("127.0.0.1", "localhost");
    // The user has an authenticator app.
    let b = Browser::new(&app);
    account_sign_in(&b).await;
    let key = enrol_totp(&b).await;
    let created = app.client(|c| c.skip_consent = true).await;
    let client = (created.client_id.clone(), created.client_secret.unwrap());
    let authorize =
        authorize_url(&app, &client.0, &[("acr_values", "mfa")]).replacen(&app.base, &base, 1);
    let (new_password, new_email) = (
        "lanterns drift over the quiet mill",
        "ada.byron@lab.example",
    );
    let shots = [
        "forgot-password.png",
        "reset-password.png",
        "account-email.png",
        "confirm-email.png",
    ];
    let out_dir = browser_output(&[&shots[..], &["mail-failure.png"]].concat());
    let result = run_browser_script(
        "mail.mjs",
        &[
            ("BASE_URL", &base),
            ("AUTHORIZE_URL", &authorize),
            ("CALLBACK_PREFIX", CALLBACK),
            ("LOGIN_EMAIL", EMAIL),
            ("NEW_PASSWORD", new_password),
            ("NEW_EMAIL", new_email),
            ("TOTP_KEY", &key),
            ("MAILDIR", &smtp.maildir().to_string_lossy()),
            ("SCREENSHOT_DIR", &out_dir.to_string_lossy()),
        ],
    )
    .await;
    for shot in shots {
        assert!(out_dir.join(shot).exists(), "{shot}");
    }
    assert_eq!(result["pageErrors"], serde_json::json!([]), "{result}");
    assert_eq!(result["cspViolations"], serde_json::json!([]), "{result}");
    assert_eq!(result["accountEmail"], new_email, "{result}");
    assert_eq!(result["accountState"], "confirmed", "{result}");
    // The sign-in after the reset reached mfa with the app's code, not with the link.
    let back = url::Url::parse(result["callback"].as_str().unwrap()).unwrap();
    let t = tokens(&app, &client, &back).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "mfa", "{id}");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{id}");
    // The old address was told of both changes.
    let old: Vec<String> = smtp.to(EMAIL).into_iter().map(|m| m.subject).collect();
    assert!(
        old.contains(&"Your password was changed".to_owned()),
        "{old:?}"
    );
    assert!(
        old.contains(&"Your e-mail address was changed".to_owned()),
        "{old:?}"
    );
    app.stop().await;
}
