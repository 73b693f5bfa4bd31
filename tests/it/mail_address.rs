//! The account's address and the notices mailed to it, read back from a real SMTP server:
//! `email_verified` only after a mailed link was opened, an address change confirmed by both
//! addresses, security notices, administrators' reset links, STARTTLS against a lab's CA,
//! and the file outbox of the zero-configuration default.

use crate::common::smtp::{Delivered, SmtpServer, no_tweak};
use crate::common::*;
use crate::with_mail;
use latchkey_server::admin::{Actor, Admin, ops};
use serde_json::Value;

/// Opens a mailed confirmation link: the page (a button, nothing confirmed yet), then its
/// POST; returns the answer.
async fn confirm(app: &TestApp, link: &str) -> reqwest::Response {
    let b = Browser::new(app);
    let path = link.trim_start_matches(&app.base);
    let r = b.get(path).await;
    assert_eq!(r.status(), 200, "the link's page opens");
    let html = r.text().await.unwrap();
    let csrf = html_input(&html, "csrf").unwrap();
    b.post_form(path, &[("csrf", &csrf)]).await
}

/// `email` and `email_verified` of `email`'s ID token (scope `openid email`).
async fn email_claims(app: &TestApp, email: &str) -> (Value, Value) {
    let c = app.client(|c| c.skip_consent = true).await;
    let t = user_tokens_for(
        app,
        &c.client_id,
        c.client_secret.as_deref().unwrap(),
        "openid email",
        email,
    )
    .await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    let info: Value = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info["email_verified"], id["email_verified"],
        "userinfo agrees"
    );
    (id["email"].clone(), id["email_verified"].clone())
}

/// Accepts an invitation link with [`PASSWORD`].
async fn accept(app: &TestApp, link: &str) {
    let b = Browser::new(app);
    let path = link.trim_start_matches(&app.base);
    let html = b.get(path).await.text().await.unwrap();
    let csrf = html_input(&html, "csrf").unwrap();
    let r = b
        .post_form(path, &[("csrf", &csrf), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

fn link(m: &Delivered, app: &TestApp, path: &str) -> String {
    m.link(&app.url(path))
        .unwrap_or_else(|| panic!("no {path} link in {}", m.text))
}

with_mail!(
    an_invitation_only_mailed_confirms_the_address,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        let lab_admin = Admin {
            actor: Actor::User(app.user()),
            system: false,
            labs: [app.lab()].into(),
            sign_in: None,
        };
        let eve = "eve@lab.example";
        let view = ops::create_invitation(
            &app.state,
            &lab_admin,
            &app.lab(),
            ops::NewInvitation {
                email: eve.into(),
                roles: vec![],
                valid_days: None,
            },
        )
        .await
        .unwrap();
        assert!(
            view.link.is_none(),
            "a lab administrator never holds the link"
        );
        let mail = smtp.wait_for(eve, 1).await.remove(0);
        assert!(
            mail.subject.starts_with("You are invited to"),
            "{}",
            mail.subject
        );
        accept(app, &link(&mail, app, "/invite/")).await;
        let (email, verified) = email_claims(app, eve).await;
        assert_eq!((email, verified), (Value::from(eve), Value::from(true)));
    }
);

with_mail!(
    an_invitation_link_an_administrator_saw_does_not_confirm_the_address_a_mailed_link_does,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        let hal = "hal@lab.example";
        let view = ops::create_invitation(
            &app.state,
            &Admin::cli(),
            &app.lab(),
            ops::NewInvitation {
                email: hal.into(),
                roles: vec![],
                valid_days: None,
            },
        )
        .await
        .unwrap();
        accept(app, &view.link.unwrap()).await;
        let (_, verified) = email_claims(app, hal).await;
        assert_eq!(verified, Value::from(false));
        // The invitation, then a confirmation link.
        let got = smtp.wait_for(hal, 2).await;
        let mail = got
            .iter()
            .find(|m| m.subject == "Confirm your e-mail address")
            .unwrap();
        let r = confirm(app, &link(mail, app, "/email/confirm/")).await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Address confirmed"));
        let (_, verified) = email_claims(app, hal).await;
        assert_eq!(verified, Value::from(true));
    }
);

/// Asks for an address change on the account page of a signed-in browser.
async fn ask_change(b: &Browser, new: &str, password: &str) -> String {
    let csrf = account_csrf(b).await;
    let r = b
        .post_form(
            "/account/email",
            &[("csrf", &csrf), ("email", new), ("password", password)],
        )
        .await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

with_mail!(
    an_address_changes_only_once_the_old_and_the_new_address_both_confirm,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        let new = "ada.lovelace@lab.example";
        let b = Browser::new(app);
        account_sign_in(&b).await;
        // A wrong password sends nothing.
        let page = ask_change(&b, new, "not my password").await;
        assert!(
            page.contains("The current password is not correct"),
            "{page}"
        );
        let page = ask_change(&b, new, PASSWORD).await;
        assert!(
            page.contains("the address changes once both are opened"),
            "{page}"
        );
        let to_new = smtp.wait_for(new, 1).await.remove(0);
        assert_eq!(to_new.subject, "Confirm your new e-mail address");
        let to_old = smtp
            .wait_for(EMAIL, 1)
            .await
            .into_iter()
            .find(|m| m.subject == "Confirm the change of your e-mail address")
            .unwrap();
        // The new address alone changes nothing.
        let r = confirm(app, &link(&to_new, app, "/email/confirm/")).await;
        assert!(r.text().await.unwrap().contains("Half-way there"));
        let user = app
            .state
            .store
            .get_user(app.user().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.email, EMAIL);
        // A link works once.
        let again = Browser::new(app)
            .get(link(&to_new, app, "/email/confirm/").trim_start_matches(&app.base))
            .await;
        assert_eq!(again.status(), 404);
        // The old address agrees: the address changes, confirmed.
        let r = confirm(app, &link(&to_old, app, "/email/confirm/")).await;
        assert!(r.text().await.unwrap().contains("Address changed"));
        let user = app
            .state
            .store
            .get_user(app.user().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.email, new);
        assert!(user.email_verified_at.is_some());
        let notice = smtp.wait_for(EMAIL, 2).await;
        assert!(
            notice
                .iter()
                .any(|m| m.subject == "Your e-mail address was changed" && m.text.contains(new))
        );
        let (email, verified) = email_claims(app, new).await;
        assert_eq!((email, verified), (Value::from(new), Value::from(true)));
    }
);

with_mail!(
    an_address_change_to_an_address_taken_meanwhile_changes_nothing,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        let new = "grace@lab.example";
        let b = Browser::new(app);
        account_sign_in(&b).await;
        ask_change(&b, new, PASSWORD).await;
        let to_new = smtp.wait_for(new, 1).await.remove(0);
        let to_old = smtp.wait_for(EMAIL, 1).await.remove(0);
        // Someone else gets the address first.
        ops::create_invitation(
            &app.state,
            &Admin::cli(),
            &app.lab(),
            ops::NewInvitation {
                email: new.into(),
                roles: vec![],
                valid_days: None,
            },
        )
        .await
        .map(|v| v.link.unwrap())
        .map(|l| async move { accept(app, &l).await })
        .unwrap()
        .await;
        confirm(app, &link(&to_new, app, "/email/confirm/")).await;
        let r = confirm(app, &link(&to_old, app, "/email/confirm/")).await;
        assert_eq!(r.status(), 409);
        let user = app
            .state
            .store
            .get_user(app.user().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.email, EMAIL);
    }
);

