//! Personal data (GDPR): the export holds everything Latchkey keeps about a person and no
//! secret; erasure removes the personal data, keeps the audit chain verifiable and leaves the
//! log naming the person only by an opaque id; an erased user cannot sign in. The CLI commands
//! refuse to erase without `--yes`.

use crate::both;
use crate::common::*;
use latchkey_server::audit::chain;

const NAME: &str = "Ada Lovelace";

/// Gives the test user one of everything: a consented client with a grant, a role, a feature
/// override, TOTP, recovery codes, an account session. Returns the secrets it saw.
async fn give_the_user_everything(app: &TestApp) -> Vec<String> {
    let store = &app.state.store;
    store
        .assign_role(&app.user(), &app.lab(), "approver")
        .await
        .unwrap();
    store
        .set_member_feature(&app.user(), &app.lab(), "invoices:approve", Some(true), &[])
        .await
        .unwrap();
    let c = app.client(|_| {}).await;
    let secret = c.client_secret.clone().unwrap();
    let b = Browser::new(app);
    let back = b
        .login(&authorize_url(app, &c.client_id, &[]), EMAIL, PASSWORD)
        .await;
    let t = tokens(app, &(c.client_id.clone(), secret.clone()), &back).await;
    let mut secrets = vec![PASSWORD.to_owned(), secret];
    for k in ["access_token", "refresh_token", "id_token"] {
        if let Some(v) = t[k].as_str() {
            secrets.push(v.to_owned());
        }
    }
    let b = Browser::new(app);
    account_sign_in(&b).await;
    secrets.push(enrol_totp(&b).await.replace(' ', ""));
    let csrf = account_csrf(&b).await;
    let html = b
        .post_form("/account/recovery-codes", &[("csrf", &csrf)])
        .await
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse("#recovery-codes code").unwrap();
    let codes: Vec<String> = doc.select(&sel).map(|e| e.text().collect()).collect();
    assert_eq!(codes.len(), 10);
    secrets.extend(codes);
    secrets
}

async fn chain_break(app: &TestApp) -> Option<chain::Break> {
    let snap = app.state.store.audit_snapshot().await.unwrap();
    assert_eq!(snap.unchained, 0);
    chain::verify_with_checkpoints(
        &snap.checkpoints,
        &snap.chain,
        &chain::checkpoint_key(&app.state.kek),
    )
}

both!(
    export_contains_everything_about_the_user_and_no_secrets,
    async |app: &TestApp| {
        let secrets = give_the_user_everything(app).await;
        let x = app
            .state
            .store
            .export_user(&app.user())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(x["user"]["id"], app.user_id.as_str());
        assert_eq!(x["user"]["email"], EMAIL);
        assert_eq!(x["user"]["name"], NAME);
        assert_eq!(x["user"]["has_password"], true);
        assert_eq!(x["memberships"][0]["lab_name"], "Lab 42");
        assert_eq!(x["roles"][0]["role"], "approver");
        assert_eq!(x["feature_overrides"][0]["feature"], "invoices:approve");
        assert_eq!(x["factors"]["totp"]["confirmed"], true);
        assert_eq!(x["factors"]["recovery_codes"].as_array().unwrap().len(), 10);
        assert!(x["sessions"].as_array().unwrap().len() >= 2);
        assert!(!x["grants"].as_array().unwrap().is_empty());
        assert_eq!(x["consents"][0]["client_name"], "Invoice app");
        let actions: Vec<&str> = x["audit_events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for a in [
            "login.password",
            "factor.enrolled",
            "recovery_codes.generated",
        ] {
            assert!(actions.contains(&a), "{a} in {actions:?}");
        }
        let text = x.to_string();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "the export contains a secret");
        }
        for marker in [
            "password_hash",
            "$argon2",
            "secret",
            "token_hash",
            "code_hash",
        ] {
            assert!(!text.contains(marker), "the export contains {marker}");
        }
        assert_eq!(
            app.state.store.export_user(&"nobody".into()).await.unwrap(),
            None
        );
    }
);

