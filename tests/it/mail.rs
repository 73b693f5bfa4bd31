//! E-mail, read back from a real SMTP server (aiosmtpd): password reset by a mailed link,
//! invitations and address confirmation (`email_verified`), address changes confirmed by both
//! addresses, security notices, the administrators' "send a reset link", STARTTLS with a
//! lab's own CA, and the file outbox of the zero-configuration default.

use crate::common::smtp::no_tweak;
use crate::common::*;
use crate::with_mail;
use std::time::{Duration, Instant};

/// Asks for a reset link for `email` from the sign-in page's "Forgot your password?".
async fn forgot(app: &TestApp, email: &str) -> reqwest::Response {
    let b = Browser::new(app);
    let html = b.get("/password/forgot").await.text().await.unwrap();
    let csrf = html_input(&html, "csrf").unwrap();
    b.post_form(
        "/password/forgot",
        &[("csrf", &csrf), ("email", email), ("flow", "")],
    )
    .await
}

/// Submits a new password on a reset link's page.
async fn reset_with(app: &TestApp, link: &str, new: &str, repeat: &str) -> reqwest::Response {
    let b = Browser::new(app);
    let path = link.trim_start_matches(&app.base);
    let r = b.get(path).await;
    assert_eq!(r.status(), 200, "the link's page opens");
    let html = r.text().await.unwrap();
    let csrf = html_input(&html, "csrf").unwrap();
    b.post_form(path, &[("csrf", &csrf), ("new", new), ("repeat", repeat)])
        .await
}

const NEW_PASSWORD: &str = "quiet harbour lamps at noon";

with_mail!(
    a_forgotten_password_is_reset_by_a_single_use_link_and_the_second_factor_is_still_asked,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        // The user has an authenticator app and an application's refresh token.
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let key = enrol_totp(&b).await;
        remember_totp(app, EMAIL, &key);
        let r = forgot(app, EMAIL).await;
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        assert!(page.contains("is on its way"), "{page}");
        // The enrolment's notice, then the reset link.
        let got = smtp.wait_for(EMAIL, 2).await;
        assert!(
            got.iter()
                .any(|m| m.subject == "A sign-in method was added to your account")
        );
        let mail = got
            .iter()
            .find(|m| m.subject == "Reset your password")
            .unwrap();
        assert!(mail.message_id.contains('@'), "{}", mail.message_id);
        let link = mail
            .link(&app.url("/password/reset/lk_ml_"))
            .expect("a reset link");
        assert!(mail.html.contains(&link), "the HTML part has the link too");
        // A weak password is refused with its reason, and the link still works.
        let r = reset_with(app, &link, "password1", "password1").await;
        assert_eq!(r.status(), 422);
        assert!(r.text().await.unwrap().contains("Choose another password"));
        let r = reset_with(app, &link, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Your password is changed"));
        // Every session ended: the account page asks for a sign-in again.
        assert_eq!(b.get("/account").await.status(), 303);
        // The link works once.
        let again = Browser::new(app)
            .get(link.trim_start_matches(&app.base))
            .await;
        assert_eq!(again.status(), 404);
        // The old password is refused; the new one is taken, and a client that demands a
        // second factor still gets it asked for: the link proved only the mailbox.
        let client = app
            .client(|c| {
                c.skip_consent = true;
                c.min_acr = Some(latchkey_core::Acr::Mfa);
            })
            .await;
        let fresh = Browser::new(app);
        let (flow, csrf) = fresh
            .open_login(&authorize_url(app, &client.client_id, &[]))
            .await;
        let r = fresh.submit_login(&flow, &csrf, EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 401, "the old password");
        let r = fresh.submit_login(&flow, &csrf, EMAIL, NEW_PASSWORD).await;
        assert_eq!(r.status(), 303);
        assert!(
            location(&r).starts_with("/login/verify"),
            "{}",
            location(&r)
        );
        // The owner is told.
        let got = smtp.wait_for(EMAIL, 3).await;
        let notice = got
            .iter()
            .find(|m| m.subject == "Your password was changed")
            .unwrap();
        assert!(notice.text.contains("with a reset link"), "{}", notice.text);
    }
);

with_mail!(
    a_reset_link_expires,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        forgot(app, EMAIL).await;
        let mail = smtp.wait_for(EMAIL, 1).await.remove(0);
        let link = mail.link(&app.url("/password/reset/")).unwrap();
        tamper(app, "UPDATE account_links SET expires_at = 1").await;
        let r = Browser::new(app)
            .get(link.trim_start_matches(&app.base))
            .await;
        assert_eq!(r.status(), 404);
        assert!(r.text().await.unwrap().contains("has expired"));
    }
);

with_mail!(
    a_newer_reset_link_replaces_the_older_and_an_account_gets_at_most_three_an_hour,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        for _ in 0..5 {
            assert_eq!(forgot(app, EMAIL).await.status(), 200);
        }
        let got = smtp.wait_for(EMAIL, 3).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(smtp.to(EMAIL).len(), 3, "three links an hour, then none");
        let links: Vec<String> = got
            .iter()
            .map(|m| m.link(&app.url("/password/reset/")).unwrap())
            .collect();
        let first = Browser::new(app)
            .get(links[0].trim_start_matches(&app.base))
            .await;
        assert_eq!(first.status(), 404, "replaced by the newer link");
        let last = Browser::new(app)
            .get(links[2].trim_start_matches(&app.base))
            .await;
        assert_eq!(last.status(), 200);
    }
);