with_mail!(
    notices_tell_of_a_new_browser_and_of_factors_added_and_removed,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        // The first sign-in ever is no news.
        let b = Browser::new(app);
        account_sign_in(&b).await;
        enrol_totp(&b).await;
        let got = smtp.wait_for(EMAIL, 1).await;
        assert_eq!(got[0].subject, "A sign-in method was added to your account");
        assert!(
            got[0].text.contains("An authenticator app"),
            "{}",
            got[0].text
        );
        // Another browser: the owner is told, with the browser and the address.
        let other = Browser::with_user_agent(
            app,
            "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
        );
        account_sign_in(&other).await;
        let got = smtp.wait_for(EMAIL, 2).await;
        assert_eq!(got[1].subject, "New sign-in to your account");
        assert!(got[1].text.contains("Firefox on Linux"), "{}", got[1].text);
        assert!(got[1].text.contains("127.0.0.1"), "{}", got[1].text);
        // Removing the app tells too.
        let csrf = account_csrf(&b).await;
        let r = b
            .post_form("/account/totp/remove", &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status(), 303);
        let got = smtp.wait_for(EMAIL, 3).await;
        assert_eq!(
            got[2].subject,
            "A sign-in method was removed from your account"
        );
    }
);

with_mail!(
    administrators_send_a_reset_link_instead_of_setting_a_password,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        let sys = client_token(app, "*").await;
        let path = format!("/api/v1/users/{}/password-reset", app.user().as_str());
        // The anonymous allowance (3 an hour) and the administrators' headroom (5 more).
        for _ in 0..8 {
            let (status, body) = call(app, Some(&sys), reqwest::Method::POST, &path, None).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["email"], EMAIL);
            assert_eq!(body["expires_in_minutes"], 30);
        }
        let (status, body) = call(app, Some(&sys), reqwest::Method::POST, &path, None).await;
        assert_eq!(status, 409, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("last hour"),
            "{body}"
        );
        let got = smtp.wait_for(EMAIL, 8).await;
        assert!(got.iter().all(|m| m.subject == "Reset your password"));
        // The outbox lists them, without bodies.
        let (status, list) =
            call(app, Some(&sys), reqwest::Method::GET, "/api/v1/mail", None).await;
        assert_eq!(status, 200);
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 8);
        assert!(
            list.iter()
                .all(|m| m["state"] == "sent" || m["state"] == "sending")
        );
        assert!(list.iter().all(|m| m.get("body").is_none()));
        // The audit log names who asked.
        let audit = app
            .state
            .store
            .audit_for(app.user().as_str())
            .await
            .unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == "password.reset_requested" && e.details.contains("\"by\""))
        );
    }
);

