//! Recovery codes: shown once, each used once, 80 random bits, stored as HMAC-SHA256 under a
//! key derived from the KEK (not in the database); codes made before keyed hashes still work
//! and the account page asks for new ones.

use crate::both;
use crate::common::*;
use crate::mfa::{after_password, new_client, submit_code};
use latchkey_core::Acr;
use latchkey_server::audit::{Action, Event};
use latchkey_server::factors::{RecoveryKey, legacy_recovery_code_hash};

/// Makes recovery codes on the account page of signed-in browser `b`; returns them.
async fn make_codes(b: &Browser) -> Vec<String> {
    let csrf = account_csrf(b).await;
    let r = b
        .post_form("/account/recovery-codes", &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse("#recovery-codes code").unwrap();
    doc.select(&sel).map(|e| e.text().collect()).collect()
}

both!(
    recovery_code_steps_up_once_and_is_shown_afterwards,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let codes = make_codes(&b).await;
        assert_eq!(codes.len(), 10);
        let client = new_client(app, Some(Acr::Mfa)).await;
        let url = authorize_url(app, &client.0, &[]);
        let b1 = Browser::new(app);
        let loc = after_password(&b1, &url).await;
        let r = submit_code(&b1, &loc, "recovery", &codes[3].to_uppercase()).await;
        let back = url::Url::parse(&location(&r)).unwrap();
        let t = tokens(app, &client, &back).await;
        assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["acr"], "mfa");
        // Used codes stay used.
        let b2 = Browser::new(app);
        let loc = after_password(&b2, &url).await;
        let r = submit_code(&b2, &loc, "recovery", &codes[3]).await;
        assert_eq!(r.status(), 401);
        // The account page tells the user a code was used, and how many are left.
        let page = b1.get("/account").await.text().await.unwrap();
        assert!(page.contains("A recovery code was last used"));
        assert_eq!(
            select_text(&page, "#recovery-status").as_deref(),
            Some("9 of 10 unused.")
        );
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        assert!(events.iter().any(|e| e.action == "login.recovery_code"));
    }
);

// A stolen table is not enough to test guesses: the stored hash is keyed by the KEK, so
// neither the code's plain hash nor a hash under another key finds it.
both!(
    recovery_code_hashes_are_keyed_outside_the_database,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let codes = make_codes(&b).await;
        assert_eq!(codes.len(), 10);
        let user = app.user_id.clone();
        let other = RecoveryKey::from_secret(&[9u8; 32]);
        let store = &app.state.store;
        let used = |keyed: Vec<u8>, legacy: Vec<u8>| {
            let target = user.clone();
            store.use_recovery_code(&user, keyed, legacy, move |left| {
                Event::new(
                    &target,
                    Action::LoginRecoveryCode,
                    &target,
                    serde_json::json!({"unused_left": left}),
                )
            })
        };
        let plain = legacy_recovery_code_hash(&user, &codes[0]);
        assert!(
            !used(plain.clone(), plain).await.unwrap(),
            "the unkeyed hash"
        );
        let guessed = other.hash(&user, &codes[0]);
        assert!(
            !used(guessed.clone(), guessed).await.unwrap(),
            "another key"
        );
        let right = app.state.recovery_key.hash(&user, &codes[0]);
        assert!(used(right.clone(), vec![]).await.unwrap(), "the KEK's key");
        assert!(!used(right, vec![]).await.unwrap(), "once only");
        let page = b.get("/account").await.text().await.unwrap();
        assert!(
            !page.contains("recovery-legacy"),
            "new codes need no renewal"
        );
    }
);

// Rotating the KEK (`latchkey keys rewrap`) re-seals the recovery codes' key: codes keep
// working under the new KEK, and the old KEK opens nothing.
both!(
    kek_rotation_keeps_recovery_codes_working,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let codes = make_codes(&b).await;
        let store = &app.state.store;
        let name = latchkey_server::factors::RECOVERY_SECRET;
        let before = store.server_secret(name, &app.state.kek).await.unwrap();
        let new = std::sync::Arc::new(
            latchkey_server::crypto::Kek::from_b64(&latchkey_server::secret::random_b64(32))
                .unwrap(),
        );
        store
            .rewrap_keys(
                app.state.kek.clone(),
                new.clone(),
                latchkey_server::store::now(),
            )
            .await
            .unwrap();
        assert_eq!(store.server_secret(name, &new).await.unwrap(), before);
        assert!(store.server_secret(name, &app.state.kek).await.is_err());
        let key = RecoveryKey::from_secret(&before);
        let (user, target) = (app.user_id.clone(), app.user_id.clone());
        let used = store
            .use_recovery_code(&user, key.hash(&user, &codes[1]), vec![], move |left| {
                Event::new(
                    &target,
                    Action::LoginRecoveryCode,
                    &target,
                    serde_json::json!({"unused_left": left}),
                )
            })
            .await
            .unwrap();
        assert!(used, "the code still matches under the re-sealed key");
    }
);

// Codes made before keyed hashes (SHA-256 salted with the user id) keep working until the user
// makes new ones, and the account page asks for new ones meanwhile.
both!(
    recovery_codes_made_before_keyed_hashes_work_until_replaced,
    async |app: &TestApp| {
        let user = app.user_id.clone();
        let old = "abcde-fghjk";
        let seeded = Event::new(
            &user,
            Action::RecoveryCodesGenerated,
            &user,
            serde_json::json!({}),
        );
        app.state
            .store
            .replace_recovery_codes(&user, vec![legacy_recovery_code_hash(&user, old)], &seeded)
            .await
            .unwrap();
        tamper(app, "UPDATE recovery_codes SET keyed = FALSE").await;
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let page = b.get("/account").await.text().await.unwrap();
        assert!(
            page.contains("id=\"recovery-legacy\""),
            "the page asks for new codes"
        );
        let client = new_client(app, Some(Acr::Mfa)).await;
        let url = authorize_url(app, &client.0, &[]);
        let b1 = Browser::new(app);
        let loc = after_password(&b1, &url).await;
        let r = submit_code(&b1, &loc, "recovery", "ABCDE FGHJK").await;
        let back = url::Url::parse(&location(&r)).unwrap();
        let t = tokens(app, &client, &back).await;
        assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["acr"], "mfa");
        // New codes replace the old ones, and the notice goes.
        make_codes(&b).await;
        let page = b.get("/account").await.text().await.unwrap();
        assert!(!page.contains("recovery-legacy"));
    }
);
