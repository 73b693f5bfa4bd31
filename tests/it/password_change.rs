//! Changing one's password on the account page (OWASP ASVS 5 section 6.2): the current
//! password and a fresh second factor when the user has one, the password rules, other browsers
//! and applications signed out unless kept, wrong current passwords locked like wrong codes;
//! a refusal changes nothing.

use crate::both;
use crate::common::*;
use serde_json::Value;

const NEW: &str = "violet kettle drums at noon";

/// Posts the account page's password form from signed-in browser `b`.
async fn change(b: &Browser, current: &str, new: &str, keep: bool) -> reqwest::Response {
    let csrf = account_csrf(b).await;
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("current", current),
        ("new", new),
        ("repeat", new),
    ];
    if keep {
        form.push(("keep_others", "on"));
    }
    b.post_form("/account/password", &form).await
}

/// Whether `password` signs the test user in (a new browser, the account page's sign-in).
async fn signs_in(app: &TestApp, password: &str) -> bool {
    signs_in_from(&Browser::new(app), password).await
}

async fn refresh(app: &TestApp, c: &(String, String), token: &Value) -> u16 {
    reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&c.0, Some(&c.1))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn password_changes(app: &TestApp) -> usize {
    let events = app.state.store.audit_for(&app.user_id).await.unwrap();
    events
        .iter()
        .filter(|e| e.action == "password.changed")
        .count()
}

both!(
    asvs_6_2_password_change_requires_the_current_password,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let html = change(&b, "not my password at all", NEW, false)
            .await
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("The current password is not correct."),
            "{html}"
        );
        assert_eq!(password_changes(app).await, 0);
        assert!(signs_in(app, PASSWORD).await, "unchanged");
        let html = change(&b, PASSWORD, NEW, false).await.text().await.unwrap();
        assert_eq!(
            select_text(&html, "#account-done").as_deref(),
            Some(
                "Your password was changed. Signed out elsewhere: 1 browser(s); applications signed out: 0."
            )
        );
        assert!(
            !signs_in(app, PASSWORD).await,
            "the old password is refused"
        );
        assert!(signs_in(app, NEW).await, "the new one works");
        assert_eq!(password_changes(app).await, 1);
        // The browser that changed it stays signed in.
        assert_eq!(b.get("/account").await.status(), 200);
    }
);

both!(
    asvs_6_2_new_password_follows_the_password_rules,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        for (new, repeat, why) in [
            ("short", "short", "Use at least"),
            ("password1234567", "password1234567", "too common"),
            (NEW, "another long passphrase here", "not the same"),
            (PASSWORD, PASSWORD, "your current one"),
        ] {
            let csrf = account_csrf(&b).await;
            let html = b
                .post_form(
                    "/account/password",
                    &[
                        ("csrf", &csrf),
                        ("current", PASSWORD),
                        ("new", new),
                        ("repeat", repeat),
                    ],
                )
                .await
                .text()
                .await
                .unwrap();
            assert!(html.contains(why), "{new}: {html}");
        }
        assert_eq!(password_changes(app).await, 0);
        assert!(signs_in(app, PASSWORD).await);
    }
);

both!(
    asvs_6_2_password_change_signs_out_other_browsers_and_apps_unless_kept,
    async |app: &TestApp| {
        let c = app.client(|c| c.skip_consent = true).await;
        let c = (c.client_id, c.client_secret.unwrap());
        let other = Browser::new(app);
        account_sign_in(&other).await;
        let app_tokens = user_tokens(app, &c.0, &c.1, "openid offline_access").await;
        assert!(app_tokens["refresh_token"].is_string(), "{app_tokens}");
        // Kept: nothing else ends.
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let r = change(&b, PASSWORD, NEW, true).await;
        assert_eq!(
            select_text(&r.text().await.unwrap(), "#account-done").as_deref(),
            Some("Your password was changed.")
        );
        assert_eq!(other.get("/account").await.status(), 200);
        assert_eq!(refresh(app, &c, &app_tokens).await, 200);
        // Not kept: the other browser is signed out and the application's refresh token
        // (offline_access included) is refused; this browser stays.
        let app_tokens = user_tokens_with(app, &c, NEW).await;
        let r = change(&b, NEW, "amber lantern over quiet fields", false).await;
        assert_eq!(r.status(), 200);
        let r = other.get("/account").await;
        assert_eq!(r.status(), 303, "signed out");
        assert!(location(&r).starts_with("/login"));
        assert_eq!(refresh(app, &c, &app_tokens).await, 400);
        assert_eq!(b.get("/account").await.status(), 200);
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        let last = events
            .iter()
            .rfind(|e| e.action == "password.changed")
            .unwrap();
        let d: Value = serde_json::from_str(&last.details).unwrap();
        assert_eq!(d["kept_others"], false);
        // The other browser and the two the applications signed in through.
        assert_eq!(d["sessions_ended"], 3, "{d}");
        assert!(d["grants_revoked"].as_u64().unwrap() >= 1, "{d}");
        assert!(d["source"].is_string());
    }
);