/// A CA of the lab's own and an SMTP certificate for `localhost` it issued: (CA PEM,
/// certificate file, key file) in `dir`.
fn lab_ca(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Lab mail CA");
    let ca = params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("smtp.pem"),
        dir.join("smtp.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_through_starttls_only_to_a_server_whose_certificate_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = lab_ca(dir.path());
    let smtp = SmtpServer::start_on(crate::common::smtp::free_port(), Some((&cert, &key)));
    let starttls = |c: &mut latchkey_server::Config, ca: Option<&std::path::Path>| {
        c.mail.smtp_host = Some("localhost".into());
        c.mail.smtp_port = Some(smtp.port);
        c.mail.smtp_tls = latchkey_server::config::SmtpTls::Starttls;
        c.mail.smtp_ca_file = ca.map(std::path::Path::to_path_buf);
    };
    // Without the lab's CA the certificate is not trusted: nothing is sent, and the outbox
    // says why.
    let app = TestApp::with_config(Backend::Sqlite, |c| starttls(c, None)).await;
    latchkey_server::mail::links::reset_link(
        &app.state,
        &app.state
            .store
            .get_user(app.user().as_str())
            .await
            .unwrap()
            .unwrap(),
        serde_json::json!({}),
        Some("test"),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let error = loop {
        let out = app.state.store.outbox(10).await.unwrap();
        if let Some(e) = out.first().and_then(|m| m.last_error.clone()) {
            assert_eq!(out[0].state, "queued", "retried later");
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "no attempt: {out:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(smtp.messages().is_empty());
    app.stop().await;
    // With it, the message goes through the upgraded connection.
    let app = TestApp::with_config(Backend::Sqlite, |c| starttls(c, Some(&ca))).await;
    latchkey_server::mail::links::reset_link(
        &app.state,
        &app.state
            .store
            .get_user(app.user().as_str())
            .await
            .unwrap()
            .unwrap(),
        serde_json::json!({}),
        Some("test"),
    )
    .await
    .unwrap();
    let got = smtp.wait_for(EMAIL, 1).await;
    assert_eq!(got[0].subject, "Reset your password");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_smtp_server_mail_is_written_to_private_files_in_the_outbox_directory() {
    let app = TestApp::new(Backend::Sqlite).await;
    let user = app
        .state
        .store
        .get_user(app.user().as_str())
        .await
        .unwrap()
        .unwrap();
    latchkey_server::mail::links::reset_link(&app.state, &user, serde_json::json!({}), None)
        .await
        .unwrap();
    let outbox = app.state.config.data_dir.join("outbox");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let file = loop {
        let found = std::fs::read_dir(&outbox).ok().and_then(|d| {
            d.filter_map(Result::ok)
                .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
        });
        if let Some(f) = found {
            break f.path();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no .eml in {}",
            outbox.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a reset link is a password");
    let raw = std::fs::read(&file).unwrap();
    let m = mailparse::parse_mail(&raw).unwrap();
    let text = m.subparts[0].get_body().unwrap();
    assert!(text.contains(&app.url("/password/reset/lk_ml_")), "{text}");
    app.stop().await;
}

with_mail!(
    an_administrator_changes_a_lost_address_which_stays_unconfirmed_until_its_link_is_opened,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        let sys = client_token(app, "*").await;
        let path = format!("/api/v1/users/{}/email", app.user().as_str());
        let new = "ada@home.example";
        let (status, body) = call(
            app,
            Some(&sys),
            reqwest::Method::PUT,
            &path,
            Some(serde_json::json!({"email": new})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["email"].as_str(), body["previous"].as_str()),
            (Some(new), Some(EMAIL))
        );
        let told = smtp.wait_for(EMAIL, 1).await.remove(0);
        assert_eq!(told.subject, "Your e-mail address was changed");
        let mail = smtp.wait_for(new, 1).await.remove(0);
        assert_eq!(mail.subject, "Confirm your e-mail address");
        let (_, verified) = email_claims(app, new).await;
        assert_eq!(verified, Value::from(false));
        let r = confirm(app, &link(&mail, app, "/email/confirm/")).await;
        assert_eq!(r.status(), 200);
        let (_, verified) = email_claims(app, new).await;
        assert_eq!(verified, Value::from(true));
        // An address another account has is refused, and nothing changes.
        ops::create_invitation(
            &app.state,
            &Admin::cli(),
            &app.lab(),
            ops::NewInvitation {
                email: "bob@lab.example".into(),
                roles: vec![],
                valid_days: None,
            },
        )
        .await
        .map(|v| v.link.unwrap())
        .map(|l| async move { accept(app, &l).await })
        .unwrap()
        .await;
        let (status, body) = call(
            app,
            Some(&sys),
            reqwest::Method::PUT,
            &path,
            Some(serde_json::json!({"email": "bob@lab.example"})),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        let user = app
            .state
            .store
            .get_user(app.user().as_str())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.email, new);
    }
);