both!(
    erase_removes_personal_data_and_keeps_the_chain_verifiable,
    async |app: &TestApp| {
        give_the_user_everything(app).await;
        let store = &app.state.store;
        assert_eq!(chain_break(app).await, None);
        assert!(store.erase_user(&app.user(), "cli").await.unwrap());
        assert!(!store.erase_user(&"nobody".into(), "cli").await.unwrap());

        let x = store.export_user(&app.user()).await.unwrap().unwrap();
        let email = x["user"]["email"].as_str().unwrap();
        assert!(
            email.starts_with("erased-") && email.ends_with("@invalid"),
            "{email}"
        );
        assert!(x["user"]["name"].is_null());
        assert_eq!(x["user"]["has_password"], false);
        assert_eq!(x["user"]["disabled"], true);
        assert!(x["user"]["erased_at"].is_i64());
        for list in [
            &x["memberships"],
            &x["roles"],
            &x["feature_overrides"],
            &x["factors"]["webauthn"],
            &x["factors"]["recovery_codes"],
            &x["sessions"],
            &x["grants"],
            &x["consents"],
            &x["sign_in_failures"],
        ] {
            assert_eq!(list.as_array().unwrap().len(), 0, "{x:#}");
        }
        assert!(x["factors"]["totp"].is_null());

        // The log keeps its entries (pseudonymous: the opaque id only) and still verifies.
        let text = x.to_string();
        assert!(!text.contains(EMAIL) && !text.contains(NAME), "{text}");
        let (chain, _) = store.audit_chain().await.unwrap();
        let log: String = chain.iter().map(|s| format!("{:?}\n", s.entry)).collect();
        assert!(!log.contains(EMAIL), "the audit log names the email");
        assert!(!log.contains(NAME), "the audit log names the person");
        assert!(log.contains(&app.user_id));
        let last = &chain.last().unwrap().entry;
        assert_eq!(
            (last.action.as_str(), last.target.as_str()),
            ("user.erased", app.user_id.as_str())
        );
        assert_eq!(chain_break(app).await, None, "the chain still verifies");
    }
);

both!(erased_user_cannot_sign_in, async |app: &TestApp| {
    let c = app.client(|c| c.skip_consent = true).await;
    assert!(
        app.state
            .store
            .erase_user(&app.user(), "cli")
            .await
            .unwrap()
    );
    assert!(
        app.state
            .store
            .find_user_by_email(EMAIL)
            .await
            .unwrap()
            .is_none()
    );
    let b = Browser::new(app);
    let (flow, csrf) = b.open_login(&authorize_url(app, &c.client_id, &[])).await;
    let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
    assert_ne!(r.status(), 303, "sign-in refused");
    assert!(location(&r).is_empty());
});

mod cli {
    use crate::audit::cli::{json, run};

    #[test]
    fn cli_user_export_and_erase_refuses_without_yes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        json(&run(
            d,
            &["lab", "create", "--name", "Lab 42", "--json"],
            None,
        ));
        let user = json(&run(
            d,
            &[
                "user",
                "create",
                "--lab",
                "Lab 42",
                "--email",
                "grace@lab.example",
                "--name",
                "Grace Hopper",
                "--password-stdin",
                "--json",
            ],
            Some("violet tractor sings at dawn\n"),
        ));
        let x = json(&run(
            d,
            &["user", "export", "--email", "grace@lab.example"],
            None,
        ));
        assert_eq!(x["user"]["id"], user["id"]);
        assert_eq!(x["user"]["name"], "Grace Hopper");
        assert_eq!(x["memberships"][0]["lab_name"], "Lab 42");

        let refused = run(d, &["user", "erase", "--email", "grace@lab.example"], None);
        assert!(!refused.status.success());
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("--yes"), "{err}");
        let still = json(&run(
            d,
            &["user", "export", "--email", "grace@lab.example"],
            None,
        ));
        assert_eq!(still["user"]["name"], "Grace Hopper", "nothing changed");

        let erased = json(&run(
            d,
            &[
                "user",
                "erase",
                "--email",
                "grace@lab.example",
                "--yes",
                "--json",
            ],
            None,
        ));
        assert_eq!(erased["erased"], true);
        assert_eq!(erased["id"], user["id"]);
        let gone = run(d, &["user", "export", "--email", "grace@lab.example"], None);
        assert!(!gone.status.success());
        assert!(String::from_utf8_lossy(&gone.stderr).contains("no user"));
        let v = json(&run(d, &["audit", "verify", "--json"], None));
        assert_eq!(v["intact"], true);
    }
}