/// [`user_tokens`] with another password (after a change).
async fn user_tokens_with(app: &TestApp, c: &(String, String), password: &str) -> Value {
    let url = authorize_url(app, &c.0, &[("scope", "openid offline_access")]);
    let back = Browser::new(app).login(&url, EMAIL, password).await;
    tokens(app, c, &back).await
}

both!(
    asvs_6_2_password_change_needs_the_second_factor_of_a_user_who_has_one,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        enrol_totp(&b).await;
        // A browser that gave only the password is sent to prove the second factor first.
        let pwd_only = Browser::new(app);
        let r = pwd_only.get("/account").await;
        let html = pwd_only.get(&location(&r)).await.text().await.unwrap();
        let flow = html_input(&html, "flow").unwrap();
        let csrf = html_input(&html, "csrf").unwrap();
        let r = pwd_only.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert_eq!(
            location(&r),
            "/account",
            "the account page itself needs a password"
        );
        let account_csrf = account_csrf(&pwd_only).await;
        let r = pwd_only
            .post_form(
                "/account/password",
                &[
                    ("csrf", &account_csrf),
                    ("current", PASSWORD),
                    ("new", NEW),
                    ("repeat", NEW),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/login"), "{}", location(&r));
        assert_eq!(password_changes(app).await, 0);
        assert!(signs_in(app, PASSWORD).await, "unchanged");
    }
);

both!(
    nist_800_63b_wrong_current_passwords_lock_like_wrong_codes,
    async |app: &TestApp| {
        let b = Browser::new(app);
        account_sign_in(&b).await;
        for _ in 0..5 {
            change(&b, "a wrong guess at it", NEW, false).await;
        }
        // Locked: even the right password is refused for now.
        let html = change(&b, PASSWORD, NEW, false).await.text().await.unwrap();
        assert!(!html.contains("account-done"), "{html}");
        assert!(html.contains("Too many wrong passwords or codes"), "{html}");
        assert_eq!(password_changes(app).await, 0);
        let events = app.state.store.audit_for(&app.user_id).await.unwrap();
        assert!(events.iter().any(|e| e.action == "factor.locked"));
    }
);

// Two changes racing from two signed-in browsers: at most one commits (the other's password
// check or session is stale by then), and the loser is told nothing changed.
both!(
    password_changes_racing_cannot_both_succeed,
    async |app: &TestApp| {
        for keep in [false, true] {
            let current = if keep { NEW } else { PASSWORD };
            let (a, b) = (Browser::new(app), Browser::new(app));
            for x in [&a, &b] {
                assert!(signs_in_from(x, current).await);
            }
            let (ra, rb) = tokio::join!(
                change(&a, current, "first racing passphrase wins", keep),
                change(&b, current, "second racing passphrase wins", keep),
            );
            let pages = [ra.text().await.unwrap(), rb.text().await.unwrap()];
            let done = pages.iter().filter(|p| p.contains("account-done")).count();
            assert_eq!(done, 1, "exactly one change commits: {pages:?}");
            // Put a known password back for the next round.
            let winner = if pages[0].contains("account-done") {
                &a
            } else {
                &b
            };
            let won = if pages[0].contains("account-done") {
                "first racing passphrase wins"
            } else {
                "second racing passphrase wins"
            };
            let r = change(winner, won, NEW, true).await.text().await.unwrap();
            assert!(r.contains("account-done"), "{r}");
        }
        assert_eq!(password_changes(app).await, 4);
    }
);

// The fields are compared as they are hashed: after Unicode normalisation (NFKC).
both!(
    password_change_compares_passwords_as_they_are_hashed,
    async |app: &TestApp| {
        let nfc = "caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e velvet zeppelin";
        let nfd = "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e velvet zeppelin";
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let csrf = account_csrf(&b).await;
        let r = b
            .post_form(
                "/account/password",
                &[
                    ("csrf", &csrf),
                    ("current", PASSWORD),
                    ("new", nfd),
                    ("repeat", nfc),
                ],
            )
            .await;
        assert!(r.text().await.unwrap().contains("account-done"));
        assert!(signs_in(app, nfc).await, "one password, either spelling");
        let html = change(&b, nfd, nfc, false).await.text().await.unwrap();
        assert!(html.contains("your current one"), "{html}");
        assert_eq!(password_changes(app).await, 1);
    }
);

/// Signs browser `b` in on the account page with `password`.
async fn signs_in_from(b: &Browser, password: &str) -> bool {
    let r = b.get("/account").await;
    let html = b.get(&location(&r)).await.text().await.unwrap();
    let flow = html_input(&html, "flow").unwrap();
    let csrf = html_input(&html, "csrf").unwrap();
    let r = b.submit_login(&flow, &csrf, EMAIL, password).await;
    r.status() == 303 && location(&r) == "/account"
}

both!(
    one_password_check_per_account_at_a_time_on_the_login_and_the_account_page,
    async |app: &TestApp| {
        // Ada signed in from this browser: it knows her account, and shows her account page.
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let (_, again) = crate::throttle::sign_in_urls(app).await;
        let (flow, csrf) = b.open_login(&again).await;
        // Another request's check of Ada's password is waiting or running (the key the login
        // and the account page both use).
        let account = latchkey_server::signin::device::account(&app.state, EMAIL);
        let held = app.state.hasher.reserve_known(&account).unwrap();
        let busy = "Your password is being checked for another request";
        // The account page's current password: refused unchecked, nothing changed; `503`
        // with `Retry-After`, like the login form.
        let r = change(&b, PASSWORD, NEW, false).await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        let html = r.text().await.unwrap();
        assert!(html.contains(busy), "{html}");
        assert_eq!(password_changes(app).await, 0);
        // The same account's login from a browser it knows: 503, Retry-After, and why.
        let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        assert!(r.text().await.unwrap().contains(busy));
        // A browser the account does not know is checked in the other lane, unaffected.
        assert!(signs_in(app, PASSWORD).await);
        // Once the other check is over, both go through.
        drop(held);
        let r = b.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 303, "the known browser signs in");
        let html = change(&b, PASSWORD, NEW, false).await.text().await.unwrap();
        assert!(html.contains("account-done"), "{html}");
        assert_eq!(password_changes(app).await, 1);
    }
);