with_mail!(
    forgot_password_answers_alike_for_known_and_unknown_addresses,
    |c: &mut Config| {
        c.mail.reset_requests_per_source = 10_000;
        c.mail.resets_per_hour = 10_000;
    },
    async |app: &TestApp, smtp: &SmtpServer| {
        let unknown = "nobody@lab.example";
        let (mut known_t, mut unknown_t) = (Vec::new(), Vec::new());
        let b = Browser::new(app);
        let html = b.get("/password/forgot").await.text().await.unwrap();
        let csrf = html_input(&html, "csrf").unwrap();
        let mut bodies = Vec::new();
        // Interleaved, so load on the machine weighs on both alike.
        for i in 0..150 {
            for (email, out) in [(EMAIL, &mut known_t), (unknown, &mut unknown_t)] {
                let t = Instant::now();
                let r = b
                    .post_form(
                        "/password/forgot",
                        &[("csrf", &csrf), ("email", email), ("flow", "")],
                    )
                    .await;
                out.push(t.elapsed());
                assert_eq!(r.status(), 200);
                if i == 0 {
                    bodies.push(r.text().await.unwrap().replace(email, "ADDRESS"));
                }
            }
        }
        assert_eq!(bodies[0], bodies[1], "the same page for both");
        let median = |mut d: Vec<Duration>| {
            d.sort();
            d[d.len() / 2].as_secs_f64() * 1e6
        };
        let (k, u) = (median(known_t), median(unknown_t));
        assert!(
            (k - u).abs() <= 0.2 * k.max(u) + 1000.0,
            "known {k:.0} µs, unknown {u:.0} µs"
        );
        // The known address did get its links; the unknown one nothing.
        smtp.wait_for(EMAIL, 150).await;
        assert!(smtp.to(unknown).is_empty());
    }
);

with_mail!(
    reset_requests_are_budgeted_per_source_address,
    |c: &mut Config| {
        c.mail.reset_requests_per_source = 2;
    },
    async |app: &TestApp, _smtp: &SmtpServer| {
        assert_eq!(forgot(app, EMAIL).await.status(), 200);
        assert_eq!(forgot(app, "nobody@lab.example").await.status(), 200);
        let r = forgot(app, "nobody@lab.example").await;
        assert_eq!(r.status(), 429);
        assert!(r.headers().contains_key("retry-after"));
    }
);

/// Mails a reset link for [`EMAIL`] and returns it.
async fn reset_link_of(app: &TestApp, smtp: &crate::common::smtp::SmtpServer, n: usize) -> String {
    forgot(app, EMAIL).await;
    smtp.wait_for(EMAIL, n)
        .await
        .into_iter()
        .rev()
        .find(|m| m.subject == "Reset your password")
        .unwrap()
        .link(&app.url("/password/reset/"))
        .unwrap()
}

with_mail!(
    nist_800_63b_a_reset_link_does_not_lift_a_block_on_second_factor_codes,
    |c: &mut Config| c.authentication.max_code_failures = 3,
    async |app: &TestApp, smtp: &SmtpServer| {
        use latchkey_server::protocol::throttle::CodeLock;
        use latchkey_server::signin::throttle;
        let user = app.user_id.clone();
        let who = requester("192.0.2.1");
        let now = latchkey_server::store::now();
        for _ in 0..3 {
            throttle::code_fail(&app.state, &user, &who, now)
                .await
                .unwrap();
        }
        let link = reset_link_of(app, smtp, 1).await;
        let r = reset_with(app, &link, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            throttle::code_standing(&app.state, &user, now + 60)
                .await
                .unwrap(),
            Some(CodeLock::Blocked),
            "a mailbox alone buys no more guesses at the second factor"
        );
    }
);

with_mail!(
    a_reset_link_dies_with_the_accounts_sessions_when_it_is_disabled_or_its_password_changed,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        use latchkey_server::admin::{Admin, ops};
        // Disabled, then enabled again: the link sent before stays dead.
        let link = reset_link_of(app, smtp, 1).await;
        ops::set_disabled(&app.state, &Admin::cli(), &app.user(), true)
            .await
            .unwrap();
        ops::set_disabled(&app.state, &Admin::cli(), &app.user(), false)
            .await
            .unwrap();
        let r = Browser::new(app)
            .get(link.trim_start_matches(&app.base))
            .await;
        assert_eq!(r.status(), 404);
        // Changed on the account page: a link sent before cannot undo it.
        let link = reset_link_of(app, smtp, 2).await;
        let b = Browser::new(app);
        account_sign_in(&b).await;
        let csrf = account_csrf(&b).await;
        let r = b
            .post_form(
                "/account/password",
                &[
                    ("csrf", &csrf),
                    ("current", PASSWORD),
                    ("new", NEW_PASSWORD),
                    ("repeat", NEW_PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status(), 200);
        let r = Browser::new(app)
            .get(link.trim_start_matches(&app.base))
            .await;
        assert_eq!(r.status(), 404);
    }
);

with_mail!(
    a_reset_link_posted_while_the_accounts_password_is_being_hashed_is_refused_and_still_works,
    no_tweak,
    async |app: &TestApp, smtp: &SmtpServer| {
        let link = reset_link_of(app, smtp, 1).await;
        // Another request's hash or check of this account is running (the same link posted
        // many times at once): one per account at a time, so this one is refused unhashed.
        let account = latchkey_server::signin::device::account(&app.state, EMAIL);
        let held = app.state.hasher.reserve_known(&account).unwrap();
        let r = reset_with(app, &link, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("Your password is being checked for another request"),
            "{html}"
        );
        assert!(
            Browser::new(app)
                .get(link.trim_start_matches(&app.base))
                .await
                .status()
                == 200
        );
        // Once it is over, the link sets the password.
        drop(held);
        let r = reset_with(app, &link, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(r.status(), 200);
        let b = Browser::new(app);
        let c = app.client(|c| c.skip_consent = true).await;
        b.login(&authorize_url(app, &c.client_id, &[]), EMAIL, NEW_PASSWORD)
            .await;
    }
);