both!(
    an_invitation_for_an_address_that_has_an_account_is_refused_before_any_hash,
    async |app: &TestApp| {
        use latchkey_server::signin::invitation::{Acceptance, accept};
        let email = "nia@partner.example";
        let lab_b = app
            .state
            .store
            .create_lab("Lab B", |_| Vec::new())
            .await
            .unwrap()
            .id;
        // Two labs invite the same address; the first invitation is accepted.
        let mut tokens = Vec::new();
        for lab in [app.lab_id.clone(), lab_b.to_string()] {
            let inv = latchkey_server::store::invitations::Invitation {
                id: uuid::Uuid::new_v4().to_string(),
                lab,
                email: email.to_owned(),
                roles: vec![],
                created_by: "test".into(),
                created_at: 0,
                expires_at: i64::MAX / 2,
                accepted_at: None,
            };
            let token = format!("lk_in_{}", inv.id);
            let hash = latchkey_server::secret::TokenHash::of(&token);
            app.state
                .store
                .create_invitation(&inv, hash, true, &[])
                .await
                .unwrap();
            tokens.push(token);
        }
        let first = accept(&app.state, &tokens[0], None, NEW).await.unwrap();
        assert!(matches!(first, Acceptance::Accepted(_)), "{first:?}");
        // Had the second link's password been hashed first, the address's one place, held
        // here, would make it wait its turn ("busy"): it is refused before, every time.
        let account = latchkey_server::signin::device::account(&app.state, email);
        let _held = app.state.hasher.reserve_known(&account).unwrap();
        for _ in 0..3 {
            let again = accept(&app.state, &tokens[1], None, NEW).await.unwrap();
            assert!(
                matches!(&again, Acceptance::AccountExists(m) if m.contains("sign in instead")),
                "{again:?}"
            );
        }
    }
);

both!(
    an_invitation_posted_while_its_address_is_being_hashed_is_told_to_retry_not_to_change_password,
    async |app: &TestApp| {
        use latchkey_server::admin::{Admin, ops};
        let email = "ola@lab.example";
        let view = ops::create_invitation(
            &app.state,
            &Admin::cli(),
            &app.lab(),
            ops::NewInvitation {
                email: email.into(),
                roles: vec![],
                valid_days: None,
            },
        )
        .await
        .unwrap();
        let link = view.link.unwrap();
        let path = link.trim_start_matches(&app.base);
        let b = Browser::new(app);
        let html = b.get(path).await.text().await.unwrap();
        let csrf = html_input(&html, "csrf").unwrap();
        // The same link posted a moment before is hashing its password (one per address).
        let account = latchkey_server::signin::device::account(&app.state, email);
        let held = app.state.hasher.reserve_known(&account).unwrap();
        let r = b
            .post_form(path, &[("csrf", csrf.as_str()), ("password", NEW)])
            .await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("Your password is being checked for another request"),
            "{html}"
        );
        assert!(!html.contains("Choose another password"), "{html}");
        // Nothing was spent: once the other request is done, the link creates the account.
        drop(held);
        let html = b.get(path).await.text().await.unwrap();
        let csrf = html_input(&html, "csrf").unwrap();
        let r = b
            .post_form(path, &[("csrf", csrf.as_str()), ("password", NEW)])
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert!(
            app.state
                .store
                .find_user_by_email(email)
                .await
                .unwrap()
                .is_some()
        );
    }
);
